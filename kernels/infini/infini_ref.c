/* The double-precision reference of `infini` (docs/kernels/infini.md), segment by
 * segment and row by row as Munkhdalai et al. 2024 (arXiv 2404.07143, Sec.
 * 2.1.2, eqs. 3-6) write it, sigma = elu + 1:
 *   A_mem,i = sigma(q_i) M / (sigma(q_i) z)    (0 in a document's first segment
 *                                               or when sigma(q_i) z <= 1e-6)
 *   A_dot,i = sum_{j0 <= j <= i} softmax_j(sc q_i . k_j) v_j   (j0: segment start)
 *   o_i     = g A_mem,i + (1 - g) A_dot,i,  g = sigmoid(beta_h)
 * then, with the old M and z for every row of the segment,
 *   linear: u_j = v_j;  delta: u_j = v_j - sigma(k_j) M / (sigma(k_j) z)  (0 retrieval as above)
 *   M += sum_j sigma(k_j)^T u_j,  z += sum_j sigma(k_j).
 * Each query head runs its own copy of the memory of KV head h / G; M and z
 * restart from zero at every document start. */
#include "infini.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double elu1(double x) { return x > 0 ? x + 1.0 : exp(x); }

/* r = sigma(x) M / (sigma(x) z) for one row x [Dk] (r [Dv]); 0 when the
 * denominator is <= INFINI_DEN_EPS. f is a Dk scratch vector. */
static void read_memory(const double *x, const double *M, const double *z, int64_t Dk, int64_t Dv, double *f,
                        double *r)
{
    double den = 0;
    for (int64_t d = 0; d < Dk; d++) {
        f[d] = elu1(x[d]);
        den += f[d] * z[d];
    }
    for (int64_t c = 0; c < Dv; c++) {
        double num = 0;
        for (int64_t d = 0; d < Dk; d++)
            num += f[d] * M[d * Dv + c];
        r[c] = den > INFINI_DEN_EPS ? num / den : 0.0;
    }
}

// q (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), w (1,H,1,1) -> o (B,H,N,Dv)
int attn_infini_ref_forward(const attn_args *a, const attn_io64 *io)
{
    infini_plan pl;
    int rc = attn_infini_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->w.data)
        return attn_fail(ATTN_EINVAL, "infini reference: expected io.w [1,H,1,1] holding beta, found none");
    int64_t Dk = pl.Dk, Dv = pl.Dv, N = a->Nk, Lc = pl.Lc;
    double sc = attn_scale(a);
    size_t n = (size_t)(Dk * Dv + 2 * Dk + 2 * Dv + Lc + Lc * Dv);
    double *M = calloc(n, sizeof(double));
    if (!M)
        return attn_fail(ATTN_ENOMEM, "infini reference: cannot allocate the memory");
    double *z = M + Dk * Dv, *f = z + Dk, *am = f + Dk, *ad = am + Dv, *p = ad + Dv, *U = p + Lc;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            int64_t hk = h / pl.G;
            double g = 1.0 / (1.0 + exp(-attn_at64(&io->w, 0, h, 0)[0]));
            for (int64_t j0 = 0, j1; j0 < N; j0 = j1) {
                j1 = attn_key_block_end(a, j0, pl.L);
                int first = attn_key_starts_seq(a, j0);
                if (first)
                    memset(M, 0, sizeof(double) * (size_t)(Dk * Dv + Dk));
                for (int64_t i = j0; i < j1; i++) {
                    const double *q = attn_at64(&io->q, b, h, i);
                    if (first)
                        memset(am, 0, sizeof(double) * (size_t)Dv);
                    else
                        read_memory(q, M, z, Dk, Dv, f, am);
                    double m = -INFINITY, l = 0;
                    for (int64_t j = j0; j <= i; j++) {
                        const double *k = attn_at64(&io->k, b, hk, j);
                        double s = 0;
                        for (int64_t d = 0; d < Dk; d++)
                            s += q[d] * k[d];
                        p[j - j0] = sc * s;
                        m = fmax(m, p[j - j0]);
                    }
                    memset(ad, 0, sizeof(double) * (size_t)Dv);
                    for (int64_t j = j0; j <= i; j++) {
                        double e = exp(p[j - j0] - m);
                        const double *v = attn_at64(&io->v, b, hk, j);
                        l += e;
                        for (int64_t c = 0; c < Dv; c++)
                            ad[c] += e * v[c];
                    }
                    double *o = attn_at64(&io->o, b, h, i);
                    for (int64_t c = 0; c < Dv; c++)
                        o[c] = g * am[c] + (1.0 - g) * ad[c] / l;
                }
                /* the update: every u_j from the old M, z first, then the sums */
                for (int64_t j = j0; j < j1; j++) {
                    const double *v = attn_at64(&io->v, b, hk, j);
                    double *u = U + (j - j0) * Dv;
                    if (pl.delta)
                        read_memory(attn_at64(&io->k, b, hk, j), M, z, Dk, Dv, f, u);
                    for (int64_t c = 0; c < Dv; c++)
                        u[c] = v[c] - (pl.delta ? u[c] : 0.0);
                }
                for (int64_t j = j0; j < j1; j++) {
                    const double *k = attn_at64(&io->k, b, hk, j), *u = U + (j - j0) * Dv;
                    for (int64_t d = 0; d < Dk; d++) {
                        double fk = elu1(k[d]);
                        z[d] += fk;
                        for (int64_t c = 0; c < Dv; c++)
                            M[d * Dv + c] += fk * u[c];
                    }
                }
            }
        }
    free(M);
    return 0;
}
