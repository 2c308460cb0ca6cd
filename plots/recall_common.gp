# Shared loader of the recall / NIAH figures (recall_state.gp, mqar_lines.gp,
# niah_heatmap.gp, niah_length.gp): the training rows of one results CSV
# (results/recall.csv or results/niah.csv, written by `attnbench train` and
# `attnbench eval --scale`) read through common.gp, plus what those figures
# need on top of it:
#   sTask(i)          the task column;  sFamily(i)  the model family (lm, hmt, ...)
#   vAcc/vLo/vHi(i)   value, ci_low, ci_high;  vState(i)  state_bytes
#   dModel(i)         the model width, D * H (D is d_model / heads)
#   pv(i, k)          the value of key k in the params "k=v;k=v" of row i
#                     ("" when absent): split, eval_len, depth, train_len, ...
#   setting(i)        the params without run and axis keys (see R_axis)
#   R_key_id(k)       cells: a string key -> 1, 2, ... in order of first use
#   R_wrank(list, w, 1)  the 1-based position of word w in a list (0: absent)
#   R_sorted(list)    the distinct numbers of a blank-separated list, ascending
#   R_rank(list, v)   the 1-based position of v in such a list (0: absent)
#   R_canvas(np)      one panel per cell of a grid up to 3 across, for A_term
# Inputs as common.gp (csv, suite, out_png, out_svg, pngterm), set by plot.sh.

extra_num = "value ci_low ci_high state_bytes"
panel_cols = "N"
load "common.gp"
vAcc(i) = vX(1, i); vLo(i) = vX(2, i); vHi(i) = vX(3, i); vState(i) = vX(4, i)
dModel(i) = (sD(i) + 0) * (sH(i) + 0)

# the task column (never holds commas: strcol is exact)
if (!A_ix("task")) { print sprintf("recall_common.gp: %s has no column 'task'", csv); exit status 2 }
array R_T[A_n]
set datafile columnheaders
eval sprintf("stats csv using (R_T[int($0) + 1] = strcol(%d), 0) nooutput", A_ix("task"))
# the model column ("lm(L=2,d=64,...)", "hmt(...)": quoted, with commas) through the
# labels table as common.gp reads params; "" where the file has no model column
array R_M[A_n]
do for [i = 1:A_n] { R_M[i] = "" }
if (A_ix("model")) {
    set table $R_MT
    eval sprintf("plot csv using 0:0:%d with labels", A_ix("model"))
    unset table
    do for [l = 1:|$R_MT|] {
        R_l = $R_MT[l]
        if (strstrt(R_l, '"') > 0 && R_l[1:1] ne "#") { R_M[int(word(R_l, 1)) + 1] = R_l[strstrt(R_l, '"') + 1:strlen(R_l) - 1] }
    }
}
set datafile nocolumnheaders
# the figures plot datablocks they print, blank-separated
set datafile separator whitespace
sTask(i) = R_T[i]
# the model family: the model column up to its "(" ("lm", "hmt", "looped", ...)
sFamily(i) = strstrt(R_M[i], "(") ? R_M[i][1:strstrt(R_M[i], "(") - 1] : R_M[i]

R_p(i) = ";" . sParams(i) . ";"
R_after(s, k) = s[strstrt(s, ";" . k . "=") + strlen(k) + 2:]
pv(i, k) = strstrt(R_p(i), ";" . k . "=") ? R_after(R_p(i), k)[1:strstrt(R_after(R_p(i), k), ";") - 1] : ""

# setting(i): the params of row i without the run's own keys (optimiser,
# bookkeeping) and the length / depth keys a figure puts on its axes, so
# "D=16;V=8192;jrt=1" or "haystack=corpus": rows of different settings are
# never merged into one cell
R_axis = " lr wd steps n step split best_step weights eval_len train_len depth len len_min L "
R_head(s) = strstrt(s, ";") ? s[1:strstrt(s, ";") - 1] : s
R_tail(s) = strstrt(s, ";") ? s[strstrt(s, ";") + 1:] : ""
R_isaxis(kv) = strstrt(kv, "=") && strstrt(R_axis, " " . kv[1:strstrt(kv, "=") - 1] . " ")
R_set_from(s, acc) = s eq "" ? acc : \
    R_set_from(R_tail(s), R_isaxis(R_head(s)) || R_head(s) eq "" ? acc : acc . (acc eq "" ? "" : ";") . R_head(s))
setting(i) = R_set_from(sParams(i), "")

R_keys = "\n"; R_nk = 0
R_key_id(k) = A_find(R_keys, k) ? A_id(R_keys, k) : (R_nk = R_nk + 1, R_keys = R_keys . k . "\r" . R_nk . "\n", R_nk)

R_wrank(list, w, k) = k > words(list) ? 0 : word(list, k) eq w ? k : R_wrank(list, w, k + 1)
R_sorted(list) = R_sort_from(list, -1e300, "")
R_min_above(list, lo, k, m) = k > words(list) ? m : \
    R_min_above(list, lo, k + 1, (word(list, k) + 0 > lo && word(list, k) + 0 < m) ? word(list, k) + 0 : m)
R_sort_from(list, lo, acc) = R_min_above(list, lo, 1, 1e300) >= 1e300 ? acc : \
    R_sort_from(list, R_min_above(list, lo, 1, 1e300), acc . sprintf(" %.10g", R_min_above(list, lo, 1, 1e300)))
R_rank(list, v) = R_rank_from(list, v, 1)
R_rank_from(list, v, k) = k > words(list) ? 0 : (abs(word(list, k) - v) <= 1e-9 * abs(v) ? k : R_rank_from(list, v, k + 1))

R_canvas(np) = (A_cols = np < 3 ? np : 3, A_rows = int((np + A_cols - 1) / A_cols), \
    A_w = A_cols > 1 ? 560 * A_cols : 700, A_h = 440 * A_rows + 50, 0)

# One colour and point type per kernel (the linetypes of panels.gp).
set linetype 1 lc rgb "#1f77b4" lw 2 pt 7 ps 1.1
set linetype 2 lc rgb "#d62728" lw 2 pt 5 ps 1.1
set linetype 3 lc rgb "#2ca02c" lw 2 pt 9 ps 1.2
set linetype 4 lc rgb "#9467bd" lw 2 pt 11 ps 1.2
set linetype 5 lc rgb "#ff7f0e" lw 2 pt 13 ps 1.2
set linetype 6 lc rgb "#8c564b" lw 2 pt 15 ps 1.2
set linetype 7 lc rgb "#e377c2" lw 2 pt 7 ps 1.1
set linetype 8 lc rgb "#17becf" lw 2 pt 5 ps 1.1
set linetype cycle 8
