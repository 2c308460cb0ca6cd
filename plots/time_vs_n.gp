# time_vs_n: median time per call against N, log-log, one line per kernel
# (and params), error bars p10..p90, dashed guides proportional to N and N^2
# through the dense kernel's smallest N, noisy rows circled in red. One panel
# per (mask, pass, D, B, H, H_kv, threads). Run through plots/plot.sh; inputs are described in common.gp.

load "common.gp"
yok(i) = finite(vTime(i)) && vTime(i) > 0
yv(i) = vTime(i)
load "panels.gp"

lo(i) = finite(vP10(i)) && vP10(i) > 0 ? vP10(i) : vTime(i)
hi(i) = finite(vP90(i)) && vP90(i) > 0 ? vP90(i) : vTime(i)
set logscale y 10
set format y "%g"
set ylabel "time per call [ms], median (bars: p10..p90)"
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title "attention time vs N (log-log)\n" . A_source font ",12"
    do for [p = 1:A_np] {
        set title A_PT[p]
        N0 = A_AN[p]; Y0 = A_AY[p]
        plot for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) ? vN($1) : NaN):(vTime($1)) \
                 smooth unique with linespoints lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) ? vN($1) : NaN):(vTime($1)):(lo($1)):(hi($1)) \
                 with yerrorbars lt A_lid(p, k) notitle, \
             Y0 * (x / N0) with lines dt 2 lw 1.5 lc rgb "gray30" title A_g1t(p, A_f), \
             Y0 * (x / N0)**2 with lines dt 4 lw 1.5 lc rgb "gray30" title A_g2t(A_f), \
             A_RP using (noisy_in($1, p) ? vN($1) : NaN):(vTime($1)) with points pt 6 ps 2.2 lw 1.5 lc rgb "red" title A_NT[p]
    }
    unset multiplot
}
