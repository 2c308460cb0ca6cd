/* `flash` backward (Dao 2023; docs/kernels/flash.md): P is recomputed
 * tile by tile from Q, K and the saved logsumexp, without atomics, so the
 * result does not depend on the thread count.
 *
 *   Di = <dO_i, O_i>                       for every query row (shared array)
 *   per (b, KV head, stripe s of key tiles), key tiles s, s+S, ...: for each
 *   head of the group, each query tile in ascending order:
 *       P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - Di),
 *       dK += dS^T Q, and dQ_s += dS K into the stripe's dQ partial
 *   dQ = sum of the partials in stripe order.
 *
 * The S stripes come from the problem alone (flash_bwd_stripes): enough
 * (batch, KV head, stripe) tasks for the threads, each dQ row summed in one
 * fixed order. The tile keeps the key axis in the vector lanes (dK^T, dV^T
 * accumulate there); the dQ product broadcasts dS and reads K packed
 * row-major. 5 products = 10 D FLOPs per computed pair, the nominal count.
 *
 * Memory-budget mode keeps the earlier two passes, whose workspace does not
 * grow with N: pass A as above without dQ, then pass B per (b, query head,
 * query tile), key tiles ascending, recomputes S, P, dP, dS and adds
 * dQ += dS K with the query axis in the lanes (7 products, 14 D per pair). */
#include "flash_internal.h"
#include "flash_gather.h"
#include "kernels/core/lowp.h"

#include <omp.h>
#include <string.h>

// x is (rows, D) strided by sn; xt is (D, lanes): xt[d][r] = s * x[r][d], lanes past rows zeroed
static void flash_pack_t(const float *x, int64_t sn, int64_t rows, int64_t D, int64_t lanes, float s,
                         float *xt)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            xt[d * lanes + r] = s * x[r * sn + d];
    for (int64_t d = 0; d < D; d++)
        memset(xt + d * lanes + rows, 0, sizeof(float) * (size_t)(lanes - rows));
}

// x is (rows, D) strided by sn: x[r][d] = s * xt[d][r]
static void flash_unpack_t(const float *xt, int64_t lanes, int64_t rows, int64_t D, float s, float *x,
                           int64_t sn)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            x[r * sn + d] = s * xt[d * lanes + r];
}

// di is (B, H, Nq): di[b,h,i] = <dO[b,h,i], O[b,h,i]>, summed in double
static void flash_row_dots(const attn_args *a, const attn_io *io, const attn_grads *g, float *di)
{
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t bh = 0; bh < a->B * a->H; bh++)
        for (int64_t i = 0; i < attn_q_len(a, bh / a->H); i++) {
            const float *o = attn_at(&io->o, bh / a->H, bh % a->H, i);
            const float *d_o = attn_at(&g->d_o, bh / a->H, bh % a->H, i);
            double s = 0;
            for (int64_t d = 0; d < a->D; d++)
                s += (double)o[d] * d_o[d];
            di[bh * a->Nq + i] = (float)s;
        }
}

/* Pass A layout (query rows r, keys j in lanes; rows `ld` floats apart):
 * P[r][j] = exp(S[r][j] - lse_r) for lo_r <= j < hi_r, else 0, over j < nc;
 * lo = NULL means every j. An empty row (lse = -inf) is all zero. */
static void flash_probs_rows(float *S, int64_t nr, int64_t ld, int64_t nc, const float *lse,
                             const int32_t *lo, const int32_t *hi)
{
    for (int64_t r = 0; r < nr; r++) {
        float *s = S + r * ld;
        int64_t j0 = lo ? lo[r] : 0, j1 = lo ? hi[r] : nc;
        if (lse[r] == -INFINITY)
            j0 = j1 = 0;
        j0 = j0 < 0 ? 0 : j0 > nc ? nc : j0;
        j1 = j1 < j0 ? j0 : j1 > nc ? nc : j1;
        for (int64_t j = 0; j < j0; j++)
            s[j] = 0;
        for (int64_t j = j1; j < nc; j++)
            s[j] = 0;
        int64_t j = j0;
#ifdef ATTN_VW
        attn_vf sh = attn_vf_set1(lse[r]);
        for (; j + ATTN_VW <= j1; j += ATTN_VW)
            attn_vf_storeu(s + j, attn_vf_exp(attn_vf_sub(attn_vf_loadu(s + j), sh)));
#endif
        for (; j < j1; j++)
            s[j] = attn_expf(s[j] - lse[r]);
    }
}

