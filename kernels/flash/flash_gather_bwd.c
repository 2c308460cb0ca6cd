/* The gathered backward of `flash` (flash_gather.h). One task per (batch,
 * KV head) runs its row blocks in a fixed order; per block and panel of its
 * union keys, P is recomputed from Q, K and the forward's lse, then
 *
 *   dP^T = V_p dO^T,   dS^T = P^T (dP^T - Di),  dQ^T += K_p^T dS^T,
 *   dV_p = P^T dO,     dK_p = dS^T Q            (added into the panel keys' rows)
 *
 * with the lane-major layout of the forward (S^T: [key][lane]). A block holds
 * every key its rows attend, so its dQ rows are complete when it ends; the
 * dK and dV rows of a KV head are added to by its one task only, in block
 * order, so no atomics are needed and results do not depend on the thread
 * count. The parallelism is B x H_kv tasks. */
#include "flash_gather.h"

#include <omp.h>
#include <string.h>

int64_t flash_gather_bwd_slot_floats(const attn_args *a, const flash_plan *pl)
{
    int64_t D = a->D, L = pl->glanes, Dp = flash_round16(D), bc = pl->bc;
    /* Q^T, dO^T, dQ^T; Q and dO rows; S^T, dS^T; K, V panels; dK, dV panels;
     * shift and Di; the rounding of each carve to 16 floats */
    return 3 * D * L + 2 * L * Dp + 2 * bc * L + 2 * bc * D + 2 * bc * Dp + 2 * L + 13 * 16;
}

// xr is (lanes, Dp): xr[g*nb + i][d] = s * x[b, h0 + g, rows[i], d]; padding lanes and columns are 0
static void gather_pack_rows(const attn_tensor *x, int64_t b, int64_t h0, int64_t G, const int32_t *rows, int64_t nb,
                             int64_t lanes, int64_t Dp, float s, float *xr)
{
    memset(xr, 0, sizeof(float) * (size_t)(lanes * Dp));
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            const float *src = attn_at(x, b, h0 + g, rows[i]);
            float *dst = xr + (g * nb + i) * Dp;
            for (int64_t d = 0; d < x->D; d++)
                dst[d] = s * src[d];
        }
}

// t[b, hk, keys[j]] += panel[j] for j < n (panel rows ld floats apart)
static void gather_scatter_add(const attn_tensor *t, int64_t b, int64_t hk, const int32_t *keys, int64_t n,
                               const float *panel, int64_t ld)
{
    for (int64_t j = 0; j < n; j++) {
        float *row = attn_at(t, b, hk, keys[j]);
        for (int64_t d = 0; d < t->D; d++)
            row[d] += panel[j * ld + d];
    }
}

/* Per lane: the shift that turns S into P (lse; +inf for a row without keys
 * and for padding lanes, so P = 0 there) and Di. */
static void gather_lane_stats(const attn_args *a, const attn_io *io, const float *di_all, int64_t b, int64_t h0,
                              int64_t G, const int32_t *rows, int64_t nb, int64_t lanes, float *shift, float *di)
{
    for (int64_t r = 0; r < lanes; r++) {
        shift[r] = INFINITY, di[r] = 0.0f;
        if (r >= G * nb)
            continue;
        int64_t at = (b * a->H + h0 + r / nb) * a->Nq + rows[r % nb];
        shift[r] = io->lse[at] == -INFINITY ? INFINITY : io->lse[at];
        di[r] = di_all[at];
    }
}

typedef struct {
    float *qt, *dot, *dqt, *qr, *dor, *S, *dS, *kp, *vp, *dkp, *dvp, *shift, *di;
} gather_bwd_ws;

static gather_bwd_ws gather_bwd_carve(const attn_args *a, const flash_plan *pl, int64_t lanes, float *ws)
{
    int64_t D = a->D, Dp = flash_round16(D), bc = pl->bc;
    gather_bwd_ws w;
    w.qt = flash_take(&ws, D * lanes), w.dot = flash_take(&ws, D * lanes), w.dqt = flash_take(&ws, D * lanes);
    w.qr = flash_take(&ws, lanes * Dp), w.dor = flash_take(&ws, lanes * Dp);
    w.S = flash_take(&ws, bc * lanes), w.dS = flash_take(&ws, bc * lanes);
    w.kp = flash_take(&ws, bc * D), w.vp = flash_take(&ws, bc * D);
    w.dkp = flash_take(&ws, bc * Dp), w.dvp = flash_take(&ws, bc * Dp);
    w.shift = flash_take(&ws, lanes), w.di = flash_take(&ws, lanes);
    return w;
}

