/* `reformer` backward (docs/kernels/reformer.md). The forward is softmax
 * over the union U_i of each query's candidates with adjusted scores
 * s'_ij = s_ij - ln count_ij, and summing the rounds' terms
 * exp(s'_ij - lse_i) over the rounds in which j is a candidate gives
 * exp(s_ij - lse_i): per chunk, with the final lse, the softmax backward
 *   P = exp(s' - lse), dP = dO V^T, dS = P (dP - D_i), D_i = <dO_i, O_i>
 *   dQ += sc dS K^, dK^ += sc dS^T Q, dV += P^T dO
 * gives the union's gradient once the rounds are added up (the
 * combination weights exp(lse_r - lse) are folded into P). The hashes are
 * piecewise constant: no gradient through them (they are recomputed here,
 * not kept from the forward). The keys are k^_j = q_j / |q_j|, so
 *   dq_j += (dk^_j - k^_j <k^_j, dk^_j>) / |q_j|
 * and dK = 0 (the K input is not read). A row whose only candidate is
 * itself (lse = -1e5) has O = v_i: dV_i += dO_i, nothing else.
 *
 * One task per (batch, KV head) owns dK, dV of that head and dQ of its G
 * query heads, walked in ascending order: no atomics, a fixed summation
 * order for any thread count. */
#include "reformer_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    rf_chunk *ch;
    float *Q, *K, *V, *S, *dO, *dP, *dQ, *dK, *dV, *Di, *dKh;
    int64_t ldD, ldV, ldK;
} rf_bwd_ws;

static rf_bwd_ws rf_bwd_scratch(const rf_layout *ly, float *slot)
{
    int64_t c = ly->pl.c;
    rf_bwd_ws w = {.ldD = RF_ROUND16(ly->D), .ldV = RF_ROUND16(ly->Dv), .ldK = RF_ROUND16(2 * c)};
    float *p = slot + ly->hash_floats;
    w.ch = (rf_chunk *)p;
    w.Q = p + RF_ROUND16(16 + 2 * c);
    w.K = w.Q + c * w.ldD, w.V = w.K + 2 * c * w.ldD, w.S = w.V + 2 * c * w.ldV;
    w.dO = p + ly->chunk_floats;
    w.dP = w.dO + c * w.ldV, w.dQ = w.dP + c * w.ldK, w.dK = w.dQ + c * w.ldD, w.dV = w.dK + 2 * c * w.ldD;
    w.Di = w.dV + 2 * c * w.ldV, w.dKh = w.Di + RF_ROUND16(ly->N);
    return w;
}

typedef struct {
    const rf_layout *ly;
    const attn_args *a;
    const attn_io *io;
    const attn_grads *g;
    rf_tables t;
    const float *inv, *lse; /* inverse norms of the head; its lse row (io->lse) */
    int64_t b, h, hk, L;
} rf_head;

/* P in place of the adjusted scores: exp(s' - lse_i), 0 off the candidates. */
static void rf_probs(float *s, int64_t n, float lse)
{
    for (int64_t j = 0; j < n; j++)
        s[j] = s[j] == -INFINITY ? -INFINITY : s[j] - lse;
    attn_vexp(s, s, n); /* exp(-inf) = 0 */
}

/* rows x[pos[j]] += X[j] (ld) for j < n, D columns. */
static void rf_scatter_add(const attn_tensor *t, int64_t b, int64_t h, const int32_t *pos, int64_t n, const float *X,
                           int64_t ld)
{
    for (int64_t j = 0; j < n; j++) {
        float *y = attn_at(t, b, h, pos[j]);
        for (int64_t d = 0; d < t->D; d++)
            y[d] += X[j * ld + d];
    }
}

static void rf_chunk_backward(const rf_head *hd, int r, int64_t k, rf_bwd_ws *w, double *flops, double *exps)
{
    const rf_layout *ly = hd->ly;
    const attn_io *io = hd->io;
    const attn_grads *g = hd->g;
    int64_t D = ly->D, Dv = ly->Dv;
    float sc = (float)attn_scale(hd->a);
    rf_chunk *ch = w->ch;
    rf_chunk_at(&ly->pl, &hd->t, r, hd->L, k, ch);
    const int32_t *qpos = ch->pos + ch->np;
    rf_gather(&io->q, hd->b, hd->h, qpos, ch->nq, NULL, w->Q, w->ldD);
    rf_gather(&io->q, hd->b, hd->h, ch->pos, ch->nk, hd->inv, w->K, w->ldD);
    rf_gather(&io->v, hd->b, hd->hk, ch->pos, ch->nk, NULL, w->V, w->ldV);
    rf_gather(&g->d_o, hd->b, hd->h, qpos, ch->nq, NULL, w->dO, w->ldV);
    int nq = (int)ch->nq, nk = (int)ch->nk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, (int)D, sc, w->Q, (int)w->ldD, w->K, (int)w->ldD,
                0.0f, w->S, (int)w->ldK);
    rf_chunk_scores(&ly->pl, &hd->t, r, ch, w->S, w->ldK);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, (int)Dv, 1.0f, w->dO, (int)w->ldV, w->V,
                (int)w->ldV, 0.0f, w->dP, (int)w->ldK);
    for (int64_t i = 0; i < nq; i++) {
        float *p = w->S + i * w->ldK, *ds = w->dP + i * w->ldK, di = w->Di[qpos[i]];
        rf_probs(p, nk, hd->lse[qpos[i]]);
        for (int64_t j = 0; j < nk; j++)
            ds[j] = p[j] * (ds[j] - di);
    }
    // dQ (nq x D) = sc dS K^; dK^ (nk x D) = sc dS^T Q; dV (nk x Dv) = P^T dO
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, (int)D, nk, sc, w->dP, (int)w->ldK, w->K,
                (int)w->ldD, 0.0f, w->dQ, (int)w->ldD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, (int)D, nq, sc, w->dP, (int)w->ldK, w->Q, (int)w->ldD,
                0.0f, w->dK, (int)w->ldD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, (int)Dv, nq, 1.0f, w->S, (int)w->ldK, w->dO,
                (int)w->ldV, 0.0f, w->dV, (int)w->ldV);
    rf_scatter_add(&g->dq, hd->b, hd->h, qpos, nq, w->dQ, w->ldD);
    for (int64_t j = 0; j < nk; j++) {
        float *y = w->dKh + (int64_t)ch->pos[j] * w->ldD;
        for (int64_t d = 0; d < D; d++)
            y[d] += w->dK[j * w->ldD + d];
    }
    rf_scatter_add(&g->dv, hd->b, hd->hk, ch->pos, nk, w->dV, w->ldV);
    *flops += 2.0 * (double)nq * (double)nk * (double)(3 * D + 2 * Dv);
    *exps += (double)nq * (double)nk;
}

