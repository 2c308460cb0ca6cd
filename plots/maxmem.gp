# maxmem: the memory-budget sweep (configs/maxmem.json, docs/memory-budget.md).
# Left: forward latency against the working-memory budget, one line per
# kernel (bench rows whose params name mem_budget=B). Right: test accuracy of
# the trained checkpoints evaluated with every layer's kernel under each
# budget (eval rows: split=extrap and mem_budget=B), one line per kernel.
# Budgets on a log axis; a budget a kernel cannot meet has no point.
#
# Inputs (set by plots/plot.sh): csv, suite (default "maxmem"), out_png,
# out_svg, pngterm. Exit status 2: no csv; 3: no usable rows.

if (!exists("csv")) { print "maxmem.gp: set csv='FILE' (see plots/plot.sh)"; exit status 2 }
if (!exists("suite")) { suite = "maxmem" }
if (!exists("pngterm")) { pngterm = "pngcairo" }
if (!exists("out_png")) { out_png = "" }
if (!exists("out_svg")) { out_svg = "" }

set datafile separator comma
set datafile columnheaders
set datafile commentschars ""

finite(x) = x == x && abs(x) < 1e300

# The budget of a params cell ("br=16;bc=32;mem_budget=65536"), NaN without one.
B_at(s) = strstrt(s, "mem_budget=")
B_tail(s) = s[B_at(s) + 11:]
B_num(t) = strstrt(t, ";") ? t[1:strstrt(t, ";") - 1] + 0 : t + 0
budget(s) = B_at(s) ? B_num(B_tail(s)) : NaN

# Bench rows carry the sweep's suite; eval rows carry their task's (recall for
# MQAR), so they are told apart by their split, not by the suite.
ours(k) = strcol("status") eq "ok" && strcol("kernel") eq k
is_eval(dummy) = strstrt(strcol("params"), "split=extrap") > 0
lat_x(k) = ours(k) && strcol("suite") eq suite && !is_eval(0) && strcol("pass") eq "fwd" ? budget(strcol("params")) : NaN
acc_x(k) = ours(k) && is_eval(0) ? budget(strcol("params")) : NaN

# The kernels that claim the mode, in `list kernels` order. Each kernel's
# points go into a block of $Lat / $Acc (x = budget, y = time or accuracy)
# through `with table if`: filtering by an undefined x instead would cut
# every kernel's line at the other kernels' rows.
kernels = "flash decode lean linear local_linear deltanet gated_deltanet retnet gla lightning"
lat_list = ""
acc_list = ""
$Lat << EOD
EOD
$Acc << EOD
EOD
do for [k in kernels] {
    stats csv using (finite(lat_x(k)) && finite(column("time_ms_median")) ? 1 : 0) nooutput
    if (STATS_sum > 0) {
        lat_list = lat_list . " " . k
        set table $Lat append
        plot csv using (lat_x(k)):(column("time_ms_median")) with table \
            if (finite(lat_x(k)) && finite(column("time_ms_median")))
        unset table
        set print $Lat append
        print ""
        print ""
        unset print
    }
    stats csv using (finite(acc_x(k)) && finite(column("value")) ? 1 : 0) nooutput
    if (STATS_sum > 0) {
        acc_list = acc_list . " " . k
        set table $Acc append
        plot csv using (acc_x(k)):(column("value")) with table if (finite(acc_x(k)) && finite(column("value")))
        unset table
        set print $Acc append
        print ""
        print ""
        unset print
    }
}
if (words(lat_list) == 0 && words(acc_list) == 0) {
    print sprintf("maxmem.gp: %s has no suite=%s, status=ok rows with mem_budget in params", csv, suite)
    exit status 3
}
set datafile separator whitespace # the blocks are gnuplot's table output: no header, blanks
set datafile nocolumnheaders

set logscale x 2
set xrange [32768:33554432]
set xtics ("64K" 65536, "256K" 262144, "1M" 1048576, "4M" 4194304, "16M" 16777216)
set xlabel "working-memory budget (bytes)"
set key top right
set grid
term_of(f) = f eq "png" ? sprintf("set terminal %s size 1400,560 font ',11'; set output '%s'", pngterm, out_png) \
                        : sprintf("set terminal svg size 1400,560 font 'sans,11'; set output '%s'", out_svg)
do for [f in "png svg"] {
    if ((f eq "png" && out_png ne "") || (f eq "svg" && out_svg ne "")) {
        eval term_of(f)
        set multiplot layout 1, 2 title "memory-budget mode: latency and accuracy against the budget"
        set title "forward latency (bench rows)"
        set ylabel "median time (ms)"
        set logscale y
        if (words(lat_list) > 0) {
            plot for [i = 1:words(lat_list)] $Lat index (i - 1) using 1:2 smooth unique \
                with linespoints lw 2 title word(lat_list, i) noenhanced
        } else {
            set label 1 "no bench rows" at graph 0.5, 0.5 center
            plot NaN notitle
            unset label 1
        }
        unset logscale y
        set title "test accuracy of trained checkpoints (eval rows)"
        set ylabel "accuracy"
        set yrange [0:1.05]
        if (words(acc_list) > 0) {
            plot for [i = 1:words(acc_list)] $Acc index (i - 1) using 1:2 smooth unique \
                with linespoints lw 2 title word(acc_list, i) noenhanced
        } else {
            set label 1 "no eval rows" at graph 0.5, 0.5 center
            plot NaN notitle
            unset label 1
        }
        set autoscale y
        unset multiplot
        set output
    }
}
