/* The per-row path of `flash` (flash_rows.h): the bitmap of the mask, built
 * once at init, and the forward over it. One task is a block of rb query
 * rows of the G heads of one KV head; it walks the key tiles in ascending
 * order and, per tile, its rows in order twice: first each row's kept keys
 * of the tile listed from its bits, their scores and the online-softmax
 * step, then the P V update of every row on exactly those keys. Tasks are independent and each runs in a
 * fixed order, so results are bitwise identical for any thread count. */
#include "flash_rows.h"

#include <omp.h>
#include <xmmintrin.h>
#include <stdlib.h>
#include <string.h>

int64_t flash_rows_tile(int64_t D)
{
    /* K and V rows of a tile: 2 * 4 * D * tile bytes <= 128 KiB (256 keys
     * at D = 64). Measured at N = 4096, D = 64 on random masks: 256-key tiles
     * ran 15-25 % faster than 1024 (the rows are read at random, from L2)
     * and 64 slower (the per-row step of each tile dominates). */
    int64_t t = 16384 / (D > 0 ? D : 1) / 64 * 64;
    return t < 64 ? 64 : t;
}

/* Rows per pass (rows_block_forward): bounds the keys and probabilities
 * a task keeps between its two passes to 64 rows of a tile (128 KiB at
 * D = 64, 512 KiB at D = 16), where the whole block's would take 1 MiB at
 * D = 64 and 16 MiB at D = 16. */
#define FLASH_ROWS_SUB 64

int64_t flash_rows_rb(int64_t G, int64_t D)
{
    /* at N = 16K, D = 64 blocks of 64 rows read every tile from L3 or
     * memory once per 64 rows, at random, and ran slower per pair than at
     * N = 4K; 512 rows amortise that eightfold */
    int64_t rb = 32768 / (G * flash_round16(D));
    return rb < 16 ? 16 : rb;
}

int64_t flash_rows_slot_floats(const attn_args *a, const flash_plan *pl)
{
    int64_t Dp = flash_round16(a->D), rows = pl->G * flash_rows_rb(pl->G, a->D), tile = flash_rows_tile(a->D);
    /* scaled Q rows and accumulators; m, l, the rescale factor and the key
     * count per row; the keys and probabilities of one tile of a sub-block's
     * rows (plus
     * the 16 past the last row's that its list and scores may write), and
     * the rounding of each carve */
    return 2 * rows * Dp + 4 * rows + 2 * (FLASH_ROWS_SUB * tile + 32) + 8 * 16;
}

void flash_rows_free(flash_rows *r)
{
    if (!r)
        return;
    free(r->bits);
    free(r);
}

int flash_rows_build(const attn_args *a, double max_bytes, flash_rows **out)
{
    *out = NULL;
    int v = attn_mask_varies(&a->mask);
    int64_t layouts = v & 2 ? a->B : 1, heads = v & 1 ? a->H : 1, tile = flash_rows_tile(a->D);
    int64_t wt = tile / 64, ntiles = (a->Nk + tile - 1) / tile, words = ntiles * wt;
    double bytes = 8.0 * (double)(layouts * heads * a->Nq * words);
    if (max_bytes > 0 && bytes > max_bytes)
        return 0;
    flash_rows *r = calloc(1, sizeof *r);
    if (!r)
        return attn_fail(ATTN_ENOMEM, "flash rows: cannot allocate its bitmap");
    r->n_layouts = layouts, r->n_heads = heads, r->words = words;
    r->tile = tile, r->rb = flash_rows_rb(a->H / a->H_kv, a->D);
    r->bits = calloc((size_t)(layouts * heads * a->Nq * words), sizeof(uint64_t));
    if (!r->bits) {
        flash_rows_free(r);
        return attn_fail(ATTN_ENOMEM, "flash rows: cannot allocate a bitmap of %.0f bytes", bytes);
    }
    int64_t units = layouts * heads * a->Nq;
    int failed = 0;
    double pairs = 0;
#pragma omp parallel num_threads(a->threads) reduction(+ : pairs)
    {
        unsigned char *row = malloc((size_t)(a->Nk ? a->Nk : 1));
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t u = 0; u < units; u++) {
            if (!row)
                continue;
            int64_t i = u % a->Nq, h = u / a->Nq % heads, b = u / a->Nq / heads;
            attn_mask_row(&a->mask, b, h, a->q_off + i, a->k_off, a->Nk, row);
            for (int64_t t = 0; t < ntiles; t++) {
                uint64_t *w = r->bits + (((b * heads + h) * ntiles + t) * a->Nq + i) * wt;
                for (int64_t j = t * tile; j < a->Nk && j < (t + 1) * tile; j++)
                    w[(j - t * tile) / 64] |= (uint64_t)(row[j] != 0) << (j % 64);
                for (int64_t x = 0; x < wt; x++)
                    pairs += (double)__builtin_popcountll(w[x]);
            }
        }
        free(row);
    }
    if (failed) {
        flash_rows_free(r);
        return attn_fail(ATTN_ENOMEM, "flash rows: cannot allocate its row buffers");
    }
    /* every query head of the stored layouts, and the rows' visits of the key
     * tiles (the cost model of flash.c's auto choice) */
    r->work = pairs * (double)(a->H / heads);
    r->row_tiles = (double)(layouts * a->H * a->Nq) * (double)((a->Nk + r->tile - 1) / r->tile);
    *out = r;
    return 0;
}

/* Rows [i0, i0 + nb) of the G heads of KV head hk of batch b. Per key tile
 * two passes over the rows: the scores pass reads only the tile's K rows
 * (which then stay in L1) and leaves each row's probabilities and rescale
 * factor in ps and alpha; the P V pass reads only its V rows. */
