/* `attnbench bench --kernel ring|ulysses` on the ranks of MPI_COMM_WORLD
 * (docs/scale-out.md). Each rank makes its own N/P rows (a U(-1,1) problem
 * of the job's seed mixed with the rank), so no rank ever holds the whole
 * sequence. The forward output is gated on rank 0 against the oracle on
 * sampled rows of the first KV group of sequence 0 (gathered from every
 * rank). A timed call starts behind a barrier and lasts until the slowest
 * rank is done; rank 0 writes the row, whose params name the rank count
 * and whose host_ranks how many ranks shared the busiest host, and more rows
 * of the same job (cp_rows below): bytes, time in MPI, overlap, and `flash`
 * on the whole problem on one rank (rank 0 alone, the others idle) for the
 * efficiency against one rank. */
#include "cp_bench.h"
#include "common/rss.h"
#include "harness/measure/bench_fit.h"
#include "harness/measure/gate.h"
#include "harness/measure/problem.h"
#include "harness/measure/sysload.h"
#include "harness/measure/sysinfo.h"
#include "harness/results/csvw.h"
#include "kernels/cp/cp.h"
#include "kernels/flash/flash.h"
#include "kernels/flash/flash_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the rows name: the kernels' identity (they run through kernels/cp/,
 * never through attn_kernel.forward, so they are not in the registry). */
static const opt_def cp_params[] = {FLASH_TILE_PARAMS, {0}};
static const attn_kernel cp_identity[] = {
    {.name = "ring", .family = "context-parallel", .reference = "Liu et al. 2023 (Ring Attention)",
     .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DISTRIBUTED, .params = cp_params},
    {.name = "ulysses", .family = "context-parallel", .reference = "Jacobs et al. 2023 (DeepSpeed Ulysses)",
     .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DISTRIBUTED, .params = cp_params},
};

static int rank, nranks, host_ranks;

/* What the job's extra rows report (NaN: not measured). */
typedef struct {
    double bytes;       /* bytes one rank sent in the last call */
    double comm_ms;     /* median over calls of the slowest rank's time inside MPI */
    double overlap;     /* median over calls of hidden / (hidden + in MPI), summed over ranks */
    double one_rank_ms; /* flash on the whole problem, one rank, same threads */
    char one_rank_na[160];
} cp_rows;

/* One rank's share of a job. */
typedef struct {
    cp_ctx *ctx;
    problem p;
    attn_io io;
    attn_grads g;
    bench_pass pass;
    cp_stats st;
} cp_job;

static int any_failed(int rc)
{
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return rc;
}

static int call_once(cp_job *j)
{
    int rc = j->pass != BENCH_PASS_BWD ? cp_forward(j->ctx, &j->io, &j->st) : 0;
    if (!rc && j->pass != BENCH_PASS_FWD)
        rc = cp_backward(j->ctx, &j->io, &j->g, &j->st);
    return rc;
}

/* Warm-up, then timed calls as measure_run takes them (all ranks decide on
 * the same, reduced, times); the communication figures of cp_rows. The
 * overlap of a call sums every rank's hidden and exposed time, so one
 * rank's unlucky call does not decide it. */
static int time_calls(cp_job *j, const measure_opts *m, measure_stats *out, cp_rows *cr)
{
    int rc = 0;
    for (int w = 0; w < m->warmup && !rc; w++)
        rc = any_failed(call_once(j));
    double *ms = malloc(sizeof(double) * 3 * (size_t)m->max_reps), *comm = ms + m->max_reps, total = 0;
    double *overlap = comm + m->max_reps;
    if (!ms)
        return attn_fail(ATTN_ENOMEM, "bench: %d samples", m->max_reps);
    int n = 0;
    while (!rc && n < m->max_reps && (n < m->min_reps || total < m->min_time_s * 1e3)) {
        cp_stats before = j->st;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        rc = call_once(j);
        double v[2] = {(MPI_Wtime() - t0) * 1e3, (j->st.comm_s - before.comm_s) * 1e3};
        double sum[2] = {j->st.hidden_s - before.hidden_s, j->st.comm_s - before.comm_s};
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, sum, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        rc = any_failed(rc);
        overlap[n] = sum[0] + sum[1] > 0 ? sum[0] / (sum[0] + sum[1]) : 0;
        ms[n] = v[0], comm[n++] = v[1], total += v[0];
        cr->bytes = j->st.bytes_sent - before.bytes_sent;
    }
    if (!rc) {
        measure_stats c, ov;
        measure_stats_from(comm, n, &c);
        measure_stats_from(overlap, n, &ov);
        measure_stats_from(ms, n, out);
        out->warmup = m->warmup;
        cr->comm_ms = c.median_ms;
        cr->overlap = nranks > 1 ? ov.median_ms : NAN; /* one rank sends nothing */
    }
    free(ms);
    return rc;
}