// dS = P * (dP - di_row) over nr rows of nc floats, `ld` apart (in place in dP)
static void flash_ds_rows(float *dP, const float *P, int64_t nr, int64_t ld, int64_t nc, const float *di)
{
    for (int64_t r = 0; r < nr; r++) {
        float *x = dP + r * ld;
        const float *p = P + r * ld;
        int64_t j = 0;
#ifdef ATTN_VW
        attn_vf d = attn_vf_set1(di[r]);
        for (; j + ATTN_VW <= nc; j += ATTN_VW)
            attn_vf_store(x + j, attn_vf_mul(attn_vf_load(p + j), attn_vf_sub(attn_vf_load(x + j), d)));
#endif
        for (; j < nc; j++)
            x[j] = p[j] * (x[j] - di[r]);
    }
}

/* Pass A trimming of a PARTIAL tile: the allowed ranges lo/hi of the nr
 * rows (relative to lane c0 on return), the rows [r0, r1) that see any key,
 * and the 16-lane blocks [c0, c1) holding every allowed key. */
static void flash_trim_rows(const attn_args *a, int64_t i0, int64_t nr, int64_t j0, int64_t nk,
                            int32_t *lo, int32_t *hi, int64_t *r0, int64_t *r1, int64_t *c0, int64_t *c1)
{
    flash_row_ranges(a, i0, nr, 1, j0, nk, nr, lo, hi);
    int64_t first = nr, last = -1;
    for (int64_t r = 0; r < nr; r++)
        if (lo[r] < hi[r])
            first = r < first ? r : first, last = r;
    int64_t jlo, jhi;
    flash_trim_keys(lo, hi, nr, nr, &jlo, &jhi);
    int64_t c = jlo / 16 * 16;
    for (int64_t r = 0; r < nr; r++)
        lo[r] += (int32_t)(jlo - c), hi[r] += (int32_t)(jlo - c);
    *r0 = last < 0 ? 0 : first, *r1 = last + 1;
    *c0 = c, *c1 = flash_round16(jhi);
}

// xr is (lanes, ld): xr[r][d] = s * x[r][d] for r < rows, d < D; zero elsewhere
static void flash_pack_rows(const float *x, int64_t sn, int64_t rows, int64_t D, int64_t lanes, int64_t ld,
                            float s, float *xr)
{
    memset(xr, 0, sizeof(float) * (size_t)(lanes * ld));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t d = 0; d < D; d++)
            xr[r * ld + d] = s * x[r * sn + d];
}

/* Pass A for key tile [j0, j0+nk) of KV head hk: dK and dV rows of the tile.
 * With dq (one-pass backward) it also adds the tile's share of dQ, sc dS K,
 * into the dQ partial dq ([b][h][row][pl->dqld]), rows in ascending order. */
