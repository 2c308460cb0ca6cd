# Shared loader for the attnbench figure scripts (time_vs_n.gp, gflops_vs_n.gp,
# memory_vs_n.gp, masks_bars.gp, sparsity_eff.gp, decode_gbs.gp). It reads one
# results CSV (docs/csv-schema.md) into arrays indexed by data row
# (1-based), keeps the rows of `suite` with status "ok", and enumerates the
# lines (one per kernel + params) and the panels (by default one per mask,
# pass, D, B, H, H_kv, threads) that the figures draw.
#
# Inputs (gnuplot variables, normally set by plots/plot.sh with -e):
#   csv      results CSV to read (required)
#   suite    rows to keep (default "kernels")
#   out_png, out_svg   files to write; an empty or unset one is skipped
#   pngterm  "pngcairo" (default) or "png" (libgd, when cairo is missing)
# Set by a figure script before `load "common.gp"`:
#   extra_num   more numeric columns to read, e.g. "density sparsity_eff";
#               the c-th of them for row i is vX(c, i) (NaN if empty or NA:...)
#   panel_cols  the columns one panel is keyed on, from mask pass N D B H H_kv
#               threads (default "mask pass D B H H_kv threads"); H_kv is
#               shown as "(H_kv=...)" after H, and only when it differs
#
# Exit status 2: a base column is missing; 3: an extra_num column is missing
# or there are no usable rows (plot.sh reports a figure that exits 3 as
# skipped when its CSV is optional; the figure scripts exit 3 too when no row
# has a usable y value).
#
# Why mask and params are read through `with labels`: gnuplot 5.4.4 splits
# quoted CSV fields correctly for column(), but strcol() stops at the first
# comma inside the quotes ("window:wl=128,wr=0" reads as "window:wl=128"). A
# labels plot into a table returns the whole quoted field, keyed by the row
# number ($0). That path is slow (a gnuplot loop per row), so it is used only
# for the columns that can hold commas; the rest go through strcol().

if (!exists("csv")) { print "common.gp: set csv='FILE' (see plots/plot.sh)"; exit status 2 }
if (!exists("suite")) { suite = "kernels" }
if (!exists("pngterm")) { pngterm = "pngcairo" }
if (!exists("out_png")) { out_png = "" }
if (!exists("out_svg")) { out_svg = "" }
if (!exists("extra_num")) { extra_num = "" }
if (!exists("panel_cols")) { panel_cols = "mask pass D B H H_kv threads" }

set datafile separator comma
set datafile columnheaders
set datafile commentschars ""

# --- header: " name1 name2 ..." (schema names have no spaces or commas)
A_hdrf(i) = (i > 500 || columnhead(i) eq "") ? "" : " " . columnhead(i) . A_hdrf(i + 1)
A_hdr = ""
stats csv every ::0::0 using (A_hdr = A_hdrf(1), 0) nooutput
A_at(name) = strstrt(A_hdr . " ", " " . name . " ")
A_ix(name) = A_at(name) ? words(A_hdr[1:A_at(name) + strlen(name)]) : 0
A_need = "suite status kernel params mask pass dtype D B H H_kv threads cpu " . \
         "N time_ms_median time_ms_p10 time_ms_p90 gflops workspace_bytes peak_rss_bytes run_id"
do for [w in A_need] {
    if (!A_ix(w)) { print sprintf("common.gp: %s has no column '%s'", csv, w); exit status 2 }
}
do for [w in extra_num] {
    if (!A_ix(w)) { print sprintf("common.gp: %s has no column '%s' (older harness?)", csv, w); exit status 3 }
}

stats csv using 0 nooutput
A_n = STATS_records

# --- string columns: A_S[(c-1)*A_n + row]. c = 1..12 through strcol(): their
# values never hold commas (a truncated "error:x, y" status is still not "ok").
A_SC = "suite status kernel pass D B H H_kv threads run_id metric dtype"
array A_S[14 * A_n]
A_expr = ""
do for [c = 1:words(A_SC)] {
    A_expr = A_expr . sprintf("A_S[%d + int($0) + 1] = strcol(%d), ", (c - 1) * A_n, A_ix(word(A_SC, c)))
}
eval sprintf("stats csv using (%s 0) nooutput", A_expr)
# c = 13, 14: mask and params, whole quoted fields through the labels table
do for [c = 13:14] {
    set table $A_T
    eval sprintf("plot csv using 0:0:%d with labels", A_ix(c == 13 ? "mask" : "params"))
    unset table
    do for [l = 1:|$A_T|] {
        A_l = $A_T[l]
        A_q = strstrt(A_l, '"')
        if (A_q > 0 && A_l[1:1] ne "#") {
            A_S[(c - 1) * A_n + int(word(A_l, 1)) + 1] = A_l[A_q + 1:strlen(A_l) - 1]
        }
    }
}
sSuite(i) = A_S[i];            sStatus(i) = A_S[A_n + i];      sKernel(i) = A_S[2 * A_n + i]
sPass(i) = A_S[3 * A_n + i];   sD(i) = A_S[4 * A_n + i];       sB(i) = A_S[5 * A_n + i]
sH(i) = A_S[6 * A_n + i];      sHkv(i) = A_S[7 * A_n + i];     sThreads(i) = A_S[8 * A_n + i]
sRun(i) = A_S[9 * A_n + i];    sMetric(i) = A_S[10 * A_n + i]; sDtype(i) = A_S[11 * A_n + i]
sMask(i) = A_S[12 * A_n + i];   sParams(i) = A_S[13 * A_n + i]
# cpu of the last row, for the figure title
set table $A_T
eval sprintf("plot [-1:1] [-1:1] csv every ::%d::%d using (0):(0):%d with labels", A_n - 1, A_n - 1, A_ix("cpu"))
unset table
A_cpu = ""
do for [l = 1:|$A_T|] {
    A_l = $A_T[l]
    if (strstrt(A_l, '"') && A_l[1:1] ne "#") { A_cpu = A_l[strstrt(A_l, '"') + 1:strlen(A_l) - 1] }
}

