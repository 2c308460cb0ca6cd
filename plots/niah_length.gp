# niah_length: NIAH / passkey score (the rows' generated-answer metric)
# against the evaluation length (log2 x),
# one line per kernel (colour) and d_model (dash), one panel per (task,
# trained length), the trained length marked: the length-extrapolation view
# of the rows of 'attnbench eval --checkpoint F --scale 1,2,4,8 [--depths K]'
# (split=extrap). A point is the mean accuracy over the depths evaluated at
# that length (and over repeated rows); tasks without a needle depth (cwe,
# fwe) have one row per length. Input: results/niah.csv. Run through
# plots/plot.sh; exit 3 when no row qualifies.
load "recall_common.gp"
load "niah_cells.gp"
A_dummy = R_canvas(words(G_list))
set logscale x 2
set format x "%.0f"
set yrange [0:1.05]
set xlabel "evaluation length (tokens)"
set ylabel "score (mean over needle depths, if any)"
set key bottom left box opaque
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title sprintf("NIAH generated-answer score vs context length (%s)", A_source) noenhanced
    do for [g in G_list] {
        L_g = g + 0
        L_max = 0
        do for [l in G_lines[L_g]] { do for [e in G_pts[l + 0]] { L_max = e + 0 > L_max ? e + 0 : L_max } }
        set xrange [G_T[L_g] / 1.4:(L_max > G_T[L_g] ? L_max : G_T[L_g]) * 1.4]
        set title G_name[L_g] noenhanced
        unset arrow
        set arrow 1 from G_T[L_g], graph 0 to G_T[L_g], graph 1 nohead dt 2 lc rgb "gray40"
        set label 1 "trained" at G_T[L_g], graph 0.97 offset 0.5, 0 left tc rgb "gray40"
        plot for [l in G_lines[L_g]] $G index G_blk[l + 0] using 1:2 with linespoints lt G_lt[l + 0] \
             dt G_dt[l + 0] title G_ln[l + 0]
    }
    unset multiplot
}
