/* AdamW, gradient clipping/accumulation and the learning-rate schedule over
 * one flat parameter blob (see optim.h for the math and the references). */
#include "optim.h"

#include "kernels/core/attn.h"
#include "common/attn_error.h"

#include <math.h>
#include <omp.h>
#include <string.h>

const char *const optim_sched_names[] = {"constant", "cosine", "linear", "rsqrt", NULL};

#define OPTIM_PI 3.14159265358979323846

static size_t round64(size_t bytes) { return (bytes + 63) / 64 * 64; }

static int nthreads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

static size_t norm_blocks(size_t n) { return (n + OPTIM_NORM_BLOCK - 1) / OPTIM_NORM_BLOCK; }

size_t optim_state_bytes(size_t n, int nranges)
{
    size_t nr = nranges > 0 ? (size_t)nranges : 1;
    return 2 * round64(n * sizeof(float)) + round64(nr * sizeof(optim_range)) +
           round64(norm_blocks(n) * sizeof(double));
}

static int check_config(const optim_config *c)
{
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return attn_fail(ATTN_EINVAL, "optim: expected 0 <= beta1, beta2 < 1, found beta1=%g beta2=%g",
                         (double)c->beta1, (double)c->beta2);
    if (!(c->eps > 0.0f && isfinite(c->eps)))
        return attn_fail(ATTN_EINVAL, "optim: expected eps > 0, found %g", (double)c->eps);
    if (!(c->weight_decay >= 0.0f && isfinite(c->weight_decay)))
        return attn_fail(ATTN_EINVAL, "optim: expected weight_decay >= 0, found %g",
                         (double)c->weight_decay);
    if (c->threads < 0)
        return attn_fail(ATTN_EINVAL, "optim: expected threads >= 0, found %d", c->threads);
    return 0;
}

/* The ranges must tile [0, n) in order, so no parameter is forgotten or
 * updated twice. */
static int check_ranges(size_t n, const optim_range *r, int nr)
{
    if (nr < 0 || (nr > 0 && !r))
        return attn_fail(ATTN_EINVAL, "optim ranges: expected a list of %d ranges, found %s", nr,
                         r ? "a negative count" : "NULL");
    size_t end = 0;
    for (int i = 0; i < nr; i++) {
        if (r[i].offset != end)
            return attn_fail(ATTN_EINVAL, "optim ranges: expected range %d to start at offset %zu "
                             "(where the previous one ends), found %zu", i, end, r[i].offset);
        if (r[i].count == 0 || r[i].count > n - end)
            return attn_fail(ATTN_EINVAL, "optim ranges: expected range %d to hold 1..%zu parameters, "
                             "found %zu", i, n - end, r[i].count);
        end += r[i].count;
    }
    if (nr > 0 && end != n)
        return attn_fail(ATTN_EINVAL, "optim ranges: expected the ranges to cover %zu parameters, "
                         "found %zu", n, end);
    return 0;
}

int optim_init(optim *o, size_t n, const optim_config *cfg, const optim_range *ranges, int nranges)
{
    memset(o, 0, sizeof *o);
    if (n == 0)
        return attn_fail(ATTN_EINVAL, "optim: expected at least one parameter, found 0");
    int rc = check_config(cfg);
    if (rc == 0)
        rc = check_ranges(n, ranges, nranges);
    if (rc)
        return rc;
    size_t bytes = optim_state_bytes(n, nranges);
    char *mem = attn_alloc(bytes);
    if (!mem)
        return attn_fail(ATTN_ENOMEM, "optim: cannot allocate %zu bytes of state", bytes);
    memset(mem, 0, bytes);
    o->cfg = *cfg;
    o->n = n;
    o->mem = mem;
    o->m = (float *)mem;
    o->v = (float *)(mem + round64(n * sizeof(float)));
    o->ranges = (optim_range *)(mem + 2 * round64(n * sizeof(float)));
    o->nranges = nranges > 0 ? nranges : 1;
    if (nranges > 0)
        memcpy(o->ranges, ranges, (size_t)nranges * sizeof *ranges);
    else
        o->ranges[0] = (optim_range){.offset = 0, .count = n, .decay = 1};
    o->partials = (double *)(mem + 2 * round64(n * sizeof(float)) +
                             round64((size_t)o->nranges * sizeof(optim_range)));
    o->nblocks = norm_blocks(n);
    return 0;
}

