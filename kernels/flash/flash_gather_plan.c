/* The gathered path's index (flash_gather.h): row order, row blocks, the
 * union of keys of each block and the per-lane bits, built once at init from
 * the mask's own row predicate. */
#include "flash_gather.h"
#include "flash_rows.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Query rows in block order for the heads from h0: by position modulo the
 * mask's row period (a dilated mask's rows of one residue class see keys of
 * one class, so a block of them shares most keys), ascending within a class. */
static void gather_row_order(const attn_args *a, int64_t h0, int32_t *rows)
{
    int64_t per = attn_mask_row_period(&a->mask, h0), n = 0;
    per = per < 1 ? 1 : per;
    for (int64_t res = 0; res < per; res++)
        for (int64_t i = ((res - a->q_off) % per + per) % per; i < a->Nq; i += per)
            rows[n++] = (int32_t)i;
}

static inline int64_t gather_lanes(int64_t G, int64_t nb) { return flash_round16(G * nb); }

/* The mask bytes of every distinct lane of a block into buf (row r of Nk
 * bytes: r = g*nb + i when the mask differs between heads, i otherwise) and
 * their OR into any. Returns the number of distinct rows. */
static int64_t gather_row_bytes(const attn_args *a, int64_t b, int64_t h0, int64_t G, const int32_t *rows,
                                int64_t nb, unsigned char *buf, unsigned char *any)
{
    int64_t Nk = a->Nk, heads = attn_mask_varies(&a->mask) & 1 ? G : 1;
    memset(any, 0, (size_t)Nk);
    for (int64_t g = 0; g < heads; g++)
        for (int64_t i = 0; i < nb; i++) {
            unsigned char *row = buf + (g * nb + i) * Nk;
            attn_mask_row(&a->mask, b, h0 + g, a->q_off + rows[i], a->k_off, Nk, row);
            for (int64_t j = 0; j < Nk; j++)
                any[j] |= row[j];
        }
    return heads * nb;
}

/* One block: rows[0..nb) of the G heads from h0 of batch b. buf holds
 * G*gbr*Nk bytes, any Nk. Returns 0 or ATTN_ENOMEM (nothing recorded: the
 * caller may be one of several threads). */
static int gather_block(const attn_args *a, int64_t b, int64_t h0, int64_t G, const int32_t *rows, int64_t nb,
                        unsigned char *buf, unsigned char *any, flash_gather_block *blk)
{
    int64_t Nk = a->Nk, words = gather_lanes(G, nb) / 16, n = 0, u = 0;
    int64_t distinct = gather_row_bytes(a, b, h0, G, rows, nb, buf, any);
    for (int64_t j = 0; j < Nk; j++)
        n += any[j];
    blk->n_keys = n;
    blk->keys = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    blk->bits = calloc((size_t)(n ? n * words : 1), sizeof(uint16_t));
    if (!blk->keys || !blk->bits)
        return ATTN_ENOMEM;
    for (int64_t j = 0; j < Nk; j++) {
        if (!any[j])
            continue;
        blk->keys[u] = (int32_t)j;
        uint16_t *w = blk->bits + u * words;
        for (int64_t g = 0; g < G; g++)
            for (int64_t i = 0; i < nb; i++) {
                int64_t r = g * nb + i, src = distinct > nb ? r : i;
                if (buf[src * Nk + j])
                    w[r / 16] |= (uint16_t)(1u << (r % 16));
            }
        u++;
    }
    return 0;
}

void flash_gather_free(flash_gather *gp)
{
    if (!gp)
        return;
    int64_t n = gp->blocks ? gp->n_layouts * gp->H_kv * gp->n_blocks : 0;
    for (int64_t u = 0; u < n; u++)
        free(gp->blocks[u].keys), free(gp->blocks[u].bits);
    free(gp->blocks);
    free(gp->rows);
    flash_rows_free(gp->rows_path);
    free(gp);
}

/* Every block of the index, in parallel: each thread its own row bytes.
 * Returns 0, ATTN_ENOMEM, or 1 when the blocks' lists pass max_bytes (> 0). */
static int gather_build_blocks(const attn_args *a, const flash_plan *pl, double max_bytes, flash_gather *gp)
{
    int64_t units = gp->n_layouts * a->H_kv * gp->n_blocks, G = pl->G;
    size_t buf_bytes = (size_t)(G * gp->gbr * a->Nk);
    int failed = 0, over = 0;
    double work = 0, bytes = 0;
#pragma omp parallel num_threads(a->threads) reduction(+ : work)
    {
        unsigned char *buf = malloc(buf_bytes), *any = malloc((size_t)a->Nk);
        if (!buf || !any) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < units; u++) {
            int stop, too_big;
#pragma omp atomic read
            stop = failed;
#pragma omp atomic read
            too_big = over;
            if (stop || too_big)
                continue;
            int64_t blk = u % gp->n_blocks, lh = u / gp->n_blocks, hk = lh % a->H_kv, b = lh / a->H_kv;
            int64_t i0 = blk * gp->gbr, nb = a->Nq - i0 < gp->gbr ? a->Nq - i0 : gp->gbr;
            const int32_t *rows = gp->rows + lh * a->Nq + i0;
            if (gather_block(a, b, hk * G, G, rows, nb, buf, any, &gp->blocks[u]) != 0) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            int64_t lanes = gather_lanes(G, nb);
            double mine = (double)gp->blocks[u].n_keys * (4.0 + (double)lanes / 8), total;
#pragma omp atomic capture
            total = bytes += mine;
            if (max_bytes > 0 && total > max_bytes) {
#pragma omp atomic write
                over = 1;
            }
            work += (double)lanes * (double)gp->blocks[u].n_keys;
        }
        free(buf);
        free(any);
    }
    gp->work = work;
    return failed ? ATTN_ENOMEM : over;
}

int flash_gather_build(const attn_args *a, const flash_plan *pl, double max_bytes, flash_gather **out)
{
    *out = NULL;
    flash_gather *gp = calloc(1, sizeof *gp);
    if (!gp)
        return attn_fail(ATTN_ENOMEM, "flash gather: cannot allocate its index");
    gp->B = a->B, gp->H = a->H, gp->H_kv = a->H_kv, gp->Nq = a->Nq, gp->Nk = a->Nk;
    gp->q_off = a->q_off, gp->k_off = a->k_off;
    gp->n_layouts = attn_mask_varies(&a->mask) & 2 ? a->B : 1;
    gp->gbr = pl->gbr, gp->lanes = pl->glanes;
    gp->n_blocks = (a->Nq + gp->gbr - 1) / gp->gbr;
    int64_t lh = gp->n_layouts * a->H_kv;
    gp->rows = malloc(sizeof(int32_t) * (size_t)(lh * a->Nq));
    gp->blocks = calloc((size_t)(lh * gp->n_blocks), sizeof *gp->blocks);
    if (!gp->rows || !gp->blocks) {
        flash_gather_free(gp);
        return attn_fail(ATTN_ENOMEM, "flash gather: cannot allocate its index");
    }
    for (int64_t u = 0; u < lh; u++)
        gather_row_order(a, u % a->H_kv * pl->G, gp->rows + u * a->Nq);
    int rc = gather_build_blocks(a, pl, max_bytes, gp);
    if (rc != 0) {
        long long blocks = (long long)(lh * gp->n_blocks);
        flash_gather_free(gp);
        return rc > 0 ? 0 : attn_fail(ATTN_ENOMEM, "flash gather: cannot allocate the key lists of %lld row blocks",
                                      blocks);
    }
    *out = gp;
    return 0;
}
