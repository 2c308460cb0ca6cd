/* `aaren` backward (Feng et al. 2024; docs/kernels/aaren.md): the causal
 * softmax backward of one query. With p_tj = e^{s_j - lse_t} for j in S_t
 * (steps 0..t of t's document), o_t = sum_j p_tj v_j and D_t = <dO_t, o_t>:
 *
 *   dv_j = sum_{t >= j} p_tj dO_t            = e^{s_j} R_j
 *   ds_j = sum_{t >= j} p_tj (<dO_t, v_j> - D_t) = e^{s_j} (<v_j, R_j> - r_j)
 *   dq   = sc sum_j ds_j k_j   (summed over every output),  dk_j = sc ds_j q
 *
 * where R_j = sum_{t >= j} e^{-lse_t} dO_t and r_j = sum_{t >= j} e^{-lse_t} D_t
 * (t in j's document) form a suffix scan of the same (m, u, w) monoid as the
 * forward, with elements (-lse_t, D_t, dO_t): e^{s_j + m} <= 1 since
 * lse_t >= s_j, so nothing overflows. lse_t is recomputed by a scalar
 * forward scan. One task per (b, KV head), the group's heads in order, so dK
 * and dV sum over the group without atomics and the result does not depend
 * on the thread count. */
#include "aaren_internal.h"

#include "kernels/core/counters.h"
#include "kernels/flash/flash_internal.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* nl[t] = -lse_t of the prefix softmax at step t; start[t] = 1 where the scan restarts. */
static void aaren_neg_lse(const attn_args *a, const float *s, float *nl, float *start)
{
    float st[2];
    aaren_identity(st, 0);
    int64_t next = aaren_next_start(a, 0);
    for (int64_t t = 0; t < a->Nk; t++) {
        start[t] = t == next;
        if (t == next) {
            aaren_identity(st, 0);
            next = aaren_next_start(a, t + 1);
        }
        aaren_push(st, s[t], 1.0f, NULL, 0);
        nl[t] = -(st[0] + logf(st[1]));
    }
}

// q is (B,H,1,D), k is (B,H_kv,Nk,D), v is (B,H_kv,Nk,Dv), o and d_o are (B,H,Nk,Dv)
static void aaren_backward_group(const attn_args *a, const aaren_plan *pl, const attn_io *io, const attn_grads *g,
                                 int64_t b, int64_t hk, float *ws, flash_tally *t)
{
    int64_t N = a->Nk, D = a->D, Dv = pl->Dv;
    float sc = (float)attn_scale(a);
    float *s = flash_take(&ws, N), *nl = flash_take(&ws, N), *ds = flash_take(&ws, N);
    float *st = flash_take(&ws, Dv + 2);
    const float *k = attn_at(&io->k, b, hk, 0);
    float *dk = attn_at(&g->dk, b, hk, 0);
    for (int64_t i = 0; i < N; i++)
        memset(dk + i * g->dk.sn, 0, sizeof(float) * (size_t)D);
    for (int64_t gi = 0; gi < pl->G; gi++) {
        int64_t h = hk * pl->G + gi;
        const float *q = attn_at(&io->q, b, h, 0);
        // s (N) = sc K (N, D) @ q (D)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)D, sc, k, (int)io->k.sn, q, 1, 0.0f, s, 1);
        aaren_neg_lse(a, s, nl, ds); /* ds holds the restart flags until overwritten */
        aaren_identity(st, Dv);
        int restart = 1; /* step N-1 ends a document */
        for (int64_t j = N - 1; j >= 0; j--) {
            if (restart)
                aaren_identity(st, Dv);
            restart = ds[j] != 0.0f; /* j starts a document: j-1 ends the previous one */
            const float *d_o = attn_at(&g->d_o, b, h, j), *o = attn_at(&io->o, b, h, j);
            const float *v = attn_at(&io->v, b, hk, j);
            float Dj = 0, vr = 0;
            for (int64_t d = 0; d < Dv; d++)
                Dj += d_o[d] * o[d];
            aaren_push(st, nl[j], Dj, d_o, Dv);
            float f = attn_expf(s[j] + st[0]), *dv = attn_at(&g->dv, b, hk, j);
            for (int64_t d = 0; d < Dv; d++) {
                vr += v[d] * st[2 + d];
                dv[d] = (gi ? dv[d] : 0.0f) + f * st[2 + d];
            }
            ds[j] = f * (vr - st[1]);
        }
        // dq (D) = sc K^T (D, N) @ ds (N);  dK (N, D) += sc ds q^T
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)D, sc, k, (int)io->k.sn, ds, 1, 0.0f,
                    attn_at(&g->dq, b, h, 0), 1);
        cblas_sger(CblasRowMajor, (int)N, (int)D, sc, ds, 1, q, 1, dk, (int)g->dk.sn);
        t->flops += 6.0 * (double)(N * D) + 8.0 * (double)(N * Dv);
        t->exps += 3.0 * (double)N;
        t->bytes += 4.0 * (double)(2 * N * D + 3 * N * Dv + D);
    }
}

int attn_aaren_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    aaren_plan pl;
    int rc = attn_aaren_plan(&pl, a);
    if (rc)
        return rc;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    float *slots = (float *)ctx->workspace + pl.scores + pl.recs + pl.state;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = slots + (size_t)omp_get_thread_num() * pl.slot;
#pragma omp for schedule(static)
        for (int64_t task = 0; task < a->B * a->H_kv; task++)
            aaren_backward_group(a, &pl, io, g, task / a->H_kv, task % a->H_kv, ws, &t);
        flash_tally_flush(&t);
    }
    return 0;
}