/* Rows of heads 0..nh-1 of sequence 0 of t, to dst in (h, row) order; the floats written. */
static int64_t pack_first_heads(const attn_tensor *t, int64_t nh, float *dst)
{
    float *p = dst;
    for (int64_t h = 0; h < nh; h++)
        for (int64_t i = 0; i < t->N; i++, p += t->D)
            memcpy(p, attn_at(t, 0, h, i), sizeof(float) * (size_t)t->D);
    return p - dst;
}

/* The inverse for rank r's rows: into their global rows of `whole` ([1, nh, N, D]). */
static int64_t unpack_rank_rows(const float *src, const attn_tensor *whole, cp_kind kind, int r)
{
    int64_t n = whole->N / nranks;
    const float *p = src;
    for (int64_t h = 0; h < whole->H; h++)
        for (int64_t i = 0; i < n; i++, p += whole->D)
            memcpy(attn_at(whole, 0, h, cp_global_row(kind, whole->N, nranks, r, i)), p,
                   sizeof(float) * (size_t)whole->D);
    return p - src;
}

static attn_tensor whole_tensor(float *data, int64_t H, int64_t N, int64_t D)
{
    return (attn_tensor){.data = data, .B = 1, .H = H, .N = N, .D = D, .sb = H * N * D, .sh = N * D, .sn = D};
}

/* Sequence 0's query heads 0..G-1 (Q, O, lse) and KV head 0 (K, V), whole,
 * on rank 0 as a problem of its own, gated there against the oracle. */
static void gate_first_group(cp_kind kind, const attn_args *a, const cp_job *j, gate_result *gr)
{
    int64_t G = a->H / a->H_kv, n = a->Nq / nranks, N = a->Nq, D = a->D;
    int64_t blk = (2 * G + 2) * n * D + G * n;
    float *mine = attn_alloc(sizeof(float) * (size_t)blk), *all = NULL, *p = mine;
    attn_tensor lse = {.data = j->io.lse, .B = a->B, .H = a->H, .N = n, .D = 1, .sb = a->H * n, .sh = n, .sn = 1};
    const attn_tensor *parts[] = {&j->io.q, &j->io.o, &lse, &j->io.k, &j->io.v};
    for (int t = 0; t < 5; t++)
        p += pack_first_heads(parts[t], t < 3 ? G : 1, p);
    if (rank == 0)
        all = attn_alloc(sizeof(float) * (size_t)(blk * nranks));
    MPI_Gather(mine, (int)blk, MPI_FLOAT, all, (int)blk, MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        attn_args ga = *a;
        ga.B = 1, ga.H = G, ga.H_kv = 1, ga.threads = 1;
        float *whole = attn_alloc(sizeof(float) * (size_t)((2 * G + 2) * N * D + G * N));
        attn_tensor t[5] = {whole_tensor(whole, G, N, D), whole_tensor(whole + G * N * D, G, N, D),
                            whole_tensor(whole + 2 * G * N * D, G, N, 1),
                            whole_tensor(whole + 2 * G * N * D + G * N, 1, N, D),
                            whole_tensor(whole + (2 * G + 1) * N * D + G * N, 1, N, D)};
        for (int r = 0; r < nranks; r++) {
            const float *src = all + r * blk;
            for (int x = 0; x < 5; x++)
                src += unpack_rank_rows(src, &t[x], kind, r);
        }
        attn_io gio = {.q = t[0], .k = t[3], .v = t[4], .o = t[1], .lse = t[2].data};
        gate_check(&attn_kernel_flash, &ga, &gio, NULL, gr);
        attn_free(whole);
    }
    attn_free(all);
    attn_free(mine);
}

/* Counters are per process: a row of several processes has none. */
static void counters_na(papi_counts *c)
{
    static const char why[] = "NA:not counted across MPI ranks";
    snprintf(c->status, sizeof c->status, "%s", why);
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++)
        c->preset[i].available = 0, snprintf(c->preset[i].na, sizeof c->preset[i].na, "%s", why);
    for (int i = 0; i < ATTN_CNT__COUNT; i++)
        c->sde[i].available = 0, snprintf(c->sde[i].na, sizeof c->sde[i].na, "%s", why);
}

/* Ranks other than 0 wait for it without spinning: Open MPI's blocking
 * barrier polls, and on a shared host that would take the cores rank 0's
 * one-rank timing runs on. */
static void idle_until_rank0(void)
{
    MPI_Request rq;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    while (rank != 0 && !done) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
}

/* `flash` on the whole problem on rank 0 (same args, threads, repetitions,
 * gated like any bench job) while the others idle: the one-rank time the
 * efficiency compares with. A problem above the memory limit is NA. */
