# memory_vs_n: memory against N, log-log, one colour per kernel (and params):
# workspace_bytes (harness-allocated kernel workspace, solid) and
# peak_rss_bytes (dashed), with dashed guides proportional to N and N^2
# through the dense kernel's smallest-N workspace. The point of the figure:
# flash grows linearly (or stays flat), naive/blas quadratically.

load "common.gp"
mib(b) = b / 1048576.0
wok(i) = finite(vWork(i)) && vWork(i) > 0
rok(i) = finite(vRss(i)) && vRss(i) > 0
yok(i) = wok(i) || rok(i)
yv(i) = wok(i) ? mib(vWork(i)) : mib(vRss(i))
load "panels.gp"

set logscale y 10
set format y "%g"
set ylabel "memory [MiB]"
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title "attention memory vs N (log-log); " . \
        "solid: workspace_bytes (kernel workspace), dashed: peak_rss_bytes\n" . A_source font ",12"
    do for [p = 1:A_np] {
        set title A_PT[p]
        N0 = A_AN[p]; Y0 = A_AY[p]
        plot for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && wok($1) ? vN($1) : NaN):(mib(vWork($1))) \
                 smooth unique with linespoints lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && rok($1) ? vN($1) : NaN):(mib(vRss($1))) \
                 smooth unique with linespoints lt A_lid(p, k) dt 2 lw 1.2 notitle, \
             Y0 * (x / N0) with lines dt 2 lw 1.5 lc rgb "gray30" title A_g1t(p, A_f), \
             Y0 * (x / N0)**2 with lines dt 4 lw 1.5 lc rgb "gray30" title A_g2t(A_f)
    }
    unset multiplot
}
