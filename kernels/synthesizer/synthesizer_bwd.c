/* Backward of `synthesizer` (docs/kernels/synthesizer.md). Per tile of query
 * rows, the logits are recomputed and P = exp(s - lse) from the saved lse;
 * with dP = dO V^T and D_i = <dO_i, O_i>, dS = P (.) (dP - D) is the gradient
 * of every logit, and flows to
 *   dV += P^T dO,  dot=1: dQ = sc dS K, dK += sc dS^T Q,
 *   random: dR[i, j] += dS_ij;  factorized: dR1 += dS R2^T, dR2 += R1^T dS;
 *   dense: dW2 += dS^T Hd, db2 += colsum dS, dZ = (dS W2) (.) [Hd > 0],
 *          dW1 += dZ^T X, db1 += colsum dZ, dQ += dZ W1 (x is the Q input).
 * One task per KV head: it owns dK and dV of its (b, KV head) and dw of its
 * query heads, sums over the batch in a fixed order, and so needs neither
 * locks nor partial buffers; results do not depend on the thread count. */
#include "synthesizer_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    const syn_plan *pl;
    const attn_args *a;
    const attn_io *io;
    const attn_grads *g;
} syn_bwd;

static void zero_rows(float *x, int64_t rows, int64_t ld, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        memset(x + r * ld, 0, sizeof(float) * (size_t)cols);
}

/* dS = P (.) (dP - D) in place of dP, P from the saved lse (in place of S). */
static void syn_dlogits(const syn_bwd *t, int64_t b, int64_t h, int64_t i0, int64_t nr, int64_t nk, float *S,
                        float *dP)
{
    const attn_args *a = t->a;
    int64_t Nk = a->Nk, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    const float *lse = t->io->lse + (b * a->H + h) * a->Nq + i0;
    const float *dO = attn_at(&t->g->d_o, b, h, i0), *O = attn_at(&t->io->o, b, h, i0);
    for (int64_t r = 0; r < nr; r++)
        attn_probs_from_lse(S + r * Nk, nk, lse[r]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nk, (int)Dv, 1.0f, dO, (int)t->g->d_o.sn,
                attn_at(&t->io->v, b, hk, 0), (int)t->io->v.sn, 0.0f, dP, (int)Nk);
    for (int64_t r = 0; r < nr; r++) {
        float Di = attn_dot(dO + r * t->g->d_o.sn, O + r * t->io->o.sn, Dv);
        float *p = S + r * Nk, *ds = dP + r * Nk;
        for (int64_t j = 0; j < nk; j++)
            ds[j] = p[j] * (ds[j] - Di);
    }
}

/* The synthetic weights' gradients of one tile into dw (the head's row). */
static void syn_dweights(const syn_bwd *t, const float *w, float *dw, const float *X, int64_t ldx, int64_t i0,
                         int64_t nr, int64_t nk, const float *dS, const float *Hd, float *dZ, float *dq, int64_t ldq)
{
    const syn_plan *pl = t->pl;
    int64_t Nk = t->a->Nk, D = t->a->D, L = pl->L, k = pl->k;
    if (pl->mode == SYN_RANDOM) {
        for (int64_t r = 0; r < nr; r++)
            for (int64_t j = 0; j < nk; j++)
                dw[(i0 + r) * L + j] += dS[r * Nk + j];
        return;
    }
    if (pl->mode == SYN_FACTORIZED) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)k, (int)nk, 1.0f, dS, (int)Nk,
                    w + pl->off_b, (int)L, 1.0f, dw + i0 * k, (int)k);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)nk, (int)nr, 1.0f, w + i0 * k, (int)k, dS,
                    (int)Nk, 1.0f, dw + pl->off_b, (int)L);
        return;
    }
    float *db1 = dw + pl->off_b, *db2 = dw + pl->off_b2;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)D, (int)nr, 1.0f, dS, (int)Nk, Hd, (int)D,
                1.0f, dw + pl->off_w2, (int)D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)D, (int)nk, 1.0f, dS, (int)Nk,
                w + pl->off_w2, (int)D, 0.0f, dZ, (int)D);
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < nk; j++)
            db2[j] += dS[r * Nk + j];
    for (int64_t r = 0; r < nr; r++)
        for (int64_t e = 0; e < D; e++) {
            float *z = dZ + r * D + e;
            *z = Hd[r * D + e] > 0 ? *z : 0; /* ReLU */
            db1[e] += *z;
        }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)D, (int)nr, 1.0f, dZ, (int)D, X, (int)ldx, 1.0f,
                dw, (int)D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)D, (int)D, 1.0f, dZ, (int)D, w, (int)D,
                pl->dot ? 1.0f : 0.0f, dq, (int)ldq);
}

