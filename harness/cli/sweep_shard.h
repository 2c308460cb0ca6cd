/* Balanced shards of a sweep (`sweep --shard i/n`, and one shard per MPI rank).
 *
 * Every shard expands the same config and must agree on who runs what without
 * talking to the others, so the assignment depends only on the config: each
 * job's cost is its analytic lower bound at fixed nominal peaks
 * (SHARD_NOMINAL_GFLOPS, SHARD_NOMINAL_GBS), not on the timing probes, which
 * differ between processes and machines. Kernel jobs: bench_estimate_job's
 * lower bound (all its calls at those peaks). Trainings: their schedule
 * (train_probe_seconds) with every step and evaluation batch at the nominal
 * GFLOP/s of the model's analytic FLOPs, data making free.
 *
 * The jobs are then handed out longest first, each to the shard with the
 * least cost so far (LPT; ties to the lower job index and the lower shard),
 * which keeps the largest shard within 4/3 of the best split. Jobs that must
 * run on one machine go as one unit: the kernel jobs reading a kv file
 * (inputs cache:FILE) with the training that writes it (extrapolate.dump_kv). */
#ifndef ATTN_SWEEP_SHARD_H
#define ATTN_SWEEP_SHARD_H

#include "harness/measure/bench.h"
#include "harness/train/train_run.h"

#include <stddef.h>
#include <stdio.h>

#define SHARD_NOMINAL_GFLOPS 100.0
#define SHARD_NOMINAL_GBS 20.0

/* The job's nominal cost in seconds (0 when its kernel refuses the problem). */
double shard_kernel_cost(const bench_job *job);
/* The training's nominal cost in seconds (0 when its data cannot be made). */
double shard_training_cost(const train_run_opts *r);

/* One job to place: its cost and its unit (jobs of one unit, the same value,
 * go to one shard; a job alone: its own index). */
typedef struct {
    double cost;
    size_t unit;
} shard_item;

/* owner[j] in [0, shards) for each of the n items, by LPT over the units;
 * load[s] (shards entries, may be NULL): each shard's total cost. */
int shard_assign(const shard_item *items, size_t n, int shards, int *owner, double *load);

/* The items of a sweep: its kernel jobs (in expansion order), then its
 * trainings, with the kv-file units joined. *out: malloc'ed, n_jobs +
 * n_trains entries. */
int shard_items(const bench_job *jobs, size_t n_jobs, const train_run_opts *trains, size_t n_trains,
                shard_item **out);


/* How a sweep was split: every shard's nominal total and job count. */
typedef struct {
    int shards, mine;
    double *load;          /* [shards] nominal seconds */
    size_t *jobs, *trains; /* [shards] kernel jobs and trainings */
    double largest_job;    /* the costliest unit's nominal seconds */
} shard_balance;

struct sweep_trainings_s;

/* Keeps the kernel jobs (jobs[0..*n_jobs)) and trainings of shard `mine` of
 * `shards`, in their order; *b: the whole split (free with shard_balance_free). */
int shard_select(int mine, int shards, bench_job *jobs, size_t *n_jobs, struct sweep_trainings_s *t,
                 shard_balance *b);
void shard_balance_free(shard_balance *b);

/* The table --dry-run prints: one line per shard, then largest / mean. */
void shard_balance_print(FILE *f, const shard_balance *b);
/* One line for a running shard: its share and the balance. */
void shard_balance_note(FILE *f, const shard_balance *b);
/* largest shard / mean shard (1 when nothing costs anything). */
double shard_balance_ratio(const shard_balance *b);

#endif
