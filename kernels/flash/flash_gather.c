/* The gathered forward of `flash` (flash_gather.h): per block of query rows,
 * the union of their keys gathered into contiguous K and V panels of at
 * most bc keys, then the tiled forward's online-softmax step on each panel
 * with the block's bits as the mask. Tasks are independent and each runs in
 * a fixed order, so results are bitwise identical for any thread count. */
#include "flash_gather.h"

#include <omp.h>
#include <string.h>

int64_t flash_gather_slot_floats(const attn_args *a, const flash_plan *pl)
{
    int64_t D = a->D, L = pl->glanes;
    /* Q^T, Acc^T, S^T, five per-lane vectors, the K and V panels, and the
     * rounding of each carve to 16 floats */
    return 2 * D * L + pl->bc * L + 5 * L + 2 * pl->bc * D + 10 * 16;
}

void flash_gather_mask_lanes(float *S, int64_t nk, int64_t lanes, const uint16_t *bits)
{
    int64_t words = lanes / 16;
#ifdef __AVX512F__
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < nk; j++)
        for (int64_t w = 0; w < words; w++) {
            float *s = S + j * lanes + 16 * w;
            _mm512_store_ps(s, _mm512_mask_mov_ps(ninf, (__mmask16)bits[j * words + w], _mm512_load_ps(s)));
        }
#else
    for (int64_t j = 0; j < nk; j++)
        for (int64_t r = 0; r < lanes; r++)
            S[j * lanes + r] = bits[j * words + r / 16] >> (r % 16) & 1 ? S[j * lanes + r] : -INFINITY;
#endif
}

void flash_gather_panel(const attn_tensor *t, int64_t b, int64_t hk, const int32_t *keys, int64_t n, float *panel)
{
    for (int64_t j = 0; j < n; j++)
        memcpy(panel + j * t->D, attn_at(t, b, hk, keys[j]), sizeof(float) * (size_t)t->D);
}

/* Block blk of KV head hk of batch b: its rows of the G heads hk*G.. */
static void gather_block_forward(const attn_args *a, const flash_plan *pl, const flash_gather *gp, const attn_io *io,
                                 int64_t b, int64_t hk, int64_t blk, float *ws, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, layout = (gp->n_layouts > 1 ? b : 0) * a->H_kv + hk;
    int64_t i0 = blk * gp->gbr, nb = a->Nq - i0 < gp->gbr ? a->Nq - i0 : gp->gbr;
    const int32_t *rows = gp->rows + layout * a->Nq + i0;
    const flash_gather_block *gb = gp->blocks + layout * gp->n_blocks + blk;
    int64_t lanes = flash_round16(G * nb), words = lanes / 16;
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes);
    float *acc = flash_take(&ws, D * lanes);
    float *m = flash_take(&ws, lanes), *l = flash_take(&ws, lanes);
    float *alpha = flash_take(&ws, lanes), *shift = flash_take(&ws, lanes), *tmax = flash_take(&ws, lanes);
    float *kp = flash_take(&ws, pl->bc * D), *vp = flash_take(&ws, pl->bc * D);

    flash_lanes_pack_rows(&io->q, b, hk * G, G, 0, rows, nb, lanes, (float)attn_scale(a), qt);
    memset(acc, 0, sizeof(float) * (size_t)(D * lanes));
    for (int64_t r = 0; r < lanes; r++)
        m[r] = -INFINITY, l[r] = 0;
    t->bytes += 4.0 * (double)(G * nb * D);

    for (int64_t c0 = 0; c0 < gb->n_keys; c0 += pl->bc) {
        int64_t nk = gb->n_keys - c0 < pl->bc ? gb->n_keys - c0 : pl->bc;
        flash_gather_panel(&io->k, b, hk, gb->keys + c0, nk, kp);
        flash_gather_panel(&io->v, b, hk, gb->keys + c0, nk, vp);
        // S^T (nk, lanes) = Kp (nk, D) @ qt (D, lanes), disallowed lanes -inf, tmax = max(m, max_j S^T)
        memcpy(tmax, m, sizeof(float) * (size_t)lanes);
        t->flops += attn_mk_gemm(nk, lanes, D, kp, D, 1, qt, lanes, S, lanes, ATTN_MK_SET, NULL, NULL);
        flash_gather_mask_lanes(S, nk, lanes, gb->bits + c0 * words);
        flash_lanes_max(S, nk, lanes, tmax);
        flash_lanes_online_softmax(S, nk, lanes, tmax, m, l, alpha, shift);
        // acc^T (D, lanes) = acc^T * diag(alpha) + Vp^T (D, nk) @ P^T (nk, lanes)
        t->flops += attn_mk_gemm(D, lanes, nk, vp, 1, D, S, lanes, acc, lanes, ATTN_MK_SCALE_ADD, alpha, NULL);
        t->exps += (double)((nk + 1) * lanes);
        t->computed += (double)G;
        t->bytes += 8.0 * (double)(nk * D);
    }
    flash_lanes_store_o(a, io, b, hk * G, G, 0, rows, nb, lanes, acc, m, l);
}

void flash_gather_forward(const attn_ctx *ctx, const flash_plan *pl, const flash_gather *gp, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t tasks = a->B * a->H_kv * gp->n_blocks;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
        /* dynamic: blocks differ in their number of keys */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t blk = gp->n_blocks - 1 - task % gp->n_blocks, bh = task / gp->n_blocks;
            gather_block_forward(a, pl, gp, io, bh / a->H_kv, bh % a->H_kv, blk, ws, &t);
        }
        flash_tally_flush(&t);
    }
}
