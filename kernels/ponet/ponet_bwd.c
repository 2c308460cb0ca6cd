/* Backward of `ponet` (math in ponet.h). Per (b, h), with dY = dO:
 *   dV_i  = (gp + s_i) (.) dY_i
 *   dgp   = sum_i V_i (.) dY_i
 *   max pools route their gradient to the argmax of each window, the FIRST
 *   index on ties (the forward's scan keeps the first maximum):
 *     dSg[argmax seg(i)] += V_i (.) dY_i,   dL[argmax window(i)] += dY_i
 *   global aggregation = one-query softmax attention with values K:
 *     dK_j = a_j dgp + sc dz_j g,  dz_j = a_j (<dgp, K_j> - sum_k a_k <dgp, K_k>)
 *     dg = sc sum_j dz_j K_j,      dQ_i = dg / N  (the mean's gradient)
 * Under GQA dK, dV and dSg, dL sum over the group's query heads. One task
 * per (b, KV head) writes only that head's rows, its query heads in order:
 * deterministic. Padded batches: sequence b's first n rows only, the
 * padding rows of every gradient 0. */
#include "ponet.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* Index of the first maximum of column d over rows [lo, hi) of x. */
static int64_t ponet_col_argmax(const float *x, int64_t ld, int64_t d, int64_t lo, int64_t hi)
{
    int64_t best = lo;
    for (int64_t j = lo + 1; j < hi; j++)
        if (x[j * ld + d] > x[best * ld + d])
            best = j;
    return best;
}

/* Zeroes rows [i0, i1) of `cols` floats of t's (b, h). */
static void ponet_zero_rows(const attn_tensor *t, int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t cols)
{
    for (int64_t i = i0; i < i1; i++)
        memset(attn_at(t, b, h, i), 0, sizeof(float) * (size_t)cols);
}

/* The pools' backward, added into dR (the KV head's [N x 2D] rows). */
static void ponet_pools_backward(const ponet_plan *pl, int64_t N, int64_t D, const float *R, int64_t ldr,
                                 const float *V, int64_t ldv, const float *dY, int64_t ldy, float *dR, int64_t lddr)
{
    for (int64_t i = 0; i < N; i++) {
        int64_t slo, shi, llo, lhi;
        attn_ponet_segment(pl, N, i, &slo, &shi);
        attn_ponet_window(pl, N, i, &llo, &lhi);
        for (int64_t d = 0; d < D; d++) {
            dR[ponet_col_argmax(R, ldr, d, slo, shi) * lddr + d] += V[i * ldv + d] * dY[i * ldy + d];
            dR[ponet_col_argmax(R, ldr, D + d, llo, lhi) * lddr + D + d] += dY[i * ldy + d];
        }
    }
}

/* dV and dgp of query head h (dV added into the KV head's rows). */
static void ponet_fuse_backward(const ponet_plan *pl, int64_t N, int64_t D, const float *gp, const float *R,
                                int64_t ldr, const float *V, int64_t ldv, const float *dY, int64_t ldy, float *dV,
                                int64_t lddv, float *dgp)
{
    memset(dgp, 0, sizeof(float) * (size_t)D);
    for (int64_t i = 0; i < N; i++) {
        int64_t slo, shi;
        attn_ponet_segment(pl, N, i, &slo, &shi);
        for (int64_t d = 0; d < D; d++) {
            float s = R[ponet_col_argmax(R, ldr, d, slo, shi) * ldr + d];
            dV[i * lddv + d] += (gp[d] + s) * dY[i * ldy + d];
            dgp[d] += V[i * ldv + d] * dY[i * ldy + d];
        }
    }
}

/* Query head h of KV head hk on its sequence of N rows: dQ written (0 on the
 * padding rows), dK, dV, dR added. */
