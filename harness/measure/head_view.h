/* One (b, h) head of a problem in double precision: what the correctness gate
 * and the fidelity report compare a kernel's fp32 rows with. Widening a head
 * (not the whole problem) keeps checks of N = 64K problems cheap. */
#ifndef ATTN_HEAD_VIEW_H
#define ATTN_HEAD_VIEW_H

#include "kernels/core/attn.h"

/* Rows n0 .. n0+rows-1 of head (b, h) of t, widened to a [1,1,rows,D] double
 * tensor (data NULL when t has none). Free data with free(). */
attn_tensor_f64 head_widen(const attn_tensor *t, int64_t b, int64_t h, int64_t n0, int64_t rows);

/* The same for head (b, h) of a stored KV cache (kv_format.h): its values
 * as the kernel reads them, dequantized by the plain loop. */
attn_tensor_f64 head_widen_cache(const attn_kv_cache *c, int64_t b, int64_t h, int64_t n0, int64_t rows);

/* The oracle's output row (orow[Dv]) for query row (b, h, i) over the widened
 * keys and values of its KV head; returns its lse. A padded row of a padded
 * batch (no keys) gives O = 0 and -inf. */
double head_oracle_row(const attn_args *a, const attn_io *io, const attn_tensor_f64 *k, const attn_tensor_f64 *v,
                       int64_t b, int64_t h, int64_t i, double *orow);

/* Head (b, h) of io as the inputs of a double problem of its own, `one`
 * (B = 1 and the problem's H and H_kv; one->Nq query rows and one->Nk keys
 * from the start of the head): every head is a view of head h's data (KV head
 * h/G's), because some kernels depend on the head index and count (per-head
 * decay schedules), so the answer for head h is head h of the reference's
 * output. Under GQA every group of query heads is a copy of h's own group
 * (head h reads its rows, its group mates theirs): a kernel that selects keys
 * from the whole group's scores (Recycled Attention) sees the group it ran on. The learned weights io.w keep all their rows (head h
 * reads its own; weights shared by the heads are found whole). x->o (o_rows x
 * Dv per head) and x->lse are allocated zeroed. */
void head_io64(const attn_args *one, const attn_io *io, int64_t b, int64_t h, int64_t o_rows, attn_io64 *x);
void head_io64_free(attn_io64 *x);

/* The sampled heads: up to 4 (b, h) pairs spread over the batch and heads. */
#define FOR_SAMPLED_HEADS(a, b, h)                                                              \
    for (int64_t bh_ = 0, step_ = (a)->B * (a)->H > 4 ? (a)->B * (a)->H / 4 : 1, b = 0, h = 0; \
         bh_ < (a)->B * (a)->H && (b = bh_ / (a)->H, h = bh_ % (a)->H, 1); bh_ += step_)

#endif
