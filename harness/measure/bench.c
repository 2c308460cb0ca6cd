#include "bench.h"

#include "harness/results/csvw.h"

#include "kernels/core/counters.h"
#include "gate.h"
#include "papi_events.h"
#include "problem.h"
#include "common/rss.h"
#include "sysinfo.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int bench_pass_parse(const char *s, bench_pass_set *out)
{
    static const char *const names[] = {"fwd", "bwd", "fwdbwd"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0)
            return *out = (bench_pass_set)i, 0;
    return attn_fail(ATTN_EINVAL, "pass: expected fwd, bwd or fwdbwd, found '%s'", s);
}

const char *bench_pass_name(bench_pass_set p)
{
    return p == ATTN_RUN_FWD ? "fwd" : p == ATTN_RUN_BWD ? "bwd" : "fwdbwd";
}

void bench_row_begin(csvw_row *row, int threads, const char *suite)
{
    csvw_row_init(row);
    csvw_row_set(row, ATTN_COL_RUN_ID, "%s", sysinfo_run_id());
    sysinfo_utc_iso8601(row->cell[ATTN_COL_UTC], ATTN_CELL_MAX);
    csvw_row_set(row, ATTN_COL_GIT_SHA, "%s", sysinfo_git_sha());
    csvw_row_set(row, ATTN_COL_CPU, "%s", sysinfo_cpu());
    csvw_row_set(row, ATTN_COL_THREADS, "%d", threads);
    csvw_row_set(row, ATTN_COL_SUITE, "%s", suite);
}

/* Kernel parameters, and a ragged batch's KV lengths or a padded batch's
 * lengths, which are part of what identifies a job (two batches with the same
 * B and N_kv differ by them). */
static void params_text(const attn_args *a, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < a->params.n; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", i ? ";" : "", a->params.key[i],
                 a->params.val[i]);
    const int64_t *lens = a->kv_len ? a->kv_len : a->seq_len;
    const char *key = a->kv_len ? "kv_lens=" : "seq_lens=";
    for (int64_t b = 0; lens && b < a->B; b++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s%lld", b ? "+" : buf[0] ? ";" : "", b ? "" : key,
                 (long long)lens[b]);
}

/* The job's args, with a ragged batch's lengths pointing into the job itself
 * (jobs are copied around, so the pointer is set where it is used). */
static attn_args job_args(const bench_job *job)
{
    attn_args a = job->args;
    if (job->n_kv_lens && job->lens_padded)
        a.seq_len = job->kv_lens;
    else if (job->n_kv_lens)
        a.kv_len = job->kv_lens;
    return a;
}

void bench_identity(const bench_job *job, csvw_row *row)
{
    attn_args args = job_args(job);
    const attn_args *a = &args;
    char mask[128], params[256];
    attn_mask_format(&a->mask, mask, sizeof mask);
    params_text(a, params, sizeof params);
    bench_row_begin(row, a->threads, job->suite);
    csvw_row_set(row, ATTN_COL_KERNEL, "%s", job->kernel->name);
    csvw_row_set(row, ATTN_COL_MASK, "%s", mask);
    csvw_row_set(row, ATTN_COL_PASS, "%s", bench_pass_name(job->pass));
    csvw_row_set(row, ATTN_COL_DTYPE, "fp32");
    csvw_row_set(row, ATTN_COL_B, "%lld", (long long)a->B);
    csvw_row_set(row, ATTN_COL_H, "%lld", (long long)a->H);
    csvw_row_set(row, ATTN_COL_H_KV, "%lld", (long long)a->H_kv);
    csvw_row_set(row, ATTN_COL_N, "%lld", (long long)a->Nq);
    csvw_row_set(row, ATTN_COL_N_KV, "%lld", (long long)a->Nk);
    csvw_row_set(row, ATTN_COL_D, "%lld", (long long)a->D);
    csvw_row_set(row, ATTN_COL_DV, "%lld", (long long)attn_dv(a));
    csvw_row_set(row, ATTN_COL_PARAMS, "%s", params);
    csvw_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)job->seed);
    csvw_row_set(row, ATTN_COL_DATA_SOURCE, "generated");
    char id[17];
    csvw_row_job_id(row, id);
    csvw_row_set(row, ATTN_COL_JOB_ID, "%s", id);
}