static void one_rank_reference(const bench_job *job, cp_rows *cr)
{
    cr->one_rank_ms = NAN;
    if (rank == 0) {
        bench_job ref = *job;
        bench_result r = {0};
        ref.kernel = &attn_kernel_flash;
        ref.limits.max_mem_bytes = bench_default_max_mem();
        if (bench_run(&ref, NULL, &r) == 0 && r.status == BENCH_OK)
            cr->one_rank_ms = r.time.median_ms;
        else
            snprintf(cr->one_rank_na, sizeof cr->one_rank_na, "flash on one rank: %.120s",
                     r.reason[0] ? r.reason : attn_last_error());
    }
    idle_until_rank0();
}

/* The job's shard, context and one gated forward; the timing. A problem the
 * kernel cannot split is a skipped job (every rank decides the same). */
static void run_job(cp_kind kind, const bench_job *job, bench_result *res, cp_rows *cr)
{
    attn_args a = bench_run_args(job);
    int rc = cp_check(kind, &a, nranks);
    if (rc) {
        res->status = BENCH_SKIPPED;
        snprintf(res->reason, sizeof res->reason, "%s", attn_last_error());
        return;
    }
    cp_job j = {.pass = job->pass};
    attn_args local = a; /* the rank's rows as a problem of their own, for problem_make */
    local.Nq = local.Nk = a.Nq / nranks;
    local.mask = attn_mask_default(ATTN_MASK_FULL);
    local.q_off = local.k_off = 0;
    rc = problem_make(&j.p, NULL, &local, job->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1)),
                      a.backward ? PROBLEM_GRADS : 0);
    if (!rc)
        rc = cp_ctx_create(kind, MPI_COMM_WORLD, &a, &j.ctx);
    j.io = problem_io(&j.p), j.g = problem_grads(&j.p);
    if (!any_failed(rc) && !any_failed(rc = cp_forward(j.ctx, &j.io, &j.st))) {
        gate_result gr = {0};
        gate_first_group(kind, &a, &j, &gr);
        res->gated = 1, res->gate_err = gr.err;
        if (!isnan(gr.softmax_rel))
            res->softmax_rel = schema_num_value(gr.softmax_rel);
        int ok = gr.err <= gr.tol;
        MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
        rc = ok ? 0 : attn_fail(ATTN_EINVAL, "output differs from the oracle on sampled rows (err %.3g > %.3g)",
                                gr.err, gr.tol);
        if (!rc) {
            rss_reset_peak();
            rc = time_calls(&j, &job->measure, &res->time, cr);
        }
    }
    if (rc || any_failed(rc)) {
        res->status = BENCH_ERROR;
        snprintf(res->reason, sizeof res->reason, "%s", rc ? attn_last_error() : "failed on another rank");
    } else {
        res->status = BENCH_OK, res->measured = 1;
        res->flops = bench_pass_work(attn_softmax_flops, &a, job->pass);
        res->bytes = bench_pass_work(attn_softmax_bytes, &a, job->pass);
        double dense = 4.0 * (double)(a.B * a.H) * (double)a.Nq * (double)a.Nk * (double)a.D;
        res->dense_flops = dense * (job->pass == BENCH_PASS_FWD ? 1.0 : job->pass == BENCH_PASS_BWD ? 2.5 : 3.5);
        res->density = attn_density(&a);
        res->peak_rss_bytes = rss_peak_bytes();
        res->workspace_bytes = cp_workspace_bytes(j.ctx);
        res->state_bytes = attn_kv_state_bytes(&a);
        counters_na(&res->counters);
    }
    cp_ctx_destroy(j.ctx);
    problem_free(&j.p);
    if (res->status == BENCH_OK) /* the shards are freed: rank 0 has the memory to itself */
        one_rank_reference(job, cr);
}

/* The job of grid point (N, D): parameters for this kernel only ("ring:br=32"
 * or "br=32"), N_kv = N. */
static int grid_job(const bench_opts *o, const attn_kernel *k, int64_t N, int64_t D, bench_job *job)
{
    *job = o->base;
    job->kernel = k;
    job->args.Nq = job->args.Nk = N, job->args.D = D;
    memset(&job->args.params, 0, sizeof job->args.params);
    for (int i = 0; i < o->params.n; i++) {
        const char *key = o->params.key[i], *colon = strchr(key, ':');
        if (colon && (strncmp(key, k->name, (size_t)(colon - key)) || k->name[colon - key]))
            continue;
        char kv[sizeof o->params.key[0] + sizeof o->params.val[0]];
        snprintf(kv, sizeof kv, "%s=%s", colon ? colon + 1 : key, o->params.val[i]);
        int rc = param_bag_add(&job->args.params, kv);
        if (rc)
            return rc;
    }
    char owner[64];
    snprintf(owner, sizeof owner, "kernel '%s'", k->name);
    return attn_params_validate(&attn_kernel_flash, &job->args.params, owner);
}

