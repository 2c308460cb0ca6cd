# MQAR cells of recall_state.gp and mqar_lines.gp (load after recall_common.gp):
# the test accuracy rows (task mqar, params split=test, metric accuracy, status
# ok: not an act model's ponder_steps rows) reduced to one cell
# per (panel, kernel, d_model) holding the best accuracy over the rows of the
# cell (Zoology reports the best of its learning-rate grid per cell), with
# that row's 95 % interval and state_bytes. A panel is one sequence length N
# and setting (the other task params: D, V, jrt, ...); the kernel's own
# parameters (kernel_params=...) are not a setting: they change a kernel's
# state, so rows of one kernel at several of them (titans' linear or MLP
# memory) belong on one panel, where recall_state draws them as a curve. Sets
#   M_np        panels, ascending N; P_title[p] their titles
#   M_kl        the series (kernels; "hmt:flash" for a non-lm model) in order of first
#               appearance: one colour each
#   M_ds        the widths d_model, ascending
#   $M          one block per (panel, kernel) with cells, rows "d acc lo hi state",
#               ascending d; P_kl[p], P_bl[p]: the kernels of panel p and their
#               block indices; P_skl[p], P_sbl[p] the same for the blocks with
#               some state_bytes > 0; M_stmax the largest state_bytes (0: none)
#   $S          for recall_state: the same blocks (same indices), but one row per
#               configuration (d_model, kernel_params, heads: what sets the state),
#               best over the grid, ascending state_bytes, rows
#               "d acc lo hi state label" (label: d=64, plus the kernel_params)
# Exits 3 (nothing to draw) when no row qualifies.
R_axis = R_axis . "kernel_params "

