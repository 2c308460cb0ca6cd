/* `cca` backward (Chen et al. 2024; the math is in cca_internal.h): through
 * the one softmax over [core tokens | local keys], then through the pooling.
 *
 * Per query row with probabilities p over its tokens (core c: key k̄_c, value
 * v̄_c; local j: k_j, v_j), dP = <dO_i, value>, D_i = sum p dP, dS = p (dP - D_i):
 *   dq_i += sc (sum_c dS_ic k̄_c + sum_j dS_ij k_j)
 *   dk̄_c += sc dS_ic q_i,  dv̄_c += p_ic dO_i,  dk_j += sc dS_ij q_i,  dv_j += p_ij dO_i.
 * Per pooled group c (weights w over its keys, pooling query r_c):
 *   dk_j += w_j dk̄_c,  dv_j += w_j dv̄_c,
 *   dw_j = <dk̄_c, k_j> + <dv̄_c, v_j>,  da_j = w_j (dw_j - sum_j' w_j' dw_j'),
 *   dq_{r_c} += sc sum_j da_j k_j,  dk_j += sc da_j q_{r_c}.
 *
 * The pooled tokens are recomputed (the same phase as the forward); then one
 * task per (batch, KV head) owns dK and dV of that head and walks its G query
 * heads and their tiles in ascending order, each head's dK̄ and dV̄ in the
 * task's scratch: no atomics, the summation order does not depend on the
 * thread count. */
#include "cca_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

typedef struct {
    float *P, *dS, *lse, *dkbar, *dvbar, *dw;
} cca_bwd_ws;

static cca_bwd_ws cca_bwd_scratch(const attn_args *a, const cca_plan *pl, float *ws)
{
    cca_bwd_ws w = {.P = ws};
    w.dS = w.P + pl->T * pl->ld;
    w.lse = w.dS + pl->T * pl->ld;
    w.dkbar = w.lse + (pl->T + 15) / 16 * 16;
    w.dvbar = w.dkbar + pl->n_pool * a->D;
    w.dw = w.dkbar + (pl->n_pool * (a->D + attn_dv(a)) + 15) / 16 * 16;
    return w;
}

// query rows [i0, i0+nb) of head h: dQ rows written; dK̄, dV̄ of h and dK, dV of its KV head accumulated
static void cca_bwd_tile(const attn_ctx *ctx, const cca_plan *pl, const attn_io *io, const attn_grads *g,
                         const cca_pooled *pt, int64_t b, int64_t h, int64_t i0, int64_t nb, const cca_bwd_ws *w,
                         cca_tally *tl)
{
    const attn_args *a = &ctx->args;
    int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv), ld = pl->ld, nc, l0, nl;
    float sc = (float)attn_scale(a);
    cca_tile_probs(a, pl, io, pt, b, h, i0, nb, w->P, w->lse, &nc, &l0, &nl, tl);
    const float *Q = attn_at(&io->q, b, h, i0), *dO = attn_at(&g->d_o, b, h, i0);
    const float *Kl = attn_at(&io->k, b, hk, l0), *Vl = attn_at(&io->v, b, hk, l0);
    float *dQ = attn_at(&g->dq, b, h, i0), *dKl = attn_at(&g->dk, b, hk, l0), *dVl = attn_at(&g->dv, b, hk, l0);
    // dP = dO [V̄ ; V_local]^T, then dS
    if (nc > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nc, (int)Dv, 1.0f, dO, (int)g->d_o.sn,
                    pt->vbar, (int)Dv, 0.0f, w->dS, (int)ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nl, (int)Dv, 1.0f, dO, (int)g->d_o.sn, Vl,
                (int)io->v.sn, 0.0f, w->dS + nc, (int)ld);
    attn_softmax_rows_bwd(w->P, ld, w->dS, ld, nb, nc + nl);
    if (nc > 0) { /* core tokens: dQ = sc dS K̄, dK̄ += sc dS^T Q, dV̄ += P^T dO */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)nc, sc, w->dS, (int)ld,
                    pt->kbar, (int)D, 0.0f, dQ, (int)g->dq.sn);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)D, (int)nb, sc, w->dS, (int)ld, Q,
                    (int)io->q.sn, 1.0f, w->dkbar, (int)D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)Dv, (int)nb, 1.0f, w->P, (int)ld, dO,
                    (int)g->d_o.sn, 1.0f, w->dvbar, (int)Dv);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)nl, sc, w->dS + nc, (int)ld, Kl,
                (int)io->k.sn, nc > 0 ? 1.0f : 0.0f, dQ, (int)g->dq.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nl, (int)D, (int)nb, sc, w->dS + nc, (int)ld, Q,
                (int)io->q.sn, 1.0f, dKl, (int)g->dk.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nl, (int)Dv, (int)nb, 1.0f, w->P + nc, (int)ld, dO,
                (int)g->d_o.sn, 1.0f, dVl, (int)g->dv.sn);
    tl->flops += 2.0 * (double)(nb * (nc + nl)) * (double)(2 * D + 2 * Dv);
    tl->bytes += 4.0 * (double)(nb * (D + Dv) + (nc + nl) * (D + Dv));
}

