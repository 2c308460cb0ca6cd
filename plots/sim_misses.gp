# sim_misses: simulated cache misses per useful FLOP against N, log-log, one
# colour per kernel (and params): L1 data misses (papi_l1_dcm, solid) and
# last-level misses (papi_l3_tcm, dashed) of the rows whose papi_status says
# sim: (`bench --counters cachegrind`: valgrind's cache model, one call, one
# thread), over the kernel's analytic flops. Hardware counts are never drawn
# here, so a simulated figure cannot be read as a measured one. Exit 3 when
# no row is simulated.

extra_num = "papi_l1_dcm papi_l3_tcm flops_analytic"
load "common.gp"
# papi_status of each row (its prefix decides: "sim:..." rows only)
array A_PS[A_n + 1] # ($0 runs to A_n: one more slot)
eval sprintf("stats csv using (A_PS[int($0) + 1] = strcol(%d), 0) nooutput", A_ix("papi_status"))
# a strcol() pass may read the header line as record 0: then row i sits one slot on
A_po = A_PS[1] eq "papi_status" ? 1 : 0
simrow(i) = A_PS[i + A_po][1:4] eq "sim:"
l1(i) = vX(1, i) / vX(3, i)
ll(i) = vX(2, i) / vX(3, i)
l1ok(i) = simrow(i) && finite(l1(i)) && l1(i) > 0
llok(i) = simrow(i) && finite(ll(i)) && ll(i) > 0
yok(i) = l1ok(i)
yv(i) = l1(i)
load "panels.gp"
A_ok = 0
do for [i = 1:A_n] { if (yok(i)) { A_ok = 1 } }
if (!A_ok) {
    print sprintf("sim_misses.gp: %s has no rows with simulated counters (bench --counters cachegrind)", csv)
    exit status 3
}

set logscale y 10
set format y "%g"
set ylabel "simulated misses per useful FLOP"
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols title "simulated misses per useful FLOP vs N (valgrind cache model, one call, " . \
        "one thread)\nsolid: L1 data, dashed: last level; " . A_source font ",11"
    do for [p = 1:A_np] {
        set title A_PT[p]
        plot for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && l1ok($1) ? vN($1) : NaN):(l1($1)) \
                 smooth unique with linespoints lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && llok($1) ? vN($1) : NaN):(ll($1)) \
                 smooth unique with linespoints lt A_lid(p, k) dt 2 lw 1.2 notitle
    }
    unset multiplot
}
