/* The gathered path of `flash` (docs/kernels/flash.md, "Gathered path"): for
 * masks whose allowed pairs have no tile structure (dilated, Sparse
 * Transformer, random), which the tile classifier cannot skip, so the tiled
 * forward computes them at dense cost.
 *
 * At init the query rows of each (batch layout, KV head) are ordered so that
 * rows sharing keys sit together (a dilated mask's rows by position modulo
 * the dilation), cut into blocks of gbr rows, and for every block the union
 * of the keys any of its rows (of any of the G packed heads) attends is
 * listed, with one bit per (key, lane) saying whether that lane's row
 * attends it. The forward gathers each block's K and V rows into contiguous
 * panels and runs the tiled forward's online-softmax step over them, the
 * bits setting the disallowed scores to -inf. */
#ifndef ATTN_FLASH_GATHER_H
#define ATTN_FLASH_GATHER_H

#include "flash_internal.h"

typedef struct {
    int32_t *keys;         /* ascending key indices any row of the block attends */
    uint16_t *bits;        /* [key slot][lane / 16]: bit lane % 16 set if that lane attends the key */
    int64_t n_keys;
} flash_gather_block;

typedef struct flash_gather {
    int64_t B, H, H_kv, Nq, Nk, q_off, k_off; /* the problem it was built for */
    int64_t n_layouts;     /* batch entries with a layout of their own: B when the mask varies by batch, else 1 */
    int64_t gbr, lanes;    /* query rows per block; lanes = G*gbr rounded up to 16 */
    int64_t n_blocks;      /* blocks per (layout, KV head) */
    int32_t *rows;         /* [layout][KV head][Nq]: query rows in block order */
    flash_gather_block *blocks; /* [layout][KV head][block] */
    double work;           /* lanes x keys summed over the blocks (the scores the path computes) */
    int backward;          /* the backward runs on the index too (else the tiled backward) */
    struct flash_rows *rows_path; /* non-NULL: the forward takes the per-row path (flash_rows.h) on
                                   * this bitmap instead; the context then holds no blocks */
} flash_gather;

/* Builds the index of the problem a (plan pl, pl->gbr > 0) with up to
 * a->threads threads. With max_bytes > 0, an index whose key lists and bits
 * would pass it is abandoned: *out = NULL and 0 returned. */
int flash_gather_build(const attn_args *a, const flash_plan *pl, double max_bytes, flash_gather **out);
void flash_gather_free(flash_gather *gp);

/* Floats of one thread's workspace slot for the gathered forward. */
int64_t flash_gather_slot_floats(const attn_args *a, const flash_plan *pl);

/* S[j][r] = -inf where lane r does not attend panel key j: bit r % 16 of
 * bits[j*words + r/16] clear (nk rows of `lanes` floats, words = lanes/16). */
void flash_gather_mask_lanes(float *S, int64_t nk, int64_t lanes, const uint16_t *bits);

// panel (n, D) contiguous: panel[j] = t[b, hk, keys[j]]
void flash_gather_panel(const attn_tensor *t, int64_t b, int64_t hk, const int32_t *keys, int64_t n, float *panel);

/* The gathered forward; gp was built for ctx->args (flash_gather_fits). */
void flash_gather_forward(const attn_ctx *ctx, const flash_plan *pl, const flash_gather *gp, const attn_io *io);

/* The gathered backward from the forward's lse and di (<dO_i, O_i> of every
 * query row, [B, H, Nq]): dQ, dK and dV. */
void flash_gather_backward(const attn_ctx *ctx, const flash_plan *pl, const flash_gather *gp, const attn_io *io,
                           const attn_grads *g, const float *di);

/* Floats of one thread's workspace slot for the gathered backward. */
int64_t flash_gather_bwd_slot_floats(const attn_args *a, const flash_plan *pl);

/* 1 if gp was built for a problem of a's shape and positions (kernels that
 * reuse a flash context for smaller problems fall back to the tiled path).
 * The index is built at create time from the mask alone: a batch whose
 * lengths come later (a model binds seq_len per batch) has padded rows and
 * keys the index would visit, so it takes the tiled path, which skips them. */
static inline int flash_gather_fits(const flash_gather *gp, const attn_args *a)
{
    return gp && !a->seq_len && !a->kv_len && gp->B == a->B && gp->H == a->H && gp->H_kv == a->H_kv && gp->Nq == a->Nq && gp->Nk == a->Nk &&
           gp->q_off == a->q_off && gp->k_off == a->k_off;
}

#endif
