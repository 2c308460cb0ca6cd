# NIAH cells of niah_heatmap.gp and niah_length.gp (load after
# recall_common.gp): the rows of 'attnbench eval --scale' (params
# split=extrap;eval_len=E[;depth=d];train_len=T, status ok; the headline
# metric, not the token_accuracy or ponder_steps rows beside it) grouped as
#   heatmap panels, one per (task, kernel, d_model, train_len, setting, metric): H_list (ids),
#     H_name[h], H_T[h], H_lens[h] / H_deps[h] (sorted eval lengths and numeric
#     depths), and block H_blk[h] of $H: rows "length-rank depth-rank accuracy",
#     the accuracy averaged over the rows of a (length, depth) cell;
#   length panels, one per (task, train_len, setting, metric): G_list (ids), G_name[g], G_T[g],
#     G_lines[g] (line ids), lines one per (kernel, d_model): G_ln[l] (legend),
#     G_lt[l] (kernel colour), G_dt[l] (width dash), block G_blk[l] of $G: rows
#     "eval_len accuracy", the accuracy averaged over every depth (and "random")
#     and row of the length, ascending eval_len.
# Exits 3 (nothing to draw) when no row qualifies.

N_ok(i) = A_RP[i] > 0 && pv(i, "split") eq "extrap" && pv(i, "eval_len") ne "" && pv(i, "train_len") ne "" && \
    finite(vAcc(i)) && sMetric(i) ne "token_accuracy" && sMetric(i) ne "ponder_steps"
N_num(s) = s ne "" && s ne "random"
N_set(i) = (setting(i) eq "" ? "" : " (" . setting(i) . ")") . " [" . sMetric(i) . "]"
array N_sum[5 * A_n + 8]; array N_cnt[5 * A_n + 8]; array N_a[5 * A_n + 8]; array N_b[5 * A_n + 8]
array H_name[5 * A_n + 8]; array H_T[5 * A_n + 8]; array H_lens[5 * A_n + 8]; array H_deps[5 * A_n + 8]
array H_cells[5 * A_n + 8]; array H_blk[5 * A_n + 8]
array G_name[5 * A_n + 8]; array G_T[5 * A_n + 8]; array G_lines[5 * A_n + 8]
array G_ln[5 * A_n + 8]; array G_lt[5 * A_n + 8]; array G_dt[5 * A_n + 8]; array G_pts[5 * A_n + 8]
array G_blk[5 * A_n + 8]
H_list = ""; G_list = ""; N_kernels = ""; N_widths = ""
# id of key k, and whether it is new (N_new)
N_id(k) = (N_before = R_nk, N_got = R_key_id(k), N_new = R_nk > N_before, N_got)
# adds v to cell c, creating it
N_add(c, v) = (N_sum[c] = (N_new ? 0 : N_sum[c]) + v, N_cnt[c] = (N_new ? 0 : N_cnt[c]) + 1, 0)
do for [i = 1:A_n] {
    if (N_ok(i)) {
        N_E = pv(i, "eval_len"); N_D = pv(i, "depth"); N_T = pv(i, "train_len")
        if (!R_wrank(N_kernels, sKernel(i), 1)) { N_kernels = N_kernels . " " . sKernel(i) }
        if (!strstrt(N_widths . " ", sprintf(" %.0f ", dModel(i)))) { N_widths = N_widths . sprintf(" %.0f", dModel(i)) }
        # heatmap
        if (N_num(N_D)) {
            N_h = N_id(sprintf("h\t%s\t%s\t%.0f\t%s\t%s\t%s", sTask(i), sKernel(i), dModel(i), N_T, setting(i), sMetric(i)))
            if (N_new) {
                H_list = H_list . " " . N_h; H_T[N_h] = N_T; H_lens[N_h] = ""; H_deps[N_h] = ""; H_cells[N_h] = ""
                H_name[N_h] = sprintf("%s%s: %s, d_model %.0f, trained at %s tokens", sTask(i), N_set(i), sKernel(i), \
                                      dModel(i), N_T)
            }
            H_lens[N_h] = H_lens[N_h] . " " . N_E; H_deps[N_h] = H_deps[N_h] . " " . N_D
            N_c = N_id(sprintf("hc\t%d\t%s\t%s", N_h, N_E, N_D))
            if (N_new) { H_cells[N_h] = H_cells[N_h] . " " . N_c; N_a[N_c] = N_E + 0; N_b[N_c] = N_D + 0 }
            N_dummy = N_add(N_c, vAcc(i))
        }
        # accuracy vs length
        N_g = N_id(sprintf("g\t%s\t%s\t%s\t%s", sTask(i), N_T, setting(i), sMetric(i)))
        if (N_new) {
            G_list = G_list . " " . N_g; G_T[N_g] = N_T + 0; G_lines[N_g] = ""
            G_name[N_g] = sprintf("%s%s, trained at %s tokens", sTask(i), N_set(i), N_T)
        }
        N_l = N_id(sprintf("gl\t%d\t%s\t%.0f", N_g, sKernel(i), dModel(i)))
        if (N_new) {
            G_lines[N_g] = G_lines[N_g] . " " . N_l; G_pts[N_l] = ""
            G_ln[N_l] = sprintf("%s (d_model %.0f)", sKernel(i), dModel(i))
            G_lt[N_l] = R_wrank(N_kernels, sKernel(i), 1)
            G_dt[N_l] = R_wrank(N_widths, sprintf("%.0f", dModel(i)), 1)
        }
        N_c = N_id(sprintf("gc\t%d\t%s", N_l, N_E))
        if (N_new) { G_pts[N_l] = G_pts[N_l] . " " . N_E }
        N_dummy = N_add(N_c, vAcc(i))
    }
}
if (words(G_list) == 0) {
    print sprintf("%s has no suite=%s, status=ok rows of 'attnbench eval --scale' (split=extrap)", csv, suite)
    exit status 3
}
N_nb = 0
set print $H
do for [h in H_list] {
    N_h = h + 0
    H_lens[N_h] = R_sorted(H_lens[N_h]); H_deps[N_h] = R_sorted(H_deps[N_h])
    do for [c in H_cells[N_h]] {
        N_c = c + 0
        print sprintf("%d %d %.6g", R_rank(H_lens[N_h], N_a[N_c]), R_rank(H_deps[N_h], N_b[N_c]), N_sum[N_c] / N_cnt[N_c])
    }
    print ""; print ""
    H_blk[N_h] = N_nb; N_nb = N_nb + 1
}
unset print
N_nb = 0
set print $G
do for [g in G_list] {
    do for [l in G_lines[g + 0]] {
        N_l = l + 0
        do for [e in R_sorted(G_pts[N_l])] {
            N_c = A_id(R_keys, sprintf("gc\t%d\t%s", N_l, e))
            print sprintf("%s %.6g", e, N_sum[N_c] / N_cnt[N_c])
        }
        print ""; print ""
        G_blk[N_l] = N_nb; N_nb = N_nb + 1
    }
}
unset print
