/* STREAM probes around groups of memory-bound sweep jobs (sweep_probe.h). */
#include "sweep_probe.h"

#include "harness/measure/bench_fit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sweep_group_init(sweep_group *g)
{
    memset(g, 0, sizeof *g);
    g->last_gbs = -1;
    g->jobs = malloc(SWEEP_GROUP_MAX * sizeof *g->jobs);
    return g->jobs ? 0 : attn_fail(ATTN_ENOMEM, "sweep: no memory for %d held jobs", SWEEP_GROUP_MAX);
}

void sweep_group_free(sweep_group *g)
{
    free(g->jobs);
    g->jobs = NULL;
}

int sweep_job_memory_bound(const bench_job *job, const peak_result *peak)
{
    if (!peak || peak->stream_gbs <= 0 || peak->fma_gflops <= 0)
        return 0;
    attn_args a = bench_run_args(job);
    double flops = bench_pass_work(job->kernel->flops, &a, job->pass);
    double bytes = bench_pass_work(job->kernel->bytes, &a, job->pass);
    return bytes > 0 && flops / bytes < peak->fma_gflops / peak->stream_gbs;
}

static int probe(int threads, double *gbs)
{
    int rc = peak_stream_probe(threads, ATTN_PEAK_STREAM_BYTES, gbs);
    if (!rc)
        fprintf(stderr, " [STREAM re-probe %.1f GB/s]", *gbs); /* inside the job's progress line */
    return rc;
}

int sweep_group_enter(sweep_group *g, const bench_job *job, sweep_group_writer write, void *ud)
{
    int threads = job->args.threads;
    int joins = g->threads == threads && !strcmp(g->suite, job->suite) && g->n < SWEEP_GROUP_MAX;
    if (g->threads && !joins) {
        int rc = sweep_group_close(g, write, ud);
        if (rc)
            return rc;
    }
    if (g->threads)
        return 0;
    /* the previous group's closing probe serves when nothing ran since it */
    if (g->last_gbs > 0 && g->threads_last == threads)
        g->before_gbs = g->last_gbs;
    else {
        int rc = probe(threads, &g->before_gbs);
        if (rc)
            return rc;
    }
    g->threads = threads;
    snprintf(g->suite, sizeof g->suite, "%s", job->suite);
    return 0;
}

void sweep_group_hold(sweep_group *g, const csvw_row *rows, int n, const bench_result *res)
{
    sweep_group_job *j = &g->jobs[g->n++];
    memcpy(j->rows, rows, (size_t)n * sizeof *rows);
    j->n = n;
    j->load = res->load;
    j->load.ok &= res->measured;
}

int sweep_group_close(sweep_group *g, sweep_group_writer write, void *ud)
{
    if (!g->threads) {
        g->last_gbs = -1; /* a job ran that is not in a group: the last probe is stale */
        return 0;
    }
    double after;
    int rc = probe(g->threads, &after);
    if (rc)
        return rc;
    double lo = after < g->before_gbs ? after : g->before_gbs, hi = after + g->before_gbs - lo;
    double moved = lo > 0 ? hi / lo - 1 : 0;
    for (int i = 0; !rc && i < g->n; i++) {
        sweep_group_job *j = &g->jobs[i];
        for (int r = 0; j->load.ok && r < j->n; r++)
            sysload_noise_cell(&j->load, moved, j->rows[r].cell[ATTN_COL_NOISE], ATTN_CELL_MAX);
        rc = write(ud, j->rows, j->n);
    }
    g->last_gbs = after, g->threads_last = g->threads;
    g->threads = 0, g->n = 0;
    return rc;
}
