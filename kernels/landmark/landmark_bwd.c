/* `landmark` backward (Mohtashami & Jaggi 2023; the weights
 * are a product of two softmaxes), both modes through the dense grouped form: the top-k
 * selection is piecewise constant in the inputs, so the gradient of a topk
 * forward is the grouped form's restricted to the retrieved blocks (the
 * shared row routine applies the same selection).
 *
 * Per query with weights w (landmark.h), g_j = <dO, v_j> and
 * D = sum_j w_j g_j = <dO, o>:
 *   block b retrieved, gate p = p_{L_b}, G_b = sum_{j in b} q_j g_j = <dO, o_b>
 *     (q_j = w_j / p the block softmax):
 *       dS_j     = w_j (g_j - G_b)           (inner softmax; w_j = q_j p)
 *       dS_{L_b} = p (G_b - D)               (own-group softmax, the landmark's
 *                                             "value" is the block output o_b)
 *   own token u:  dS_u = w_u (g_u - D)
 *   everything else (current landmark, unretrieved blocks): 0
 * then dQ = sc dS K, dK += sc dS^T Q, dV += W^T dO.
 *
 * One task per (batch, KV head) owns dK and dV of that head and walks its G
 * query heads and their query tiles in ascending order: no atomics, and the
 * summation order does not depend on the thread count. */
#include "landmark.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* dS of one row in place of dP (= g), from weights w and gates (see above). */
static void lm_row_grad(const lm_plan *pl, int64_t t, const float *w, const float *gate, float *ds)
{
    int64_t l = pl->l, c = t / l, own0 = c * l;
    double D = 0;
    for (int64_t j = 0; j <= t; j++)
        D += (double)w[j] * ds[j];
    for (int64_t b = 0; b < c; b++) {
        float *gb = ds + b * l;
        const float *wb = w + b * l;
        if (!(gate[b] > 0)) { /* not retrieved (or a gate that underflowed): no path */
            memset(gb, 0, sizeof(float) * (size_t)l);
            continue;
        }
        double Gb = 0;
        for (int64_t j = 0; j < l - 1; j++)
            Gb += (double)wb[j] * gb[j];
        Gb /= gate[b];
        for (int64_t j = 0; j < l - 1; j++)
            gb[j] = wb[j] * (float)(gb[j] - Gb);
        gb[l - 1] = gate[b] * (float)(Gb - D);
    }
    for (int64_t j = own0; j <= t; j++) /* w = 0 on the current landmark makes its dS 0 */
        ds[j] = w[j] * (float)(ds[j] - D);
}

typedef struct {
    double flops, exps, bytes;
} lm_bwd_tally;

// rows [i0, i0+nb) of query head h: dq rows written, dk/dv (KV head h/G) accumulated
static void lm_bwd_tile(const attn_args *a, const lm_plan *pl, const attn_io *io, const attn_grads *g, int64_t b,
                        int64_t h, int64_t i0, int64_t nb, float *ws, lm_bwd_tally *tl)
{
    int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv), r0 = -attn_landmark_t(a, i0);
    r0 = r0 < 0 ? 0 : r0 > nb ? nb : r0;
    for (int64_t r = 0; r < r0; r++) /* queries before every key */
        memset(attn_at(&g->dq, b, h, i0 + r), 0, sizeof(float) * (size_t)D);
    if (r0 == nb)
        return;
    i0 += r0, nb -= r0;
    int64_t nk = attn_landmark_t(a, i0 + nb - 1) + 1, ld = pl->ld;
    float *S = ws, *W = S + pl->T * ld, *dS = W + pl->T * ld, *gate = dS + pl->T * ld;
    int64_t *sel = (int64_t *)(gate + (pl->nblk + 1 + 15) / 16 * 16);
    float sc = (float)attn_scale(a);
    const float *Q = attn_at(&io->q, b, h, i0), *dO = attn_at(&g->d_o, b, h, i0);
    const float *K = attn_at(&io->k, b, hk, 0), *V = attn_at(&io->v, b, hk, 0);

    tl->flops += attn_landmark_scores(a, pl, io, b, h, i0, nb, nk, S);
    // dP (nb x nk) = dO V^T, turned into dS row by row
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)Dv, 1.0f, dO, (int)g->d_o.sn, V,
                (int)io->v.sn, 0.0f, dS, (int)ld);
    for (int64_t r = 0; r < nb; r++) {
        int64_t t = attn_landmark_t(a, i0 + r);
        float *w = W + r * ld, *ds = dS + r * ld;
        tl->exps += (double)attn_landmark_row(pl, t, S + r * ld, w, gate, sel);
        memset(w + t + 1, 0, sizeof(float) * (size_t)(nk - t - 1));
        lm_row_grad(pl, t, w, gate, ds);
        memset(ds + t + 1, 0, sizeof(float) * (size_t)(nk - t - 1));
    }
    // dQ = sc dS K; dK += sc dS^T Q; dV += W^T dO
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)nk, sc, dS, (int)ld, K,
                (int)io->k.sn, 0.0f, attn_at(&g->dq, b, h, i0), (int)g->dq.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)D, (int)nb, sc, dS, (int)ld, Q,
                (int)io->q.sn, 1.0f, attn_at(&g->dk, b, hk, 0), (int)g->dk.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)Dv, (int)nb, 1.0f, W, (int)ld, dO,
                (int)g->d_o.sn, 1.0f, attn_at(&g->dv, b, hk, 0), (int)g->dv.sn);
    tl->flops += 2.0 * (double)(nb * nk) * (double)(2 * D + 2 * Dv);
    tl->bytes += 4.0 * (double)(nb * (D + Dv) + nk * (D + Dv));
}

int attn_landmark_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    lm_plan pl;
    int rc = attn_landmark_plan(&pl, a);
    if (rc)
        return rc;
    int64_t G = a->H / a->H_kv, tasks = a->B * a->H_kv, Dv = attn_dv(a);
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(a->threads)
    {
        lm_bwd_tally tl = {0};
        float *ws = attn_landmark_scratch(ctx, &pl, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t b = task / a->H_kv, hk = task % a->H_kv;
            for (int64_t j = 0; j < a->Nk; j++) {
                memset(attn_at(&g->dk, b, hk, j), 0, sizeof(float) * (size_t)a->D);
                memset(attn_at(&g->dv, b, hk, j), 0, sizeof(float) * (size_t)Dv);
            }
            for (int64_t h = hk * G; h < (hk + 1) * G; h++)
                for (int64_t i0 = 0; i0 < a->Nq; i0 += pl.T)
                    lm_bwd_tile(a, &pl, io, g, b, h, i0, a->Nq - i0 < pl.T ? a->Nq - i0 : pl.T, ws, &tl);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
    }
    return 0;
}
