/* Inverted dropout (Srivastava et al. 2014): y = x m / (1 - p), m ~ Bernoulli(1-p).
 * The mask is counter-based: element i is dropped iff
 *   splitmix64(key ^ i) < p 2^64,  key = splitmix64(splitmix64(splitmix64(seed) ^ step) ^ layer),
 * a pure function of (seed, step, layer, i): independent of the thread count
 * and of how the loop is split, and recomputed (never stored) by the backward. */
#include "layers.h"

static uint64_t dropout_key(const nn_dropout *d)
{
    return attn_splitmix64(attn_splitmix64(attn_splitmix64(d->seed) ^ d->step) ^ d->layer);
}

static uint64_t dropout_threshold(const nn_dropout *d)
{
    return (uint64_t)((double)d->p * 18446744073709551616.0);   /* p 2^64, p < 1 */
}

static int dropout_check(const nn_dropout *d)
{
    if (!(d->p >= 0.0f && d->p < 1.0f))
        return attn_fail(ATTN_EINVAL, "dropout: expected p in [0, 1), found %g", (double)d->p);
    return 0;
}

int nn_dropout_keep(const nn_dropout *d, int64_t i)
{
    return attn_splitmix64(dropout_key(d) ^ (uint64_t)i) >= dropout_threshold(d);
}

/* y = mask x / (1 - p) (accumulate = 0) or y += mask x / (1 - p) (accumulate = 1) */
static int dropout_apply(const nn_dropout *d, const float *x, float *y, int64_t n, int accumulate, int threads)
{
    int rc = dropout_check(d);
    if (rc)
        return rc;
    uint64_t key = dropout_key(d), thr = dropout_threshold(d);
    float s = 1.0f / (1.0f - d->p);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = attn_splitmix64(key ^ (uint64_t)i) >= thr ? x[i] * s : 0.0f;
        y[i] = accumulate ? y[i] + v : v;
    }
    return 0;
}

// x, y are (n)
int nn_dropout_forward(const nn_dropout *d, const float *x, float *y, int64_t n, int threads)
{
    return dropout_apply(d, x, y, n, 0, threads);
}

// dx += mask dy / (1 - p)
int nn_dropout_backward(const nn_dropout *d, const float *dy, float *dx, int64_t n, int threads)
{
    return dropout_apply(d, dy, dx, n, 1, threads);
}

void nn_dropout_forward_ref(const nn_dropout *d, const double *x, double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = nn_dropout_keep(d, i) ? x[i] / (1.0 - (double)d->p) : 0.0;
}

void nn_dropout_backward_ref(const nn_dropout *d, const double *dy, double *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += nn_dropout_keep(d, i) ? dy[i] / (1.0 - (double)d->p) : 0.0;
}
