/* `nystrom` backward (Xiong et al. 2021; the forward's formulas are in
 * nystrom.h). Per (batch, query head), the landmark phase is recomputed with
 * the iteration's history (every Z_k and A Z_k), then reverse mode:
 *
 *   O = F X:          dF = dO X^T,        dX = F^T dO
 *   X = Z Y:          dZ = dX Y^T,        dY = Z^T dX
 *   Y = Bt V:         dBt = dY V^T,       dV += Bt^T dY
 *   Z = pinv_iter(A): dA (nystrom_pinv.c, through every step and Z_0)
 *   the softmaxes:    dS = P (.) (dP - rowsum(dP (.) P)) for F, A and Bt
 *                     (for Bt the row sum is <dY_r, Y_r>, as in FlashAttention)
 *   scores:           dQ = sc dS_F K~, dK~ = sc dS_F^T Q + sc dS_A^T Q~,
 *                     dQ~ = sc dS_A K~ + sc dS_B K, dK += sc dS_B^T Q~
 *   segment means:    row r of segment s gets dQ~_s / |s| (dK~ likewise)
 *   conv skip:        dV_j += sum_tau w_tau dO_{j - tau + k/2},
 *                     dw_tau = sum_t <dO_t, V_{t + tau - k/2}>
 *
 * F is formed per block of `tile` query rows and Bt per block of `tile` keys
 * (from the landmark rows' lse), so no n x m matrix is stored. One task per
 * (batch, KV head) owns dK and dV of that head and walks its query heads in
 * order; dw is summed over the batch from per-(b, h) partials in batch
 * order. No atomics, and no order depends on the thread count. */
#include "nystrom_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/softmax_rows.h"
#include "kernels/core/vexp.h"

#include <omp.h>
#include <string.h>

/* Buffers of one head's backward, carved from the thread's scratch. */
typedef struct {
    ny_head w;
    float *dQt, *dKt, *dA, *dZ, *dX, *dY, *Dy, *dS;
} ny_bwd_bufs;

static void ny_bwd_carve(ny_bwd_bufs *t, const ny_plan *pl, const attn_args *a, float *ws)
{
    int64_t m = pl->m, D = a->D, Dv = attn_dv(a);
    ny_head_carve(&t->w, pl, a, 1, ws);
    ws += ny_head_floats(pl, a, 1);
    t->w.Kt = ws, ws += NY_ROUND16(m * D);
    t->w.X = ws, ws += NY_ROUND16(m * Dv);
    t->dQt = ws, ws += NY_ROUND16(m * D);
    t->dKt = ws, ws += NY_ROUND16(m * D);
    t->dA = ws, ws += NY_ROUND16(m * m);
    t->dZ = ws, ws += NY_ROUND16(m * m);
    t->dX = ws, ws += NY_ROUND16(m * Dv);
    t->dY = ws, ws += NY_ROUND16(m * Dv);
    t->Dy = ws, ws += NY_ROUND16(m);
    t->dS = ws;
}

/* Rows of segment s of X (stride ldx) += G_s / |s| (G is mm x D). */
static void ny_segment_means_bwd(const float *G, int64_t n, int64_t mm, int64_t D, float *X, int64_t ldx)
{
    for (int64_t s = 0; s < mm; s++) {
        int64_t r0 = attn_nystrom_seg(s, n, mm), r1 = attn_nystrom_seg(s + 1, n, mm);
        float inv = 1.0f / (float)(r1 - r0);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t d = 0; d < D; d++)
                X[r * ldx + d] += G[s * D + d] * inv;
    }
}

/* The conv skip: dV += its transpose applied to dO, dw = its tap sums. */
static void ny_conv_bwd(const float *w, int64_t k, const float *V, int64_t ldv, const float *dO, int64_t ldo,
                        int64_t n, int64_t Dv, float *dV, int64_t lddv, float *dw)
{
    for (int64_t tau = 0; tau < k; tau++) {
        double s = 0;
        for (int64_t t = 0; t < n; t++) {
            int64_t src = t + tau - k / 2;
            if (src < 0 || src >= n)
                continue;
            const float *g = dO + t * ldo, *v = V + src * ldv;
            float *dv = dV + src * lddv;
            for (int64_t d = 0; d < Dv; d++) {
                s += (double)g[d] * v[d];
                dv[d] += w[tau] * g[d];
            }
        }
        dw[tau] = (float)s;
    }
}

/* O = F X over the query blocks: dX = F^T dO, dQ = sc dS_F K~ (rows
 * written), dK~ = sc dS_F^T Q. Returns the FLOPs executed. */
