# niah_heatmap: the needle-in-a-haystack depth x length heatmap (Kamradt's
# figure) for attnbench models: one panel per (task, kernel, d_model, trained
# length), x = evaluation length (the multiple of the trained length under
# it), y = needle depth (0 % = start of the context, at the top), each cell
# coloured by its score (the generated-answer metric of the rows: Landmark's
# first integer for passkey, RULER's string_match_all for the NIAH tasks),
# green (1.0) to red (0.0), and labelled with it.
# Failures stay in the plot. Input: results/niah.csv, the rows of
# 'attnbench eval --checkpoint F --scale 1,2,4,8 --depths K' (split=extrap
# with a numeric depth; several rows of a cell are averaged; the rows of tasks
# without a depth, cwe and fwe, are left to niah_length.gp). Run through
# plots/plot.sh; exit 3 when no row qualifies.
load "recall_common.gp"
load "niah_cells.gp"
if (words(H_list) == 0) {
    print sprintf("niah_heatmap.gp: %s has extrapolation rows but none with a numeric depth (use --depths K; cwe and fwe have no depth)", csv)
    exit status 3
}
A_dummy = R_canvas(words(H_list))
unset logscale x
unset grid
set palette defined (0 "#d7191c", 0.5 "#fdae61", 0.75 "#ffffbf", 1 "#1a9641")
set cbrange [0:1]
set cblabel "score"
set xlabel "evaluation length (tokens; multiple of the trained length)" offset 0, -0.8
set bmargin 5
set ylabel "needle depth"
set key off
set style fill solid 1.0 noborder
Q_xt(h, k) = sprintf("%s\n%gx", word(H_lens[h], k), word(H_lens[h], k) / H_T[h])
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title sprintf("NIAH generated-answer score by needle depth and context length (%s)", A_source) noenhanced
    do for [h in H_list] {
        Q_h = h + 0
        Q_nx = words(H_lens[Q_h]); Q_ny = words(H_deps[Q_h])
        set title H_name[Q_h] noenhanced
        set xrange [0.5:Q_nx + 0.5]
        set yrange [Q_ny + 0.5:0.5]
        set xtics () scale 0
        set ytics () scale 0
        do for [k = 1:Q_nx] { set xtics add (Q_xt(Q_h, k) k) }
        do for [k = 1:Q_ny] { set ytics add (sprintf("%.0f%%%%", 100 * word(H_deps[Q_h], k)) k) }
        plot $H index H_blk[Q_h] using 1:2:(0.5):(0.5):3 with boxxyerror fc palette, \
             $H index H_blk[Q_h] using 1:2:(sprintf("%.2f", $3)) with labels font ",9"
    }
    unset multiplot
}
