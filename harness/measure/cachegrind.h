/* Simulated counters where the machine has none (bench --counters
 * cachegrind): the job's counted call is re-run in a child `attnbench bench`
 * under valgrind's cache simulator, collecting inside that one call only
 * (callgrind --cache-sim=yes --toggle-collect=bench_counted_call: the same
 * cache model as cachegrind, restricted to the call), on one thread. Its
 * instruction count and L1 and last-level misses fill papi_tot_ins,
 * papi_l1_dcm and papi_l3_tcm; papi_status says `sim:cachegrind`, so a
 * simulated count is never read as a hardware one. Cycles and L2 are not
 * simulated (NA with why). The simulated caches are the host's L1 and its
 * last level as valgrind detects them. */
#ifndef ATTN_CACHEGRIND_H
#define ATTN_CACHEGRIND_H

#include "bench.h"

/* A call runs ~50-100x slower under the simulator: larger jobs are refused
 * (their counters say NA with the job's flops and this limit). */
#define CG_MAX_FLOPS 4e9

/* The status a simulated row carries in papi_status. */
#define CG_STATUS "sim:cachegrind"

/* Simulates the job's counted call in `exe bench ...` (an attnbench
 * executable; NULL: this process's own) and puts the counts into c->preset
 * and c->status (c->sde, the kernel's own counts, stay). Never fails the
 * job: when the simulation cannot run, the counters say NA and why. */
void cg_simulate(const bench_job *job, const char *exe, papi_counts *c);

/* The child's command line for the job (argv[0] = "valgrind", the callgrind
 * options, this executable and `bench` with the job's options), written into
 * buf; returns the number of arguments, NULL-terminated in argv [CG_ARGV_MAX]. */
#define CG_ARGV_MAX 64
int cg_child_argv(const bench_job *job, const char *exe, const char *out_file, char *buf, size_t n,
                  char *argv[CG_ARGV_MAX]);

#endif
