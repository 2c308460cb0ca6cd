# icl: in-context linear regression, Garg et al.'s figure for attnbench runs:
# normalised squared error sq_err = E[(y_hat - y)^2] / d against the number of
# in-context examples k, one line per kernel with its 95 % interval as error
# bars, the closed-form baselines (kernel baseline_*) dashed, one panel per
# task setting (d, points, sigma). Where a (kernel, setting, k) has several
# rows, the last one is drawn.
# Input: results/icl.csv (suite icl, metric sq_err: 'attnbench icl'). Run
# through plots/plot.sh; exit 3 when no row qualifies.
load "recall_common.gp"
R_axis = " k prompts lambda steps lr batch n model_seed " # k is the x axis; the predictors' own settings do not split panels

I_kkeys = "\n"; I_nk = 0 # kernels: one colour each, the same in every panel
I_keys = "\n"; I_nl = 0; I_pkeys = "\n"; I_np = 0; I_kmax = -1
array I_LK[A_n]; array I_LP[A_n]; array I_LT[A_n]; array I_PT[A_n]; array I_RL[A_n]
do for [i = 1:A_n] {
    I_RL[i] = 0
    if (sSuite(i) eq "icl" && sStatus(i) eq "ok" && sMetric(i) eq "sq_err" && finite(vAcc(i)) && pv(i, "k") ne "") {
        I_s = setting(i)
        if (!A_find(I_pkeys, I_s)) { I_np = I_np + 1; I_pkeys = I_pkeys . I_s . "\r" . I_np . "\n"; I_PT[I_np] = I_s }
        I_k = I_s . "\t" . sKernel(i)
        if (!A_find(I_keys, I_k)) {
            I_nl = I_nl + 1; I_keys = I_keys . I_k . "\r" . I_nl . "\n"
            I_LK[I_nl] = sKernel(i); I_LP[I_nl] = A_id(I_pkeys, I_s)
            if (!A_find(I_kkeys, sKernel(i))) { I_nk = I_nk + 1; I_kkeys = I_kkeys . sKernel(i) . "\r" . I_nk . "\n" }
            I_LT[I_nl] = A_id(I_kkeys, sKernel(i))
        }
        I_RL[i] = A_id(I_keys, I_k)
        I_kmax = (pv(i, "k") + 0 > I_kmax) ? pv(i, "k") + 0 : I_kmax
    }
}
if (I_nl == 0) { print sprintf("icl.gp: %s has no rows with suite=icl, metric=sq_err, status=ok", csv); exit status 3 }
I_K = I_kmax + 1
array I_row[I_nl * I_K]
do for [c = 1:I_nl * I_K] { I_row[c] = 0 }
do for [i = 1:A_n] { if (I_RL[i]) { I_row[(I_RL[i] - 1) * I_K + pv(i, "k") + 1] = i } }
# one datablock index per line: "k value ci_low ci_high", by k
set print $I_D
do for [j = 1:I_nl] {
    do for [k = 0:I_kmax] {
        I_i = I_row[(j - 1) * I_K + k + 1]
        if (I_i) { print sprintf("%d %.9g %.9g %.9g", k, vAcc(I_i), vLo(I_i), vHi(I_i)) }
    }
    print ""; print ""
}
unset print
I_base(j) = I_LK[j][1:9] eq "baseline_"
A_dummy = R_canvas(I_np)
unset logscale
set xtics autofreq
set xlabel "in-context examples k"
set ylabel "squared error / d"
set xrange [-0.5:I_kmax + 0.5]
set yrange [0:1.6]
set key top right box opaque
set grid ytics
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title sprintf("in-context linear regression (%s)", A_cpu) noenhanced
    do for [p = 1:I_np] {
        set title I_PT[p] noenhanced
        plot for [j = 1:I_nl] $I_D index (j - 1) using 1:(I_LP[j] == p ? $2 : NaN):3:4 \
             with yerrorlines lt I_LT[j] dt 1 + I_base(j) pt (I_base(j) ? 0 : 7) \
             title sprintf("%s", I_LP[j] == p ? I_LK[j] : "")
    }
    unset multiplot
}
