/* The sort net and the soft permutation of `sinkhorn` in float, with their
 * backward (notation in sinkhorn.h). Sinkhorn balancing runs in the log
 * domain, each round a column then a row normalisation, so that the last
 * normalisation is over rows: every sorted block is then a convex mix of key
 * blocks (LRA's operator ends on the columns and clips the log-values to
 * [-1, 1], which leaves neither rows nor columns normalised). */
#include "sinkhorn_internal.h"

#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void sk_summaries(const sk_plan *pl, const sk_geom *g, const float *Kp, float *s)
{
    int64_t c = pl->c, D = pl->D;
    for (int64_t i = 0; i < g->nb; i++) {
        float *si = s + i * D;
        memcpy(si, Kp + i * c * D, sizeof(float) * (size_t)D);
        for (int64_t t = 1; !pl->causal && t < c; t++) { /* padding rows of Kp are zeros */
            const float *k = Kp + (i * c + t) * D;
            for (int64_t d = 0; d < D; d++)
                si[d] += k[d];
        }
    }
}

void sk_logits(const sk_plan *pl, const sk_geom *g, const float *s, const float *w, float *R)
{
    int64_t nb = g->nb, D = pl->D;
    for (int64_t i = 0; i < nb; i++)
        for (int64_t j = 0; j < nb; j++)
            R[i * nb + j] = w[j * pl->ldw + D];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nb, (int)D, 1.0f, s, (int)D, w,
                (int)pl->ldw, 1.0f, R, (int)nb);
    for (int64_t i = 0; pl->causal && i < nb; i++)
        for (int64_t j = i; j < nb; j++)
            R[i * nb + j] = -INFINITY;
}

/* x <- x - logsumexp along one axis of the n x n matrix (stride between
 * the summed elements `step`, between lines `line`); e (may be NULL) <- exp(x). */
static void log_normalise(float *x, int64_t n, int64_t step, int64_t line, float *e)
{
    for (int64_t l = 0; l < n; l++) {
        float *v = x + l * line, m = -INFINITY, sum = 0;
        for (int64_t k = 0; k < n; k++)
            m = fmaxf(m, v[k * step]);
        for (int64_t k = 0; k < n; k++)
            sum += expf(v[k * step] - m);
        float lse = m + logf(sum);
        for (int64_t k = 0; k < n; k++) {
            v[k * step] -= lse;
            if (e)
                e[l * line + k * step] = expf(v[k * step]);
        }
    }
}

void sk_permute(const sk_plan *pl, int64_t nb, float *R, float *P, float *hist)
{
    size_t nn = (size_t)(nb * nb);
    if (pl->sort == SK_SORT_SOFTMAX) {
        memcpy(P, R, sizeof(float) * nn);
        for (int64_t i = 0; i < nb; i++)
            attn_softmax_row(P + i * nb, nb);
        return;
    }
    float inv_t = (float)(1.0 / pl->temp);
    for (size_t e = 0; e < nn; e++)
        R[e] *= inv_t;
    for (int64_t it = 0; it < pl->iters; it++) {
        log_normalise(R, nb, nb, 1, hist ? hist + (size_t)(2 * it) * nn : NULL);      /* columns */
        log_normalise(R, nb, 1, nb, hist ? hist + (size_t)(2 * it + 1) * nn : NULL);  /* rows */
    }
    for (size_t e = 0; e < nn; e++)
        P[e] = expf(R[e]);
}

/* g <- g - e (.) (sums of g along the normalised axis): the backward of x - logsumexp(x). */
static void log_normalise_backward(float *g, const float *e, int64_t n, int64_t step, int64_t line)
{
    for (int64_t l = 0; l < n; l++) {
        float sum = 0;
        for (int64_t k = 0; k < n; k++)
            sum += g[l * line + k * step];
        for (int64_t k = 0; k < n; k++)
            g[l * line + k * step] -= e[l * line + k * step] * sum;
    }
}

void sk_permute_backward(const sk_plan *pl, int64_t nb, const float *P, const float *hist, float *dP, float *dR)
{
    size_t nn = (size_t)(nb * nb);
    if (pl->sort == SK_SORT_SOFTMAX) {
        for (int64_t i = 0; i < nb; i++) {
            const float *p = P + i * nb, *dp = dP + i * nb;
            float di = attn_dot(p, dp, nb);
            for (int64_t j = 0; j < nb; j++)
                dR[i * nb + j] = p[j] * (dp[j] - di);
        }
        return;
    }
    for (size_t e = 0; e < nn; e++) /* P = exp(log-iterate) */
        dP[e] *= P[e];
    for (int64_t it = pl->iters - 1; it >= 0; it--) {
        log_normalise_backward(dP, hist + (size_t)(2 * it + 1) * nn, nb, 1, nb);
        log_normalise_backward(dP, hist + (size_t)(2 * it) * nn, nb, nb, 1);
    }
    float inv_t = (float)(1.0 / pl->temp);
    for (size_t e = 0; e < nn; e++)
        dR[e] = dP[e] * inv_t;
}

void sk_tail_mass(const sk_geom *g, const float *P, float *mu)
{
    for (int64_t i = 0; i < g->nb; i++) {
        float m = 0;
        for (int64_t j = 0; j < g->nb - 1; j++)
            m += P[i * g->nb + j];
        mu[i] = m;
    }
}

double sk_sorted_blocks(const sk_plan *pl, const sk_geom *g, const float *P, const float *mu, const float *Kp,
                        int64_t i0, int64_t i1, float *Kt)
{
    int64_t c = pl->c, D = pl->D, nb = g->nb, rows = i1 - i0;
    /* blocks as rows of c*D floats: one product mixes whole blocks */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(c * D), (int)nb, 1.0f, P + i0 * nb,
                (int)nb, Kp, (int)(c * D), 0.0f, Kt, (int)(c * D));
    for (int64_t i = i0; i < i1 && g->r < c; i++) {
        float scale = mu[i] > SK_MIN_MASS ? 1.0f / mu[i] : 0.0f;
        float *tail = Kt + ((i - i0) * c + g->r) * D;
        for (int64_t e = 0; e < (c - g->r) * D; e++)
            tail[e] *= scale;
    }
    return 2.0 * (double)rows * (double)nb * (double)(c * D);
}