/* The job's tensors (problem.h): Q, K, V, O, LSE, the kernel's per-token
 * inputs and, for backward, dO and the gradients, as the kernel's views. */
typedef struct {
    problem p;
    attn_io io;
    attn_grads g;
} buffers;

static int buffers_alloc(buffers *bf, const attn_kernel *k, const attn_args *a, int grads, uint64_t seed)
{
    memset(bf, 0, sizeof *bf);
    int rc = problem_make(&bf->p, k, a, seed, grads ? PROBLEM_GRADS : 0);
    if (rc)
        return rc;
    bf->io = problem_io(&bf->p);
    bf->g = problem_grads(&bf->p);
    return 0;
}

static void buffers_free(buffers *bf) { problem_free(&bf->p); }

/* One PAPI session per process: PAPI and its event sets are set up once. */
static papi_session *bench_papi(void)
{
    static papi_session papi;
    static int ready;
    if (!ready) {
        papi_events_init(&papi); /* unavailable events become NA cells, not errors */
        ready = 1;
    }
    return &papi;
}

typedef struct {
    attn_ctx *ctx;
    buffers *bf;
    bench_pass_set pass;
} timed_call;

static int run_once(void *arg)
{
    timed_call *c = arg;
    const attn_kernel *k = c->ctx->kernel;
    int rc = 0;
    if (c->pass != ATTN_RUN_BWD)
        rc = k->forward(c->ctx, &c->bf->io);
    if (!rc && c->pass != ATTN_RUN_FWD)
        rc = k->backward(c->ctx, &c->bf->io, &c->bf->g);
    return rc;
}

static double analytic(double (*f)(const attn_args *, attn_pass), const attn_args *a, bench_pass_set pass)
{
    double fwd = f(a, ATTN_PASS_FWD), bwd = f(a, ATTN_PASS_BWD);
    return pass == ATTN_RUN_FWD ? fwd : pass == ATTN_RUN_BWD ? bwd : fwd + bwd;
}

static void fill_outcome(csvw_row *row, const char *kind, const char *why)
{
    csvw_row_set(row, ATTN_COL_STATUS, "%s:%s", kind, why);
}

