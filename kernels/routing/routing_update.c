/* `routing` centroid update (attn_kernel.train_update; docs/kernels/routing.md):
 * one step of online k-means after a training step. Per head h, with the
 * argmax assignment of every query of h and every key of its KV head over
 * the whole batch (whatever `assign` routes the attention with):
 *   mu_c <- normalise(lambda mu_c + (1 - lambda) m_c),
 *   m_c = (mean of the unit queries in c + mean of the unit keys in c) / 2
 * (one side's mean when the other side has none; mu_c unchanged when c is
 * empty). Means rather than the paper's sums keep lambda independent of the
 * batch and cluster sizes. Sums in double, rows in order: a pure function
 * of (q, k, w), the same for any thread count. */
#include "routing_internal.h"

#include "common/alloc.h"

#include <math.h>
#include <string.h>

/* Sums and counts of the unit rows of (b, hx) of x per cluster. */
static void rt_accumulate(const rt_plan *pl, const attn_tensor *x, const attn_tensor *w, int64_t b, int64_t hx,
                            int64_t h, float *scratch, int32_t *cl, double *sum, int64_t *cnt, double *u)
{
    rt_argmax_rows(pl, x, w, b, hx, h, scratch, cl);
    for (int64_t i = 0; i < pl->N; i++) {
        const float *r = attn_at(x, b, hx, i);
        for (int64_t d = 0; d < pl->D; d++)
            u[d] = r[d];
        rt_unit_f64(u, pl->D, u + pl->D);
        for (int64_t d = 0; d < pl->D; d++)
            sum[cl[i] * pl->D + d] += u[pl->D + d];
        cnt[cl[i]]++;
    }
}

/* The new centroids of head h from the per-cluster sums (q side, k side). */
static void rt_ema(const rt_plan *pl, float *mu, const double *sq, const int64_t *nq, const double *sk,
                   const int64_t *nk, double *u)
{
    int64_t D = pl->D;
    for (int64_t c = 0; c < pl->kappa; c++) {
        if (nq[c] + nk[c] == 0)
            continue;
        int sides = (nq[c] > 0) + (nk[c] > 0);
        double n2 = 0;
        for (int64_t d = 0; d < D; d++) {
            double m = (nq[c] ? sq[c * D + d] / (double)nq[c] : 0) + (nk[c] ? sk[c * D + d] / (double)nk[c] : 0);
            u[d] = pl->decay * mu[c * D + d] + (1 - pl->decay) * m / sides;
            n2 += u[d] * u[d];
        }
        double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
        for (int64_t d = 0; n2 > 0 && d < D; d++)
            mu[c * D + d] = (float)(u[d] * inv);
    }
}

// q is (B,H,N,D), k is (B,H_kv,N,D); w is (1,H,1,>=kappa D), updated in place
int rt_train_update(const attn_args *a, const attn_io *io, attn_tensor *w)
{
    rt_plan pl;
    int rc = rt_plan_make(&pl, a);
    attn_io with_w = *io;
    with_w.w = *w;
    if (!rc)
        rc = rt_check_weights(&pl, &with_w);
    if (rc)
        return rc;
    int64_t K = pl.kappa, D = pl.D, G = a->H / a->H_kv;
    size_t assign = rt_assign_floats(&pl);
    size_t bytes = sizeof(float) * (assign + (size_t)pl.N) + sizeof(double) * (size_t)(2 * K * D + 2 * D) +
                   sizeof(int64_t) * (size_t)(2 * K) + 64;
    int failed = 0;
#pragma omp parallel num_threads(a->threads) reduction(|| : failed)
    {
        char *buf = attn_alloc(bytes);
        failed = !buf;
#pragma omp for schedule(dynamic, 1)
        for (int64_t h = 0; h < a->H; h++) {
            if (!buf)
                continue;
            double *sq = (double *)buf, *sk = sq + K * D, *u = sk + K * D;
            int64_t *nq = (int64_t *)(u + 2 * D), *nk = nq + K;
            float *scratch = (float *)(nk + K);
            int32_t *cl = (int32_t *)(scratch + assign);
            memset(sq, 0, sizeof(double) * (size_t)(2 * K * D));
            memset(nq, 0, sizeof(int64_t) * (size_t)(2 * K));
            for (int64_t b = 0; b < a->B; b++) {
                rt_accumulate(&pl, &io->q, w, b, h, h, scratch, cl, sq, nq, u);
                rt_accumulate(&pl, &io->k, w, b, h / G, h, scratch, cl, sk, nk, u);
            }
            rt_ema(&pl, attn_at(w, 0, h, 0), sq, nq, sk, nk, u);
        }
        attn_free(buf);
    }
    return failed ? attn_fail(ATTN_ENOMEM, "kernel 'routing' centroid update: cannot allocate %zu bytes", bytes) : 0;
}
