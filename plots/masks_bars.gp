# masks_bars: grouped bars, one group per mask and one bar per kernel (and
# params), y = useful GFLOP/s (the gflops column) as a filled bar, with the
# dense-equivalent GFLOP/s (dense_gflops: the unmasked problem's flops in the
# same time) as a dashed hollow bar of the same colour around it: the part
# above the filled bar is the work the mask saved. Rows of suite `masks`.
#
# One panel per (pass, D, B, H, H_kv, threads), at one N: the N at which the
# most masks of that panel have a plottable row, the largest such N on a tie;
# so the largest N all masks share whenever there is one. The panel title
# names the N, the same-run sgemm roof (from the rows' gflops and
# pct_sgemm_peak; drawn as a line) and, if some masks have no row there, how
# many are shown. The y axis is logarithmic: dense-equivalent rates of sparse
# masks run 30x above the useful ones, which a linear axis flattens.
# Groups follow the order in which masks first appear in the CSV at that N;
# under each mask name is its density (the density column) at that N. The top
# of a noisy row's filled bar is circled in red.

extra_num = "dense_gflops density pct_sgemm_peak"
panel_cols = "pass D B H H_kv threads"
load "common.gp"
vDense(i) = vX(1, i)
vDens(i) = vX(2, i)
vPct(i) = vX(3, i)
gok(i) = A_RP[i] > 0 && finite(vGflops(i)) && vGflops(i) > 0

# --- per panel: the masks present, and for each N how many masks have a row.
# Keys "<panel>\t<mask>", "<panel>\t<mask>\t<N>" and "<panel>\t<N>".
array A_PN[A_np]; array A_PM[A_np]; array A_PC[A_np]; array A_PCn[A_np]
array A_C[A_n]
A_mkeys = "\n"; A_mnk = "\n"; A_nkeys = "\n"; A_nn = 0; A_nm = 0
do for [p = 1:A_np] { A_PN[p] = NaN; A_PM[p] = 0; A_PC[p] = 0; A_PCn[p] = 0 }
do for [i = 1:A_n] {
    if (gok(i)) {
        A_p = A_RP[i]
        A_k = sprintf("%d", A_p) . "\t" . sMask(i)
        if (A_find(A_mkeys, A_k) == 0) {
            A_nm = A_nm + 1; A_mkeys = A_mkeys . A_k . "\r" . A_nm . "\n"; A_PM[A_p] = A_PM[A_p] + 1
        }
        A_k = sprintf("%d", A_p) . "\t" . sMask(i) . "\t" . sprintf("%.0f", vN(i))
        if (A_find(A_mnk, A_k) == 0) {
            A_mnk = A_mnk . A_k . "\r0\n"
            A_k = sprintf("%d", A_p) . "\t" . sprintf("%.0f", vN(i))
            if (A_find(A_nkeys, A_k) == 0) { A_nn = A_nn + 1; A_nkeys = A_nkeys . A_k . "\r" . A_nn . "\n"; A_C[A_nn] = 0 }
            A_c = A_id(A_nkeys, A_k)
            A_C[A_c] = A_C[A_c] + 1
            if (A_C[A_c] > A_PC[A_p] || (A_C[A_c] == A_PC[A_p] && vN(i) > A_PN[A_p])) {
                A_PC[A_p] = A_C[A_c]; A_PN[A_p] = vN(i)
            }
        }
    }
}
yok(i) = gok(i) && vN(i) == A_PN[A_RP[i]]
yv(i) = vGflops(i)
load "panels.gp"

A_ok = 0
do for [i = 1:A_n] { if (yok(i)) { A_ok = 1 } }
if (!A_ok) {
    print sprintf("masks_bars.gp: %s has no suite=%s, status=ok rows with a numeric gflops", csv, suite)
    exit status 3
}

# "a=1,b=2,c=3" as "\na=1,b=2,\nc=3": two params per line (long specs overlap otherwise)
A_wrap1(t, k) = strstrt(t, ",") == 0 ? t : (k % 2 == 1 ? t[1:strstrt(t, ",")] . A_wrap1(t[strstrt(t, ",") + 1:], k + 1) : \
                t[1:strstrt(t, ",")] . "\\n" . A_wrap1(t[strstrt(t, ",") + 1:], k + 1))
A_wrap(t) = "\\n" . A_wrap1(t, 1)

# --- the same-run sgemm roof of each panel: gflops / (pct_sgemm_peak / 100)
array A_Roof[A_np]
do for [p = 1:A_np] { A_Roof[p] = NaN }
do for [i = 1:A_n] {
    if (yok(i) && finite(vPct(i)) && vPct(i) > 0) { A_Roof[A_RP[i]] = 100 * vGflops(i) / vPct(i) }
}