static double ny_query_blocks_bwd(const attn_args *a, const ny_plan *pl, const float *Q, int64_t ldq, const float *dO,
                                  int64_t ldo, float *dQ, int64_t lddq, ny_bwd_bufs *t, double *exps)
{
    const ny_head *w = &t->w;
    int64_t n = w->n, mm = w->mm, D = a->D, Dv = attn_dv(a);
    float sc = (float)attn_scale(a), *F = w->S, *dF = t->dS;
    for (int64_t i0 = 0; i0 < n; i0 += pl->T) {
        int64_t nb = n - i0 < pl->T ? n - i0 : pl->T;
        float beta = i0 == 0 ? 0.0f : 1.0f;
        ny_gemm(0, 1, nb, mm, D, sc, Q + i0 * ldq, ldq, w->Kt, D, 0.0f, F, mm);
        *exps += ny_softmax_rows(F, nb, mm, mm);
        ny_gemm(0, 1, nb, mm, Dv, 1.0f, dO + i0 * ldo, ldo, w->X, Dv, 0.0f, dF, mm);
        ny_gemm(1, 0, mm, Dv, nb, 1.0f, F, mm, dO + i0 * ldo, ldo, beta, t->dX, Dv);
        attn_softmax_rows_bwd(F, mm, dF, mm, nb, mm);
        ny_gemm(0, 0, nb, D, mm, sc, dF, mm, w->Kt, D, 0.0f, dQ + i0 * lddq, lddq);
        ny_gemm(1, 0, mm, D, nb, sc, dF, mm, Q + i0 * ldq, ldq, beta, t->dKt, D);
    }
    return 2.0 * (double)(n * mm) * (double)(3 * D + 2 * Dv);
}

/* Y = Bt V over the key blocks, Bt recomputed from lse: dQ~ += sc dS_B K,
 * dK += sc dS_B^T Q~, dV += Bt^T dY. Returns the FLOPs executed. */
static double ny_key_blocks_bwd(const attn_args *a, const ny_plan *pl, const float *K, int64_t ldk, const float *V,
                                int64_t ldv, float *dK, int64_t lddk, float *dV, int64_t lddv, ny_bwd_bufs *t,
                                double *exps)
{
    const ny_head *w = &t->w;
    int64_t n = w->n, mm = w->mm, D = a->D, Dv = attn_dv(a);
    float sc = (float)attn_scale(a), *P = w->S, *dP = t->dS;
    for (int64_t r = 0; r < mm; r++) { /* the softmax row term <dBt_r, Bt_r> = <dY_r, Y_r> */
        double dot = 0;
        for (int64_t d = 0; d < Dv; d++)
            dot += (double)t->dY[r * Dv + d] * w->Y[r * Dv + d];
        t->Dy[r] = (float)dot;
    }
    for (int64_t j0 = 0; j0 < n; j0 += pl->T) {
        int64_t nk = n - j0 < pl->T ? n - j0 : pl->T;
        ny_gemm(0, 1, mm, nk, D, sc, w->Qt, D, K + j0 * ldk, ldk, 0.0f, P, nk);
        for (int64_t r = 0; r < mm; r++) {
            float *p = P + r * nk;
            for (int64_t j = 0; j < nk; j++)
                p[j] -= w->lse[r];
            attn_vexp(p, p, nk);
        }
        ny_gemm(0, 1, mm, nk, Dv, 1.0f, t->dY, Dv, V + j0 * ldv, ldv, 0.0f, dP, nk);
        ny_gemm(1, 0, nk, Dv, mm, 1.0f, P, nk, t->dY, Dv, 1.0f, dV + j0 * lddv, lddv);
        for (int64_t r = 0; r < mm; r++)
            for (int64_t j = 0; j < nk; j++)
                dP[r * nk + j] = P[r * nk + j] * (dP[r * nk + j] - t->Dy[r]);
        ny_gemm(0, 0, mm, D, nk, sc, dP, nk, K + j0 * ldk, ldk, 1.0f, t->dQt, D);
        ny_gemm(1, 0, nk, D, mm, sc, dP, nk, w->Qt, D, 1.0f, dK + j0 * lddk, lddk);
        *exps += (double)(mm * nk);
    }
    return 2.0 * (double)(n * mm) * (double)(3 * D + 2 * Dv);
}

/* Backward of head (b, h): dQ rows written, dK and dV (of its KV head)
 * accumulated, dw of (b, h) written into dw. Returns the FLOPs executed. */
