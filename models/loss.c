/* Softmax cross-entropy for classifier heads and the LM head. Positions whose
 * target is NN_IGNORE_INDEX (-100, PyTorch's convention) contribute nothing:
 * the loss is the mean over the other rows, and their dlogits are 0. */
#include "layers.h"
#include "kernels/core/vexp.h"

#include <math.h>
#include <stdlib.h>

static int xent_check(const int32_t *target, int64_t rows, int64_t K, int allow_ignore, int64_t *n_valid)
{
    *n_valid = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (allow_ignore && target[r] == NN_IGNORE_INDEX)
            continue;
        if (target[r] < 0 || target[r] >= K)
            return attn_fail(ATTN_EINVAL, "cross-entropy: expected a target in [0, %lld)%s, found %d at row %lld",
                             (long long)K, allow_ignore ? " or -100" : "", target[r], (long long)r);
        (*n_valid)++;
    }
    return 0;
}

/* The row reductions are vectorised (omp simd): the max is exact in any
 * order; the sum of the exponentials adds lane-interleaved partial sums, an
 * order fixed by the build's vector width, not by the thread count (a
 * sequential double sum was a chain of K dependent adds per row). */
static float row_max(const float *l, int64_t K)
{
    float mx = l[0];
#pragma omp simd reduction(max : mx)
    for (int64_t k = 1; k < K; k++)
        mx = l[k] > mx ? l[k] : mx;
    return mx;
}

// logits, dlogits are (rows,K) (may alias); target, row_loss are (rows)
static int xent(const float *logits, const int32_t *target, int64_t rows, int64_t K, int allow_ignore,
                float *dlogits, float *row_loss, double *loss, int64_t *n_valid, int threads)
{
    int64_t nv;
    int rc = xent_check(target, rows, K, allow_ignore, &nv);
    if (rc)
        return rc;
    float inv_n = nv ? 1.0f / (float)nv : 0.0f;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *l = logits + r * K;
        float *d = dlogits + r * K;
        if (target[r] == NN_IGNORE_INDEX) {
            row_loss[r] = 0.0f;
            for (int64_t k = 0; k < K; k++)
                d[k] = 0.0f;
            continue;
        }
        float mx = row_max(l, K), lt = l[target[r]];
        /* the exponentials once, vectorised, into d (in place is fine: l[k]
         * is read before d[k] is written, and l[target] was kept); their sum
         * in double keeps large vocabularies accurate */
        for (int64_t k = 0; k < K; k++)
            d[k] = l[k] - mx;
        attn_vexp(d, d, K);
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < K; k++)
            s += (double)d[k];
        row_loss[r] = (float)(log(s) + (double)mx - (double)lt);
        float inv_s = (float)(1.0 / s), et = d[target[r]];
        for (int64_t k = 0; k < K; k++)
            d[k] = d[k] * inv_s * inv_n;
        d[target[r]] = (et * inv_s - 1.0f) * inv_n;
    }
    double sum = 0.0;
    for (int64_t r = 0; r < rows; r++)
        sum += row_loss[r];
    *loss = nv ? sum / (double)nv : 0.0;
    if (n_valid)
        *n_valid = nv;
    return 0;
}

int nn_xent_tokens(const float *logits, const int32_t *target, int64_t rows, int64_t K, float *dlogits,
                   float *row_loss, double *loss, int64_t *n_valid, int threads)
{
    return xent(logits, target, rows, K, 1, dlogits, row_loss, loss, n_valid, threads);
}

int nn_xent_classes(const float *logits, const int32_t *target, int64_t rows, int64_t K, float *dlogits,
                    float *row_loss, double *loss, int threads)
{
    return xent(logits, target, rows, K, 0, dlogits, row_loss, loss, NULL, threads);
}

int nn_xent_ref(const double *logits, const int32_t *target, int64_t rows, int64_t K, double *dlogits,
                double *loss)
{
    int64_t nv;
    int rc = xent_check(target, rows, K, 1, &nv);
    if (rc)
        return rc;
    *loss = 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *l = logits + r * K;
        double mx = -INFINITY, s = 0;
        for (int64_t k = 0; k < K; k++)
            mx = fmax(mx, l[k]);
        for (int64_t k = 0; k < K; k++)
            s += exp(l[k] - mx);
        int ign = target[r] == NN_IGNORE_INDEX;
        if (!ign)
            *loss += (log(s) + mx - l[target[r]]) / (double)nv;
        for (int64_t k = 0; dlogits && k < K; k++)
            dlogits[r * K + k] = ign ? 0.0 : (exp(l[k] - mx) / s - (k == target[r])) / (double)nv;
    }
    return 0;
}

int64_t nn_xent_correct(const float *logits, const int32_t *target, int64_t rows, int64_t K, int threads)
{
    int64_t correct = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : correct)
    for (int64_t r = 0; r < rows; r++) {
        if (target[r] == NN_IGNORE_INDEX)
            continue;
        /* the first index of the row's maximum: the maximum, then a scan */
        const float *l = logits + r * K;
        float mx = row_max(l, K);
        int64_t best = 0;
        while (best < K - 1 && !(l[best] == mx))
            best++;
        correct += best == target[r];
    }
    return correct;
}
