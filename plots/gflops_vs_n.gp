# gflops_vs_n: achieved GFLOP/s (the gflops column: useful flops / median
# time) against N, one line per kernel (and params), with the sgemm peak
# measured in the same results directory (peak.csv: suite=peak, kernel=sgemm,
# same thread count; the last such row wins) as a labelled horizontal line.
# One panel per (mask, pass, D, B, H, H_kv, threads). Extra input: peakcsv.

load "common.gp"
yok(i) = finite(vGflops(i)) && vGflops(i) > 0
yv(i) = vGflops(i)
load "panels.gp"

# sgemm peak per panel (kernel, suite, status, threads never hold commas)
array A_PK[A_np]
do for [p = 1:A_np] {
    A_PK[p] = NaN
    if (exists("peakcsv") && peakcsv ne "" && A_PTh[p] ne "") {
        A_t = A_PTh[p] + 0
        set datafile columnheaders
        stats peakcsv using ((strcol("suite") eq "peak" && strcol("kernel") eq "sgemm" && \
            strcol("status") eq "ok" && column("threads") == A_t && finite(column("gflops"))) ? \
            (A_PK[p] = column("gflops")) : 0) nooutput
        set datafile nocolumnheaders
    }
}

set yrange [0:*]
# Headroom above the data and the peak line, so the key (top left) covers neither.
set offsets 0, 0, graph 0.45, 0
set ylabel "achieved GFLOP/s (useful flops / median time)"
# Noisy points are circled; the key names the circle only in panels that have one (A_NT).
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols \
        title "attention throughput vs N, with the sgemm peak measured by the same harness\n" . A_source font ",12"
    do for [p = 1:A_np] {
        set title A_PT[p]
        A_pk = A_PK[p]
        A_thr = A_PTh[p] . (A_PTh[p] eq "1" ? " thread" : " threads")
        unset label 1
        if (finite(A_pk)) {
            set label 1 sprintf("sgemm peak, %s: %.1f GFLOP/s", A_thr, A_pk) at graph 0.98, first A_pk right offset 0, 0.8
        }
        # An empty title leaves the element out of the key.
        A_t1 = finite(A_pk) ? "sgemm peak" : ""
        A_t2 = finite(A_pk) ? "" : "(no sgemm peak at " . A_thr . " in peak.csv)"
        plot for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) ? vN($1) : NaN):(vGflops($1)) \
                 smooth unique with linespoints lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             (finite(A_pk) ? A_pk : NaN) with lines dt 2 lw 2 lc rgb "black" title A_t1, \
             keyentry with lines lc rgb "white" title A_t2, \
             A_RP using (noisy_in($1, p) ? vN($1) : NaN):(vGflops($1)) \
                 with points pt 6 ps 2.2 lw 1.5 lc rgb "red" title A_NT[p]
    }
    unset multiplot
}