# --- numeric columns: A_V[(c-1)*A_n + row], NaN where empty or not a number
A_NC = "N time_ms_median time_ms_p10 time_ms_p90 gflops workspace_bytes peak_rss_bytes"
array A_V[words(A_NC) * A_n]
A_expr = ""
do for [c = 1:words(A_NC)] {
    A_expr = A_expr . sprintf("A_V[%d + int($0) + 1] = column(%d), ", (c - 1) * A_n, A_ix(word(A_NC, c)))
}
eval sprintf("stats csv using (%s 0) nooutput", A_expr)
vN(i) = A_V[i];             vTime(i) = A_V[A_n + i];  vP10(i) = A_V[2 * A_n + i]
vP90(i) = A_V[3 * A_n + i]; vGflops(i) = A_V[4 * A_n + i]
vWork(i) = A_V[5 * A_n + i]; vRss(i) = A_V[6 * A_n + i]
finite(x) = (x == x && abs(x) < 1e300)
# extra_num columns: A_X[(c-1)*A_n + row]
array A_X[words(extra_num) * A_n + 1]
if (words(extra_num) > 0) {
    A_expr = ""
    do for [c = 1:words(extra_num)] {
        A_expr = A_expr . sprintf("A_X[%d + int($0) + 1] = column(%d), ", (c - 1) * A_n, A_ix(word(extra_num, c)))
    }
    eval sprintf("stats csv using (%s 0) nooutput", A_expr)
}
vX(c, i) = A_X[(c - 1) * A_n + i]

# --- the noise verdict (docs/measurement.md): noisy(i) is 1 when row i's noise
# cell says "yes:..." (timed beside other runnable work, or between probes that
# moved more than 15 %). Files of the earlier header have no noise column:
# every row reads 0 there. Figures circle noisy points (A_noisy_title in the key).
array A_Noisy[A_n]
do for [i = 1:A_n] { A_Noisy[i] = 0 }
if (A_ix("noise")) {
    eval sprintf("stats csv using (A_Noisy[int($0) + 1] = (strcol(%d)[1:3] eq 'yes'), 0) nooutput", A_ix("noise"))
}
noisy(i) = A_Noisy[i]
# row i is a noisy plottable point of panel p (yok: the figure's, panels.gp)
noisy_in(i, p) = A_RP[i] == p && noisy(i) && yok(i)
A_noisy_title = "noisy row (noise column)"

# --- lines (kernel, params, dtype: a low-precision KV cache is a line of its own) and panels (panel_cols, by default mask, pass, D,
# B, H, H_kv, threads). Keys live in one string "\n<key>\r<id>\n" so a lookup
# is one strstrt().
array A_RL[A_n]; array A_RP[A_n]           # line and panel of each row, 0 = not plotted
array A_LK[A_n]; array A_LP[A_n]; array A_LL[A_n]; array A_LD[A_n]
array A_PT[A_n]; array A_PTh[A_n]; array A_PR[A_n]   # panel title, threads, first row
# Panel key part and title part of column c for row i ("" leaves it out of the title).
A_pv(c, i) = c eq "mask" ? sMask(i) : c eq "pass" ? sPass(i) : c eq "N" ? sprintf("%.0f", vN(i)) : \
    c eq "D" ? sD(i) : c eq "B" ? sB(i) : c eq "H" ? sH(i) : c eq "H_kv" ? sHkv(i) : \
    c eq "threads" ? sThreads(i) : "?"
