/* Plain double reference of `ponet` (math in ponet.h), written straight
 * from the formulas with no shared code beyond the segment bounds: the mean
 * query, the softmax over all keys, and each max as a scan of its window. */
#include "ponet.h"

#include <math.h>
#include <stdlib.h>

/* Max of column c over rows [lo, hi) of (b, h) in x. */
static double ref_max(const attn_tensor_f64 *x, int64_t b, int64_t h, int64_t c, int64_t lo, int64_t hi)
{
    double m = -INFINITY;
    for (int64_t j = lo; j < hi; j++)
        m = fmax(m, attn_at64(x, b, h, j)[c]);
    return m;
}

/* gp [D] of query head h: softmax(sc <mean Q, K_j>) over the keys of KV head hk, weights on K. */
static void ref_global(const ponet_plan *pl, const attn_io64 *io, int64_t b, int64_t h, int64_t hk, int64_t N,
                       int64_t D, double *g, double *z, double *gp)
{
    for (int64_t d = 0; d < D; d++) {
        g[d] = 0;
        for (int64_t i = 0; i < N; i++)
            g[d] += attn_at64(&io->q, b, h, i)[d];
        g[d] /= (double)N;
    }
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < N; j++) {
        z[j] = 0;
        for (int64_t d = 0; d < D; d++)
            z[j] += g[d] * attn_at64(&io->k, b, hk, j)[d];
        z[j] *= pl->sc;
        mx = fmax(mx, z[j]);
    }
    for (int64_t j = 0; j < N; j++)
        sum += z[j] = exp(z[j] - mx);
    for (int64_t d = 0; d < D; d++) {
        gp[d] = 0;
        for (int64_t j = 0; j < N; j++)
            gp[d] += z[j] / sum * attn_at64(&io->k, b, hk, j)[d];
    }
}

int attn_ponet_ref_forward(const attn_args *a, const attn_io64 *io)
{
    ponet_plan pl;
    int rc = attn_ponet_plan(&pl, a);
    if (rc)
        return rc;
    int64_t D = a->D;
    double *g = malloc(sizeof(double) * (size_t)(2 * D + a->Nk));
    if (!g)
        return attn_fail(ATTN_ENOMEM, "ponet ref: out of memory for N=%lld", (long long)a->Nk);
    double *gp = g + D, *z = gp + D;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            int64_t N = attn_q_len(a, b); /* padded batch: sequence b alone, O = 0 after it */
            for (int64_t i = N; i < a->Nq; i++)
                for (int64_t d = 0; d < D; d++)
                    attn_at64(&io->o, b, h, i)[d] = 0;
            if (N == 0)
                continue;
            int64_t hk = h / (a->H / a->H_kv);
            ref_global(&pl, io, b, h, hk, N, D, g, z, gp);
            for (int64_t i = 0; i < N; i++) {
                int64_t slo, shi;
                attn_ponet_segment(&pl, N, i, &slo, &shi);
                int64_t llo = i - pl.half < 0 ? 0 : i - pl.half;
                int64_t lhi = i + pl.half + 1 < N ? i + pl.half + 1 : N;
                double *o = attn_at64(&io->o, b, h, i);
                for (int64_t d = 0; d < D; d++) {
                    double s = ref_max(&io->router, b, hk, d, slo, shi);
                    double l = ref_max(&io->router, b, hk, D + d, llo, lhi);
                    o[d] = (gp[d] + s) * attn_at64(&io->v, b, hk, i)[d] + l;
                }
            }
        }
    free(g);
    return 0;
}
