#include "bench.h"

#include "csvw.h"

#include "counters.h"
#include "gate.h"
#include "papi_events.h"
#include "rng.h"
#include "rss.h"
#include "sysinfo.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int attn_run_pass_parse(const char *s, attn_run_pass *out)
{
    static const char *const names[] = {"fwd", "bwd", "fwdbwd"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0)
            return *out = (attn_run_pass)i, 0;
    return attn_fail(ATTN_EINVAL, "pass: expected fwd, bwd or fwdbwd, found '%s'", s);
}

const char *attn_run_pass_name(attn_run_pass p)
{
    return p == ATTN_RUN_FWD ? "fwd" : p == ATTN_RUN_BWD ? "bwd" : "fwdbwd";
}

void attn_row_begin(attn_row *row, int threads, const char *suite)
{
    attn_row_init(row);
    attn_row_set(row, ATTN_COL_RUN_ID, "%s", attn_run_id());
    attn_utc_iso8601(row->cell[ATTN_COL_UTC], ATTN_CELL_MAX);
    attn_row_set(row, ATTN_COL_GIT_SHA, "%s", attn_git_sha());
    attn_row_set(row, ATTN_COL_CPU, "%s", attn_sysinfo_cpu());
    attn_row_set(row, ATTN_COL_THREADS, "%d", threads);
    attn_row_set(row, ATTN_COL_SUITE, "%s", suite);
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
static attn_args job_args(const attn_bench_job *job)
{
    attn_args a = job->args;
    if (job->n_kv_lens && job->lens_padded)
        a.seq_len = job->kv_lens;
    else if (job->n_kv_lens)
        a.kv_len = job->kv_lens;
    return a;
}

void attn_bench_identity(const attn_bench_job *job, attn_row *row)
{
    attn_args args = job_args(job);
    const attn_args *a = &args;
    char mask[128], params[256];
    attn_mask_format(&a->mask, mask, sizeof mask);
    params_text(a, params, sizeof params);
    attn_row_begin(row, a->threads, job->suite);
    attn_row_set(row, ATTN_COL_KERNEL, "%s", job->kernel->name);
    attn_row_set(row, ATTN_COL_MASK, "%s", mask);
    attn_row_set(row, ATTN_COL_PASS, "%s", attn_run_pass_name(job->pass));
    attn_row_set(row, ATTN_COL_DTYPE, "fp32");
    attn_row_set(row, ATTN_COL_B, "%lld", (long long)a->B);
    attn_row_set(row, ATTN_COL_H, "%lld", (long long)a->H);
    attn_row_set(row, ATTN_COL_H_KV, "%lld", (long long)a->H_kv);
    attn_row_set(row, ATTN_COL_N, "%lld", (long long)a->Nq);
    attn_row_set(row, ATTN_COL_N_KV, "%lld", (long long)a->Nk);
    attn_row_set(row, ATTN_COL_D, "%lld", (long long)a->D);
    attn_row_set(row, ATTN_COL_DV, "%lld", (long long)attn_dv(a));
    attn_row_set(row, ATTN_COL_PARAMS, "%s", params);
    attn_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)job->seed);
    attn_row_set(row, ATTN_COL_DATA_SOURCE, "generated");
    char id[17];
    attn_row_job_id(row, id);
    attn_row_set(row, ATTN_COL_JOB_ID, "%s", id);
}

/* The job's tensors: Q, K, V, O, LSE, the kernel's per-token inputs and, for
 * backward, dO, dQ, dK, dV and their gradients. */
typedef struct {
    attn_io io;
    attn_grads g;
} buffers;

static attn_tensor tensor_alloc(int64_t B, int64_t H, int64_t N, int64_t D)
{
    attn_tensor t = {NULL, B, H, N, D, H * N * D, N * D, D};
    t.data = attn_alloc(sizeof(float) * (size_t)(B * H * N * D));
    return t;
}

static void tensor_fill(attn_tensor *t, attn_rng *r, float lo, float hi)
{
    for (int64_t i = 0; t->data && i < t->B * t->sb; i++)
        t->data[i] = attn_rng_range(r, lo, hi);
}

/* Write strengths in (0,1) as a model's sigmoid gate produces them. */
static void squash_to_unit(attn_tensor *t)
{
    for (int64_t i = 0; t->data && i < t->B * t->sb; i++)
        t->data[i] = 1.f / (1.f + expf(-t->data[i]));
}

