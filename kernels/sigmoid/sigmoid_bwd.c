/* `sigmoid` backward (Ramapuram et al. 2024; docs/kernels/sigmoid.md). With
 * P = A (.) sigma(S + b) and O = P V:
 *
 *   dV = P^T dO,  dP = dO V^T,  dS = dP (.) P (.) (1 - P),
 *   dQ = sc dS K, dK = sc dS^T Q
 *
 * sigma' = sigma (1 - sigma) is element-wise, so there is no softmax row term
 * (no Di = <dO_i, O_i>) and nothing from the forward is needed but the
 * inputs. P is recomputed tile by tile in the two passes of the flash
 * backward (flash_bwd.c), without atomics so the result does not depend on
 * the thread count:
 *   A: per (b, KV head, key tile), the group's heads and query tiles in
 *      ascending order: P, dV^T += dO^T P, dS, dK^T += Q^T dS (keys in lanes)
 *   B: per (b, query head, query tile), key tiles ascending: P^T, dS^T,
 *      dQ^T += K^T dS^T (query rows in lanes). */
#include "sigmoid_internal.h"

#include "kernels/flash/flash_internal.h"

#include <omp.h>
#include <string.h>

/* Pass A for key tile [j0, j0+nk) of KV head hk: the dK and dV rows of the tile. */
static void sig_dkdv_tile(const attn_args *a, const sig_plan *pl, const attn_io *io, const attn_grads *g,
                          const float *rowbias, int64_t b, int64_t hk, int64_t j0, float *ws, flash_tally *t)
{
    const flash_plan *f = &pl->fp;
    int64_t D = a->D, nk = a->Nk - j0 < f->bc ? a->Nk - j0 : f->bc;
    if (!flash_padded_key_tile(a, g, b, hk, j0, &nk)) /* padding keys of a padded batch: no gradient */
        return;
    int64_t lanes = flash_round16(nk), nq = attn_q_len(a, b);
    float sc = (float)attn_scale(a), seq_bias = attn_sigmoid_seq_bias(pl, a, b); /* once per tile, not per row */
    float *kt = flash_take(&ws, D * lanes), *vt = flash_take(&ws, D * lanes);
    float *dkt = flash_take(&ws, D * lanes), *dvt = flash_take(&ws, D * lanes);
    float *P = flash_take(&ws, f->br * lanes), *dS = flash_take(&ws, f->br * lanes);
    unsigned char *M = (unsigned char *)flash_take(&ws, f->br * f->bc / 4 + 1);

    flash_lanes_pack_q(&io->k, b, hk, 1, j0, nk, lanes, sc, kt);
    flash_lanes_pack_q(&io->v, b, hk, 1, j0, nk, lanes, 1.0f, vt);
    memset(dkt, 0, sizeof(float) * (size_t)(D * lanes));
    memset(dvt, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 8.0 * (double)(nk * D);

    for (int64_t h = hk * f->G; h < (hk + 1) * f->G; h++)
        for (int64_t i0 = 0; i0 < nq; i0 += f->br) {
            int64_t nr = nq - i0 < f->br ? nq - i0 : f->br;
            attn_tile kind = flash_tile_kind(a, b, h, 1, i0, nr, j0, nk);
            if (kind == ATTN_TILE_EMPTY) {
                t->skipped += 1;
                continue;
            }
            /* computed window: rows [r0, r1) x lanes [c0, c1); a PARTIAL tile is cut to the
             * rows that see a key and the 16-lane blocks they see, from the mask bytes */
            int64_t r0 = 0, r1 = nr, c0 = 0, c1 = lanes;
            if (kind == ATTN_TILE_PARTIAL) {
                int64_t jlo, jhi;
                flash_pred_rows(a, b, h, 1, i0, nr, j0, nk, M, f->bc, &jlo, &jhi, &r0, &r1);
                c0 = jlo / 16 * 16, c1 = flash_round16(jhi);
            }
            int64_t rows = r1 - r0, nc = c1 - c0;
            if (rows <= 0)
                continue;
            const float *q = attn_at(&io->q, b, h, i0 + r0), *d_o = attn_at(&g->d_o, b, h, i0 + r0);
            // S (rows, nc) = Q (rows, D) @ sc K^T (D, nc), then P = sigma(S + b_row), 0 off the mask
            t->flops += attn_mk_gemm(rows, nc, D, q, io->q.sn, 1, kt + c0, lanes, P + c0, lanes, ATTN_MK_SET, NULL, NULL);
            for (int64_t r = 0; r < rows; r++)
                sig_row_sigmoid(P + r * lanes + c0, nc,
                                rowbias ? rowbias[(b * a->H + h) * a->Nq + i0 + r0 + r] : seq_bias);
            if (kind == ATTN_TILE_PARTIAL) /* keys past nk are padding: their columns are discarded */
                flash_pred_apply(M + r0 * f->bc + c0, f->bc, rows, (c1 < nk ? c1 : nk) - c0, P + c0, lanes, 1, 0.0f);
            // dV^T (D, nc) += dO^T (D, rows) @ P (rows, nc)
            t->flops += attn_mk_gemm(D, nc, rows, d_o, 1, g->d_o.sn, P + c0, lanes, dvt + c0, lanes, ATTN_MK_ADD, NULL, NULL);
            // dP (rows, nc) = dO (rows, D) @ V^T (D, nc), then dS = dP P (1 - P)
            t->flops += attn_mk_gemm(rows, nc, D, d_o, g->d_o.sn, 1, vt + c0, lanes, dS + c0, lanes, ATTN_MK_SET, NULL, NULL);
            for (int64_t r = 0; r < rows; r++)
                sig_dscore(dS + r * lanes + c0, P + r * lanes + c0, nc);
            // dK^T (D, nc) += Q^T (D, rows) @ dS (rows, nc); sc applied on the way out
            t->flops += attn_mk_gemm(D, nc, rows, q, 1, io->q.sn, dS + c0, lanes, dkt + c0, lanes, ATTN_MK_ADD, NULL, NULL);
            t->bytes += 8.0 * (double)(rows * D);
            t->exps += (double)(rows * nc);
            t->computed += 1;
        }
    sig_store_lanes(dkt, lanes, &g->dk, b, hk, 1, j0, nk, D, sc);
    sig_store_lanes(dvt, lanes, &g->dv, b, hk, 1, j0, nk, D, 1.0f);
}

/* Pass B for query tile [i0, i0+nr) of head h: the dQ rows of the tile. */
static void sig_dq_tile(const attn_args *a, const sig_plan *pl, const attn_io *io, const attn_grads *g,
                        const float *rowbias, int64_t b, int64_t h, int64_t i0, float *ws, flash_tally *t)
{
    const flash_plan *f = &pl->fp;
    int64_t D = a->D, hk = h / f->G, nr = a->Nq - i0 < f->br ? a->Nq - i0 : f->br;
    if (!flash_padded_query_tile(a, &g->dq, NULL, b, h, 1, i0, &nr)) /* padded query rows: no gradient */
        return;
    int64_t lanes = flash_round16(nr), nkeys = attn_kv_len(a, b);
    float sc = (float)attn_scale(a);
    float *qt = flash_take(&ws, D * lanes), *dot = flash_take(&ws, D * lanes);
    float *dqt = flash_take(&ws, D * lanes);
    float *P = flash_take(&ws, f->bc * lanes), *dS = flash_take(&ws, f->bc * lanes);
    float *bias = flash_take(&ws, lanes);
    sig_lane_mask mk = sig_lane_mask_take(a, &ws, lanes, f->bc);

    flash_lanes_pack_q(&io->q, b, h, 1, i0, nr, lanes, sc, qt);
    flash_lanes_pack_q(&g->d_o, b, h, 1, i0, nr, lanes, 1.0f, dot);
    attn_sigmoid_lane_bias(a, pl, rowbias, b, h, 1, i0, nr, lanes, bias);
    memset(dqt, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 8.0 * (double)(nr * D);

    for (int64_t j0 = 0; j0 < nkeys; j0 += f->bc) {
        int64_t nk = nkeys - j0 < f->bc ? nkeys - j0 : f->bc;
        attn_tile kind = flash_tile_kind(a, b, h, 1, i0, nr, j0, nk);
        if (kind == ATTN_TILE_EMPTY) {
            t->skipped += 1;
            continue;
        }
        int64_t jlo = 0, jhi = nk;
        if (kind == ATTN_TILE_PARTIAL)
            sig_lanes_cut(a, &mk, b, h, 1, i0, nr, j0, nk, lanes, &jlo, &jhi);
        nk = jhi - jlo;
        const float *k = attn_at(&io->k, b, hk, j0 + jlo), *v = attn_at(&io->v, b, hk, j0 + jlo);
        // P^T (nk, lanes) = sigma(K (nk, D) @ sc Q^T (D, lanes) + b), 0 off the mask
        t->flops += attn_mk_gemm(nk, lanes, D, k, io->k.sn, 1, qt, lanes, P, lanes, ATTN_MK_SET, NULL, NULL);
        if (kind == ATTN_TILE_PARTIAL)
            sig_lanes_mask(a, &mk, P, jlo, nk, nr, lanes);
        sig_lanes_sigmoid(P, nk, lanes, bias);
        // dP^T (nk, lanes) = V (nk, D) @ dO^T (D, lanes), then dS^T = dP^T P^T (1 - P^T)
        t->flops += attn_mk_gemm(nk, lanes, D, v, io->v.sn, 1, dot, lanes, dS, lanes, ATTN_MK_SET, NULL, NULL);
        sig_dscore(dS, P, nk * lanes);
        // dQ^T (D, lanes) += K^T (D, nk) @ dS^T (nk, lanes); sc applied on the way out
        t->flops += attn_mk_gemm(D, lanes, nk, k, 1, io->k.sn, dS, lanes, dqt, lanes, ATTN_MK_ADD, NULL, NULL);
        t->bytes += 8.0 * (double)(nk * D);
        t->exps += (double)(nk * lanes);
        t->computed += 1;
    }
    sig_store_lanes(dqt, lanes, &g->dq, b, h, 1, i0, nr, D, sc);
}

int attn_sigmoid_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    sig_plan pl;
    int rc = attn_sigmoid_plan(&pl, a);
    if (rc)
        return rc;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    const float *rowbias = attn_sigmoid_row_bias(ctx, &pl);
    const flash_plan *f = &pl.fp;
    int64_t tasks_kv = a->B * a->H_kv * f->nkt, tasks_q = a->B * a->H * f->nqt;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally tally = {0};
        float *ws = (float *)ctx->workspace + (size_t)omp_get_thread_num() * pl.thread_floats;
        /* nowait: pass B reads only inputs and writes only dQ */
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t task = 0; task < tasks_kv; task++) {
            int64_t bh = task / f->nkt, j0 = task % f->nkt * f->bc;
            sig_dkdv_tile(a, &pl, io, g, rowbias, bh / a->H_kv, bh % a->H_kv, j0, ws, &tally);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks_q; task++) {
            int64_t qt = f->nqt - 1 - task % f->nqt, bh = task / f->nqt;
            sig_dq_tile(a, &pl, io, g, rowbias, bh / a->H, bh % a->H, qt * f->br, ws, &tally);
        }
        flash_tally_flush(&tally);
    }
    return 0;
}
