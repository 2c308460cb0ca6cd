# lra_bubbles: the LRA paper's figure 3 for attnbench runs: x = training steps/s
# relative to flash (the Transformer baseline), y = average test accuracy over
# the LRA tasks run, bubble area = peak RSS. Speed and memory come from the
# speed rows at length speed_at_N (column 6) when the report had them, as the
# paper's chart takes them from its 4K benchmark; else (0) from the trainings.
# Input: csv = results/lra_bubbles.csv from 'attnbench report lra' (no quoted
# fields; its first line, "# machine: ...", plot.sh passes as `machine`).
# Bubbles are points whose size follows sqrt(peak RSS), so their area does,
# whatever the axes' ranges; each label gives the MiB. Run through
# plots/plot.sh; exit 3 when there are no usable rows.
if (!exists("csv")) { print "lra_bubbles.gp: set csv='FILE'"; exit status 2 }
if (!exists("pngterm")) { pngterm = "pngcairo" }
set datafile separator comma
set datafile columnheaders
stats csv using 2:3 nooutput
if (STATS_records < 1) { print sprintf("lra_bubbles.gp: %s has no rows", csv); exit status 3 }
# labels above and below their bubbles in turn: neighbours at one speed overlap less
dy = 0.07 * (STATS_max_y - STATS_min_y > 1 ? STATS_max_y - STATS_min_y : 10)
stats csv using 4 name "M" nooutput
rmax = M_max > 0 ? M_max : 1
stats csv using 6 name "AT" nooutput
if (AT_max > 0) { set xlabel sprintf("training steps/s relative to flash at N = %d (bench --suite lra_speed)", AT_max) } \
else { set xlabel "training steps/s relative to flash (the task trainings)" }
set ylabel "average test accuracy over the tasks run (%)"
if (!exists("machine") || machine eq "") { machine = "machine not recorded" }
set title "LRA: training speed vs average accuracy, bubble area = peak RSS\n" . machine . \
          "; stand-in data where LRA.md labels it" noenhanced
set grid
set key off
set offsets graph 0.15, graph 0.15, graph 0.15, graph 0.15
do for [fmt in (exists("out_png") && out_png ne "" ? "png " : "") . (exists("out_svg") && out_svg ne "" ? "svg" : "")] {
    if (fmt eq "svg") { set terminal svg size 900,600 dynamic noenhanced background "white"; set output out_svg }
    if (fmt eq "png") {
        if (pngterm eq "png") { set terminal png size 900,600 noenhanced } else { set terminal pngcairo size 900,600 noenhanced }
        set output out_png
    }
    plot csv using 2:3:(1 + 7 * sqrt($4 / rmax)) with points pt 7 ps variable lc rgb "#806495ed", \
         csv using 2:($3 + (int($0) % 2 ? -dy : dy)):(sprintf("%s (%.0f MiB)", strcol(1), $4)) \
             with labels font ",9" notitle
}
