# fidelity: error against softmax attention vs forward time, one panel per
# (N, input family): every configuration as a point coloured by kernel, the
# Pareto front (no configuration both faster and closer) as a line, exact
# kernels (flash) as the large star at the bottom (their error is rounding).
# Input: csv = results/fidelity_pareto.csv from 'attnbench report fidelity'
# (columns N,D,family,kernel,label,time_ms,rel_fro_err,pareto,exact; no quoted
# fields). Run through plots/plot.sh; exit 3 when there are no usable rows.
if (!exists("csv")) { print "fidelity.gp: set csv='FILE'"; exit status 2 }
if (!exists("pngterm")) { pngterm = "pngcairo" }
set datafile separator comma
set datafile columnheaders

# The distinct values of a column, as a space-separated word list.
add(list, w) = strstrt(" " . list . " ", " " . w . " ") ? list : (list eq "" ? w : list . " " . w)
Ns = ""; fams = ""; kerns = ""
stats csv using (Ns = add(Ns, strcol(1)), fams = add(fams, strcol(3)), \
                  kerns = column(9) == 0 ? add(kerns, strcol(4)) : kerns, $6) nooutput
if (STATS_records < 1) { print sprintf("fidelity.gp: %s has no rows", csv); exit status 3 }
nN = words(Ns); nF = words(fams); nK = words(kerns)

in(N, f) = strcol(1) eq N && strcol(3) eq f
pt(N, f, k) = in(N, f) && strcol(4) eq k && column(9) == 0 ? column(6) : NaN
front(N, f) = in(N, f) && column(8) == 1 ? column(6) : NaN
exact(N, f) = in(N, f) && column(9) == 1 ? column(6) : NaN

set logscale xy
set grid
set format y "%.0e"
set key outside right top box opaque font ",8"
W = 360 * nF + 160; H = 300 * nN
do for [fmt in (exists("out_png") && out_png ne "" ? "png " : "") . (exists("out_svg") && out_svg ne "" ? "svg" : "")] {
    if (fmt eq "svg") { set terminal svg size W,H dynamic noenhanced background "white"; set output out_svg }
    if (fmt eq "png") {
        if (pngterm eq "png") { set terminal png size W,H noenhanced } else { set terminal pngcairo size W,H noenhanced }
        set output out_png
    }
    set multiplot layout nN, nF title "fidelity vs time: rel. Frobenius error of O against the fp64 oracle (generated inputs, docs/fidelity.md)\n" . (exists("machine") && machine ne "" ? machine : "machine not recorded") noenhanced
    do for [i = 1:nN] {
        do for [j = 1:nF] {
            N = word(Ns, i); f = word(fams, j)
            set title sprintf("N = %s, inputs %s", N, f)
            set xlabel "forward time (ms, median)"
            set ylabel "rel_fro_err"
            if (i == 1 && j == nF) { set key } else { unset key }
            plot for [k = 1:nK] csv using (pt(N, f, word(kerns, k))):7 with points pt 7 ps 0.8 lc k title word(kerns, k), \
                 csv using (front(N, f)):7 with lines lw 1.5 dt 2 lc rgb "black" title "Pareto front", \
                 csv using (exact(N, f)):7 with points pt 3 ps 2.2 lw 2 lc rgb "black" title "exact (flash)"
        }
    }
    unset multiplot
}
