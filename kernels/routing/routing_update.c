/* `routing` k-means steps (docs/kernels/routing.md): the centroid update a
 * training step applies (attn_kernel.train_update, online k-means) and the
 * Lloyd steps of `iters`, one function for both and for the reference.
 *
 * train_update, per head h over the whole batch, with the argmax
 * assignment of every query of h and every key of its KV head (whatever
 * `assign` routes the attention with):
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

size_t rt_kmeans_floats(const rt_plan *pl)
{
    size_t KD = (size_t)(pl->kappa * pl->D);
    return 2 * (2 * KD + 2 * (size_t)pl->D) + 2 * 2 * (size_t)pl->kappa + KD + 16;
}

rt_kmeans_sums rt_kmeans_at(const rt_plan *pl, float *p)
{
    int64_t KD = pl->kappa * pl->D;
    rt_kmeans_sums km;
    km.sq = (double *)p, km.sk = km.sq + KD, km.u = km.sk + KD;
    km.nq = (int64_t *)(km.u + 2 * pl->D), km.nk = km.nq + pl->kappa;
    km.mu = (float *)(km.nk + pl->kappa);
    return km;
}

void rt_kmeans_clear(const rt_plan *pl, const rt_kmeans_sums *km)
{
    memset(km->sq, 0, sizeof(double) * (size_t)(2 * pl->kappa * pl->D));
    memset(km->nq, 0, sizeof(int64_t) * (size_t)(2 * pl->kappa));
}

void rt_sum_unit(const double *x, int64_t D, double *sum, double *u)
{
    rt_unit_f64(x, D, u);
    for (int64_t d = 0; d < D; d++)
        sum[d] += u[d];
}

void rt_kmeans_step(const rt_plan *pl, double lambda, const rt_kmeans_sums *km, float *mu)
{
    int64_t D = pl->D;
    double *u = km->u;
    for (int64_t c = 0; c < pl->kappa; c++) {
        int64_t nq = km->nq[c], nk = km->nk[c];
        if (nq + nk == 0)
            continue;
        double sides = (double)((nq > 0) + (nk > 0)), n2 = 0;
        for (int64_t d = 0; d < D; d++) {
            double m = (nq ? km->sq[c * D + d] / (double)nq : 0) + (nk ? km->sk[c * D + d] / (double)nk : 0);
            u[d] = lambda * mu[c * D + d] + (1 - lambda) * (m / sides);
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
    pl.iters = 0; /* the update reads the stored centroids, not a sequence's own */
    int64_t G = a->H / a->H_kv;
    size_t km_floats = (rt_kmeans_floats(&pl) + 15) / 16 * 16, bytes = sizeof(float) * (km_floats + rt_assign_floats(&pl));
    int failed = 0;
#pragma omp parallel num_threads(a->threads) reduction(|| : failed)
    {
        float *buf = attn_alloc(bytes);
        failed = !buf;
#pragma omp for schedule(dynamic, 1)
        for (int64_t h = 0; h < a->H; h++) {
            if (!buf)
                continue;
            rt_kmeans_sums km = rt_kmeans_at(&pl, buf);
            float *mu = attn_at(w, 0, h, 0), *scratch = buf + km_floats;
            rt_kmeans_clear(&pl, &km);
            for (int64_t b = 0; b < a->B; b++) { /* every assignment before the centroids move */
                rt_argmax_sums(&pl, &io->q, mu, b, h, scratch, km.sq, km.nq);
                rt_argmax_sums(&pl, &io->k, mu, b, h / G, scratch, km.sk, km.nk);
            }
            rt_kmeans_step(&pl, pl.decay, &km, mu);
        }
        attn_free(buf);
    }
    return failed ? attn_fail(ATTN_ENOMEM, "kernel 'routing' centroid update: cannot allocate %zu bytes", bytes)
                  : 0;
}
