# mqar_lines: Zoology's MQAR figure for attnbench runs: test accuracy against
# model width d_model (log2 x), one line per kernel, one panel per sequence
# length N (and its kv-pair count), best accuracy over the other settings of
# a cell (the learning-rate grid) with its 95 % interval as error bars.
# Input: results/recall.csv (suite recall, task mqar, split=test rows of
# 'attnbench train'). Run through plots/plot.sh; exit 3 when no row qualifies.
load "recall_common.gp"
load "mqar_cells.gp"
A_dummy = R_canvas(M_np)
set logscale x 2
set xtics () ; do for [w in M_ds] { set xtics add (w w + 0) }
set xrange [(word(M_ds, 1) + 0) / 1.5:(word(M_ds, words(M_ds)) + 0) * 1.5]
set yrange [0:1.05]
set xlabel "model width d_model"
set ylabel "MQAR test accuracy (best over the grid)"
set key bottom right box opaque
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title sprintf("MQAR accuracy vs width (%s)", A_source) noenhanced
    do for [p = 1:M_np] {
        set title P_title[p] noenhanced
        plot for [j = 1:words(P_kl[p])] $M index (word(P_bl[p], j) + 0) using 1:2:3:4 with yerrorlines \
             lt (word(P_kl[p], j) + 0) title word(M_kl, word(P_kl[p], j) + 0)
    }
    unset multiplot
}