/* dq_j += (dk^_j - k^_j <k^_j, dk^_j>) / |q_j|: the path through the
 * normalised keys; and the rows whose only candidate is themselves. */
static void rf_head_finish(const rf_head *hd, const rf_bwd_ws *w)
{
    const attn_io *io = hd->io;
    int64_t D = hd->ly->D, Dv = hd->ly->Dv;
    for (int64_t j = 0; j < hd->L; j++) {
        const float *q = attn_at(&io->q, hd->b, hd->h, j), *dk = w->dKh + j * w->ldD;
        float *dq = attn_at(&hd->g->dq, hd->b, hd->h, j), inv = hd->inv[j];
        double proj = 0;
        for (int64_t d = 0; d < D; d++)
            proj += (double)q[d] * dk[d];
        float c = (float)(proj * inv * inv); /* <k^, dk^> / |q| with k^ = q / |q| */
        for (int64_t d = 0; d < D; d++)
            dq[d] += (dk[d] - q[d] * c) * inv;
        if (hd->lse[j] == (float)RF_SELF_SCORE) {
            const float *dO = attn_at(&hd->g->d_o, hd->b, hd->h, j);
            float *dv = attn_at(&hd->g->dv, hd->b, hd->hk, j);
            for (int64_t d = 0; d < Dv; d++)
                dv[d] += dO[d];
        }
    }
}

static void rf_zero_rows(const attn_tensor *t, int64_t b, int64_t h, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        memset(attn_at(t, b, h, i), 0, sizeof(float) * (size_t)t->D);
}

/* Query head h of (b, h/G): dQ rows written, dV rows of its KV head added. */
static void rf_head_backward(rf_head *hd, const attn_ctx *ctx, float *slot, double *flops, double *exps)
{
    const attn_args *a = hd->a;
    const rf_layout *ly = hd->ly;
    int64_t bh = hd->b * a->H + hd->h;
    rf_bwd_ws w = rf_bwd_scratch(ly, slot);
    float *inv = rf_head_floats(ctx, ly, bh);
    hd->t = rf_head_tables(ctx, ly, bh), hd->inv = inv, hd->lse = hd->io->lse + bh * a->Nq;
    rf_zero_rows(&hd->g->dq, hd->b, hd->h, a->Nq);
    if (hd->L == 0)
        return;
    rf_inverse_norms(&hd->io->q, hd->b, hd->h, hd->L, a->D, inv);
    *flops += rf_hash_head(ly, &hd->io->q, hd->b, hd->h, hd->L, &hd->t, slot);
    for (int64_t i = 0; i < hd->L; i++) {
        const float *dO = attn_at(&hd->g->d_o, hd->b, hd->h, i), *o = attn_at(&hd->io->o, hd->b, hd->h, i);
        double s = 0;
        for (int64_t d = 0; d < ly->Dv; d++)
            s += (double)dO[d] * o[d];
        w.Di[i] = (float)s;
    }
    memset(w.dKh, 0, sizeof(float) * (size_t)(hd->L * w.ldD));
    for (int r = 0; r < ly->pl.rounds; r++)
        for (int64_t k = 0; k < rf_chunks(&ly->pl, hd->L); k++)
            rf_chunk_backward(hd, r, k, &w, flops, exps);
    rf_head_finish(hd, &w);
}

int rf_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "kernel 'reformer': backward called on a context created "
                                      "without args.backward = 1 (workspace too small)");
    if (!io->lse)
        return attn_fail(ATTN_EINVAL, "kernel 'reformer': backward needs the forward's io.lse, found NULL");
    rf_layout ly;
    int rc = rf_layout_make(&ly, a);
    if (rc)
        return rc;
    int64_t G = a->H / a->H_kv, tasks = a->B * a->H_kv;
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(a->threads)
    {
        double flops = 0, exps = 0;
        float *slot = rf_thread_slot(ctx, &ly, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t b = task / a->H_kv, hk = task % a->H_kv;
            rf_zero_rows(&g->dk, b, hk, a->Nk); /* the K input is not read */
            rf_zero_rows(&g->dv, b, hk, a->Nk);
            for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
                rf_head hd = {.ly = &ly, .a = a, .io = io, .g = g, .b = b, .h = h, .hk = hk, .L = rf_len(a, b)};
                rf_head_backward(&hd, ctx, slot, &flops, &exps);
            }
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)exps);
    }
    return 0;
}