static void ponet_head_backward(const ponet_plan *pl, const attn_io *io, const attn_grads *gr, int64_t b, int64_t h,
                                int64_t hk, int64_t N, float *scr)
{
    const attn_tensor *q = &io->q, *k = &io->k, *r = &io->router;
    int64_t D = q->D;
    ponet_zero_rows(&gr->dq, b, h, N, q->N, D);
    if (N == 0)
        return;
    float *g = scr, *gp = g + PONET_ROUND16(D), *dg = gp + PONET_ROUND16(D), *dgp = dg + PONET_ROUND16(D);
    float *a = dgp + PONET_ROUND16(D), *dz = a + PONET_ROUND16(N);
    const float *K = attn_at(k, b, hk, 0), *R = attn_at(r, b, hk, 0), *V = attn_at(&io->v, b, hk, 0);
    const float *dY = attn_at(&gr->d_o, b, h, 0);
    int64_t ldk = k->sn, ldr = r->sn, ldv = io->v.sn, ldy = gr->d_o.sn;
    attn_ponet_global(pl, N, D, attn_at(q, b, h, 0), q->sn, K, ldk, g, a, gp);
    ponet_fuse_backward(pl, N, D, gp, R, ldr, V, ldv, dY, ldy, attn_at(&gr->dv, b, hk, 0), gr->dv.sn, dgp);
    ponet_pools_backward(pl, N, D, R, ldr, V, ldv, dY, ldy, attn_at(&gr->drouter, b, hk, 0), gr->drouter.sn);
    /* softmax backward of the one query: dz = a (K dgp - <a, K dgp>) */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)D, 1.0f, K, (int)ldk, dgp, 1, 0.0f, dz, 1);
    double dot = 0;
    for (int64_t j = 0; j < N; j++)
        dot += (double)a[j] * dz[j];
    for (int64_t j = 0; j < N; j++)
        dz[j] = a[j] * (dz[j] - (float)dot);
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)D, (float)pl->sc, K, (int)ldk, dz, 1, 0.0f, dg, 1);
    for (int64_t j = 0; j < N; j++) {
        float *dk = attn_at(&gr->dk, b, hk, j), sz = (float)pl->sc * dz[j];
        for (int64_t d = 0; d < D; d++)
            dk[d] += a[j] * dgp[d] + sz * g[d];
    }
    for (int64_t i = 0; i < N; i++) {
        float *dq = attn_at(&gr->dq, b, h, i);
        for (int64_t d = 0; d < D; d++)
            dq[d] = dg[d] / (float)N;
    }
}

/* One task per (b, KV head): its group's query heads in order. */
static void ponet_group_backward(const ponet_plan *pl, const attn_io *io, const attn_grads *g, const attn_args *a,
                                 int64_t b, int64_t hk, float *scr)
{
    int64_t G = a->H / a->H_kv;
    ponet_zero_rows(&g->dk, b, hk, 0, a->Nk, a->D);
    ponet_zero_rows(&g->dv, b, hk, 0, a->Nk, a->D);
    ponet_zero_rows(&g->drouter, b, hk, 0, a->Nk, 2 * a->D);
    for (int64_t h = hk * G; h < (hk + 1) * G; h++)
        ponet_head_backward(pl, io, g, b, h, hk, attn_q_len(a, b), scr);
}

int attn_ponet_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    ponet_plan pl;
    int rc = attn_ponet_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->router.data || !g->drouter.data)
        return attn_fail(ATTN_EINVAL, "ponet backward: expected io.router and g.drouter (2D columns), found NULL");
    int64_t tasks = a->B * a->H_kv;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++)
        ponet_group_backward(&pl, io, g, a, t / a->H_kv, t % a->H_kv, attn_ponet_scratch(ctx, omp_get_thread_num()));
    double ND = attn_batch_rows(a) * (double)(a->H * a->D);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(12 * ND)); /* forward recomputed (4) + backward (8) */
    attn_counter_add(ATTN_CNT_EXPS, (long long)(attn_batch_rows(a) * (double)a->H));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * 7 * ND));
    return 0;
}
