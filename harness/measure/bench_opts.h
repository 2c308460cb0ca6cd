/* The options of one benchmark job, declared once (common/options.h): the
 * rows `attnbench bench` parses and prints in --help, and whose names, ranges,
 * enum names and help a sweep config's suite entries and "measure" object
 * read too, so a quantity's range lives in this one table. */
#ifndef ATTN_BENCH_OPTS_H
#define ATTN_BENCH_OPTS_H

#include "bench.h"
#include "common/options.h"

#define BENCH_OPTS_KERNELS 32
#define BENCH_OPTS_NS 32
#define BENCH_OPTS_DS 16

/* What the command line gives: the typed job every run shares (shape, mask,
 * batch lengths, pass, run settings), the N x D grid and kernels it runs
 * over, and kernel parameters as given ("[K:]k=v": the key may name the one
 * kernel it is for). Zero in B, H_kv, N_kv, Dv and threads: not given (the
 * default follows from another value). */
typedef struct {
    char kernels[BENCH_OPTS_KERNELS][64];
    int n_kernels;
    param_bag params;
    int64_t Ns[BENCH_OPTS_NS], Ds[BENCH_OPTS_DS];
    int n_N, n_D;
    int64_t nkv;
    bench_job base;
    const char *out;
    int no_peak;
    int suite;          /* BENCH_SUITE_* */
    int counters;       /* BENCH_COUNTERS_* */
} bench_opts;

enum { BENCH_COUNTERS_PAPI = 0, BENCH_COUNTERS_CACHEGRIND };

enum { BENCH_SUITE_KERNELS = 0, BENCH_SUITE_TRAIN, BENCH_SUITE_LRA_SPEED };

/* The rows' groups: a suite entry's keys (and their command-line options),
 * the keys of a config's "measure" object, and the config's top level. */
#define BENCH_OPTS_JOB "job"
#define BENCH_OPTS_MEASURE "measure"
#define BENCH_OPTS_CONFIG "config"

extern const opt_def bench_opts_table[];

/* Every row's default (threads, B, H_kv, N_kv, Dv: 0 until resolved). */
void bench_opts_defaults(bench_opts *o);

/* The row named `name` of the table (it must exist). */
const opt_def *bench_opt(const char *name);

#endif
