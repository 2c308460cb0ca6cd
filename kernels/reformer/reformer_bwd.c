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

/* Backward scratch after the chunk tiles. */
typedef struct {
    rf_tiles t;
    float *dO, *dP, *dQ, *dK, *dV, *Di, *dKh;
} rf_bwd_ws;

static rf_bwd_ws rf_bwd_scratch(const rf_layout *ly, float *slot)
{
    int64_t c = ly->pl.c;
    rf_bwd_ws w = {.t = rf_chunk_tiles(ly, slot)};
    w.dO = rf_pass_scratch(ly, slot);
    w.dP = w.dO + c * w.t.ldV, w.dQ = w.dP + c * w.t.ldK, w.dK = w.dQ + c * w.t.ldD;
    w.dV = w.dK + 2 * c * w.t.ldD, w.Di = w.dV + 2 * c * w.t.ldV, w.dKh = w.Di + RF_ROUND16(ly->N);
    return w;
}

typedef struct {
    rf_head hd;
    const rf_layout *ly;
    const attn_grads *g;
    const float *lse;     /* the head's lse row (io->lse) */
} rf_bwd_head;

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

typedef struct {
    double flops, exps, bytes;
} rf_bwd_tally;

static void rf_chunk_backward(const rf_bwd_head *x, int r, int64_t k, rf_bwd_ws *w, rf_bwd_tally *tl)
{
    const rf_head *hd = &x->hd;
    const attn_grads *g = x->g;
    const rf_tiles *t = &w->t;
    int64_t D = x->ly->D, Dv = x->ly->Dv;
    float sc = (float)attn_scale(hd->a);
    tl->flops += rf_chunk_load(x->ly, hd, r, k, t);
    const rf_chunk *ch = t->ch;
    const int32_t *qpos = ch->pos + ch->np;
    int nq = (int)ch->nq, nk = (int)ch->nk;
    rf_gather(&g->d_o, hd->b, hd->h, qpos, ch->nq, NULL, w->dO, t->ldV);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, (int)Dv, 1.0f, w->dO, (int)t->ldV, t->V,
                (int)t->ldV, 0.0f, w->dP, (int)t->ldK);
    for (int64_t i = 0; i < nq; i++) {
        float *p = t->S + i * t->ldK, *ds = w->dP + i * t->ldK, di = w->Di[qpos[i]];
        rf_probs(p, nk, x->lse[qpos[i]]);
        for (int64_t j = 0; j < nk; j++)
            ds[j] = p[j] * (ds[j] - di);
    }
    // dQ (nq x D) = sc dS K^; dK^ (nk x D) = sc dS^T Q; dV (nk x Dv) = P^T dO
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, (int)D, nk, sc, w->dP, (int)t->ldK, t->K,
                (int)t->ldD, 0.0f, w->dQ, (int)t->ldD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, (int)D, nq, sc, w->dP, (int)t->ldK, t->Q, (int)t->ldD,
                0.0f, w->dK, (int)t->ldD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, (int)Dv, nq, 1.0f, t->S, (int)t->ldK, w->dO,
                (int)t->ldV, 0.0f, w->dV, (int)t->ldV);
    rf_scatter_add(&g->dq, hd->b, hd->h, qpos, nq, w->dQ, t->ldD);
    for (int64_t j = 0; j < nk; j++) {
        float *y = w->dKh + (int64_t)ch->pos[j] * t->ldD;
        for (int64_t d = 0; d < D; d++)
            y[d] += w->dK[j * t->ldD + d];
    }
    rf_scatter_add(&g->dv, hd->b, hd->hk, ch->pos, nk, w->dV, t->ldV);
    tl->flops += 2.0 * (double)nq * (double)nk * (double)(2 * D + 2 * Dv);
    tl->exps += (double)nq * (double)nk;
    tl->bytes += 4.0 * (double)(nq * (D + Dv) + nk * (D + Dv));
}

/* dq_j += (dk^_j - k^_j <k^_j, dk^_j>) / |q_j|: the path through the
 * normalised keys; and the rows whose only candidate is themselves. */
static void rf_head_finish(const rf_bwd_head *x, const rf_bwd_ws *w)
{
    const rf_head *hd = &x->hd;
    int64_t D = x->ly->D, Dv = x->ly->Dv, ld = w->t.ldD;
    for (int64_t j = 0; j < hd->L; j++) {
        const float *q = attn_at(&hd->io->q, hd->b, hd->h, j), *dk = w->dKh + j * ld;
        float *dq = attn_at(&x->g->dq, hd->b, hd->h, j), inv = hd->inv[j];
        double proj = 0;
        for (int64_t d = 0; d < D; d++)
            proj += (double)q[d] * dk[d];
        float c = (float)(proj * inv * inv); /* <k^, dk^> / |q| with k^ = q / |q| */
        for (int64_t d = 0; d < D; d++)
            dq[d] += (dk[d] - q[d] * c) * inv;
        if (x->lse[j] == (float)RF_SELF_SCORE) {
            const float *dO = attn_at(&x->g->d_o, hd->b, hd->h, j);
            float *dv = attn_at(&x->g->dv, hd->b, hd->hk, j);
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
static void rf_head_backward(const rf_layout *ly, const attn_ctx *ctx, const attn_io *io, const attn_grads *g,
                             int64_t b, int64_t h, float *slot, rf_bwd_tally *tl)
{
    const attn_args *a = &ctx->args;
    int64_t bh = b * a->H + h;
    float *inv = rf_head_floats(ctx, ly, bh);
    rf_bwd_head x = {.hd = {.a = a, .io = io, .t = rf_head_tables(ctx, ly, bh), .inv = inv, .b = b, .h = h,
                            .hk = h / (a->H / a->H_kv), .L = rf_len(a, b)},
                     .ly = ly, .g = g, .lse = io->lse + bh * a->Nq};
    rf_bwd_ws w = rf_bwd_scratch(ly, slot);
    int64_t L = x.hd.L;
    rf_zero_rows(&g->dq, b, h, a->Nq);
    if (L == 0)
        return;
    rf_inverse_norms(&io->q, b, h, L, a->D, inv);
    for (int r = 0; r < ly->pl.rounds; r++)
        tl->flops += rf_hash_sort(ly, &io->q, b, h, r, L, &x.hd.t, slot);
    for (int64_t i = 0; i < L; i++) {
        const float *dO = attn_at(&g->d_o, b, h, i), *o = attn_at(&io->o, b, h, i);
        double s = 0;
        for (int64_t d = 0; d < ly->Dv; d++)
            s += (double)dO[d] * o[d];
        w.Di[i] = (float)s;
    }
    memset(w.dKh, 0, sizeof(float) * (size_t)(L * w.t.ldD));
    for (int r = 0; r < ly->pl.rounds; r++)
        for (int64_t k = 0; k < rf_chunks(&ly->pl, L); k++)
            rf_chunk_backward(&x, r, k, &w, tl);
    rf_head_finish(&x, &w);
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
        rf_bwd_tally tl = {0};
        float *slot = rf_thread_slot(ctx, &ly, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t b = task / a->H_kv, hk = task % a->H_kv;
            rf_zero_rows(&g->dk, b, hk, a->Nk); /* the K input is not read */
            rf_zero_rows(&g->dv, b, hk, a->Nk);
            for (int64_t h = hk * G; h < (hk + 1) * G; h++)
                rf_head_backward(&ly, ctx, io, g, b, h, slot, &tl);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
    }
    return 0;
}