# --- group (mask) of each row at its panel's N, and the tick labels
array A_G[A_n]; array A_GL[A_n]
A_gkeys = "\n"; A_ng = 0
do for [i = 1:A_n] {
    A_G[i] = 0
    if (yok(i)) {
        A_p = A_RP[i]
        A_k = sprintf("%d", A_p) . "\t" . sMask(i)
        if (A_find(A_gkeys, A_k) == 0) {
            A_PCn[A_p] = A_PCn[A_p] + 1
            A_ng = A_ng + 1; A_gkeys = A_gkeys . A_k . "\r" . A_PCn[A_p] . "\n"
            # "kind:" then its params two to a line, then the density
            A_m = strstrt(sMask(i), ":") ? sMask(i)[1:strstrt(sMask(i), ":")] . A_wrap(sMask(i)[strstrt(sMask(i), ":") + 1:]) : sMask(i)
            A_GL[A_ng] = sprintf("%d \"%s\\ndensity %s\"", A_p, A_m, finite(vDens(i)) ? sprintf("%.3g", vDens(i)) : "?")
        }
        A_G[i] = A_id(A_gkeys, A_k)
    }
}
# Bar k (k-th line of the panel) of group g sits at g + (k - (n+1)/2) * w.
A_BW(p) = 0.8 / (words(A_PL[p]) > 0 ? words(A_PL[p]) : 1)
A_rank(p, j) = words(substr(A_PL[p], 1, strstrt(A_PL[p] . " ", " " . j . " ") + strlen(sprintf("%d", j))))
bx(i, p) = A_G[i] + (A_rank(p, A_RL[i]) - (words(A_PL[p]) + 1) / 2.0) * A_BW(p)

# Wider panels when there are many bars: about 28 px per bar, 50 px per group,
# and at least 160 px per group so mask specs (the tick labels) do not overlap.
A_gw(p) = words(A_PL[p]) * 28 + 50 > 160 ? words(A_PL[p]) * 28 + 50 : 160
A_gmax = 1
do for [p = 1:A_np] { A_gmax = A_PCn[p] * A_gw(p) > A_gmax ? A_PCn[p] * A_gw(p) : A_gmax }
A_pw = A_gmax + 130 > 620 ? A_gmax + 130 : 620
# Fewer panels across when they are wide (at most about 2000 px).
A_cols = A_cols * A_pw > 2000 ? (int(2000 / A_pw) > 1 ? int(2000 / A_pw) : 1) : A_cols
A_rows = int((A_np + A_cols - 1) / A_cols)
A_w = A_cols > 1 ? A_pw * A_cols : (A_pw > 760 ? A_pw : 760)
A_h = 500 * A_rows + 50
unset logscale x
set format x "%g"
unset xlabel
set bmargin 6
set logscale y
# from a decade below the lowest useful rate: the bars' heights stay comparable
A_ylo = NaN
do for [i = 1:A_n] { if (yok(i) && !(vGflops(i) >= A_ylo)) { A_ylo = vGflops(i) } }
A_ylo = 10 ** floor(log10(A_ylo) - 0.5)
set yrange [A_ylo:*]
set offsets 0, 0, graph 0.2, 0
set ylabel "GFLOP/s (filled: useful, hollow: dense-equivalent)"
set grid noxtics nomxtics ytics mytics
set style fill solid 0.85 border -1
set style textbox opaque noborder margins 0.5, 0.5
set key top left horizontal maxcols 4
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols \
        title "GFLOP/s per mask: filled = useful (unmasked pairs only), hollow = dense-equivalent (the unmasked problem's flops in the same time)\n" . A_source font ",12"
    do for [p = 1:A_np] {
        A_t = A_PT[p] . sprintf(", N=%.0f", A_PN[p]) . (finite(A_Roof[p]) ? sprintf(", sgemm roof %.0f GFLOP/s", A_Roof[p]) : "")
        if (A_PC[p] < A_PM[p]) { A_t = A_t . sprintf(" (%d of %d masks have rows here)", A_PC[p], A_PM[p]) }
        set title A_t
        # tick positions: groups are numbered 1.. in each panel, in label order
        A_ticks = ""; A_g = 0
        do for [g = 1:A_ng] {
            if (word(A_GL[g], 1) + 0 == p) {
                A_g = A_g + 1
                A_ticks = A_ticks . (A_ticks eq "" ? "" : ", ") . substr(A_GL[g], strlen(word(A_GL[g], 1)) + 2, strlen(A_GL[g])) . " " . A_g
            }
        }
        eval "set xtics (" . A_ticks . ") scale 0"
        set xrange [0.4:A_PCn[p] + 0.6]
        set boxwidth A_BW(p) * 0.92 absolute
        plot for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && yok($1) ? bx($1, p) : NaN):(vDense($1)) \
                 smooth unique with boxes fs empty lt A_lid(p, k) dt 2 lw 1.5 notitle, \
             for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && yok($1) ? bx($1, p) : NaN):(vGflops($1)) \
                 smooth unique with boxes fs solid 0.85 lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && yok($1) ? bx($1, p) : NaN):(vGflops($1)): \
                 (sprintf(" %.3g", vGflops($1))) with labels boxed rotate by 90 left font ",8" tc rgb "gray20" notitle, \
             keyentry with boxes fs empty lc rgb "gray30" dt 2 lw 1.5 title "dense-equivalent", \
             (finite(A_Roof[p]) ? A_Roof[p] : NaN) with lines lc rgb "gray40" lw 1.5 title "sgemm roof (same run)", \
             A_RP using (noisy_in($1, p) ? bx($1, p) : NaN):(vGflops($1)) with points pt 6 ps 2.2 lw 1.5 lc rgb "red" title A_NT[p]
    }
    unset multiplot
}