static int buffers_alloc(buffers *bf, const attn_kernel *k, const attn_args *a, int grads, uint64_t seed)
{
    memset(bf, 0, sizeof *bf);
    attn_rng r;
    attn_rng_seed(&r, seed);
    int64_t Dv = attn_dv(a), No = attn_o_rows(k, a), Dg = attn_gate_cols(k, a);
    int64_t R = attn_router_cols(k, a), W = attn_weight_cols(k, a);
    int beta = (k->inputs & ATTN_IN_BETA) != 0;
    bf->io.q = tensor_alloc(a->B, a->H, a->Nq, a->D);
    bf->io.k = tensor_alloc(a->B, a->H_kv, a->Nk, a->D);
    bf->io.v = tensor_alloc(a->B, a->H_kv, a->Nk, Dv);
    bf->io.o = tensor_alloc(a->B, a->H, No, Dv);
    bf->io.lse = attn_alloc(sizeof(float) * (size_t)(a->B * a->H * a->Nq));
    int ok = bf->io.q.data && bf->io.k.data && bf->io.v.data && bf->io.o.data && bf->io.lse;
    if (beta)
        bf->io.beta = tensor_alloc(a->B, a->H_kv, a->Nk, 1), ok = ok && bf->io.beta.data;
    if (Dg)
        bf->io.gate = tensor_alloc(a->B, a->H_kv, a->Nk, Dg), ok = ok && bf->io.gate.data;
    if (R)
        bf->io.router = tensor_alloc(a->B, a->H_kv, a->Nk, R), ok = ok && bf->io.router.data;
    if (W)
        bf->io.w = tensor_alloc(1, a->H, 1, W), ok = ok && bf->io.w.data;
    if (grads) {
        bf->g.d_o = tensor_alloc(a->B, a->H, No, Dv);
        bf->g.dq = tensor_alloc(a->B, a->H, a->Nq, a->D);
        bf->g.dk = tensor_alloc(a->B, a->H_kv, a->Nk, a->D);
        bf->g.dv = tensor_alloc(a->B, a->H_kv, a->Nk, Dv);
        ok = ok && bf->g.d_o.data && bf->g.dq.data && bf->g.dk.data && bf->g.dv.data;
        if (beta)
            bf->g.dbeta = tensor_alloc(a->B, a->H_kv, a->Nk, 1), ok = ok && bf->g.dbeta.data;
        if (Dg)
            bf->g.dgate = tensor_alloc(a->B, a->H_kv, a->Nk, Dg), ok = ok && bf->g.dgate.data;
        if (R)
            bf->g.drouter = tensor_alloc(a->B, a->H_kv, a->Nk, R), ok = ok && bf->g.drouter.data;
        if (W)
            bf->g.dw = tensor_alloc(1, a->H, 1, W), ok = ok && bf->g.dw.data;
    }
    if (!ok)
        return attn_fail(ATTN_ENOMEM, "cannot allocate the job's tensors");
    tensor_fill(&bf->io.q, &r, -1, 1);
    tensor_fill(&bf->io.k, &r, -1, 1);
    tensor_fill(&bf->io.v, &r, -1, 1);
    tensor_fill(&bf->io.beta, &r, -3, 3);
    squash_to_unit(&bf->io.beta);
    tensor_fill(&bf->io.gate, &r, -1.f, -0.001f); /* log decays: the same range the tests use */
    tensor_fill(&bf->io.router, &r, -2.f, 2.f);
    if (bf->io.w.data && k->init_weights)
        k->init_weights(a, &bf->io.w, seed); /* the values a model starts from */
    else
        tensor_fill(&bf->io.w, &r, -1.f / sqrtf((float)a->D), 1.f / sqrtf((float)a->D));
    if (grads)
        tensor_fill(&bf->g.d_o, &r, -1, 1);
    return 0;
}

static void buffers_free(buffers *bf)
{
    float *p[] = {bf->io.q.data, bf->io.k.data, bf->io.v.data, bf->io.o.data, bf->io.lse,
                  bf->io.beta.data, bf->io.gate.data, bf->g.d_o.data, bf->g.dq.data, bf->g.dk.data,
                  bf->g.dv.data, bf->g.dbeta.data, bf->g.dgate.data, bf->io.router.data, bf->io.w.data,
                  bf->g.drouter.data, bf->g.dw.data};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        attn_free(p[i]);
}

