/* What a kernel job will take, before it runs: the sweep's estimate of its
 * total and the ETA while it runs (harness/cli/sweep_eta.h).
 *
 * bench_fit's estimate is a lower bound (every call at the same-run sgemm or
 * STREAM peak); real kernels run at a few percent (naive's scalar loops) to
 * about 100 % (flash forward) of it. So each distinct kind of job (kernel,
 * its params, pass, mask, head sizes, threads) is probed once: the job at a
 * small length (N <= 1024, N_kv <= 16384) runs three calls through bench_run, and
 * the ratio of its lower bound to its measured time is the efficiency the
 * job is assumed to keep at its own length. A job whose inputs are not
 * uniform also pays the double-precision oracle for its fidelity rows,
 * probed the same way. The estimate is the job's calls (gate, warm-ups, the
 * repetitions measure_run will take, the counted call) at that efficiency. */
#ifndef ATTN_BENCH_COST_H
#define ATTN_BENCH_COST_H

#include "bench.h"

typedef struct bench_cost_probe bench_cost_probe;

/* Probes measured so far, by kind of job. */
typedef struct {
    bench_cost_probe *probe;
    size_t n, cap;
} bench_cost_cache;

void bench_cost_init(bench_cost_cache *c);
void bench_cost_free(bench_cost_cache *c);

/* Seconds job will take on the machine with peaks `peak` (measured in this
 * run), probing its kind first if c has no probe of it. A job its kernel
 * refuses, or that its limits skip, costs 0 (it is recorded as skipped at
 * once). A probe that fails leaves the lower bound as the estimate. */
double bench_cost_job(const bench_job *job, const peak_result *peak, bench_cost_cache *c);

#endif
