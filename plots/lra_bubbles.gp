# lra_bubbles: the LRA paper's figure 3 for attnbench runs: x = training steps/s
# relative to flash (the Transformer baseline), y = average test accuracy over
# the LRA tasks run, bubble area = peak RSS. Speed and memory come from the
# speed rows at length speed_at_N (column 6) when the report had them, as the
# paper's chart takes them from its 4K benchmark; else (0) from the trainings.
# Input: csv = results/lra_bubbles.csv from 'attnbench report lra' (no quoted
# fields). Run through plots/plot.sh; exit 3 when there are no usable rows.
if (!exists("csv")) { print "lra_bubbles.gp: set csv='FILE'"; exit status 2 }
if (!exists("pngterm")) { pngterm = "pngcairo" }
set datafile separator comma
set datafile columnheaders
stats csv using 2:3 nooutput
if (STATS_records < 1) { print sprintf("lra_bubbles.gp: %s has no rows", csv); exit status 3 }
stats csv using 4 name "M" nooutput
rmax = M_max > 0 ? M_max : 1
stats csv using 6 name "AT" nooutput
if (AT_max > 0) { set xlabel sprintf("training steps/s relative to flash at N = %d (bench --suite lra_speed)", AT_max) } \
else { set xlabel "training steps/s relative to flash (the task trainings)" }
set ylabel "average test accuracy over the tasks run (%)"
set title "LRA: speed vs accuracy, bubble area = peak RSS (attnbench runs; stand-in data where labelled in LRA.md)" noenhanced
set grid
set key off
set offsets graph 0.15, graph 0.15, graph 0.15, graph 0.15
do for [fmt in (exists("out_png") && out_png ne "" ? "png " : "") . (exists("out_svg") && out_svg ne "" ? "svg" : "")] {
    if (fmt eq "svg") { set terminal svg size 760,520 dynamic noenhanced background "white"; set output out_svg }
    if (fmt eq "png") {
        if (pngterm eq "png") { set terminal png size 760,520 noenhanced } else { set terminal pngcairo size 760,520 noenhanced }
        set output out_png
    }
    plot csv using 2:3:(0.04 * sqrt($4 / rmax)) with circles fs transparent solid 0.4 lc rgb "steelblue", \
         csv using 2:3:1 with labels offset 0,1.6 notitle
}