static void flash_dkdv_tile(const attn_args *a, const flash_plan *pl, const attn_io *io,
                            const attn_grads *g, const float *di_all, int64_t b, int64_t hk, int64_t j0,
                            float *dq, float *ws, flash_tally *t)
{
    int64_t D = a->D, nk = a->Nk - j0 < pl->bc ? a->Nk - j0 : pl->bc;
    if (!flash_padded_key_tile(a, g, b, hk, j0, &nk)) /* padding keys of a padded batch: no gradient */
        return;
    int64_t lanes = flash_round16(nk), nq = attn_q_len(a, b);
    float sc = (float)attn_scale(a);
    float *kt = flash_take(&ws, D * lanes), *vt = flash_take(&ws, D * lanes);
    float *dkt = flash_take(&ws, D * lanes), *dvt = flash_take(&ws, D * lanes);
    float *P = flash_take(&ws, pl->br * lanes), *dS = flash_take(&ws, pl->br * lanes);
    float *lse = flash_take(&ws, pl->br), *di = flash_take(&ws, pl->br);
    int32_t *lo = (int32_t *)flash_take(&ws, pl->br), *hi = (int32_t *)flash_take(&ws, pl->br);
    int interval = !pl->mask_ld;
    unsigned char *M = interval ? NULL : (unsigned char *)flash_take(&ws, pl->br * pl->bc / 4 + 1);
    float *kr = dq ? flash_take(&ws, lanes * pl->dqld) : NULL;

    flash_pack_t(attn_at(&io->k, b, hk, j0), io->k.sn, nk, D, lanes, sc, kt);
    if (dq)
        flash_pack_rows(attn_at(&io->k, b, hk, j0), io->k.sn, nk, D, lanes, pl->dqld, sc, kr);
    flash_pack_t(attn_at(&io->v, b, hk, j0), io->v.sn, nk, D, lanes, 1.0f, vt);
    memset(dkt, 0, sizeof(float) * (size_t)(D * lanes));
    memset(dvt, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 8.0 * (double)(nk * D);

    for (int64_t h = hk * pl->G; h < (hk + 1) * pl->G; h++)
        for (int64_t i0 = 0; i0 < nq; i0 += pl->br) {
            int64_t nr = nq - i0 < pl->br ? nq - i0 : pl->br;
            attn_tile kind = flash_tile_kind(a, b, h, 1, i0, nr, j0, nk);
            if (kind == ATTN_TILE_EMPTY) {
                t->skipped += 1;
                continue;
            }
            memcpy(lse, io->lse + (b * a->H + h) * a->Nq + i0, sizeof(float) * (size_t)nr);
            memcpy(di, di_all + (b * a->H + h) * a->Nq + i0, sizeof(float) * (size_t)nr);
            /* computed window: rows [r0, r1) x lanes [c0, c1); a PARTIAL tile is
             * trimmed to the rows that see a key and the 16-lane blocks they see */
            int64_t r0 = 0, r1 = nr, c0 = 0, c1 = lanes;
            if (kind == ATTN_TILE_PARTIAL && interval)
                flash_trim_rows(a, i0, nr, j0, nk, lo, hi, &r0, &r1, &c0, &c1);
            else if (kind == ATTN_TILE_PARTIAL) {
                int64_t jlo, jhi;
                flash_pred_rows(a, b, h, 1, i0, nr, j0, nk, M, pl->mask_ld, &jlo, &jhi, &r0, &r1);
                c0 = jlo / 16 * 16, c1 = flash_round16(jhi);
            }
            int64_t rows = r1 - r0, nc = c1 - c0;
            const float *q = attn_at(&io->q, b, h, i0 + r0), *d_o = attn_at(&g->d_o, b, h, i0 + r0);
            // S (rows, nc) = Q (rows, D) @ sc K^T (D, nc)
            t->flops += attn_mk_gemm(rows, nc, D, q, io->q.sn, 1, kt + c0, lanes, P + c0, lanes, ATTN_MK_SET, NULL, NULL);
            flash_probs_rows(P + c0, rows, lanes, nc, lse + r0,
                             kind == ATTN_TILE_PARTIAL && interval ? lo + r0 : NULL, hi + r0);
            if (kind == ATTN_TILE_PARTIAL && !interval) /* P = 0 off the mask (keys past nk are padding) */
                flash_pred_apply(M + r0 * pl->mask_ld + c0, pl->mask_ld, rows, (c1 < nk ? c1 : nk) - c0,
                                 P + c0, lanes, 1, 0.0f);
            // dV^T (D, nc) += dO^T (D, rows) @ P (rows, nc)
            t->flops += attn_mk_gemm(D, nc, rows, d_o, 1, g->d_o.sn, P + c0, lanes, dvt + c0, lanes, ATTN_MK_ADD, NULL, NULL);
            // dP (rows, nc) = dO (rows, D) @ V^T (D, nc), then dS = P (dP - Di)
            t->flops += attn_mk_gemm(rows, nc, D, d_o, g->d_o.sn, 1, vt + c0, lanes, dS + c0, lanes, ATTN_MK_SET, NULL, NULL);
            flash_ds_rows(dS + c0, P + c0, rows, lanes, nc, di + r0);
            // dK^T (D, nc) += Q^T (D, rows) @ dS (rows, nc); sc applied on the way out
            t->flops += attn_mk_gemm(D, nc, rows, q, 1, io->q.sn, dS + c0, lanes, dkt + c0, lanes, ATTN_MK_ADD, NULL, NULL);
            // dQ (rows, dqld) += dS (rows, nc) @ sc K (nc, dqld), into the partial
            if (dq)
                t->flops += attn_mk_gemm(rows, pl->dqld, nc, dS + c0, lanes, 1, kr + c0 * pl->dqld, pl->dqld,
                                         dq + ((b * a->H + h) * a->Nq + i0 + r0) * pl->dqld, pl->dqld,
                                         ATTN_MK_ADD, NULL, NULL);
            t->bytes += 8.0 * (double)(rows * D + rows);
            t->exps += (double)(rows * nc);
            t->computed += 1;
        }
    flash_unpack_t(dkt, lanes, nk, D, sc, attn_at(&g->dk, b, hk, j0), g->dk.sn);
    flash_unpack_t(dvt, lanes, nk, D, 1.0f, attn_at(&g->dv, b, hk, j0), g->dv.sn);
}

/* Pass B for query tile [i0, i0+nr) of head h: the dQ rows of the tile. */
static void flash_dq_tile(const attn_args *a, const flash_plan *pl, const attn_io *io,
                          const attn_grads *g, const float *di_all, int64_t b, int64_t h, int64_t i0,
                          float *ws, flash_tally *t)
{
    int64_t D = a->D, hk = h / pl->G, nr = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
    if (!flash_padded_query_tile(a, &g->dq, NULL, b, h, 1, i0, &nr)) /* padded query rows: no gradient */
        return;
    int64_t lanes = flash_round16(nr), nkeys = attn_kv_len(a, b);
    float sc = (float)attn_scale(a);
    float *qt = flash_take(&ws, D * lanes), *dot = flash_take(&ws, D * lanes);
    float *dqt = flash_take(&ws, D * lanes);
    float *P = flash_take(&ws, pl->bc * lanes), *dS = flash_take(&ws, pl->bc * lanes);
    float *shift = flash_take(&ws, lanes), *di = flash_take(&ws, lanes);
    int32_t *lo = (int32_t *)flash_take(&ws, lanes), *hi = (int32_t *)flash_take(&ws, lanes);
    int interval = !pl->mask_ld;
    unsigned char *M = interval ? NULL : (unsigned char *)flash_take(&ws, lanes * pl->bc / 4 + 1);

    flash_pack_t(attn_at(&io->q, b, h, i0), io->q.sn, nr, D, lanes, sc, qt);
    flash_pack_t(attn_at(&g->d_o, b, h, i0), g->d_o.sn, nr, D, lanes, 1.0f, dot);
    memset(dqt, 0, sizeof(float) * (size_t)(D * lanes));
    for (int64_t r = 0; r < lanes; r++) {
        /* an empty row (lse = -inf) and the padding lanes subtract +inf: P = 0 */
        float lse = r < nr ? io->lse[(b * a->H + h) * a->Nq + i0 + r] : -INFINITY;
        shift[r] = lse == -INFINITY ? INFINITY : lse;
        di[r] = r < nr ? di_all[(b * a->H + h) * a->Nq + i0 + r] : 0.0f;
    }
    t->bytes += 8.0 * (double)(nr * D + nr);

    for (int64_t j0 = 0; j0 < nkeys; j0 += pl->bc) {
        int64_t nk = nkeys - j0 < pl->bc ? nkeys - j0 : pl->bc;
        attn_tile kind = flash_tile_kind(a, b, h, 1, i0, nr, j0, nk);
        if (kind == ATTN_TILE_EMPTY) {
            t->skipped += 1;
            continue;
        }
        int64_t jlo = 0, jhi = nk, r0, r1;
        if (kind == ATTN_TILE_PARTIAL && interval)
            flash_partial_keys(a, i0, nr, 1, j0, nk, lanes, lo, hi, &jlo, &jhi);
        else if (kind == ATTN_TILE_PARTIAL)
            flash_pred_rows(a, b, h, 1, i0, nr, j0, nk, M, pl->mask_ld, &jlo, &jhi, &r0, &r1);
        nk = jhi - jlo;
        const float *k = attn_at(&io->k, b, hk, j0 + jlo), *v = attn_at(&io->v, b, hk, j0 + jlo);
        // S^T (nk, lanes) = K (nk, D) @ sc Q^T (D, lanes)
        t->flops += attn_mk_gemm(nk, lanes, D, k, io->k.sn, 1, qt, lanes, P, lanes, ATTN_MK_SET, NULL, NULL);
        if (kind == ATTN_TILE_PARTIAL && interval)
            flash_mask_lanes(P, nk, lanes, lo, hi);
        else if (kind == ATTN_TILE_PARTIAL)
            flash_pred_apply(M + jlo, pl->mask_ld, nr, nk, P, 1, lanes, -INFINITY);
        flash_exp_lanes(P, nk, lanes, shift, NULL);
        // dP^T (nk, lanes) = V (nk, D) @ dO^T (D, lanes), then dS^T = P^T (dP^T - Di)
        t->flops += attn_mk_gemm(nk, lanes, D, v, io->v.sn, 1, dot, lanes, dS, lanes, ATTN_MK_SET, NULL, NULL);
        flash_ds_lanes(dS, P, nk, lanes, di);
        // dQ^T (D, lanes) += K^T (D, nk) @ dS^T (nk, lanes); sc applied on the way out
        t->flops += attn_mk_gemm(D, lanes, nk, k, 1, io->k.sn, dS, lanes, dqt, lanes, ATTN_MK_ADD, NULL, NULL);
        t->bytes += 8.0 * (double)(nk * D);
        t->exps += (double)(nk * lanes);
        t->computed += 1;
    }
    flash_unpack_t(dqt, lanes, nr, D, sc, attn_at(&g->dq, b, h, i0), g->dq.sn);
}

/* The one-pass backward: per (b, KV head, stripe s) task the key tiles
 * s, s + S, s + 2S, ... (S stripes; interleaved, so causal stripes get
 * equal work), each as pass A plus dQ += sc dS K into stripe s's partial.
 * Then dQ = the sum of the partials, in stripe order. Every dQ row thus
 * sums its terms in one order fixed by the problem: bitwise the same
 * result for any thread count, without atomics. */
static void flash_backward_onepass(const attn_args *a, const flash_plan *pl, const attn_ctx *ctx,
                                   const attn_io *io, const attn_grads *g, const float *di, float *dqp)
{
    int64_t S = pl->stripes, head = a->Nq * pl->dqld, tasks = a->B * a->H_kv * S;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally tally = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t s = task % S, bh = task / S, b = bh / a->H_kv, hk = bh % a->H_kv;
            float *dq = dqp + s * a->B * a->H * head;
            /* this task alone writes its partial's rows of the G heads */
            memset(dq + (b * a->H + hk * pl->G) * head, 0, sizeof(float) * (size_t)(pl->G * head));
            for (int64_t kt = s; kt < pl->nkt; kt += S)
                flash_dkdv_tile(a, pl, io, g, di, b, hk, kt * pl->bc, dq, ws, &tally);
        }
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < a->B * a->H; bh++) {
            int64_t b = bh / a->H, h = bh % a->H, nq = attn_q_len(a, b);
            for (int64_t i = 0; i < nq; i++) {
                float *out = attn_at(&g->dq, b, h, i);
                const float *p = dqp + bh * head + i * pl->dqld;
                for (int64_t d = 0; d < a->D; d++)
                    out[d] = p[d];
                for (int64_t s = 1; s < S; s++)
                    for (int64_t d = 0; d < a->D; d++)
                        out[d] += p[s * a->B * a->H * head + d];
            }
            flash_empty_rows(a, &g->dq, NULL, b, h, nq, a->Nq); /* padded query rows: no gradient */
        }
        flash_tally_flush(&tally);
    }
}