A_pt(c, i) = c eq "mask" ? "mask " . sMask(i) : c eq "pass" ? sPass(i) : \
    c eq "threads" ? sThreads(i) . " thread" . (sThreads(i) eq "1" ? "" : "s") : \
    c eq "H_kv" ? (strstrt(" " . panel_cols . " ", " H ") ? "" : (sHkv(i) eq sH(i) ? "" : "H_kv=" . sHkv(i))) : \
    c eq "H" ? "H=" . sH(i) . (sHkv(i) eq sH(i) || !strstrt(" " . panel_cols . " ", " H_kv ") ? "" : " (H_kv=" . sHkv(i) . ")") : \
    c . "=" . A_pv(c, i)
A_find(keys, k) = strstrt(keys, "\n" . k . "\r")
A_rest(keys, k) = substr(keys, A_find(keys, k) + strlen(k) + 2, strlen(keys))
A_id(keys, k) = substr(A_rest(keys, k), 1, strstrt(A_rest(keys, k), "\n") - 1) + 0
A_nl = 0; A_np = 0; A_lkeys = "\n"; A_pkeys = "\n"
do for [i = 1:A_n] {
    A_RL[i] = 0; A_RP[i] = 0
    if (sSuite(i) eq suite && sStatus(i) eq "ok" && finite(vN(i))) {
        A_k = sKernel(i) . "\t" . sParams(i) . "\t" . sDtype(i)
        if (A_find(A_lkeys, A_k) == 0) {
            A_nl = A_nl + 1
            A_lkeys = A_lkeys . A_k . "\r" . A_nl . "\n"
            A_LK[A_nl] = sKernel(i); A_LP[A_nl] = sParams(i); A_LD[A_nl] = sDtype(i)
        }
        A_RL[i] = A_id(A_lkeys, A_k)
        A_k = ""
        do for [A_c in panel_cols] { A_k = A_k . "\t" . A_pv(A_c, i) }
        if (A_find(A_pkeys, A_k) == 0) {
            A_np = A_np + 1
            A_pkeys = A_pkeys . A_k . "\r" . A_np . "\n"
            A_PTh[A_np] = sThreads(i); A_PR[A_np] = i
            A_PT[A_np] = ""
            do for [A_c in panel_cols] {
                A_t = A_pt(A_c, i)
                if (A_t ne "") { A_PT[A_np] = A_PT[A_np] . (A_PT[A_np] eq "" ? "" : ", ") . A_t }
            }
        }
        A_RP[i] = A_id(A_pkeys, A_k)
    }
}
if (A_np == 0) {
    print sprintf("common.gp: %s has no rows with suite=%s and status=ok", csv, suite)
    exit status 3
}
# Legend text: the kernel name, plus its params when one kernel has several
# in one dtype, plus the dtype when it is not fp32 (fp32;kv=q8_0).
do for [j = 1:A_nl] {
    A_c = 0
    do for [k = 1:A_nl] { A_c = A_c + (A_LK[k] eq A_LK[j] && A_LD[k] eq A_LD[j] ? 1 : 0) }
    A_LL[j] = A_c > 1 ? sprintf("%s [%s]", A_LK[j], A_LP[j]) : A_LK[j]
    A_LL[j] = A_LL[j] . (A_LD[j] eq "fp32" || A_LD[j] eq "" ? "" : " " . A_LD[j])
}

# Figures plot from the arrays above; an array has no header row.
set datafile nocolumnheaders

# --- canvas: one panel per (mask, pass, D, B, H, H_kv, threads), up to 3 across.
# A figure draws once per format: do for [A_f in A_formats] { eval A_term(A_f); ... }
A_cols = A_np < 3 ? A_np : 3
A_rows = int((A_np + A_cols - 1) / A_cols)
A_w = A_cols > 1 ? 620 * A_cols : 760; A_h = 460 * A_rows + 50
A_formats = (out_png ne "" ? "png " : "") . (out_svg ne "" ? "svg" : "")
A_term(f) = f eq "svg" ? \
    sprintf("set terminal svg size %d,%d dynamic noenhanced font 'Sans,11' background 'white'; set output out_svg", A_w, A_h) : \
    pngterm eq "png" ? sprintf("set terminal png size %d,%d noenhanced; set output out_png", A_w, A_h) : \
    sprintf("set terminal pngcairo size %d,%d noenhanced font 'Sans,10'; set output out_png", A_w, A_h)
# The libgd png terminal has no glyph for U+221D and no dashes: plain text there.
A_plain(f) = f eq "png" && pngterm eq "png"
A_prop(f) = A_plain(f) ? "~ " : "∝ "
A_sq(f) = A_plain(f) ? "^2" : "²"
A_base(s) = strstrt(s, "/") ? A_base(s[strstrt(s, "/") + 1:]) : s
A_source = sprintf("%s, cpu: %s", A_base(csv), A_cpu)

set grid xtics ytics mxtics mytics lc "gray85"
# width 2: gnuplot 5.4 sizes the key from an average character width, which
# is too narrow for titles like "sgemm peak" in the cairo fonts.
set key top left box opaque samplen 3 spacing 1.1 width 2
set logscale x 2
set format x "%.0f"
set xlabel "sequence length N (tokens)"
set bars small
