#include "bench_fit.h"

#include "common/attn_error.h"
#include "kernels/core/mem_budget.h"
#include "problem.h"
#include "sysinfo.h"

#include <math.h>
#include <stdio.h>

double bench_pass_work(double (*f)(const attn_args *, attn_pass), const attn_args *a, bench_pass pass)
{
    double fwd = f(a, ATTN_PASS_FWD), bwd = f(a, ATTN_PASS_BWD);
    return pass == BENCH_PASS_FWD ? fwd : pass == BENCH_PASS_BWD ? bwd : fwd + bwd;
}

/* Seconds of one call at the machine's peaks: the roofline's lower bound. */
static double call_seconds(const attn_kernel *k, const attn_args *a, bench_pass pass, const peak_result *peak)
{
    double flops = bench_pass_work(k->flops, a, pass), bytes = bench_pass_work(k->bytes, a, pass);
    double t_flops = flops / (peak->sgemm_gflops * 1e9), t_bytes = bytes / (peak->stream_gbs * 1e9);
    return t_flops > t_bytes ? t_flops : t_bytes;
}

/* Repetitions measure_run takes for calls of t seconds: min_reps, more
 * until min_time_s, at most max_reps. */
static double timed_reps(const measure_opts *m, double t)
{
    double reps = t > 0 ? ceil(m->min_time_s / t) : m->max_reps;
    reps = reps > m->min_reps ? reps : m->min_reps;
    return reps < m->max_reps ? reps : m->max_reps;
}

int bench_estimate_job(const bench_job *job, const peak_result *peak, bench_estimate *e)
{
    const attn_kernel *k = job->kernel;
    attn_args a = bench_run_args(job);
    size_t ws = 0;
    *e = (bench_estimate){0};
    /* a budget no setting meets: the refusal names the least one it can
     * (a job whose params hold the fitted sizes passes at once) */
    int rc = k->budget_params ? attn_budget_fit(k, &a, NULL) : 0;
    if (rc || (rc = attn_ctx_plan(k, &a, &ws)) != 0)
        return rc;
    e->tensor_bytes = problem_bytes(k, &a, a.backward ? PROBLEM_GRADS : 0);
    e->workspace_bytes = (double)ws;
    if (!peak || !(peak->sgemm_gflops > 0) || !(peak->stream_gbs > 0))
        return 0;
    e->call_s = call_seconds(k, &a, job->pass, peak);
    double gate_s = job->pass == BENCH_PASS_FWD ? e->call_s : call_seconds(k, &a, BENCH_PASS_FWD, peak);
    e->calls = 1 + job->measure.warmup + timed_reps(&job->measure, e->call_s) + 1; /* gate, ..., counted call */
    e->seconds = gate_s + (e->calls - 1) * e->call_s;
    return 0;
}

/* "137 GB", "512 MB": three significant digits in decimal units. */
static void fmt_bytes(double b, char *buf, size_t n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (b >= 1000 && u < 6)
        b /= 1000, u++;
    snprintf(buf, n, "%.3g %s", b, units[u]);
}

void bench_fmt_seconds(double s, char *buf, size_t n)
{
    if (s < 120)
        snprintf(buf, n, "%.3g s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.3g min", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, n, "%.3g h", s / 3600);
    else
        snprintf(buf, n, "%.3g days", s / 86400);
}

int bench_fit(const bench_job *job, const peak_result *peak)
{
    bench_estimate e;
    int rc = bench_estimate_job(job, job->limits.max_time_s > 0 ? peak : NULL, &e);
    return rc ? rc : bench_fit_limits(job, &e);
}

int bench_fit_limits(const bench_job *job, const bench_estimate *e)
{
    const bench_limits *l = &job->limits;
    char what[96], need[32], tensors[32], ws[32], limit[32];
    snprintf(what, sizeof what, "kernel '%s' N=%lld N_kv=%lld", job->kernel->name, (long long)job->args.Nq,
             (long long)(job->args.Nk ? job->args.Nk : job->args.Nq));
    if (job->max_workspace_bytes && e->workspace_bytes > (double)job->max_workspace_bytes)
        return attn_fail(ATTN_EUNSUPPORTED, "workspace %.0f B > max_workspace_bytes %zu", e->workspace_bytes,
                         job->max_workspace_bytes);
    double bytes = e->tensor_bytes + e->workspace_bytes;
    if (l->max_mem_bytes > 0 && bytes > l->max_mem_bytes) {
        fmt_bytes(bytes, need, sizeof need), fmt_bytes(e->tensor_bytes, tensors, sizeof tensors);
        fmt_bytes(e->workspace_bytes, ws, sizeof ws), fmt_bytes(l->max_mem_bytes, limit, sizeof limit);
        return attn_fail(ATTN_EUNSUPPORTED, "%s: needs at least %s (tensors %s, workspace %s) > --max-mem %s",
                         what, need, tensors, ws, limit);
    }
    if (l->max_time_s > 0 && e->seconds > l->max_time_s) {
        char call[32];
        bench_fmt_seconds(e->seconds, need, sizeof need), bench_fmt_seconds(e->call_s, call, sizeof call);
        snprintf(limit, sizeof limit, "%g s", l->max_time_s);
        return attn_fail(ATTN_EUNSUPPORTED, "%s: takes at least %s (%.0f calls of %s at the same-run sgemm and "
                         "STREAM peaks) > --max-time %s", what, need, e->calls, call, limit);
    }
    return 0;
}

int bench_budget_fit(bench_job *job)
{
    if (!job->args.mem_budget || !job->kernel->budget_params)
        return 0;
    attn_args a = bench_run_args(job); /* threads, backward: what the plan reads */
    int rc = attn_budget_fit(job->kernel, &a, NULL);
    if (!rc)
        job->args.params = a.params;
    return rc;
}

double bench_default_max_mem(void) { return 0.8 * sysinfo_mem_available(); }
