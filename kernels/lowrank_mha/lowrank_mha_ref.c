/* `lowrank_mha` double reference: the formulas of lowrank_mha.h in plain
 * loops, one key, score and output element at a time (no BLAS). */
#include "lowrank_mha.h"

#include <math.h>
#include <stdlib.h>

/* The mean of the m head vectors of (b, h) over its n rows into out [D];
 * kj [n x r] holds the keys V^T x_j. */
static void ref_pool(const lowrank_plan *pl, const attn_tensor_f64 *X, int64_t b, int64_t h, int64_t n,
                     const double *w, double *c, double *u, double *kj, double *f, double *out)
{
    int64_t D = X->D, r = pl->r;
    for (int64_t d = 0; d < D; d++) {
        c[d] = 0;
        for (int64_t j = 0; j < n; j++)
            c[d] += attn_at64(X, b, h, j)[d];
        c[d] /= (double)n;
        out[d] = 0;
    }
    for (int64_t k = 0; k < r; k++) {
        u[k] = 0;
        for (int64_t d = 0; d < D; d++)
            u[k] += w[d * r + k] * c[d];
        for (int64_t j = 0; j < n; j++) {
            kj[j * r + k] = 0;
            for (int64_t d = 0; d < D; d++)
                kj[j * r + k] += w[pl->off_v + d * r + k] * attn_at64(X, b, h, j)[d];
        }
    }
    for (int64_t i = 0; i < pl->m; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) {
            f[j] = 0;
            for (int64_t k = 0; k < r; k++)
                f[j] += w[pl->off_p + i * r + k] * u[k] * kj[j * r + k];
            mx = fmax(mx, f[j]);
        }
        for (int64_t j = 0; j < n; j++)
            sum += f[j] = exp(f[j] - mx);
        for (int64_t d = 0; d < D; d++) {
            double e = 0;
            for (int64_t j = 0; j < n; j++)
                e += f[j] / sum * attn_at64(X, b, h, j)[d];
            out[d] += e / (double)pl->m;
        }
    }
}

int attn_lowrank_ref_forward(const attn_args *a, const attn_io64 *io)
{
    lowrank_plan pl;
    int rc = attn_lowrank_plan(&pl, a);
    if (rc)
        return rc;
    int64_t D = a->D, N = a->Nq;
    double *buf = malloc(sizeof(double) * (size_t)(2 * D + pl.r + N + N * pl.r));
    if (!buf)
        return attn_fail(ATTN_ENOMEM, "lowrank_mha ref: out of memory for N=%lld", (long long)N);
    double *c = buf, *mean = c + D, *u = mean + D, *f = u + pl.r, *kj = f + N;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            int64_t n = attn_q_len(a, b);
            if (n > 0)
                ref_pool(&pl, &io->q, b, h, n, attn_at64(&io->w, 0, h, 0), c, u, kj, f, mean);
            for (int64_t t = 0; t < N; t++)
                for (int64_t d = 0; d < D; d++)
                    attn_at64(&io->o, b, h, t)[d] = t < n ? mean[d] : 0.0;
        }
    free(buf);
    return 0;
}