/* Times the job on live buffers and fills the measurement columns. */
static int measure_job(const bench_job *job, attn_ctx *ctx, buffers *bf, rss_region *rss,
                       csvw_row *row)
{
    const attn_kernel *k = job->kernel;
    const attn_args *a = &ctx->args;
    timed_call call = {ctx, bf, job->pass};
    int rc = 0;

    /* Correctness gate on the forward output before anything is timed. */
    if ((rc = k->forward(ctx, &bf->io)) != 0)
        return rc;
    gate_result gate;
    gate_check(k, a, &bf->io, &gate);
    csvw_row_set(row, ATTN_COL_METRIC, "max_abs_err");
    csvw_row_set(row, ATTN_COL_VALUE, "%.3g", gate.err);
    if (!isnan(gate.softmax_rel))
        csvw_row_set(row, ATTN_COL_SOFTMAX_REL_ERR, "%.4g", gate.softmax_rel);
    else if (k->ref_forward)
        csvw_row_set(row, ATTN_COL_SOFTMAX_REL_ERR, "NA:no softmax counterpart");
    if (!(gate.err <= gate.tol))
        return attn_fail(ATTN_EINVAL, "output differs from the %s on sampled rows (err %.3g > %.3g)",
                         k->ref_forward ? "kernel's double reference" : "oracle", gate.err, gate.tol);

    /* The gate's double-precision copies are gone now: restart the high-water
     * mark from here (the baseline stays), so peak_rss_bytes is the job's
     * inputs, workspace and what the timed calls allocate, not the check. */
    rss_reset_peak();
    measure_stats st;
    if ((rc = measure_run(run_once, &call, &job->measure, &st)) != 0)
        return rc;

    /* One more, untimed call inside the counter region: counts are per call. */
    papi_session *papi = bench_papi();
    papi_events_start(papi);
    rc = run_once(&call);
    papi_events_stop(papi);
    rss_region_sample(rss); /* inputs and workspace are live and touched here */
    if (rc)
        return rc;
    papi_events_fill_row(papi, row); /* also FLOPS_COUNTED, or NA:<why> */
    /* A tiled kernel computes at least one tile; zero of both means the
     * kernel has no tiles, which is "not applicable", not a count of 0. */
    if (strcmp(row->cell[ATTN_COL_SDE_TILES_COMPUTED], "0") == 0 &&
        strcmp(row->cell[ATTN_COL_SDE_TILES_SKIPPED], "0") == 0) {
        csvw_row_set(row, ATTN_COL_SDE_TILES_COMPUTED, "NA:kernel is not tiled");
        csvw_row_set(row, ATTN_COL_SDE_TILES_SKIPPED, "NA:kernel is not tiled");
    }

    double flops = analytic(k->flops, a, job->pass), bytes = analytic(k->bytes, a, job->pass);
    double secs = st.median_ms * 1e-3, gflops = flops / secs * 1e-9, gbs = bytes / secs * 1e-9;
    csvw_row_set(row, ATTN_COL_REPS, "%d", st.reps);
    csvw_row_set(row, ATTN_COL_WARMUP, "%d", st.warmup);
    csvw_row_set(row, ATTN_COL_TIME_MS_MEDIAN, "%.6g", st.median_ms);
    csvw_row_set(row, ATTN_COL_TIME_MS_P10, "%.6g", st.p10_ms);
    csvw_row_set(row, ATTN_COL_TIME_MS_P90, "%.6g", st.p90_ms);
    csvw_row_set(row, ATTN_COL_TIME_CV, "%.4f", st.cv);
    csvw_row_set(row, ATTN_COL_FLOPS_ANALYTIC, "%.0f", flops);
    csvw_row_set(row, ATTN_COL_GFLOPS, "%.4g", gflops);
    /* dense-equivalent rate: the work of the unmasked problem over the same time */
    double dense_fwd = 4.0 * (double)(a->B * a->H) * (double)a->Nq * (double)a->Nk * (double)a->D;
    double dense = dense_fwd * (job->pass == ATTN_RUN_FWD ? 1.0 : job->pass == ATTN_RUN_BWD ? 2.5 : 3.5);
    csvw_row_set(row, ATTN_COL_DENSE_GFLOPS, "%.4g", dense / secs * 1e-9);
    csvw_row_set(row, ATTN_COL_BYTES_ANALYTIC, "%.0f", bytes);
    csvw_row_set(row, ATTN_COL_GBYTES_S, "%.4g", gbs);
    if (job->peak && job->peak->sgemm_gflops > 0) {
        csvw_row_set(row, ATTN_COL_PCT_SGEMM_PEAK, "%.2f", 100 * gflops / job->peak->sgemm_gflops);
        csvw_row_set(row, ATTN_COL_PCT_STREAM_PEAK, "%.2f", 100 * gbs / job->peak->stream_gbs);
    } else {
        csvw_row_set(row, ATTN_COL_PCT_SGEMM_PEAK, "NA:no same-run peak");
        csvw_row_set(row, ATTN_COL_PCT_STREAM_PEAK, "NA:no same-run peak");
    }
    csvw_row_set(row, ATTN_COL_DENSITY, "%.6g", attn_density(a));
    csvw_row_set(row, ATTN_COL_PEAK_RSS_BYTES, "%zu", rss_region_peak_bytes(rss));
    csvw_row_set(row, ATTN_COL_WORKSPACE_BYTES, "%zu", ctx->workspace_bytes);
    csvw_row_set(row, ATTN_COL_STATE_BYTES, "%zu", k->state_bytes ? k->state_bytes(a) : 0);
    return 0;
}