static int flash_backward_f32(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    flash_plan pl;
    int rc = attn_flash_plan(&pl, a);
    if (rc)
        return rc;
    float *di = (float *)ctx->workspace + pl.thread_floats * (size_t)a->threads;
    flash_row_dots(a, io, g, di);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(8 * a->B * a->H * a->Nq * a->D));
    const flash_gather *gp = ctx->priv;
    if (flash_gather_fits(gp, a) && gp->backward) {
        flash_gather_backward(ctx, &pl, gp, io, g, di);
        return 0;
    }
    if (pl.stripes) {
        flash_backward_onepass(a, &pl, ctx, io, g, di, di + pl.di_floats);
        return 0;
    }
    /* memory-budget mode: the two passes, whose workspace does not grow with N */
    int64_t tasks_kv = a->B * a->H_kv * pl.nkt, tasks_q = a->B * a->H * pl.nqt;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally tally = {0};
        float *ws = flash_slot(ctx, &pl, omp_get_thread_num());
        /* nowait: pass B reads only inputs, lse and Di and writes only dQ, so a
         * thread done with pass A may start on it; every task still runs whole
         * on one thread in its fixed order */
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t task = 0; task < tasks_kv; task++) {
            int64_t bh = task / pl.nkt, j0 = task % pl.nkt * pl.bc;
            flash_dkdv_tile(a, &pl, io, g, di, bh / a->H_kv, bh % a->H_kv, j0, NULL, ws, &tally);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks_q; task++) {
            int64_t qt = pl.nqt - 1 - task % pl.nqt, bh = task / pl.nqt;
            flash_dq_tile(a, &pl, io, g, di, bh / a->H, bh % a->H, qt * pl.br, ws, &tally);
        }
        flash_tally_flush(&tally);
    }
    return 0;
}

int attn_flash_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    flash_plan pl;
    int rc = attn_flash_plan(&pl, a);
    if (rc)
        return rc;
    if (!pl.di_floats)
        return attn_fail(ATTN_EINVAL, "flash backward: context was created without args.backward = 1, "
                                      "so its workspace has no room for the backward");
    return attn_lowp_backward(ctx, io, g, flash_backward_f32);
}