/* Block blk of KV head hk of batch b: its dQ rows, and its share of dK, dV. */
static void gather_block_backward(const attn_args *a, const flash_plan *pl, const flash_gather *gp, const attn_io *io,
                                  const attn_grads *g, const float *di_all, int64_t b, int64_t hk, int64_t blk,
                                  float *ws, flash_tally *t)
{
    int64_t D = a->D, Dp = flash_round16(D), G = pl->G, h0 = hk * G;
    int64_t layout = (gp->n_layouts > 1 ? b : 0) * a->H_kv + hk;
    int64_t i0 = blk * gp->gbr, nb = a->Nq - i0 < gp->gbr ? a->Nq - i0 : gp->gbr;
    const int32_t *rows = gp->rows + layout * a->Nq + i0;
    const flash_gather_block *gb = gp->blocks + layout * gp->n_blocks + blk;
    int64_t lanes = flash_round16(G * nb), words = lanes / 16;
    float sc = (float)attn_scale(a);
    gather_bwd_ws w = gather_bwd_carve(a, pl, lanes, ws);

    flash_lanes_pack_rows(&io->q, b, h0, G, 0, rows, nb, lanes, sc, w.qt);
    flash_lanes_pack_rows(&g->d_o, b, h0, G, 0, rows, nb, lanes, 1.0f, w.dot);
    gather_pack_rows(&io->q, b, h0, G, rows, nb, lanes, Dp, sc, w.qr);
    gather_pack_rows(&g->d_o, b, h0, G, rows, nb, lanes, Dp, 1.0f, w.dor);
    memset(w.dqt, 0, sizeof(float) * (size_t)(D * lanes));
    gather_lane_stats(a, io, di_all, b, h0, G, rows, nb, lanes, w.shift, w.di);
    t->bytes += 8.0 * (double)(G * nb * (D + 1));

    for (int64_t c0 = 0; c0 < gb->n_keys; c0 += pl->bc) {
        int64_t nk = gb->n_keys - c0 < pl->bc ? gb->n_keys - c0 : pl->bc;
        const int32_t *keys = gb->keys + c0;
        flash_gather_panel(&io->k, b, hk, keys, nk, w.kp);
        flash_gather_panel(&io->v, b, hk, keys, nk, w.vp);
        // P^T (nk, lanes) = exp(Kp (nk, D) @ qt (D, lanes) - lse), 0 where a lane does not attend the key
        t->flops += attn_mk_gemm(nk, lanes, D, w.kp, D, 1, w.qt, lanes, w.S, lanes, ATTN_MK_SET, NULL, NULL);
        flash_gather_mask_lanes(w.S, nk, lanes, gb->bits + c0 * words);
        flash_exp_lanes(w.S, nk, lanes, w.shift, NULL);
        // dP^T (nk, lanes) = Vp (nk, D) @ dO^T (D, lanes), then dS^T = P^T (dP^T - Di)
        t->flops += attn_mk_gemm(nk, lanes, D, w.vp, D, 1, w.dot, lanes, w.dS, lanes, ATTN_MK_SET, NULL, NULL);
        flash_ds_lanes(w.dS, w.S, nk, lanes, w.di);
        // dQ^T (D, lanes) += Kp^T (D, nk) @ dS^T (nk, lanes); sc applied on the way out
        t->flops += attn_mk_gemm(D, lanes, nk, w.kp, 1, D, w.dS, lanes, w.dqt, lanes, ATTN_MK_ADD, NULL, NULL);
        // dV_p (nk, Dp) = P^T (nk, lanes) @ dO rows (lanes, Dp); dK_p = dS^T @ sc Q rows
        t->flops += attn_mk_gemm(nk, Dp, lanes, w.S, lanes, 1, w.dor, Dp, w.dvp, Dp, ATTN_MK_SET, NULL, NULL);
        t->flops += attn_mk_gemm(nk, Dp, lanes, w.dS, lanes, 1, w.qr, Dp, w.dkp, Dp, ATTN_MK_SET, NULL, NULL);
        gather_scatter_add(&g->dv, b, hk, keys, nk, w.dvp, Dp);
        gather_scatter_add(&g->dk, b, hk, keys, nk, w.dkp, Dp);
        t->exps += (double)(nk * lanes);
        t->computed += (double)G;
        t->bytes += 16.0 * (double)(nk * D);
    }
    for (int64_t r = 0; r < G * nb; r++) {
        float *dq = attn_at(&g->dq, b, h0 + r / nb, rows[r % nb]);
        for (int64_t d = 0; d < D; d++)
            dq[d] = sc * w.dqt[d * lanes + r];
    }
}

void flash_gather_backward(const attn_ctx *ctx, const flash_plan *pl, const flash_gather *gp, const attn_io *io,
                           const attn_grads *g, const float *di)
{
    const attn_args *a = &ctx->args;
    int64_t tasks = a->B * a->H_kv;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t b = task / a->H_kv, hk = task % a->H_kv;
            for (int64_t j = 0; j < a->Nk; j++) {
                memset(attn_at(&g->dk, b, hk, j), 0, sizeof(float) * (size_t)a->D);
                memset(attn_at(&g->dv, b, hk, j), 0, sizeof(float) * (size_t)a->D);
            }
            for (int64_t blk = 0; blk < gp->n_blocks; blk++)
                gather_block_backward(a, pl, gp, io, g, di, b, hk, blk, ws, &t);
        }
        flash_tally_flush(&t);
    }
}