static void rows_block_forward(const attn_args *a, const flash_rows *r, flash_rows_isa isa, const attn_io *io,
                               int64_t b, int64_t hk, int64_t G, int64_t i0, int64_t nb, float *ws, flash_tally *t)
{
    int64_t D = a->D, Dp = flash_round16(D), n_rows = G * nb;
    float *qs = flash_take(&ws, n_rows * Dp), *acc = flash_take(&ws, n_rows * Dp);
    float *m = flash_take(&ws, n_rows), *l = flash_take(&ws, n_rows), *alpha = flash_take(&ws, n_rows);
    int32_t *cnt = (int32_t *)flash_take(&ws, n_rows);
    float *ps = flash_take(&ws, FLASH_ROWS_SUB * r->tile + 32);
    int32_t *is = (int32_t *)flash_take(&ws, FLASH_ROWS_SUB * r->tile + 32);
    float sc = (float)attn_scale(a);
    int64_t layout = r->n_layouts > 1 ? b : 0;

    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            const float *q = attn_at(&io->q, b, hk * G + g, i0 + i);
            float *qr = qs + (g * nb + i) * Dp;
            for (int64_t d = 0; d < Dp; d++)
                qr[d] = d < D ? sc * q[d] : 0.0f;
        }
    memset(acc, 0, sizeof(float) * (size_t)(n_rows * Dp));
    for (int64_t x = 0; x < n_rows; x++)
        m[x] = -INFINITY, l[x] = 0;
    t->bytes += 4.0 * (double)(n_rows * D);

    const float *K = attn_at(&io->k, b, hk, 0), *V = attn_at(&io->v, b, hk, 0);
    int64_t wt = r->tile / 64, ntiles = (a->Nk + r->tile - 1) / r->tile;
    double pairs = 0;
    for (int64_t j0 = 0; j0 < a->Nk; j0 += r->tile) {
        int64_t nt = a->Nk - j0 < r->tile ? a->Nk - j0 : r->tile, nw = (nt + 63) / 64, tl = j0 / r->tile;
        /* the next tile's K and V rows into L2 in order, while this one is
         * computed: the passes below read them at random */
        for (int64_t j = j0 + r->tile; j < a->Nk && j < j0 + 2 * r->tile; j++)
            for (int64_t d = 0; d < D; d += 16) {
                _mm_prefetch((const char *)(K + j * io->k.sn + d), _MM_HINT_T1);
                _mm_prefetch((const char *)(V + j * io->v.sn + d), _MM_HINT_T1);
            }
        /* per sub-block of FLASH_ROWS_SUB rows (which bounds the buffers;
         * both the tile's K and V rows stay in L2 across sub-blocks), the
         * scores pass: per row its kept keys (listed from its bits) and their
         * scores, then the online-softmax step on them; each row's keys and
         * probabilities stay in is and ps at its offset for the P V pass */
        for (int64_t x0 = 0; x0 < n_rows; x0 += FLASH_ROWS_SUB) {
            int64_t x1 = n_rows - x0 < FLASH_ROWS_SUB ? n_rows : x0 + FLASH_ROWS_SUB, off = 0;
            for (int64_t x = x0; x < x1; x++) {
                int64_t g = x / nb, i = x % nb, h = r->n_heads > 1 ? hk * G + g : 0;
                const uint64_t *bits = r->bits + (((layout * r->n_heads + h) * ntiles + tl) * a->Nq + i0 + i) * wt;
                int32_t *idx = is + off;
                int64_t n = flash_rows_list(bits, nw, (int32_t)j0, idx);
                cnt[x] = (int32_t)n;
                alpha[x] = 1.0f;
                if (!n)
                    continue;
                for (int64_t k = n; k < flash_round16(n); k++)
                    idx[k] = idx[0]; /* computed, not used (the next row's list overwrites them) */
                flash_rows_dot(isa, qs + x * Dp, K, io->k.sn, idx, n, D, ps + off);
                alpha[x] = flash_rows_softmax(isa, ps + off, n, m + x, l + x);
                off += n;
            }
            pairs += (double)off;
            /* P V pass, the rows in the same order */
            off = 0;
            for (int64_t x = x0; x < x1; x++)
                if (cnt[x]) {
                    flash_rows_pv(isa, acc + x * Dp, alpha[x], ps + off, V, io->v.sn, is + off, cnt[x], D);
                    off += cnt[x];
                }
        }
        t->computed += (double)G;
    }
    t->flops += 4.0 * (double)D * pairs;
    t->exps += pairs + (double)n_rows;
    t->bytes += 8.0 * (double)D * pairs;

    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            int64_t x = g * nb + i, n = i0 + i;
            float *o = attn_at(&io->o, b, hk * G + g, n);
            for (int64_t d = 0; d < D; d++)
                o[d] = l[x] > 0 ? acc[x * Dp + d] / l[x] : 0.0f;
            io->lse[((b * a->H) + hk * G + g) * a->Nq + n] = l[x] > 0 ? m[x] + logf(l[x]) : -INFINITY;
        }
}

void flash_rows_forward(const attn_ctx *ctx, const flash_plan *pl, const flash_rows *r, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t nblk = (a->Nq + r->rb - 1) / r->rb, tasks = a->B * a->H_kv * nblk;
    flash_rows_isa isa = flash_rows_best_isa();
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
        /* dynamic: rows differ in their number of kept keys */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t blk = task % nblk, bh = task / nblk, i0 = blk * r->rb;
            int64_t nb = a->Nq - i0 < r->rb ? a->Nq - i0 : r->rb;
            rows_block_forward(a, r, isa, io, bh / a->H_kv, bh % a->H_kv, pl->G, i0, nb, ws, &t);
        }
        flash_tally_flush(&t);
    }
}
