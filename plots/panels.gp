# Per-panel bookkeeping shared by the figure scripts; load after common.gp and
# after the figure has defined
#   yok(i)  1 when row i has a plottable y value for this figure
#   yv(i)   the y value the N / N^2 guide lines are anchored to
# It sets, for each panel p:
#   A_PL[p]  the line ids (" 1 3 ...") with at least one plottable row, in line order
#   A_AK[p], A_AN[p], A_AY[p]  anchor kernel, its smallest N and y there: the
#            first kernel of `dense` (default "blas naive") present in the
#            panel, else the panel's first line.
#   A_NT[p]  the key's title for the circles around noisy points
#            (A_noisy_title) when the panel has a noisy plottable row, else ""
#            (an empty title leaves the circle out of the key).

if (!exists("dense") || dense eq "") { A_pref = "blas naive" } else { A_pref = dense }
array A_PL[A_np]; array A_AR[A_np]; array A_AN[A_np]; array A_AY[A_np]; array A_AK[A_np]
do for [p = 1:A_np] { A_PL[p] = " "; A_AR[p] = 1e9; A_AN[p] = NaN; A_AY[p] = NaN; A_AK[p] = "" }
do for [i = 1:A_n] {
    A_p = A_RP[i]
    if (A_p > 0 && yok(i)) {
        A_j = A_RL[i]
        if (!strstrt(A_PL[A_p], " " . A_j . " ")) { A_PL[A_p] = A_PL[A_p] . A_j . " " }
        A_r = 100 + A_j
        do for [w = 1:words(A_pref)] { if (word(A_pref, w) eq sKernel(i) && A_r > w) { A_r = w } }
        if (A_r < A_AR[A_p] || (A_r == A_AR[A_p] && vN(i) < A_AN[A_p])) {
            A_AR[A_p] = A_r; A_AN[A_p] = vN(i); A_AY[A_p] = yv(i); A_AK[A_p] = sKernel(i)
        }
    }
}
array A_NT[A_np]
do for [p = 1:A_np] { A_NT[p] = "" }
do for [i = 1:A_n] { if (A_RP[i] > 0 && yok(i) && noisy(i)) { A_NT[A_RP[i]] = A_noisy_title } }
# Same legend order in every panel: sort each panel's lines by line id.
do for [p = 1:A_np] {
    A_s = ""
    do for [j = 1:A_nl] { if (strstrt(A_PL[p], " " . j . " ")) { A_s = A_s . " " . j } }
    A_PL[p] = A_s
}

# One colour and point type per line, the same in every panel and figure.
set linetype 1 lc rgb "#1f77b4" lw 2 pt 7 ps 0.9
set linetype 2 lc rgb "#d62728" lw 2 pt 5 ps 0.9
set linetype 3 lc rgb "#2ca02c" lw 2 pt 9 ps 1.0
set linetype 4 lc rgb "#9467bd" lw 2 pt 11 ps 1.0
set linetype 5 lc rgb "#ff7f0e" lw 2 pt 13 ps 1.0
set linetype 6 lc rgb "#8c564b" lw 2 pt 15 ps 1.0
set linetype 7 lc rgb "#e377c2" lw 2 pt 7 ps 0.9
set linetype 8 lc rgb "#17becf" lw 2 pt 5 ps 0.9
set linetype cycle 8

# Row i belongs to panel p and line j.
sel(i, p, j) = A_RP[i] == p && A_RL[i] == j
A_lid(p, k) = word(A_PL[p], k) + 0
# Legend text of the two guide lines (format f: png terminals without Unicode).
A_g1t(p, f) = sprintf("%sN (through %s at N=%g)", A_prop(f), A_AK[p], A_AN[p])
A_g2t(f) = A_prop(f) . "N" . A_sq(f)
