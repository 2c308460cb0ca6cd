# longctx: what decode kernels keep of exact attention at long KV lengths, one
# row of panels per (KV length, input family) present: top-k key recall against
# the oracle vs time per token (left) and vs KV bytes read per token (right); exact
# kernels (decode) sit at recall 1 as the large star, the reference point.
# Input: csv = results/longctx_points.csv from 'attnbench report longctx'
# (columns N_kv,family,kernel,label,us_per_token,mib_per_token,topk_recall,
# rel_fro_err,exact; no quoted fields). Run through plots/plot.sh; exit 3 when
# there are no usable rows.
if (!exists("csv")) { print "longctx.gp: set csv='FILE'"; exit status 2 }
if (!exists("pngterm")) { pngterm = "pngcairo" }
set datafile separator comma
set datafile columnheaders

add(list, w) = strstrt(" " . list . " ", " " . w . " ") ? list : (list eq "" ? w : list . " " . w)
# panels: the (N_kv, family) pairs present, as "N|family" words
cells = ""; kerns = ""
stats csv using (cells = add(cells, strcol(1) . "|" . strcol(2)), \
                  kerns = column(9) == 0 ? add(kerns, strcol(3)) : kerns, $5) nooutput
if (STATS_records < 1) { print sprintf("longctx.gp: %s has no rows", csv); exit status 3 }
nC = words(cells); nK = words(kerns)
cellN(c) = c[1:strstrt(c, "|") - 1]
cellF(c) = c[strstrt(c, "|") + 1:]

in(N, f) = strcol(1) eq N && strcol(2) eq f
pt(N, f, k, c) = in(N, f) && strcol(3) eq k && column(9) == 0 ? column(c) : NaN
exact(N, f, c) = in(N, f) && column(9) == 1 ? column(c) : NaN

set logscale x
set grid
set yrange [0:1.05]
set key outside right top box opaque font ",8"
W = 2 * 340 + 160; H = 300 * nC
do for [fmt in (exists("out_png") && out_png ne "" ? "png " : "") . (exists("out_svg") && out_svg ne "" ? "svg" : "")] {
    if (fmt eq "svg") { set terminal svg size W,H dynamic noenhanced background "white"; set output out_svg }
    if (fmt eq "png") {
        if (pngterm eq "png") { set terminal png size W,H noenhanced } else { set terminal pngcairo size W,H noenhanced }
        set output out_png
    }
    set multiplot layout nC, 2 title "long-context decode: top-16 key recall vs time and KV bytes per token\n" . (exists("machine") && machine ne "" ? machine : "machine not recorded") noenhanced
    do for [i = 1:nC] {
        do for [j = 1:1] {
            N = cellN(word(cells, i)); f = cellF(word(cells, i))
            do for [c in "5 6"] {
                col = int(c)
                set title sprintf("N_kv = %s, %s", N, f)
                set xlabel (col == 5 ? "time per token (µs, median)" : "KV MiB read per token (bytes_read counter)")
                set ylabel "top-16 key recall"
                if (i == 1 && col == 6) { set key } else { unset key }
                plot for [k = 1:nK] csv using (pt(N, f, word(kerns, k), col)):7 with points pt 7 ps 0.9 lc k title word(kerns, k), \
                     csv using (exact(N, f, col)):7 with points pt 3 ps 2.2 lw 2 lc rgb "black" title "exact (decode)"
            }
        }
    }
    unset multiplot
}