/* Back through the pooling of every group of head h (see the top comment). */
static void cca_bwd_pooling(const attn_args *a, const cca_plan *pl, const attn_io *io, const attn_grads *g,
                            const cca_pooled *pt, int64_t b, int64_t h, const cca_bwd_ws *w, cca_tally *tl)
{
    int64_t G = pl->g, D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    float sc = (float)attn_scale(a);
    for (int64_t c = 0; c < pl->n_pool; c++) {
        int64_t r = c * G + G - 1;
        const float *K = attn_at(&io->k, b, hk, c * G), *V = attn_at(&io->v, b, hk, c * G);
        const float *wc = pt->w + c * G, *dkb = w->dkbar + c * D, *dvb = w->dvbar + c * Dv;
        float *dK = attn_at(&g->dk, b, hk, c * G), *dV = attn_at(&g->dv, b, hk, c * G), *da = w->dw;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)G, (int)D, 1.0f, K, (int)io->k.sn, dkb, 1, 0.0f, da, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)G, (int)Dv, 1.0f, V, (int)io->v.sn, dvb, 1, 1.0f, da, 1);
        double s = 0;
        for (int64_t j = 0; j < G; j++)
            s += (double)wc[j] * da[j];
        for (int64_t j = 0; j < G; j++)
            da[j] = wc[j] * (float)(da[j] - s);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)G, (int)D, sc, K, (int)io->k.sn, da, 1, 1.0f,
                    attn_at(&g->dq, b, h, r), 1);
        cblas_sger(CblasRowMajor, (int)G, (int)D, sc, da, 1, attn_at(&io->q, b, h, r), 1, dK, (int)g->dk.sn);
        cblas_sger(CblasRowMajor, (int)G, (int)D, 1.0f, wc, 1, dkb, 1, dK, (int)g->dk.sn);
        cblas_sger(CblasRowMajor, (int)G, (int)Dv, 1.0f, wc, 1, dvb, 1, dV, (int)g->dv.sn);
    }
    double n = (double)pl->n_pool;
    tl->flops += n * 2.0 * (double)G * (double)(4 * D + 2 * Dv);
    tl->bytes += 4.0 * n * (double)(D + G * (D + Dv));
}

// one (b, KV head): dK, dV zeroed, then every query head of the group
static void cca_bwd_kv_head(const attn_ctx *ctx, const cca_plan *pl, const attn_io *io, const attn_grads *g,
                            int64_t b, int64_t hk, const cca_bwd_ws *w, cca_tally *tl)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv, Dv = attn_dv(a);
    for (int64_t j = 0; j < a->Nk; j++) {
        memset(attn_at(&g->dk, b, hk, j), 0, sizeof(float) * (size_t)a->D);
        memset(attn_at(&g->dv, b, hk, j), 0, sizeof(float) * (size_t)Dv);
    }
    for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
        cca_pooled pt = cca_pooled_of(ctx, pl, b, h);
        memset(w->dkbar, 0, sizeof(float) * (size_t)(pl->n_pool * (a->D + Dv)));
        for (int64_t i0 = 0; i0 < a->Nq; i0 += pl->T)
            cca_bwd_tile(ctx, pl, io, g, &pt, b, h, i0, a->Nq - i0 < pl->T ? a->Nq - i0 : pl->T, w, tl);
        cca_bwd_pooling(a, pl, io, g, &pt, b, h, w, tl);
    }
}

int cca_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    cca_plan pl;
    int rc = cca_plan_make(&pl, a);
    if (rc)
        return rc;
    int64_t tasks = a->B * a->H_kv;
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(a->threads)
    {
        cca_tally tl = {0};
        cca_bwd_ws w = cca_bwd_scratch(a, &pl, cca_thread_scratch(ctx, &pl, omp_get_thread_num()));
        cca_pool_all(ctx, &pl, io, &tl);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++)
            cca_bwd_kv_head(ctx, &pl, io, g, task / a->H_kv, task % a->H_kv, &w, &tl);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
    }
    return 0;
}
