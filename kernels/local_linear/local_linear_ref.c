/* The double-precision reference of `local_linear` (Zuo et al. 2025): for
 * each query row, the textbook weighted ridge regression, no tiling, no
 * shifts, no Cholesky:
 *   p_j = softmax_j(sc <q, k_j>) over the allowed keys,
 *   k̄ = sum p_j k_j, Sigma = sum p_j (k_j - k̄)(k_j - k̄)^T (two-pass, centred),
 *   rho = (Sigma + lambda I)^-1 (q - k̄) by Gaussian elimination with partial pivoting,
 *   o = sum_j p_j (1 + <k_j - k̄, rho>) v_j.
 * A fully masked row gives o = 0 (and lse = -inf). */
#include "local_linear.h"

#include "local_linear_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void attn_local_linear_solve_f64(double *M, double *r, int64_t n)
{
    for (int64_t c = 0; c < n; c++) {
        int64_t piv = c;
        for (int64_t i = c + 1; i < n; i++)
            if (fabs(M[i * n + c]) > fabs(M[piv * n + c]))
                piv = i;
        for (int64_t j = 0; j < n && piv != c; j++) {
            double tmp = M[c * n + j];
            M[c * n + j] = M[piv * n + j], M[piv * n + j] = tmp;
        }
        double tr = r[c];
        r[c] = r[piv], r[piv] = tr;
        for (int64_t i = c + 1; i < n; i++) {
            double f = M[i * n + c] / M[c * n + c];
            for (int64_t j = c; j < n; j++)
                M[i * n + j] -= f * M[c * n + j];
            r[i] -= f * r[c];
        }
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        for (int64_t j = i + 1; j < n; j++)
            r[i] -= M[i * n + j] * r[j];
        r[i] /= M[i * n + i];
    }
}

/* One row: o (Dv) and its lse from query q of (b, h) at row i. p: Nk scratch. */
static double ref_row(const attn_args *a, const attn_io64 *io, double lambda, int64_t b, int64_t h, int64_t i,
                      double *p, double *kbar, double *M, double *rho)
{
    int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    const double *q = attn_at64(&io->q, b, h, i);
    double *o = attn_at64(&io->o, b, h, i), mx = -INFINITY, l = 0;
    for (int64_t j = 0; j < a->Nk; j++) {
        p[j] = -INFINITY;
        if (!attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j))
            continue;
        const double *k = attn_at64(&io->k, b, hk, j);
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += q[d] * k[d];
        p[j] = attn_scale(a) * s;
        mx = fmax(mx, p[j]);
    }
    memset(o, 0, sizeof(double) * (size_t)Dv);
    if (mx == -INFINITY)
        return -INFINITY;
    for (int64_t j = 0; j < a->Nk; j++)
        l += p[j] = exp(p[j] - mx);
    memset(kbar, 0, sizeof(double) * (size_t)D);
    for (int64_t j = 0; j < a->Nk; j++) {
        p[j] /= l;
        for (int64_t d = 0; d < D; d++)
            kbar[d] += p[j] * attn_at64(&io->k, b, hk, j)[d];
    }
    memset(M, 0, sizeof(double) * (size_t)(D * D));
    for (int64_t j = 0; j < a->Nk; j++) {
        const double *k = attn_at64(&io->k, b, hk, j);
        for (int64_t d = 0; d < D; d++)
            for (int64_t e = 0; e < D; e++)
                M[d * D + e] += p[j] * (k[d] - kbar[d]) * (k[e] - kbar[e]);
    }
    for (int64_t d = 0; d < D; d++) {
        M[d * D + d] += lambda;
        rho[d] = q[d] - kbar[d];
    }
    attn_local_linear_solve_f64(M, rho, D);
    for (int64_t j = 0; j < a->Nk; j++) {
        const double *k = attn_at64(&io->k, b, hk, j), *v = attn_at64(&io->v, b, hk, j);
        double c = 0;
        for (int64_t d = 0; d < D; d++)
            c += (k[d] - kbar[d]) * rho[d];
        for (int64_t d = 0; d < Dv; d++)
            o[d] += p[j] * (1 + c) * v[d];
    }
    return mx + log(l);
}

int attn_local_linear_ref_forward(const attn_args *a, const attn_io64 *io)
{
    ll_plan pl;
    int rc = ll_plan_make(&pl, a);
    if (rc)
        return rc;
    int64_t D = a->D;
    double *p = malloc(sizeof(double) * (size_t)(a->Nk + D * D + 2 * D));
    if (!p)
        return attn_fail(ATTN_ENOMEM, "local_linear reference: cannot allocate %lld doubles", (long long)a->Nk);
    double *M = p + a->Nk, *kbar = M + D * D, *rho = kbar + D;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                double lse = ref_row(a, io, pl.lambda, b, h, i, p, kbar, M, rho);
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
            }
    free(p);
    return 0;
}
