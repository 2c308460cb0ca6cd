/* The double-precision recurrent reference of `deltanet` / `gated_deltanet`
 * (docs/kernels/deltanet.md), step by step as the papers write it:
 *   k^_t = k_t / sqrt(|k_t|^2 + eps)
 *   S_t  = a_t S_{t-1} (I - b_t k^_t k^_t^T) + b_t v_t k^_t^T,   S in R^{Dv x Dk}
 *   o_t  = sc S_t q_t
 * (Schlag et al. 2021, Sec. 4.2; Yang, Kautz, Hatamizadeh 2024, the gated rule with
 * a_t = exp(g_t); ungated a_t = 1). S restarts from zero at every document
 * start. Each query head h runs its own copy on KV head h / G. */
#include "deltanet_internal.h"

#include <math.h>
#include <stdlib.h>

/* One step on S (Dv x Dk, row-major): S <- a S (I - b k k^T) + b v k^T, with
 * Sk a Dv scratch vector. */
static void ref_step(double *S, double *Sk, const double *k, const double *v, double alpha, double beta,
                     int64_t Dk, int64_t Dv)
{
    for (int64_t i = 0; i < Dv; i++) {
        Sk[i] = 0;
        for (int64_t d = 0; d < Dk; d++)
            Sk[i] += S[i * Dk + d] * k[d];
    }
    for (int64_t i = 0; i < Dv; i++)
        for (int64_t d = 0; d < Dk; d++)
            S[i * Dk + d] = alpha * (S[i * Dk + d] - beta * Sk[i] * k[d]) + beta * v[i] * k[d];
}

// q (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), beta, gate (B,H_kv,N,1) -> o (B,H,N,Dv)
int delta_ref_forward(const attn_args *a, const attn_io64 *io, int gated)
{
    int64_t Dk = a->D, Dv = attn_dv(a), G = a->H / a->H_kv;
    double sc = attn_scale(a);
    double *S = malloc(sizeof(double) * (size_t)(Dk * Dv + Dk + Dv));
    if (!S)
        return attn_fail(ATTN_ENOMEM, "deltanet reference: cannot allocate the state");
    double *kh = S + Dk * Dv, *Sk = kh + Dk;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            int64_t hk = h / G;
            for (int64_t t = 0; t < a->Nk; t++) {
                if (attn_key_starts_seq(a, t))
                    for (int64_t i = 0; i < Dk * Dv; i++)
                        S[i] = 0;
                const double *k = attn_at64(&io->k, b, hk, t);
                double n2 = 0;
                for (int64_t d = 0; d < Dk; d++)
                    n2 += k[d] * k[d];
                for (int64_t d = 0; d < Dk; d++)
                    kh[d] = k[d] / sqrt(n2 + DELTA_KEY_EPS);
                double alpha = gated ? exp(attn_at64(&io->gate, b, hk, t)[0]) : 1.0;
                ref_step(S, Sk, kh, attn_at64(&io->v, b, hk, t), alpha, attn_at64(&io->beta, b, hk, t)[0], Dk, Dv);
                const double *q = attn_at64(&io->q, b, h, t);
                double *o = attn_at64(&io->o, b, h, t);
                for (int64_t i = 0; i < Dv; i++) {
                    o[i] = 0;
                    for (int64_t d = 0; d < Dk; d++)
                        o[i] += sc * S[i * Dk + d] * q[d];
                }
            }
        }
    free(S);
    return 0;
}