/* Rank 0: the table line and the rows (the job's, then its communication
 * and efficiency). */
static int report_job(const bench_job *job, const bench_result *res, const cp_rows *cr, csvw *out)
{
    bench_job named = *job; /* the rank count is part of what was run; the ranks per host (where they were
                             * placed) are in the host_ranks column, out of the job_id */
    char ranks[32];
    snprintf(ranks, sizeof ranks, "ranks=%d", nranks);
    if (param_bag_add(&named.args.params, ranks))
        return ATTN_EINVAL;
    csvw_row rows[6];
    bench_identity(&named, &rows[0]);
    bench_result_fill(res, &rows[0]);
    int ok = res->status == BENCH_OK;
    double eff = cr->one_rank_ms / (nranks * res->time.median_ms);
    const char *one_na = cr->one_rank_na[0] ? cr->one_rank_na : "not measured";
    bench_metric_row(&rows[0], "comm_bytes_per_rank", ok ? cr->bytes : NAN, "not measured", &rows[1]);
    bench_metric_row(&rows[0], "comm_ms", ok ? cr->comm_ms : NAN, "not measured", &rows[2]);
    bench_metric_row(&rows[0], "comm_overlap", ok ? cr->overlap : NAN, "no communication on one rank", &rows[3]);
    bench_metric_row(&rows[0], "one_rank_ms", ok ? cr->one_rank_ms : NAN, one_na, &rows[4]);
    bench_metric_row(&rows[0], "efficiency_vs_1rank", ok ? eff : NAN, one_na, &rows[5]);
    const char *st = rows[0].cell[ATTN_COL_STATUS];
    printf("%-8s %-22s %-6s %8lld %4lld %5d %10.4g %10.4g %12.4g %7.3f %10.4g %6.3f %-9s %s\n", job->kernel->name,
           rows[0].cell[ATTN_COL_MASK], rows[0].cell[ATTN_COL_PASS], (long long)job->args.Nq,
           (long long)job->args.D, nranks, ok ? res->time.median_ms : NAN, ok ? cr->comm_ms : NAN,
           ok ? cr->bytes : NAN, ok ? cr->overlap : NAN, ok ? cr->one_rank_ms : NAN, ok ? eff : NAN,
           rows[0].cell[ATTN_COL_VALUE], st);
    fflush(stdout);
    /* one write: a kill leaves all of the job's rows or none */
    return out && csvw_write_rows(out, rows, ok ? 6 : 1) ? ATTN_EIO : 0;
}

int cp_bench_run(const bench_opts *o, const char *kernel)
{
    int inited, kind = cp_kind_from_name(kernel);
    MPI_Initialized(&inited);
    if (!inited)
        MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Comm host; /* the ranks sharing this rank's memory: its host */
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host);
    MPI_Comm_size(host, &host_ranks);
    MPI_Comm_free(&host);
    MPI_Allreduce(MPI_IN_PLACE, &host_ranks, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); /* the busiest host */
    sysload_set_host_ranks(host_ranks); /* a job's time is its slowest rank's: the busiest host's */
    csvw out;
    int rc = rank == 0 && o->out ? csvw_open(&out, o->out) : 0, failed = 0;
    if (rank == 0 && !rc) {
        sysinfo_print(stderr);
        printf("%-8s %-22s %-6s %8s %4s %5s %10s %10s %12s %7s %10s %6s %-9s %s\n", "kernel", "mask", "pass", "N", "D",
               "ranks", "median_ms", "comm_ms", "comm_bytes", "overlap", "1rank_ms", "eff", "err", "status");
    }
    for (int in = 0; in < o->n_N && !any_failed(rc); in++)
        for (int id = 0; id < o->n_D && !rc; id++) {
            bench_job job;
            bench_result res = {0};
            cp_rows cr = {.bytes = NAN, .comm_ms = NAN, .overlap = NAN, .one_rank_ms = NAN};
            if ((rc = grid_job(o, &cp_identity[kind], o->Ns[in], o->Ds[id], &job)) != 0)
                break;
            run_job((cp_kind)kind, &job, &res, &cr);
            failed += res.status == BENCH_ERROR;
            if (rank == 0)
                rc = report_job(&job, &res, &cr, o->out ? &out : NULL);
        }
    if (rank == 0 && rc)
        fprintf(stderr, "attnbench bench: %s\n", attn_last_error());
    if (rank == 0 && o->out && csvw_close(&out) && !rc)
        rc = ATTN_EIO;
    rc = any_failed(rc);
    MPI_Finalize();
    return rc ? 2 : failed ? 1 : 0;
}
