# recall_state: the Based paper's recall vs state size figure for attnbench
# runs: MQAR test accuracy against the recurrent state a causal stream of the
# model keeps (state_bytes: the registry's state_bytes at the model's shapes,
# batch 1, summed over layers; softmax attention's KV cache grows with N), log
# x, one point per configuration of a kernel (d_model, kernel parameters such
# as titans' memory=mlp, heads) labelled with it, the points of a kernel joined
# in order of state size (kernels whose rows all have state_bytes 0 / empty are
# left out), one colour per kernel, one panel per sequence length N and task
# setting. Accuracy: the best over the other settings of the configuration
# (learning-rate grid), 95 % interval as error bars.
# Input: results/recall.csv (split=test rows of task mqar); exit 3 when none
# qualifies or none has state_bytes > 0.
load "recall_common.gp"
load "mqar_cells.gp"
if (M_stmax <= 0) {
    print sprintf("recall_state.gp: %s: no MQAR test row has state_bytes > 0 (rows from an older harness?)", csv)
    exit status 3
}
A_dummy = R_canvas(M_np)
set logscale x 10
set format x "%.0s%cB"
set xlabel "recurrent state per sequence (bytes, all layers)"
set ylabel "MQAR test accuracy (best over the grid)"
set yrange [0:1.1]
set offsets graph 0.08, graph 0.08, 0, 0
set key bottom right box opaque
S_x(st) = st > 0 ? st : NaN
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title sprintf("MQAR recall vs state size (%s)", A_source) noenhanced
    do for [p = 1:M_np] {
        set title P_title[p] noenhanced
        if (words(P_sbl[p]) == 0) { set label 2 "no state_bytes" at graph 0.5, 0.5 center; plot NaN notitle; unset label 2 } else {
        plot for [j = 1:words(P_skl[p])] $S index (word(P_sbl[p], j) + 0) using (S_x($5)):2:3:4 with yerrorlines \
                 lt (word(P_skl[p], j) + 0) title word(M_kl, word(P_skl[p], j) + 0), \
             for [j = 1:words(P_skl[p])] $S index (word(P_sbl[p], j) + 0) using (S_x($5)):2:6 \
                 with labels offset 0, 1.1 font ",8" tc lt (word(P_skl[p], j) + 0) notitle
        }
    }
    unset multiplot
}
