# decode_gbs: decode bandwidth (the gbytes_s column: bytes_analytic / median
# time) against the KV length N_kv (log2 x), one line per kernel (and params)
# of the decode suite, with the STREAM-triad GB/s of the same run as a
# labelled horizontal line. One panel per (mask, pass, N, D, B, H, H_kv,
# threads). Extra input: peakcsv (peak.csv; kernel=stream_triad rows).
#
# The triad line of a panel is the last peak.csv row with suite=peak,
# kernel=stream_triad, status=ok, a numeric gbytes_s and the panel's threads,
# taken from the panel's own run (same run_id as the panel's last row) when
# peak.csv has one; otherwise from the last such row of any run, and the
# legend says so.

extra_num = "N_kv gbytes_s"
panel_cols = "mask pass N D B H H_kv threads"
load "common.gp"
vNkv(i) = vX(1, i)
vGbs(i) = vX(2, i)
yok(i) = finite(vGbs(i)) && vGbs(i) > 0 && finite(vNkv(i)) && vNkv(i) > 0
yv(i) = vGbs(i)
load "panels.gp"

A_ok = 0
do for [i = 1:A_n] { if (A_RP[i] > 0 && yok(i)) { A_ok = 1 } }
if (!A_ok) {
    print sprintf("decode_gbs.gp: %s has no suite=%s, status=ok rows with numeric N_kv and gbytes_s", csv, suite)
    exit status 3
}
# run_id of each panel's last plotted row
array A_PRun[A_np]
do for [p = 1:A_np] { A_PRun[p] = "" }
do for [i = 1:A_n] { if (A_RP[i] > 0 && yok(i)) { A_PRun[A_RP[i]] = sRun(i) } }

# STREAM triad per panel (kernel, suite, status, threads, run_id never hold commas)
array A_TR[A_np]; array A_TRo[A_np]      # GB/s; 1 when it comes from another run
do for [p = 1:A_np] {
    A_TR[p] = NaN; A_TRo[p] = 0
    if (exists("peakcsv") && peakcsv ne "" && A_PTh[p] ne "") {
        A_t = A_PTh[p] + 0
        A_same = NaN; A_any = NaN
        set datafile columnheaders
        stats peakcsv using ((strcol("suite") eq "peak" && strcol("kernel") eq "stream_triad" && \
            strcol("status") eq "ok" && column("threads") == A_t && finite(column("gbytes_s"))) ? \
            (A_any = column("gbytes_s"), strcol("run_id") eq A_PRun[p] ? (A_same = column("gbytes_s")) : 0) : 0) nooutput
        set datafile nocolumnheaders
        if (finite(A_same)) { A_TR[p] = A_same } else { if (finite(A_any)) { A_TR[p] = A_any; A_TRo[p] = 1 } }
    }
}

set xlabel "KV length N_kv (tokens)"
set yrange [0:*]
# Headroom above the data and the triad line, so the key (top left) covers neither.
set offsets 0, 0, graph 0.45, 0
set ylabel "decode GB/s (bytes_analytic / median time)"
# Noisy points are circled; the key names the circle only in panels that have one (A_NT).
do for [A_f in A_formats] {
    eval A_term(A_f)
    set multiplot layout A_rows, A_cols \
        title "decode bandwidth vs KV length, with the STREAM triad measured by the same harness\n" . A_source font ",12"
    do for [p = 1:A_np] {
        set title A_PT[p]
        A_tr = A_TR[p]
        A_thr = A_PTh[p] . (A_PTh[p] eq "1" ? " thread" : " threads")
        unset label 1
        if (finite(A_tr)) {
            set label 1 sprintf("STREAM triad, %s%s: %.1f GB/s", A_thr, A_TRo[p] ? " (other run)" : "", A_tr) \
                at graph 0.98, first A_tr right offset 0, 0.8
        }
        # An empty title leaves the element out of the key.
        A_t1 = finite(A_tr) ? (A_TRo[p] ? "STREAM triad (from another run)" : "STREAM triad") : ""
        A_t2 = finite(A_tr) ? "" : "(no stream_triad at " . A_thr . " in peak.csv)"
        plot for [k = 1:words(A_PL[p])] A_RP using (sel($1, p, A_lid(p, k)) && yok($1) ? vNkv($1) : NaN):(vGbs($1)) \
                 smooth unique with linespoints lt A_lid(p, k) title A_LL[A_lid(p, k)], \
             (finite(A_tr) ? A_tr : NaN) with lines dt 2 lw 2 lc rgb "black" title A_t1, \
             keyentry with lines lc rgb "white" title A_t2, \
             A_RP using (noisy_in($1, p) ? vNkv($1) : NaN):(vGbs($1)) \
                 with points pt 6 ps 2.2 lw 1.5 lc rgb "red" title A_NT[p]
    }
    unset multiplot
}
