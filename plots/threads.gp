# threads: useful GFLOP/s against the thread count for the threads suite (one
# problem on 1, 2, ... threads), one line per kernel (and params), with each
# kernel's perfect scaling from its 1-thread rate as a dashed line of its
# colour, so the gap is the parallel loss, and the same run's sgemm GFLOP/s
# per thread count (peak.csv) as a dotted black line; noisy rows circled in
# red. One panel per (mask, pass, N, D, B, H, H_kv).

extra_num = "gflops"
panel_cols = "mask pass N D B H H_kv"
load "common.gp"
vG(i) = vX(1, i)
vT(i) = sThreads(i) + 0
yok(i) = finite(vG(i)) && vG(i) > 0 && vT(i) > 0
yv(i) = vG(i)
load "panels.gp"

A_ok = 0
do for [i = 1:A_n] { if (A_RP[i] > 0 && yok(i)) { A_ok = 1 } }
if (!A_ok) {
    print sprintf("threads.gp: %s has no suite=%s, status=ok rows with numeric gflops", csv, suite)
    exit status 3
}
# each line's 1-thread rate in each panel (NaN: none), for its perfect-scaling line
array A_One[A_np * A_nl + 1]
do for [j = 1:A_np * A_nl] { A_One[j] = NaN }
do for [i = 1:A_n] { if (A_RP[i] > 0 && yok(i) && vT(i) == 1) { A_One[(A_RP[i] - 1) * A_nl + A_RL[i]] = vG(i) } }
A_tmax = 1
do for [i = 1:A_n] { if (A_RP[i] > 0 && yok(i) && vT(i) > A_tmax) { A_tmax = vT(i) } }

# The points of each (panel, line) as one block of a datablock, in thread
# order: rows of one line need not be adjacent in the CSV, and a line through
# the rows array would break at every other line's row.
set print $Pts
do for [p = 1:A_np] {
    do for [l = 1:A_nl] {
        do for [t = 1:A_tmax] {
            do for [i = 1:A_n] {
                if (A_RP[i] == p && A_RL[i] == l && yok(i) && vT(i) == t) { print sprintf("%g,%g", vT(i), vG(i)) }
            }
        }
        print "NaN,NaN" # (the datafile separator is the CSV comma)
        print ""
        print ""
    }
}
unset print

blk(p, l) = (p - 1) * A_nl + l - 1

# The same-run roof: peak.csv's sgemm GFLOP/s at each thread count (its last row per count).
set print $Roof
A_roofs = 0
if (exists("peakcsv") && peakcsv ne "") {
    do for [t = 1:A_tmax] {
        A_g = NaN
        set datafile columnheaders
        stats peakcsv using ((strcol("suite") eq "peak" && strcol("kernel") eq "sgemm" && strcol("status") eq "ok" && \
            column("threads") == t && finite(column("gflops"))) ? (A_g = column("gflops")) : 0) nooutput
        set datafile nocolumnheaders
        if (finite(A_g)) { print sprintf("%d,%g", t, A_g); A_roofs = A_roofs + 1 }
    }
}
print "NaN,NaN"
unset print

set xlabel "threads"
set xrange [0.8:A_tmax * 1.25]
set logscale x 2
set xtics 1, 2
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0
set ylabel "useful GFLOP/s"
set key top left
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols \
        title "thread scaling: GFLOP/s against threads, dashed: perfect scaling from 1 thread, dotted: sgemm roof\n" . A_source font ",12"
    do for [p = 1:A_np] {
        set title A_PT[p]
        plot for [k = 1:words(A_PL[p])] $Pts index blk(p, A_lid(p, k)) using 1:2 \
                 with linespoints lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             for [k = 1:words(A_PL[p])] $Pts index blk(p, A_lid(p, k)) \
                 using 1:(A_One[(p - 1) * A_nl + A_lid(p, k)] * $1) with lines dt 2 lt A_lid(p, k) notitle, \
             $Roof using 1:2 with linespoints dt 3 lw 1.5 pt 6 lc rgb "black" title (A_roofs ? "sgemm roof (same run)" : ""), \
             A_RP using (noisy_in($1, p) ? vT($1) : NaN):(vG($1)) with points pt 6 ps 2.2 lw 1.5 lc rgb "red" title A_NT[p]
    }
    unset multiplot
}
