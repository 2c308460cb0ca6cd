#include "bench_cost.h"

#include "bench_fit.h"
#include "kernels/core/registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PROBE_N = 1024, PROBE_N_KV = 16384 };

struct bench_cost_probe {
    char key[400];
    double efficiency; /* lower-bound call time / measured call time, in (0, 1.5] */
};

void bench_cost_init(bench_cost_cache *c) { memset(c, 0, sizeof *c); }

void bench_cost_free(bench_cost_cache *c)
{
    free(c->probe);
    memset(c, 0, sizeof *c);
}

/* What makes one job's efficiency differ from another's, lengths aside (the
 * KV format and the operand type among it: fewer bytes per key). */
static void kind_key(const bench_job *job, char *buf, size_t n)
{
    char mask[128], params[256] = "";
    attn_mask_format(&job->args.mask, mask, sizeof mask);
    const param_bag *pb = &job->args.params;
    for (int i = 0; i < pb->n; i++)
        snprintf(params + strlen(params), sizeof params - strlen(params), "%s=%s;", pb->key[i], pb->val[i]);
    snprintf(buf, n, "%s|%s|%s|%s|%lld/%lld|%lld/%lld|%d|%d|%d|%d", job->kernel->name, params,
             bench_pass_name(job->pass), mask, (long long)job->args.H, (long long)job->args.H_kv,
             (long long)job->args.D, (long long)job->args.Dv, job->args.threads, job->args.Nq < job->args.Nk,
             (int)job->args.kv_dtype, (int)job->args.dtype);
}

/* The job at a probe's length: uniform inputs, three timed calls, no limits, no gate. */
static bench_job probe_job(const bench_job *job)
{
    bench_job p = *job;
    int64_t nk = job->args.Nk ? job->args.Nk : job->args.Nq;
    if (p.lens.kind != BENCH_LENS_NONE) { /* one sequence of the longest length */
        for (int i = 0; i < p.lens.n; i++)
            nk = p.lens.len[i] > nk ? p.lens.len[i] : nk;
        p.lens = (bench_lens){0};
        p.args.B = 1;
    }
    int cross = job->args.Nq != nk;
    p.args.Nq = job->args.Nq < PROBE_N ? job->args.Nq : PROBE_N;
    p.args.Nk = cross ? (nk < PROBE_N_KV ? nk : PROBE_N_KV) : p.args.Nq;
    p.args.B = p.args.B < 2 ? p.args.B : 2;
    p.inputs = (bench_inputs){0};
    p.measure = (measure_opts){.warmup = 1, .min_reps = 3, .min_time_s = 0, .max_reps = 3}; /* the median of 3 */
    p.max_workspace_bytes = 0;
    p.limits = (bench_limits){0};
    p.timing_only = 1; /* a time is all a probe gives: the sweep's own run gates the job */
    return p;
}

/* Lower-bound time of one call of job / measured time of it at the probe's length. */
static double measure_efficiency(const bench_job *job, const peak_result *peak)
{
    bench_job p = probe_job(job);
    bench_estimate e;
    bench_result res;
    if (bench_estimate_job(&p, peak, &e) != 0 || !(e.call_s > 0) || bench_run(&p, peak, &res) != 0 ||
        res.status != BENCH_OK || !(res.time.median_ms > 0))
        return 1; /* the lower bound stands */
    double eff = e.call_s / (res.time.median_ms * 1e-3);
    return eff < 1e-4 ? 1e-4 : eff > 1.5 ? 1.5 : eff; /* a probe too short to time is clamped */
}

static double efficiency(const bench_job *job, const peak_result *peak, bench_cost_cache *c)
{
    char key[400];
    kind_key(job, key, sizeof key);
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->probe[i].key, key))
            return c->probe[i].efficiency;
    double eff = measure_efficiency(job, peak);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 32;
        bench_cost_probe *p = realloc(c->probe, cap * sizeof *p);
        if (!p)
            return eff; /* not kept: probed again next time */
        c->probe = p, c->cap = cap;
    }
    snprintf(c->probe[c->n].key, sizeof c->probe[c->n].key, "%s", key);
    c->probe[c->n++].efficiency = eff;
    return eff;
}

/* The oracle's forward on the job's problem: the fidelity rows' reference. */
static double oracle_seconds(const bench_job *job, const peak_result *peak, bench_cost_cache *c)
{
    bench_job o = *job;
    o.kernel = attn_find_kernel("oracle");
    if (!o.kernel)
        return 0;
    o.pass = BENCH_PASS_FWD;
    o.args.params = (param_bag){0};
    bench_estimate e;
    if (bench_estimate_job(&o, peak, &e) != 0)
        return 0;
    return e.call_s / efficiency(&o, peak, c);
}

double bench_cost_job(const bench_job *job, const peak_result *peak, bench_cost_cache *c)
{
    bench_estimate e;
    if (bench_estimate_job(job, peak, &e) != 0 || !(e.call_s > 0))
        return 0;
    if (bench_fit_limits(job, &e) != 0) /* recorded as skipped at once */
        return 0;
    double call = e.call_s / efficiency(job, peak, c);
    const measure_opts *m = &job->measure;
    double reps = ceil(m->min_time_s / call);
    reps = reps > m->min_reps ? reps : m->min_reps;
    reps = reps < m->max_reps ? reps : m->max_reps;
    double s = (2 + m->warmup + reps) * call; /* gate, warm-ups, repetitions, counted call */
    if (job->inputs.family != FID_UNIFORM)
        s += oracle_seconds(job, peak, c);
    return s;
}