/* One PAPI session per process: PAPI and its event sets are set up once. */
static attn_papi *papi_session(void)
{
    static attn_papi papi;
    static int ready;
    if (!ready) {
        attn_papi_init(&papi); /* unavailable events become NA cells, not errors */
        ready = 1;
    }
    return &papi;
}

typedef struct {
    attn_ctx *ctx;
    buffers *bf;
    attn_run_pass pass;
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

static double analytic(double (*f)(const attn_args *, attn_pass), const attn_args *a, attn_run_pass pass)
{
    double fwd = f(a, ATTN_PASS_FWD), bwd = f(a, ATTN_PASS_BWD);
    return pass == ATTN_RUN_FWD ? fwd : pass == ATTN_RUN_BWD ? bwd : fwd + bwd;
}

static void fill_outcome(attn_row *row, const char *kind, const char *why)
{
    attn_row_set(row, ATTN_COL_STATUS, "%s:%s", kind, why);
}

/* Times the job on live buffers and fills the measurement columns. */
static int measure_job(const attn_bench_job *job, attn_ctx *ctx, buffers *bf, attn_rss_region *rss,
                       attn_row *row)
{
    const attn_kernel *k = job->kernel;
    const attn_args *a = &ctx->args;
    timed_call call = {ctx, bf, job->pass};
    int rc = 0;

    /* Correctness gate on the forward output before anything is timed. */
    if ((rc = k->forward(ctx, &bf->io)) != 0)
        return rc;
    attn_gate_result gate;
    attn_gate_check(k, a, &bf->io, &gate);
    attn_row_set(row, ATTN_COL_METRIC, "max_abs_err");
    attn_row_set(row, ATTN_COL_VALUE, "%.3g", gate.err);
    if (!isnan(gate.softmax_rel))
        attn_row_set(row, ATTN_COL_SOFTMAX_REL_ERR, "%.4g", gate.softmax_rel);
    else if (k->ref_forward)
        attn_row_set(row, ATTN_COL_SOFTMAX_REL_ERR, "NA:no softmax counterpart");
    if (!(gate.err <= gate.tol))
        return attn_fail(ATTN_EINVAL, "output differs from the %s on sampled rows (err %.3g > %.3g)",
                         k->ref_forward ? "kernel's double reference" : "oracle", gate.err, gate.tol);

    /* The gate's double-precision copies are gone now: restart the high-water
     * mark from here (the baseline stays), so peak_rss_bytes is the job's
     * inputs, workspace and what the timed calls allocate, not the check. */
    attn_rss_reset_peak();
    attn_time_stats st;
    if ((rc = attn_measure(run_once, &call, &job->measure, &st)) != 0)
        return rc;

    /* One more, untimed call inside the counter region: counts are per call. */
    attn_papi *papi = papi_session();
    attn_papi_start(papi);
    rc = run_once(&call);
    attn_papi_stop(papi);
    attn_rss_region_sample(rss); /* inputs and workspace are live and touched here */
    if (rc)
        return rc;
    attn_papi_fill_row(papi, row); /* also FLOPS_COUNTED, or NA:<why> */
    /* A tiled kernel computes at least one tile; zero of both means the
     * kernel has no tiles, which is "not applicable", not a count of 0. */
    if (strcmp(row->cell[ATTN_COL_SDE_TILES_COMPUTED], "0") == 0 &&
        strcmp(row->cell[ATTN_COL_SDE_TILES_SKIPPED], "0") == 0) {
        attn_row_set(row, ATTN_COL_SDE_TILES_COMPUTED, "NA:kernel is not tiled");
        attn_row_set(row, ATTN_COL_SDE_TILES_SKIPPED, "NA:kernel is not tiled");
    }

    double flops = analytic(k->flops, a, job->pass), bytes = analytic(k->bytes, a, job->pass);
    double secs = st.median_ms * 1e-3, gflops = flops / secs * 1e-9, gbs = bytes / secs * 1e-9;
    attn_row_set(row, ATTN_COL_REPS, "%d", st.reps);
    attn_row_set(row, ATTN_COL_WARMUP, "%d", st.warmup);
    attn_row_set(row, ATTN_COL_TIME_MS_MEDIAN, "%.6g", st.median_ms);
    attn_row_set(row, ATTN_COL_TIME_MS_P10, "%.6g", st.p10_ms);
    attn_row_set(row, ATTN_COL_TIME_MS_P90, "%.6g", st.p90_ms);
    attn_row_set(row, ATTN_COL_TIME_CV, "%.4f", st.cv);
    attn_row_set(row, ATTN_COL_FLOPS_ANALYTIC, "%.0f", flops);
    attn_row_set(row, ATTN_COL_GFLOPS, "%.4g", gflops);
    /* dense-equivalent rate: the work of the unmasked problem over the same time */
    double dense_fwd = 4.0 * (double)(a->B * a->H) * (double)a->Nq * (double)a->Nk * (double)a->D;
    double dense = dense_fwd * (job->pass == ATTN_RUN_FWD ? 1.0 : job->pass == ATTN_RUN_BWD ? 2.5 : 3.5);
    attn_row_set(row, ATTN_COL_DENSE_GFLOPS, "%.4g", dense / secs * 1e-9);
    attn_row_set(row, ATTN_COL_BYTES_ANALYTIC, "%.0f", bytes);
    attn_row_set(row, ATTN_COL_GBYTES_S, "%.4g", gbs);
    if (job->peak && job->peak->sgemm_gflops > 0) {
        attn_row_set(row, ATTN_COL_PCT_SGEMM_PEAK, "%.2f", 100 * gflops / job->peak->sgemm_gflops);
        attn_row_set(row, ATTN_COL_PCT_STREAM_PEAK, "%.2f", 100 * gbs / job->peak->stream_gbs);
    } else {
        attn_row_set(row, ATTN_COL_PCT_SGEMM_PEAK, "NA:no same-run peak");
        attn_row_set(row, ATTN_COL_PCT_STREAM_PEAK, "NA:no same-run peak");
    }
    attn_row_set(row, ATTN_COL_DENSITY, "%.6g", attn_density(a));
    attn_row_set(row, ATTN_COL_PEAK_RSS_BYTES, "%zu", attn_rss_region_peak_bytes(rss));
    attn_row_set(row, ATTN_COL_WORKSPACE_BYTES, "%zu", ctx->workspace_bytes);
    attn_row_set(row, ATTN_COL_STATE_BYTES, "%zu", k->state_bytes ? k->state_bytes(a) : 0);
    return 0;
}

int attn_bench_run(const attn_bench_job *job, attn_row *row)
{
    /* Large buffers always come from mmap and go back on free: with glibc's
     * adaptive threshold a job would reuse heap pages an earlier job touched,
     * and its peak-RSS growth would read as 0. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    attn_bench_identity(job, row);
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
    attn_rss_region rss; /* peak RSS growth over the job: inputs, workspace, temporaries */
    attn_rss_region_begin(&rss);
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
        attn_row_set(row, ATTN_COL_STATUS, "ok");
    attn_ctx_destroy(&ctx);
    buffers_free(&bf);
    return 0;
}

void attn_bench_peak_rows(const attn_peak *p, attn_row rows[2])
{
    static const char *const names[2] = {"sgemm", "stream_triad"};
    for (int i = 0; i < 2; i++) {
        attn_row *r = &rows[i];
        attn_row_begin(r, p->threads, "peak");
        attn_row_set(r, ATTN_COL_KERNEL, "%s", names[i]);
        attn_row_set(r, ATTN_COL_DTYPE, "fp32");
        attn_row_set(r, ATTN_COL_DATA_SOURCE, "generated");
        attn_row_set(r, ATTN_COL_STATUS, "ok");
    }
    attn_row_set(&rows[0], ATTN_COL_N, "%d", p->sgemm_n);
    attn_row_set(&rows[0], ATTN_COL_GFLOPS, "%.4g", p->sgemm_gflops);
    attn_row_set(&rows[0], ATTN_COL_PCT_SGEMM_PEAK, "100");
    attn_row_set(&rows[1], ATTN_COL_BYTES_ANALYTIC, "%zu", p->stream_bytes);
    attn_row_set(&rows[1], ATTN_COL_GBYTES_S, "%.4g", p->stream_gbs);
    attn_row_set(&rows[1], ATTN_COL_PCT_STREAM_PEAK, "100");
    for (int i = 0; i < 2; i++) {
        char id[17];
        attn_row_job_id(&rows[i], id);
        attn_row_set(&rows[i], ATTN_COL_JOB_ID, "%s", id);
    }
}