/* One tile: rows [i0, i0 + nb) of query head h in sequence b. */
static void syn_tile_backward(const syn_bwd *t, int64_t b, int64_t h, int64_t i0, int64_t nb, float *scr)
{
    const syn_plan *pl = t->pl;
    const attn_args *a = t->a;
    const attn_io *io = t->io;
    const attn_grads *g = t->g;
    int64_t Nk = a->Nk, D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    int64_t nr = attn_q_len(a, b) - i0;
    nr = nr < 0 ? 0 : nr < nb ? nr : nb;
    float *dq = attn_at(&g->dq, b, h, i0);
    zero_rows(dq, nb, g->dq.sn, D); /* rows the tile leaves: no dot, or padding */
    if (nr == 0)
        return;
    float *S = scr, *dS = S + SYN_ROUND16(pl->T * Nk), *Hd = dS + SYN_ROUND16(pl->T * Nk);
    float *dZ = Hd + SYN_ROUND16(pl->T * D);
    const float *w = attn_at(&io->w, 0, h, 0), *X = attn_at(&io->q, b, h, i0), *K = attn_at(&io->k, b, hk, 0);
    syn_head hd = {.q = attn_at(&io->q, b, h, 0), .k = K, .w = w, .ldq = io->q.sn, .ldk = io->k.sn};
    int64_t nk = syn_logits(pl, a, &hd, b, i0, nr, S, Hd);
    if (nk == 0)
        return;
    syn_dlogits(t, b, h, i0, nr, nk, S, dS);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)Dv, (int)nr, 1.0f, S, (int)Nk,
                attn_at(&g->d_o, b, h, i0), (int)g->d_o.sn, 1.0f, attn_at(&g->dv, b, hk, 0), (int)g->dv.sn);
    if (pl->dot) {
        float sc = (float)attn_scale(a);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)D, (int)nk, sc, dS, (int)Nk, K,
                    (int)io->k.sn, 0.0f, dq, (int)g->dq.sn);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)D, (int)nr, sc, dS, (int)Nk, X,
                    (int)io->q.sn, 1.0f, attn_at(&g->dk, b, hk, 0), (int)g->dk.sn);
    }
    syn_dweights(t, w, attn_at(&g->dw, 0, h, 0), X, io->q.sn, i0, nr, nk, dS, Hd, dZ, dq, g->dq.sn);
}

/* KV head hk: dK, dV of (b, hk) for every b, dw of its query heads. */
static void syn_group_backward(const syn_bwd *t, int64_t hk, float *scr)
{
    const attn_args *a = t->a;
    const attn_grads *g = t->g;
    int64_t G = a->H / a->H_kv;
    for (int64_t h = hk * G; h < (hk + 1) * G; h++)
        memset(attn_at(&g->dw, 0, h, 0), 0, sizeof(float) * (size_t)t->pl->W);
    for (int64_t b = 0; b < a->B; b++) {
        zero_rows(attn_at(&g->dk, b, hk, 0), a->Nk, g->dk.sn, a->D);
        zero_rows(attn_at(&g->dv, b, hk, 0), a->Nk, g->dv.sn, attn_dv(a));
        for (int64_t h = hk * G; h < (hk + 1) * G; h++)
            for (int64_t i0 = 0; i0 < a->Nq; i0 += t->pl->T)
                syn_tile_backward(t, b, h, i0, a->Nq - i0 < t->pl->T ? a->Nq - i0 : t->pl->T, scr);
    }
}

int attn_synthesizer_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    syn_plan pl;
    int rc = syn_plan_make(&pl, a);
    if (rc || (rc = syn_layout_of_cols(&pl, a, io->w.data ? io->w.D : 0)))
        return rc;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "synthesizer: backward needs a context created with args.backward = 1");
    syn_bwd t = {&pl, a, io, g};
    size_t per = syn_bwd_floats(&pl, a);
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t hk = 0; hk < a->H_kv; hk++)
        syn_group_backward(&t, hk, (float *)ctx->workspace + per * (size_t)omp_get_thread_num());
    /* executed: the forward's logits again, dP and dV, then per form the gradient products */
    double rows = (double)a->H * attn_batch_rows(a), Nk = (double)a->Nk, D = (double)a->D;
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(3 * ctx->kernel->flops(a, ATTN_PASS_FWD)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(rows * Nk));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * rows * (4 * D + Nk * (pl.dot ? 2 * D : D))));
    return 0;
}