int bench_run(const bench_job *job, csvw_row *row)
{
    /* Large buffers always come from mmap and go back on free: with glibc's
     * adaptive threshold a job would reuse heap pages an earlier job touched,
     * and its peak-RSS growth would read as 0. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    bench_identity(job, row);
    const attn_kernel *k = job->kernel;
    attn_args a = job_args(job);
    a.backward = job->pass != ATTN_RUN_FWD;
    attn_args_defaults(&a);
    if (a.backward && !k->backward) {
        fill_outcome(row, "skipped", "no backward (kernel not trainable)");
        return 0;
    }
    int rc = attn_args_validate(k, &a);
    if (rc) {
        fill_outcome(row, rc == ATTN_EUNSUPPORTED ? "skipped" : "error", attn_last_error());
        return 0;
    }
    /* Hand free heap pages back first: malloc reuses resident pages that an
     * earlier allocation (another job, the peak probe) left behind, and the
     * job's growth would then read as 0. */
    malloc_trim(0);
    rss_region rss; /* peak RSS growth over the job: inputs, workspace, temporaries */
    rss_region_begin(&rss);
    buffers bf;
    attn_ctx ctx;
    if ((rc = buffers_alloc(&bf, k, &a, a.backward, job->seed)) != 0) {
        buffers_free(&bf);
        fill_outcome(row, "error", attn_last_error());
        return 0;
    }
    if ((rc = attn_ctx_create(k, &a, &ctx)) != 0) {
        fill_outcome(row, rc == ATTN_EUNSUPPORTED ? "skipped" : "error", attn_last_error());
        buffers_free(&bf);
        return 0;
    }
    if (job->max_workspace_bytes && ctx.workspace_bytes > job->max_workspace_bytes) {
        char why[128];
        snprintf(why, sizeof why, "workspace %zu B > max_workspace_bytes %zu", ctx.workspace_bytes,
                 job->max_workspace_bytes);
        fill_outcome(row, "skipped", why);
        attn_ctx_destroy(&ctx);
        buffers_free(&bf);
        return 0;
    }
    rc = measure_job(job, &ctx, &bf, &rss, row);
    if (rc)
        fill_outcome(row, "error", attn_last_error());
    else
        csvw_row_set(row, ATTN_COL_STATUS, "ok");
    attn_ctx_destroy(&ctx);
    buffers_free(&bf);
    return 0;
}

void bench_peak_rows(const peak_result *p, csvw_row rows[2])
{
    static const char *const names[2] = {"sgemm", "stream_triad"};
    for (int i = 0; i < 2; i++) {
        csvw_row *r = &rows[i];
        bench_row_begin(r, p->threads, "peak");
        csvw_row_set(r, ATTN_COL_KERNEL, "%s", names[i]);
        csvw_row_set(r, ATTN_COL_DTYPE, "fp32");
        csvw_row_set(r, ATTN_COL_DATA_SOURCE, "generated");
        csvw_row_set(r, ATTN_COL_STATUS, "ok");
    }
    csvw_row_set(&rows[0], ATTN_COL_N, "%d", p->sgemm_n);
    csvw_row_set(&rows[0], ATTN_COL_GFLOPS, "%.4g", p->sgemm_gflops);
    csvw_row_set(&rows[0], ATTN_COL_PCT_SGEMM_PEAK, "100");
    csvw_row_set(&rows[1], ATTN_COL_BYTES_ANALYTIC, "%zu", p->stream_bytes);
    csvw_row_set(&rows[1], ATTN_COL_GBYTES_S, "%.4g", p->stream_gbs);
    csvw_row_set(&rows[1], ATTN_COL_PCT_STREAM_PEAK, "100");
    for (int i = 0; i < 2; i++) {
        char id[17];
        csvw_row_job_id(&rows[i], id);
        csvw_row_set(&rows[i], ATTN_COL_JOB_ID, "%s", id);
    }
}