void optim_fini(optim *o)
{
    attn_free(o->mem);
    memset(o, 0, sizeof *o);
}

// params, grads, o->m, o->v are (n)
int optim_step(optim *o, float *params, const float *grads, float lr)
{
    if (!(lr >= 0.0f && isfinite(lr)))
        return attn_fail(ATTN_EINVAL, "optim_step: expected a finite learning rate >= 0, found %g",
                         (double)lr);
    const optim_config *c = &o->cfg;
    int64_t t = ++o->step;
    /* Kingma & Ba Alg. 1: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t);
     * the powers in double so that b^t for large t underflows to 0 cleanly */
    const float bc1 = (float)(1.0 - pow(c->beta1, (double)t));
    const float bc2 = (float)(1.0 - pow(c->beta2, (double)t));
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    float *m = o->m, *v = o->v;
#pragma omp parallel num_threads(nthreads(c->threads)) if (o->n >= OPTIM_PARALLEL_MIN)
    for (int r = 0; r < o->nranges; r++) {
        const size_t lo = o->ranges[r].offset, hi = lo + o->ranges[r].count;
        const float wd = o->ranges[r].decay ? c->weight_decay : 0.0f;
#pragma omp for schedule(static)
        for (size_t i = lo; i < hi; i++) {
            float g = grads[i];
            float mi = b1 * m[i] + (1.0f - b1) * g;
            float vi = b2 * v[i] + (1.0f - b2) * g * g;
            m[i] = mi;
            v[i] = vi;
            float mh = mi / bc1, vh = vi / bc2;
            /* Loshchilov & Hutter Alg. 2 line 12: the decay acts on the
             * parameter directly, not through g (which Adam would rescale) */
            params[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * params[i]);
        }
    }
    return 0;
}

void optim_step_ref(const optim_config *cfg, const optim_range *ranges, int nranges, size_t n,
                    double *p, const double *g, double *m, double *v, int64_t step, double lr)
{
    const double b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    const optim_range all = {.offset = 0, .count = n, .decay = 1};
    if (nranges <= 0) {
        ranges = &all;
        nranges = 1;
    }
    for (int r = 0; r < nranges; r++) {
        double wd = ranges[r].decay ? (double)cfg->weight_decay : 0.0;
        for (size_t i = ranges[r].offset; i < ranges[r].offset + ranges[r].count; i++) {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            double mh = m[i] / (1.0 - pow(b1, (double)step));
            double vh = v[i] / (1.0 - pow(b2, (double)step));
            p[i] -= lr * (mh / (sqrt(vh) + eps) + wd * p[i]);
        }
    }
}

// grads is (n); o->partials is (nblocks)
double optim_grad_norm(optim *o, const float *grads)
{
    const size_t n = o->n, nb = o->nblocks;
    double *part = o->partials;
#pragma omp parallel for num_threads(nthreads(o->cfg.threads)) schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * OPTIM_NORM_BLOCK, hi = lo + OPTIM_NORM_BLOCK < n ? lo + OPTIM_NORM_BLOCK : n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++)
            s += (double)grads[i] * (double)grads[i];
        part[b] = s;
    }
    double total = 0.0; /* block order, whatever thread computed each block */
    for (size_t b = 0; b < nb; b++)
        total += part[b];
    return sqrt(total);
}

