#include "bench.h"

#include "bench_fit.h"
#include "harness/results/csvw.h"

#include "kernels/core/counters.h"
#include "gate.h"
#include "nonfinite.h"
#include "papi_events.h"
#include "problem.h"
#include "common/rss.h"
#include "bf16_roof.h"
#include "fma_roof.h"
#include "sysinfo.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const bench_pass_names[] = {"fwd", "bwd", "fwdbwd", NULL};

const char *bench_pass_name(bench_pass p)
{
    return bench_pass_names[p];
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

void bench_row_shape(csvw_row *row, const bench_shape *s)
{
    csvw_row_set(row, ATTN_COL_DTYPE, "fp32");
    csvw_row_set(row, ATTN_COL_B, "%lld", (long long)s->B);
    csvw_row_set(row, ATTN_COL_H, "%lld", (long long)s->H);
    csvw_row_set(row, ATTN_COL_H_KV, "%lld", (long long)s->H_kv);
    csvw_row_set(row, ATTN_COL_N, "%lld", (long long)s->N);
    csvw_row_set(row, ATTN_COL_N_KV, "%lld", (long long)s->N_kv);
    csvw_row_set(row, ATTN_COL_D, "%lld", (long long)s->D);
    csvw_row_set(row, ATTN_COL_DV, "%lld", (long long)s->Dv);
}

void bench_row_time(csvw_row *row, const measure_stats *st, const char *fmt)
{
    csvw_row_set(row, ATTN_COL_REPS, "%d", st->reps);
    csvw_row_set(row, ATTN_COL_WARMUP, "%d", st->warmup);
    csvw_row_set(row, ATTN_COL_TIME_MS_MEDIAN, fmt, st->median_ms);
    csvw_row_set(row, ATTN_COL_TIME_MS_P10, fmt, st->p10_ms);
    csvw_row_set(row, ATTN_COL_TIME_MS_P90, fmt, st->p90_ms);
    csvw_row_set(row, ATTN_COL_HOST_RANKS, "%d", sysload_host_ranks());
}

const char *bench_lens_key(const bench_lens *l)
{
    return l->kind == BENCH_LENS_RAGGED_KV ? "kv_lens" : "seq_lens";
}

void bench_lens_format(const bench_lens *l, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int b = 0; b < l->n; b++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", b ? "+" : "", (long long)l->len[b]);
}

/* Kernel parameters, and a ragged batch's KV lengths or a padded batch's
 * lengths, which are part of what identifies a job (two batches with the same
 * B and N_kv differ by them). */
static void params_text(const bench_job *job, char *buf, size_t n)
{
    const param_bag *p = &job->args.params;
    buf[0] = '\0';
    for (int i = 0; i < p->n; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", i ? ";" : "", p->key[i], p->val[i]);
    /* A random draw's seed is part of what was run even when left at its
     * default: the row names it, so a later default cannot pass for it. */
    attn_params_recorded_text(job->kernel, p, ";", buf, n);
    if (bench_inputs_measured(&job->inputs)) {
        snprintf(buf + strlen(buf), n - strlen(buf), "%sinputs=", buf[0] ? ";" : "");
        bench_inputs_format(&job->inputs, buf + strlen(buf), n - strlen(buf));
    }
    if (job->args.mem_budget) /* the memory-budget mode: the sizes above were chosen under it */
        snprintf(buf + strlen(buf), n - strlen(buf), "%smem_budget=%llu", buf[0] ? ";" : "",
                 (unsigned long long)job->args.mem_budget);
    if (job->args.dtype != ATTN_DT_FP32) /* 16-bit operands, fp32 accumulation: the row says both */
        snprintf(buf + strlen(buf), n - strlen(buf), "%sacc=fp32", buf[0] ? ";" : "");
    if (job->lens.n) {
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=", buf[0] ? ";" : "", bench_lens_key(&job->lens));
        bench_lens_format(&job->lens, buf + strlen(buf), n - strlen(buf));
    }
}

/* The job's args, with a batch's lengths pointing into the job itself (jobs
 * are copied around, so the pointer is set where it is used). */
attn_args bench_job_args(const bench_job *job)
{
    attn_args a = job->args;
    if (job->lens.kind == BENCH_LENS_PADDED_SEQ)
        a.seq_len = job->lens.len;
    else if (job->lens.kind == BENCH_LENS_RAGGED_KV)
        a.kv_len = job->lens.len;
    return a;
}

attn_args bench_run_args(const bench_job *job)
{
    attn_args a = bench_job_args(job);
    a.backward = job->pass != BENCH_PASS_FWD;
    attn_args_defaults(&a);
    return a;
}

void bench_identity(const bench_job *job, csvw_row *row)
{
    const attn_args *a = &job->args;
    char mask[128], params[256];
    attn_mask_format(&a->mask, mask, sizeof mask);
    params_text(job, params, sizeof params);
    bench_row_begin(row, a->threads, job->suite);
    csvw_row_set(row, ATTN_COL_KERNEL, "%s", job->kernel->name);
    csvw_row_set(row, ATTN_COL_MASK, "%s", mask);
    csvw_row_set(row, ATTN_COL_PASS, "%s", bench_pass_name(job->pass));
    bench_row_shape(row, &(bench_shape){a->B, a->H, a->H_kv, a->Nq, a->Nk, a->D, attn_dv(a)});
    if (a->kv_dtype != ATTN_KV_FP32) /* Q and O in fp32, the KV cache in its stored format */
        csvw_row_set(row, ATTN_COL_DTYPE, "fp32;kv=%s", attn_kv_dtype_names[a->kv_dtype]);
    if (a->dtype != ATTN_DT_FP32) /* Q, K, V, O (dO and the gradients) stored in it */
        csvw_row_set(row, ATTN_COL_DTYPE, "%s", attn_dtype_names[a->dtype]);
    csvw_row_set(row, ATTN_COL_PARAMS, "%s", params);
    csvw_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)job->seed);
    csvw_row_set(row, ATTN_COL_DATA_SOURCE, "%s", bench_inputs_source(&job->inputs));
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

static int buffers_alloc(buffers *bf, const bench_job *job, const attn_args *a)
{
    memset(bf, 0, sizeof *bf);
    int rc = problem_make(&bf->p, job->kernel, a, job->seed, a->backward ? PROBLEM_GRADS : 0);
    if (rc)
        return rc;
    bf->io = problem_io(&bf->p);
    bf->g = problem_grads(&bf->p);
    if ((rc = bench_inputs_fill(&job->inputs, a, job->seed, &bf->io)) != 0)
        return rc;
    /* the stored KV cache and 16-bit operands from the final inputs, before anything is timed */
    problem_store_kv(&bf->p);
    problem_store_operands(&bf->p);
    attn_io read = problem_io_read(&bf->p); /* fp16 rounds past 65504 to inf */
    char why[160];
    if (nonfinite_inputs(&bf->io, why, sizeof why) || nonfinite_inputs(&read, why, sizeof why))
        return attn_fail(ATTN_EINVAL, "%s%s%s", why, job->inputs.kv_file[0] ? " of kv file " : "",
                         job->inputs.kv_file);
    return 0;
}

/* What the pass wrote, all of it (the gate samples rows): O and lse after a
 * forward, the gradients after a backward. */
static int outputs_finite(const buffers *bf, const attn_args *a, bench_pass pass)
{
    char why[160];
    if ((pass != BENCH_PASS_BWD && nonfinite_outputs(&bf->io, a, why, sizeof why)) ||
        (pass != BENCH_PASS_FWD && nonfinite_grads(&bf->g, why, sizeof why)))
        return attn_fail(ATTN_EINVAL, "%s", why);
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
    bench_pass pass;
} timed_call;

static int run_once(void *arg)
{
    timed_call *c = arg;
    const attn_kernel *k = c->ctx->kernel;
    int rc = 0;
    if (c->pass != BENCH_PASS_BWD)
        rc = k->forward(c->ctx, &c->bf->io);
    if (!rc && c->pass != BENCH_PASS_FWD)
        rc = k->backward(c->ctx, &c->bf->io, &c->bf->g);
    return rc;
}

static void outcome(bench_result *res, bench_status status, const char *why)
{
    res->status = status;
    snprintf(res->reason, sizeof res->reason, "%s", why);
}

/* The correctness gate on the forward output, before anything is timed. */
static int gate_job(const bench_job *job, attn_ctx *ctx, buffers *bf, bench_result *res)
{
    const attn_kernel *k = job->kernel;
    int rc = k->forward(ctx, &bf->io);
    problem_widen_outputs(&bf->p); /* 16-bit O into the fp32 tensor the checks read */
    if (rc || (rc = outputs_finite(bf, &ctx->args, BENCH_PASS_FWD)) != 0)
        return rc;
    if (job->timing_only)
        return 0;
    gate_result gate;
    attn_io read = problem_io_read(&bf->p);
    gate_check(k, &ctx->args, &read, ctx->args.dtype != ATTN_DT_FP32 ? &bf->io : NULL, &gate);
    res->gated = 1;
    res->gate_err = gate.err;
    if (!isnan(gate.softmax_rel))
        res->softmax_rel = schema_num_value(gate.softmax_rel);
    else if (k->ref_forward)
        res->softmax_rel = schema_num_na("no softmax counterpart");
    if (bench_inputs_measured(&job->inputs)) {
        if ((rc = fid_measure(k, &ctx->args, &bf->io, &res->fid)) != 0)
            return rc;
        res->has_fid = 1;
    }
    if (!(gate.err <= gate.tol))
        return attn_fail(ATTN_EINVAL, "output differs from the %s on sampled rows (err %.3g > %.3g)",
                         k->ref_forward ? "kernel's double reference" : "oracle", gate.err, gate.tol);
    return 0;
}

/* A tiled kernel computes at least one tile; zero of both means the kernel
 * has no tiles, which is "not applicable", not a count of 0. */
static void untiled_is_na(papi_counts *c)
{
    papi_count *tiles[2] = {&c->sde[ATTN_CNT_TILES_COMPUTED], &c->sde[ATTN_CNT_TILES_SKIPPED]};
    for (int i = 0; i < 2; i++)
        if (!tiles[i]->available || tiles[i]->value != 0)
            return;
    for (int i = 0; i < 2; i++) {
        tiles[i]->available = 0;
        snprintf(tiles[i]->na, sizeof tiles[i]->na, "NA:kernel is not tiled");
    }
}

/* The job's analytic work and the machine it ran on. */
static void note_work(const bench_job *job, const attn_ctx *ctx, const peak_result *peak, bench_result *res)
{
    const attn_kernel *k = job->kernel;
    const attn_args *a = &ctx->args;
    res->flops = bench_pass_work(k->flops, a, job->pass);
    res->bytes = bench_pass_work(k->bytes, a, job->pass);
    /* dense-equivalent work: the unmasked problem, for a rate over the same time */
    double dense_fwd = 4.0 * (double)(a->B * a->H) * (double)a->Nq * (double)a->Nk * (double)a->D;
    res->dense_flops = dense_fwd * (job->pass == BENCH_PASS_FWD ? 1.0 : job->pass == BENCH_PASS_BWD ? 2.5 : 3.5);
    res->density = attn_density(a);
    res->has_peak = peak && peak->sgemm_gflops > 0;
    if (res->has_peak)
        res->sgemm_peak_gflops = peak->sgemm_gflops, res->stream_peak_gbs = peak->stream_gbs,
        res->roof_gflops = peak_compute_roof(peak, a->dtype == ATTN_DT_BF16);
    res->workspace_bytes = ctx->workspace_bytes;
    res->state_bytes = k->state_bytes ? k->state_bytes(a) : 0;
}

int bench_counted_call(void *call) { return run_once(call); }

static const char *roof_name(const peak_result *peak, attn_dtype t)
{
    return t == ATTN_DT_BF16 && peak->bf16_gflops > 0 ? "bf16 dot" : "FMA";
}

/* Gates, times and counts the job on live buffers. */
static int measure_job(const bench_job *job, attn_ctx *ctx, buffers *bf, rss_region *rss, bench_result *res)
{
    timed_call call = {ctx, bf, job->pass};
    int rc = gate_job(job, ctx, bf, res);
    if (rc)
        return rc;
    /* The gate's double-precision copies are gone now: restart the high-water
     * mark from here (the baseline stays), so peak_rss_bytes is the job's
     * inputs, workspace and what the timed calls allocate, not the check. */
    rss_reset_peak();
    sysload_sample before;
    sysload_read(&before);
    if ((rc = measure_run(run_once, &call, &job->measure, &res->time)) != 0)
        return rc;
    sysload_read(&res->load);
    res->load.ok &= before.ok;
    if (!res->load.ok)
        snprintf(res->load_na, sizeof res->load_na, "/proc/loadavg or /proc/stat unreadable");
    if (before.runnable_others < res->load.runnable_others) /* a passing burst is not other work */
        res->load.runnable_others = before.runnable_others;

    /* One more, untimed call inside the counter region: counts are per call. */
    papi_session *papi = bench_papi();
    papi_events_start(papi);
    rc = bench_counted_call(&call);
    papi_events_stop(papi);
    rss_region_sample(rss); /* inputs and workspace are live and touched here */
    problem_widen_outputs(&bf->p);
    if (rc || (rc = outputs_finite(bf, &ctx->args, job->pass)) != 0)
        return rc;
    papi_events_read(papi, &res->counters); /* unavailable counters carry their NA:<why> */
    untiled_is_na(&res->counters);
    res->peak_rss_bytes = rss_region_peak_bytes(rss);
    res->measured = 1;
    return 0;
}

/* Refusals before any buffer exists: no backward, arguments the kernel or
 * the interface reject. 1 when the job stops here (*res says why). */
static int refused(const bench_job *job, attn_args *a, bench_result *res)
{
    if (a->backward && !job->kernel->backward) {
        outcome(res, BENCH_SKIPPED, "no backward (kernel not trainable)");
        return 1;
    }
    int rc = attn_args_validate(job->kernel, a);
    if (rc)
        outcome(res, rc == ATTN_EUNSUPPORTED ? BENCH_SKIPPED : BENCH_ERROR, attn_last_error());
    return rc != 0;
}

/* With buffers and a context (the workspace cap was judged by bench_fit,
 * before either existed): the measurement. */
static void run_on_context(const bench_job *job, const peak_result *peak, attn_ctx *ctx, buffers *bf,
                           rss_region *rss, bench_result *res)
{
    if (measure_job(job, ctx, bf, rss, res) != 0) {
        outcome(res, BENCH_ERROR, attn_last_error());
        return;
    }
    note_work(job, ctx, peak, res);
    res->status = BENCH_OK;
    double gflops = res->flops / (res->time.median_ms * 1e-3) * 1e-9;
    if (res->has_peak && res->roof_gflops > 0 && gflops > res->roof_gflops * (1 + BENCH_ROOF_TOLERANCE)) {
        char why[256];
        snprintf(why, sizeof why, "above the compute roof: %.4g GFLOP/s is %.0f%% of the same-run %s roof "
                 "(%.4g GFLOP/s); the FLOP count or the roof probe is wrong", gflops,
                 100 * gflops / res->roof_gflops, roof_name(peak, job->args.dtype), res->roof_gflops);
        outcome(res, BENCH_ERROR, why);
    }
}

int bench_run(const bench_job *job, const peak_result *peak, bench_result *res)
{
    memset(res, 0, sizeof *res);
    /* Large buffers always come from mmap and go back on free: with glibc's
     * adaptive threshold a job would reuse heap pages an earlier job touched,
     * and its peak-RSS growth would read as 0. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    const attn_kernel *k = job->kernel;
    attn_args a = bench_run_args(job);
    if (refused(job, &a, res))
        return 0;
    /* Before any buffer: a job that cannot fit or finish (or that its kernel
     * refuses at init) is skipped with the estimate, not started. */
    int rc = bench_fit(job, peak);
    if (rc) {
        outcome(res, rc == ATTN_EUNSUPPORTED ? BENCH_SKIPPED : BENCH_ERROR, attn_last_error());
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
    if ((rc = buffers_alloc(&bf, job, &a)) != 0)
        outcome(res, BENCH_ERROR, attn_last_error());
    else if ((rc = attn_ctx_create(k, &a, &ctx)) != 0)
        outcome(res, rc == ATTN_EUNSUPPORTED ? BENCH_SKIPPED : BENCH_ERROR, attn_last_error());
    else {
        run_on_context(job, peak, &ctx, &bf, &rss, res);
        attn_ctx_destroy(&ctx);
    }
    buffers_free(&bf);
    return 0;
}

/* ---------------------------------------------------------------- row */

static void status_cell(const bench_result *res, csvw_row *row)
{
    static const char *const kinds[] = {"ok", "skipped", "error"};
    if (res->status == BENCH_OK)
        csvw_row_set(row, ATTN_COL_STATUS, "ok");
    else
        csvw_row_set(row, ATTN_COL_STATUS, "%s:%s", kinds[res->status], res->reason);
}

double bench_roofline_s(const bench_result *res)
{
    double mem = res->bytes / (res->stream_peak_gbs * 1e9), compute = res->flops / (res->roof_gflops * 1e9);
    return mem > compute ? mem : compute;
}

/* The machine around the timed calls, and the verdict on it. */
static void noise_cells(const bench_result *res, csvw_row *row)
{
    if (!res->load.ok) {
        for (schema_col c = ATTN_COL_LOAD_AVG_1M; c <= ATTN_COL_NOISE; c++)
            csvw_row_set(row, c, "NA:%s", res->load_na[0] ? res->load_na : "not sampled for this row");
        return;
    }
    csvw_row_set(row, ATTN_COL_LOAD_AVG_1M, "%.2f", res->load.load_1m);
    csvw_row_set(row, ATTN_COL_RUNNABLE_OTHERS, "%d", res->load.runnable_others);
    /* probes moved: a sweep's memory-bound groups say so when they close (sweep_probe.h) */
    sysload_noise_cell(&res->load, 0, row->cell[ATTN_COL_NOISE], ATTN_CELL_MAX);
}

/* Time, work and rates: the derived columns come from the typed numbers here. */
static void rate_cells(const bench_result *res, csvw_row *row)
{
    const measure_stats *st = &res->time;
    double secs = st->median_ms * 1e-3, gflops = res->flops / secs * 1e-9, gbs = res->bytes / secs * 1e-9;
    bench_row_time(row, st, "%.6g");
    csvw_row_set(row, ATTN_COL_TIME_CV, "%.4f", st->cv);
    csvw_row_set(row, ATTN_COL_FLOPS_ANALYTIC, "%.0f", res->flops);
    csvw_row_set(row, ATTN_COL_GFLOPS, "%.4g", gflops);
    csvw_row_set(row, ATTN_COL_DENSE_GFLOPS, "%.4g", res->dense_flops / secs * 1e-9);
    csvw_row_set(row, ATTN_COL_BYTES_ANALYTIC, "%.0f", res->bytes);
    csvw_row_set(row, ATTN_COL_GBYTES_S, "%.4g", gbs);
    if (res->has_peak) {
        csvw_row_set(row, ATTN_COL_PCT_SGEMM_PEAK, "%.2f", 100 * gflops / res->sgemm_peak_gflops);
        csvw_row_set(row, ATTN_COL_PCT_STREAM_PEAK, "%.2f", 100 * gbs / res->stream_peak_gbs);
        if (res->roof_gflops > 0 && res->stream_peak_gbs > 0)
            csvw_row_set(row, ATTN_COL_PCT_ROOFLINE, "%.2f", 100 * bench_roofline_s(res) / secs);
        else
            csvw_row_set(row, ATTN_COL_PCT_ROOFLINE, "NA:no same-run FMA roof");
    } else {
        csvw_row_set(row, ATTN_COL_PCT_SGEMM_PEAK, "NA:no same-run peak");
        csvw_row_set(row, ATTN_COL_PCT_STREAM_PEAK, "NA:no same-run peak");
        csvw_row_set(row, ATTN_COL_PCT_ROOFLINE, "NA:no same-run peak");
    }
    csvw_row_set(row, ATTN_COL_DENSITY, "%.6g", res->density);
    csvw_row_set_schema_num(row, ATTN_COL_SPARSITY_EFF, "%.4g", &res->sparsity_eff);
    csvw_row_set_schema_num(row, ATTN_COL_N_EXPONENT, "%.4f", &res->n_exponent);
}

void bench_result_row(const bench_job *job, const bench_result *res, csvw_row *row)
{
    bench_identity(job, row);
    bench_result_fill(res, row);
}

void bench_result_fill(const bench_result *res, csvw_row *row)
{
    if (res->gated) {
        csvw_row_set(row, ATTN_COL_METRIC, "max_abs_err");
        csvw_row_set(row, ATTN_COL_VALUE, "%.3g", res->gate_err);
        csvw_row_set_schema_num(row, ATTN_COL_SOFTMAX_REL_ERR, "%.4g", &res->softmax_rel);
    }
    if (res->measured) {
        papi_counts_fill_row(&res->counters, row);
        rate_cells(res, row);
        noise_cells(res, row);
        csvw_row_set(row, ATTN_COL_PEAK_RSS_BYTES, "%zu", res->peak_rss_bytes);
        csvw_row_set(row, ATTN_COL_WORKSPACE_BYTES, "%zu", res->workspace_bytes);
        csvw_row_set(row, ATTN_COL_STATE_BYTES, "%zu", res->state_bytes);
    }
    status_cell(res, row);
}

void bench_metric_row(const csvw_row *row, const char *metric, double v, const char *na, csvw_row *out)
{
    *out = *row;
    csvw_row_set(out, ATTN_COL_METRIC, "%s", metric);
    if (isnan(v))
        csvw_row_set(out, ATTN_COL_VALUE, "NA:%s", na);
    else
        csvw_row_set(out, ATTN_COL_VALUE, "%.6g", v);
    char id[17];
    csvw_row_job_id_with(row, metric, id);
    csvw_row_set(out, ATTN_COL_JOB_ID, "%s", id);
}

int bench_result_rows(const bench_result *res, const csvw_row *row, csvw_row rows[BENCH_ROWS_MAX])
{
    rows[0] = *row;
    if (!res->has_fid)
        return 1;
    const fid_metrics *f = &res->fid;
    const char *no_rows = f->rows ? "" : f->kl_na[0] ? f->kl_na : "no sampled rows";
    const char *why[FID_MEASURES] = {no_rows, no_rows, no_rows, f->kl_na, f->topk_na};
    double v[FID_MEASURES];
    fid_metrics_values(f, v);
    for (int i = 0; i < FID_MEASURES; i++)
        bench_metric_row(row, fid_measure_names[i], v[i], why[i], &rows[1 + i]);
    return 1 + FID_MEASURES;
}

void bench_peak_rows(const peak_result *p, csvw_row rows[BENCH_PEAK_ROWS])
{
    static const char *const names[BENCH_PEAK_ROWS] = {"sgemm", "stream_triad", "fma_roof", "bf16_dot_roof"};
    for (int i = 0; i < BENCH_PEAK_ROWS; i++) {
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
    csvw_row_set(&rows[2], ATTN_COL_PARAMS, "isa=%s", fma_roof_isa());
    csvw_row_set(&rows[2], ATTN_COL_GFLOPS, "%.4g", p->fma_gflops);
    csvw_row_set(&rows[3], ATTN_COL_DTYPE, "bf16");
    csvw_row_set(&rows[3], ATTN_COL_PARAMS, "isa=avx512_bf16");
    if (p->bf16_gflops > 0)
        csvw_row_set(&rows[3], ATTN_COL_GFLOPS, "%.4g", p->bf16_gflops);
    else /* the row stands, saying why: a missing roof is not a zero one */
        csvw_row_set(&rows[3], ATTN_COL_GFLOPS, "NA:%s", bf16_roof_missing());
    for (int i = 0; i < BENCH_PEAK_ROWS; i++) {
        char id[17];
        csvw_row_job_id(&rows[i], id);
        csvw_row_set(&rows[i], ATTN_COL_JOB_ID, "%s", id);
    }
}