static double ny_head_backward(const attn_args *a, const ny_plan *pl, const attn_io *io, const attn_grads *g,
                               int64_t b, int64_t h, ny_bwd_bufs *t, float *dw, double *exps)
{
    int64_t n = attn_q_len(a, b), D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    for (int64_t i = n; i < a->Nq; i++) /* padding rows */
        memset(attn_at(&g->dq, b, h, i), 0, sizeof(float) * (size_t)D);
    if (n == 0) {
        memset(dw, 0, sizeof(float) * (size_t)pl->conv);
        return 0;
    }
    ny_head *w = &t->w;
    double flops = ny_head_run(a, pl, io, b, h, 1, w, exps);
    int64_t mm = w->mm, ldk = io->k.sn, ldv = io->v.sn, ldo = g->d_o.sn;
    float sc = (float)attn_scale(a);
    const float *K = attn_at(&io->k, b, hk, 0), *V = attn_at(&io->v, b, hk, 0), *dO = attn_at(&g->d_o, b, h, 0);
    float *dQ = attn_at(&g->dq, b, h, 0), *dK = attn_at(&g->dk, b, hk, 0), *dV = attn_at(&g->dv, b, hk, 0);

    flops += ny_query_blocks_bwd(a, pl, attn_at(&io->q, b, h, 0), io->q.sn, dO, ldo, dQ, g->dq.sn, t, exps);
    ny_gemm(0, 1, mm, mm, Dv, 1.0f, t->dX, Dv, w->Y, Dv, 0.0f, t->dZ, mm); /* X = Z Y */
    ny_gemm(1, 0, mm, Dv, mm, 1.0f, w->Z, mm, t->dX, Dv, 0.0f, t->dY, Dv);
    memset(t->dA, 0, sizeof(float) * (size_t)(mm * mm));
    attn_nystrom_pinv_backward(w->A, mm, pl->iters, w->zs, w->ps, t->dZ, t->dA, w->tmp);
    attn_softmax_rows_bwd(w->A, mm, t->dA, mm, mm, mm); /* A = softmax(sc Q~ K~^T) */
    ny_gemm(1, 0, mm, D, mm, sc, t->dA, mm, w->Qt, D, 1.0f, t->dKt, D);
    ny_gemm(0, 0, mm, D, mm, sc, t->dA, mm, w->Kt, D, 0.0f, t->dQt, D);
    flops += ny_key_blocks_bwd(a, pl, K, ldk, V, ldv, dK, g->dk.sn, dV, g->dv.sn, t, exps);
    ny_segment_means_bwd(t->dQt, n, mm, D, dQ, g->dq.sn);
    ny_segment_means_bwd(t->dKt, n, mm, D, dK, g->dk.sn);
    if (pl->conv)
        ny_conv_bwd(attn_at(&io->w, 0, h, 0), pl->conv, V, ldv, dO, ldo, n, Dv, dV, g->dv.sn, dw);
    double m = (double)mm;
    return flops + 2 * m * m * (double)(2 * D + 2 * Dv) + 20.0 * pl->iters * m * m * m +
           4.0 * (double)(n * pl->conv * Dv);
}

int attn_nystrom_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    ny_plan pl;
    int rc = attn_nystrom_plan(&pl, a);
    if (rc)
        return rc;
    if (pl.conv && (!io->w.data || !g->dw.data))
        return attn_fail(ATTN_EINVAL, "nystrom backward: expected io.w and g.dw with conv=%lld taps per head",
                         (long long)pl.conv);
    int64_t G = a->H / a->H_kv, tasks = a->B * a->H_kv, Dv = attn_dv(a);
    size_t stride = (size_t)pl.conv;
    float *partial = (float *)ctx->workspace + ((size_t)ctx->workspace_bytes / sizeof(float)) -
                     attn_dw_partials_floats(a, stride);
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(a->threads)
    {
        double flops = 0, exps = 0, bytes = 0;
        ny_bwd_bufs t;
        ny_bwd_carve(&t, &pl, a, attn_nystrom_scratch(ctx, &pl, omp_get_thread_num()));
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t b = task / a->H_kv, hk = task % a->H_kv;
            for (int64_t j = 0; j < a->Nk; j++) {
                memset(attn_at(&g->dk, b, hk, j), 0, sizeof(float) * (size_t)a->D);
                memset(attn_at(&g->dv, b, hk, j), 0, sizeof(float) * (size_t)Dv);
            }
            for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
                double e = 0;
                flops += ny_head_backward(a, &pl, io, g, b, h, &t, attn_dw_partial(a, partial, stride, b, h), &e);
                exps += e;
                bytes += 4.0 * (double)(attn_q_len(a, b) * (3 * a->D + 2 * Dv));
            }
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)bytes);
    }
    if (pl.conv)
        attn_sum_dw_partials(a, partial, stride, pl.conv, pl.conv, &g->dw);
    return 0;
}
