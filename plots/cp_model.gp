# cp_model: the cost model's predicted efficiency of ring and ulysses against
# ranks ('attnbench cpmodel --out results/cp_model.csv'), one line per
# (kernel, N), labelled "model", with the measured efficiency rows of
# 'mpirun -n P attnbench bench --kernel ring|ulysses --out results/cp.csv'
# (metric efficiency_vs_1rank, pass fwd, the model's mask, B, H, H_kv and D)
# on it as points. Ranks of a measured row: ranks=P in its params.
#
# Inputs (set by plots/plot.sh with -e): csv (the model CSV), results (the
# directory whose cp.csv holds the measured rows; optional), out_png,
# out_svg, pngterm. Exit status 3: no feasible prediction in csv.

if (!exists("csv")) { print "cp_model.gp: set csv='FILE' (see plots/plot.sh)"; exit status 2 }
if (!exists("pngterm")) { pngterm = "pngcairo" }
if (!exists("out_png")) { out_png = "" }
if (!exists("out_svg")) { out_svg = "" }
if (!exists("results")) { results = "" }

set datafile separator comma
set datafile columnheaders

# the model's problem (first row) and link, the lengths it covers, its largest P
M_ok = 0; M_pmax = 1; M_Ns = " "
stats csv using (M_ok = M_ok + (column("efficiency") > 0), \
                 M_pmax = column("P") > M_pmax ? column("P") : M_pmax, \
                 M_n = sprintf("%d", column("N")), \
                 M_Ns = strstrt(M_Ns, " " . M_n . " ") ? M_Ns : M_Ns . M_n . " ", 0) nooutput
if (!M_ok) { print sprintf("cp_model.gp: %s has no feasible prediction", csv); exit status 3 }
stats csv every ::0::0 using (M_mask = strcol("mask"), M_B = column("B"), M_H = column("H"), M_Hkv = column("H_kv"), \
                              M_D = column("D"), M_lat = column("latency_us"), M_bw = column("bandwidth_gbs"), 0) nooutput

# measured points: results/cp.csv when it exists
M_meas = results ne "" ? results . "/cp.csv" : ""
if (M_meas ne "" && system(sprintf("test -s '%s' && echo 1 || echo 0", M_meas)) + 0 == 0) { M_meas = "" }
# p[...] + 0 reads the leading digits of "2;bq=64" only up to the ';'
# (rows written before the host_ranks column also have ";host_ranks=2" there)
lead(s) = strstrt(s, ";") ? s[1:strstrt(s, ";") - 1] + 0 : s + 0
ranks(p) = strstrt(p, "ranks=") ? lead(p[strstrt(p, "ranks=") + 6:]) : NaN
same(k) = strcol("kernel") eq k && strcol("metric") eq "efficiency_vs_1rank" && strcol("pass") eq "fwd" && \
          strcol("mask") eq M_mask && column("B") == M_B && column("H") == M_H && column("H_kv") == M_Hkv && \
          column("D") == M_D && strcol("status") eq "ok"

M_w = 900; M_h = 600
M_formats = (out_png ne "" ? "png " : "") . (out_svg ne "" ? "svg" : "")
M_term(f) = f eq "svg" ? \
    sprintf("set terminal svg size %d,%d dynamic noenhanced font 'Sans,11' background 'white'; set output out_svg", M_w, M_h) : \
    pngterm eq "png" ? sprintf("set terminal png size %d,%d noenhanced; set output out_png", M_w, M_h) : \
    sprintf("set terminal pngcairo size %d,%d noenhanced font 'Sans,10'; set output out_png", M_w, M_h)

set logscale x 2
set xrange [0.8:M_pmax * 1.25]
set yrange [0:1.1]
set xlabel "ranks P"
set ylabel "efficiency against flash on one rank"
set grid xtics ytics lc "gray85"
set key outside right top
M_base(s) = strstrt(s, "/") ? M_base(s[strstrt(s, "/") + 1:]) : s
set title sprintf("context parallelism: %s mask, B=%d H=%d H_kv=%d D=%d, forward\nlines: cost model (%s: latency %.3g us, bandwidth %.3g GB/s, measured flash rate)\npoints: measured (%s)", \
                  M_mask, M_B, M_H, M_Hkv, M_D, M_base(csv), M_lat, M_bw, M_meas eq "" ? "none: no cp.csv" : M_base(M_meas))
M_kernels = "ring ulysses"
# position of length n in M_Ns: its line's dash pattern and point type
M_ni(n) = words(M_Ns[1:strstrt(M_Ns, " " . n . " ")])
do for [M_f in M_formats] {
    eval M_term(M_f)
    if (M_meas ne "") {
        plot for [k = 1:2] for [n in M_Ns] csv using \
                 ((strcol("kernel") eq word(M_kernels, k) && sprintf("%d", column("N")) eq n) ? column("P") : NaN):"efficiency" \
                 with linespoints lt k dt M_ni(n) pt M_ni(n) ps 0.7 \
                 title sprintf("model: %s N=%s", word(M_kernels, k), n), \
             for [k = 1:2] M_meas using (same(word(M_kernels, k)) ? ranks(strcol("params")) : NaN):"value" \
                 with points lt k pt 7 ps 1.5 title sprintf("measured: %s", word(M_kernels, k)), \
             for [k = 1:2] M_meas using (same(word(M_kernels, k)) ? ranks(strcol("params")) : NaN):"value":(sprintf("N=%d", column("N"))) \
                 with labels offset 0, 1 font ",8" notitle
    } else {
        plot for [k = 1:2] for [n in M_Ns] csv using \
                 ((strcol("kernel") eq word(M_kernels, k) && sprintf("%d", column("N")) eq n) ? column("P") : NaN):"efficiency" \
                 with linespoints lt k dt M_ni(n) pt M_ni(n) ps 0.7 \
                 title sprintf("model: %s N=%s", word(M_kernels, k), n)
    }
}
