/* Re-probing around memory-bound jobs of a sweep. A STREAM figure moves by a
 * factor of three within an hour on a shared machine, so a memory-bound row
 * judged against the probe at the start of the sweep can be judged against
 * another machine. Consecutive memory-bound jobs (same suite and thread
 * count, at most SWEEP_GROUP_MAX) form a group: STREAM is probed just before
 * the group and just after it, the group's rows are held until then, and every
 * row of a group whose two probes differ by more than 15 % (max/min - 1) is
 * marked noisy. A kill loses at most one group's rows, which --resume runs
 * again. */
#ifndef ATTN_SWEEP_PROBE_H
#define ATTN_SWEEP_PROBE_H

#include "harness/measure/bench.h"

#define SWEEP_GROUP_MAX 8

typedef struct {
    csvw_row rows[BENCH_ROWS_MAX];
    int n;
    sysload_sample load;      /* of the job's timed calls; ok 0: the row was not timed */
} sweep_group_job;

typedef struct {
    int threads;              /* of the open group; 0: none open */
    char suite[32];
    double before_gbs;        /* the probe before the group */
    double last_gbs;          /* the latest probe, reusable as the next group's "before" (< 0: none) */
    int threads_last;         /* its thread count */
    int n;
    sweep_group_job *jobs;    /* SWEEP_GROUP_MAX */
} sweep_group;

typedef int (*sweep_group_writer)(void *ud, const csvw_row *rows, int n);

int sweep_group_init(sweep_group *g);
void sweep_group_free(sweep_group *g);

/* 1 when the job's analytic intensity (FLOPs per byte) is below the
 * machine's balance (FMA roof over STREAM): its roofline is the STREAM term. */
int sweep_job_memory_bound(const bench_job *job, const peak_result *peak);

/* Before running a memory-bound job: writes the open group first if the job
 * cannot join it (another suite or thread count, or full), then probes STREAM
 * if no group is open (or reuses a probe taken right before). */
int sweep_group_enter(sweep_group *g, const bench_job *job, sweep_group_writer write, void *ud);

/* Holds a memory-bound job's rows (n <= BENCH_ROWS_MAX). */
void sweep_group_hold(sweep_group *g, const csvw_row *rows, int n, const bench_result *res);

/* Probes STREAM after the open group, marks its rows when the probes moved,
 * and writes them (one write per job); nothing open: nothing done. A job
 * that is not memory-bound calls this first, and so does the end of a sweep. */
int sweep_group_close(sweep_group *g, sweep_group_writer write, void *ud);

#endif
