# sparsity_eff: sparsity efficiency (the sparsity_eff column: fastest full-mask
# time at the same shape x density / time; 1 = the mask's whole saving is
# realised) against density (log x), rows of suite `masks`. Colour = kernel
# (and params), point shape = mask; the points of one (kernel, mask) at
# different N are joined in density order (for a fixed window, density falls
# as N grows). Dashed line at 1; noisy rows circled in red. One panel per
# (pass, D, B, H, H_kv, threads).
# Only rows whose sparsity_eff is a number are drawn: it is empty for
# full-mask rows and NA:... when the sweep had no full-mask run at that shape.

extra_num = "density sparsity_eff"
panel_cols = "pass D B H H_kv threads"
load "common.gp"
vDens(i) = vX(1, i)
vEff(i) = vX(2, i)
yok(i) = finite(vEff(i)) && vEff(i) > 0 && finite(vDens(i)) && vDens(i) > 0
yv(i) = vEff(i)
load "panels.gp"

# Masks (point shapes) in order of first appearance among the plotted rows.
array A_M[A_n]; array A_MN[A_n]
A_mkeys = "\n"; A_nm = 0; A_ok = 0
A_xlo = 1; A_xhi = 1; A_ylo = 1; A_yhi = 1         # data ranges, always including 1
do for [i = 1:A_n] {
    A_M[i] = 0
    if (A_RP[i] > 0 && yok(i)) {
        A_ok = 1
        A_xlo = vDens(i) < A_xlo ? vDens(i) : A_xlo; A_xhi = vDens(i) > A_xhi ? vDens(i) : A_xhi
        A_ylo = vEff(i) < A_ylo ? vEff(i) : A_ylo; A_yhi = vEff(i) > A_yhi ? vEff(i) : A_yhi
        if (A_find(A_mkeys, sMask(i)) == 0) {
            A_nm = A_nm + 1; A_mkeys = A_mkeys . sMask(i) . "\r" . A_nm . "\n"; A_MN[A_nm] = sMask(i)
        }
        A_M[i] = A_id(A_mkeys, sMask(i))
    }
}
if (!A_ok) {
    print sprintf("sparsity_eff.gp: %s has no suite=%s, status=ok rows with a numeric sparsity_eff and density", csv, suite)
    exit status 3
}
# Panels without a single numeric sparsity_eff (e.g. only full masks) are left out.
array A_Q[A_np]; A_nq = 0
do for [p = 1:A_np] { if (words(A_PL[p]) > 0) { A_nq = A_nq + 1; A_Q[A_nq] = p } }
A_cols = A_nq < 3 ? A_nq : 3
A_rows = int((A_nq + A_cols - 1) / A_cols)
A_w = A_cols > 1 ? 620 * A_cols : 760; A_h = 460 * A_rows + 50

# Point shapes per mask (open and filled shapes, distinct from the line colours).
A_pts = "6 4 8 10 12 14 1 2 3 7 5 9 11 13 15"
A_pt(m) = word(A_pts, (m - 1) % words(A_pts) + 1) + 0

set logscale x 10
set format x "%g"
set xlabel "density (allowed fraction of the N x N score matrix, log scale)"
set ylabel "sparsity efficiency (t_full x density / t), log scale"
# Log y: efficiencies are ratios around 1 and span decades (dense baselines on
# a sparse mask reach 0.01). The ranges are fixed, so the line at 1 spans the
# whole panel, with headroom for the key (top left: kernels, then masks).
set logscale y 10
set format y "%g"
set xrange [A_xlo / 1.6 : A_xhi * 1.6]
A_nz = 0 # the key's line for the noisy circle
do for [p = 1:A_np] { if (A_NT[p] ne "") { A_nz = 1 } }
A_keyfrac = 0.045 * (A_nl + A_nm + 1 + A_nz) + 0.03
set yrange [A_ylo / 1.6 : exp(log(A_yhi * 1.6) + (log(A_yhi * 1.6) - log(A_ylo / 1.6)) * A_keyfrac / (1 - A_keyfrac))]
set key top left box opaque samplen 2 spacing 1.1 width 2
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols \
        title "sparsity efficiency vs density (1 = the mask's whole theoretical saving realised)\n" . A_source font ",12"
    do for [q = 1:A_nq] {
        p = A_Q[q]
        set title A_PT[p]
        plot for [k = 1:words(A_PL[p])] for [m = 1:A_nm] A_RP \
                 using (sel($1, p, A_lid(p, k)) && A_M[$1] == m ? vDens($1) : NaN):(vEff($1)) \
                 smooth unique with linespoints lt A_lid(p, k) pt A_pt(m) ps 1.3 lw 1 notitle, \
             for [k = 1:words(A_PL[p])] keyentry with lines lt A_lid(p, k) lw 3 title A_LL[A_lid(p, k)], \
             for [m = 1:A_nm] keyentry with points lc rgb "black" pt A_pt(m) ps 1.3 title A_MN[m], \
             1 with lines dt 2 lw 2 lc rgb "black" title "1 = whole saving realised", \
             A_RP using (noisy_in($1, p) ? vDens($1) : NaN):(vEff($1)) with points pt 6 ps 2.6 lw 1.5 lc rgb "red" \
                 title A_NT[p]
    }
    unset multiplot
}