int optim_clip_grad_norm(optim *o, float *grads, double max_norm, double *norm_out)
{
    if (!(max_norm > 0.0 && isfinite(max_norm)))
        return attn_fail(ATTN_EINVAL, "optim_clip_grad_norm: expected max_norm > 0, found %g", max_norm);
    double norm = optim_grad_norm(o, grads);
    if (norm_out)
        *norm_out = norm;
    if (!isfinite(norm))
        return attn_fail(ATTN_EINVAL, "optim_clip_grad_norm: expected a finite gradient norm, found %g "
                         "(the step diverged)", norm);
    if (norm > max_norm)
        optim_grad_scale(grads, o->n, (float)(max_norm / norm), o->cfg.threads);
    return 0;
}

void optim_grad_zero(float *g, size_t n, int threads)
{
#pragma omp parallel for num_threads(nthreads(threads)) schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        g[i] = 0.0f;
}

void optim_grad_scale(float *g, size_t n, float s, int threads)
{
#pragma omp parallel for num_threads(nthreads(threads)) schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        g[i] *= s;
}

int optim_schedule_check(const optim_schedule *s)
{
    if (s->kind != OPTIM_SCHED_CONSTANT && s->kind != OPTIM_SCHED_COSINE && s->kind != OPTIM_SCHED_LINEAR &&
        s->kind != OPTIM_SCHED_RSQRT)
        return attn_fail(ATTN_EINVAL, "lr schedule: expected constant, cosine, linear or rsqrt, found kind %d",
                         (int)s->kind);
    if (!(s->peak_lr > 0.0 && isfinite(s->peak_lr)))
        return attn_fail(ATTN_EINVAL, "lr schedule: expected peak_lr > 0, found %g", s->peak_lr);
    if (!(s->min_lr_ratio >= 0.0 && s->min_lr_ratio <= 1.0))
        return attn_fail(ATTN_EINVAL, "lr schedule: expected min_lr_ratio in [0, 1], found %g",
                         s->min_lr_ratio);
    if (s->warmup_steps < 0)
        return attn_fail(ATTN_EINVAL, "lr schedule: expected warmup_steps >= 0, found %lld",
                         (long long)s->warmup_steps);
    if (s->kind == OPTIM_SCHED_RSQRT && s->warmup_steps < 1) /* the peak is base / sqrt(warmup) */
        return attn_fail(ATTN_EINVAL, "lr schedule: rsqrt: expected warmup_steps >= 1, found %lld",
                         (long long)s->warmup_steps);
    if ((s->kind == OPTIM_SCHED_COSINE || s->kind == OPTIM_SCHED_LINEAR) && s->total_steps <= s->warmup_steps)
        return attn_fail(ATTN_EINVAL, "lr schedule: expected total_steps > warmup_steps = %lld, found %lld",
                         (long long)s->warmup_steps, (long long)s->total_steps);
    return 0;
}

double optim_lr_at(const optim_schedule *s, int64_t step)
{
    const double peak = s->peak_lr, floor_lr = s->min_lr_ratio * peak;
    if (step < 0)
        step = 0;
    if (s->kind == OPTIM_SCHED_RSQRT) { /* LRA's convention (optim.h): step 0 is lr 0 */
        double t = (double)step, w = (double)s->warmup_steps;
        return peak * fmin(1.0, t / w) * sqrt(w / fmax(t, w));
    }
    if (step < s->warmup_steps)
        return peak * (double)(step + 1) / (double)s->warmup_steps;
    if (s->kind == OPTIM_SCHED_CONSTANT)
        return peak;
    if (step >= s->total_steps)
        return floor_lr;
    double r = (double)(step - s->warmup_steps) / (double)(s->total_steps - s->warmup_steps);
    if (s->kind == OPTIM_SCHED_COSINE)
        return floor_lr + (peak - floor_lr) * 0.5 * (1.0 + cos(OPTIM_PI * r));
    return peak - (peak - floor_lr) * r;
}