# a series (one colour): the kernel, prefixed by the model family when the model is not the
# plain lm ("hmt:flash": an HMT over flash is not flash's curve)
M_series(i) = sFamily(i) eq "" || sFamily(i) eq "lm" ? sKernel(i) : sFamily(i) . ":" . sKernel(i)
M_ok(i) = A_RP[i] > 0 && sTask(i) eq "mqar" && pv(i, "split") eq "test" && sMetric(i) eq "accuracy" && finite(vAcc(i))
M_pkey(i) = sprintf("p\t%.0f\t%s", vN(i), setting(i))
M_ckey(p, k, d) = sprintf("c\t%d\t%s\t%.0f", p, k, d)
# a configuration of (panel, kernel): d_model, kernel_params (its label), heads
M_cfg(i) = sprintf("d=%.0f%s", dModel(i), pv(i, "kernel_params") eq "" ? "" : " " . pv(i, "kernel_params"))
M_gkey(p, k, g, h) = sprintf("g\t%d\t%s\t%s\t%s", p, k, g, h)
M_pkkey(p, k) = sprintf("k\t%d\t%s", p, k)
M_sz = 4 * A_n + 4
array M_acc[M_sz]; array M_lo[M_sz]; array M_hi[M_sz]; array M_st[M_sz]
array M_pN[M_sz]; array M_pt[M_sz]; array M_gl[M_sz]; array M_glist[M_sz]
M_kl = ""; M_Nl = ""; M_dl = ""; M_pl = ""
do for [i = 1:A_n] {
    if (M_ok(i)) {
        if (!R_wrank(M_kl, M_series(i), 1)) { M_kl = M_kl . " " . M_series(i) }
        M_Nl = M_Nl . sprintf(" %.0f", vN(i))
        M_dl = M_dl . sprintf(" %.0f", dModel(i))
        M_n0 = R_nk; M_p = R_key_id(M_pkey(i))
        if (R_nk > M_n0) {
            M_pl = M_pl . " " . M_p; M_pN[M_p] = vN(i)
            M_pt[M_p] = sprintf("N = %.0f tokens%s%s", vN(i), setting(i) eq "" ? "" : ", ", setting(i))
        }
        M_n0 = R_nk; M_c = R_key_id(M_ckey(M_p, M_series(i), dModel(i)))
        if (R_nk > M_n0 || vAcc(i) > M_acc[M_c]) {
            M_acc[M_c] = vAcc(i); M_lo[M_c] = vLo(i); M_hi[M_c] = vHi(i); M_st[M_c] = vState(i)
        }
        M_n0 = R_nk; M_g = R_key_id(M_gkey(M_p, M_series(i), M_cfg(i), sH(i)))
        if (R_nk > M_n0) {
            M_gl[M_g] = M_cfg(i); M_k = R_key_id(M_pkkey(M_p, M_series(i)))
            M_glist[M_k] = (R_nk > M_n0 + 1 ? "" : M_glist[M_k]) . " " . M_g
        }
        if (R_nk > M_n0 || vAcc(i) > M_acc[M_g]) {
            M_acc[M_g] = vAcc(i); M_lo[M_g] = vLo(i); M_hi[M_g] = vHi(i); M_st[M_g] = vState(i)
        }
    }
}
if (words(M_pl) == 0) {
    print sprintf("%s has no suite=%s rows of task mqar with split=test, status=ok and a value", csv, suite)
    exit status 3
}
M_ds = R_sorted(M_dl)
# panels by ascending N, in order of appearance within one N
M_order = ""
do for [n in R_sorted(M_Nl)] { do for [p in M_pl] { if (M_pN[p + 0] == n + 0) { M_order = M_order . " " . p } } }
M_np = words(M_order)
array P_kl[M_np]; array P_bl[M_np]; array P_title[M_np]; array P_skl[M_np]; array P_sbl[M_np]
M_nb = 0; M_stmax = 0
set print $M
do for [q = 1:M_np] {
    M_p = word(M_order, q) + 0
    P_kl[q] = ""; P_bl[q] = ""; P_title[q] = M_pt[M_p]; P_skl[q] = ""; P_sbl[q] = ""
    do for [k = 1:words(M_kl)] {
        M_any = 0; M_bs = 0
        do for [w in M_ds] {
            M_k = M_ckey(M_p, word(M_kl, k), w + 0)
            if (A_find(R_keys, M_k)) {
                M_c = A_id(R_keys, M_k)
                print sprintf("%s %.6g %.6g %.6g %.6g", w, M_acc[M_c], M_lo[M_c], M_hi[M_c], M_st[M_c])
                M_any = 1
                if (finite(M_st[M_c]) && M_st[M_c] > M_bs) { M_bs = M_st[M_c] }
            }
        }
        if (M_any) {
            print ""; print ""
            P_kl[q] = P_kl[q] . " " . k; P_bl[q] = P_bl[q] . " " . M_nb
            if (M_bs > 0) { P_skl[q] = P_skl[q] . " " . k; P_sbl[q] = P_sbl[q] . " " . M_nb; M_stmax = M_bs > M_stmax ? M_bs : M_stmax }
            M_nb = M_nb + 1
        }
    }
}
unset print
# $S: block b of $M again, its configurations by ascending state_bytes (an
# empty block, two blank lines, where the kernel has no row in the panel)
set print $S
do for [q = 1:M_np] {
    M_p = word(M_order, q) + 0
    do for [k = 1:words(M_kl)] {
        if (A_find(R_keys, M_pkkey(M_p, word(M_kl, k)))) {
            M_gs = M_glist[A_id(R_keys, M_pkkey(M_p, word(M_kl, k)))]
            M_sts = ""
            do for [g in M_gs] { M_sts = M_sts . sprintf(" %.10g", finite(M_st[g + 0]) ? M_st[g + 0] : 0) }
            do for [st in R_sorted(M_sts)] {
                do for [g in M_gs] {
                    if (abs((finite(M_st[g + 0]) ? M_st[g + 0] : 0) - (st + 0)) <= 1e-9 * abs(st + 0)) {
                        print sprintf("%s %.6g %.6g %.6g %.6g \"%s\"", word(M_gl[g + 0], 1)[3:], M_acc[g + 0], \
                                      M_lo[g + 0], M_hi[g + 0], M_st[g + 0], M_gl[g + 0])
                    }
                }
            }
            print ""; print ""
        }
    }
}
unset print
