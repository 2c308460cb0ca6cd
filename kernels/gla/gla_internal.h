/* The chunked GLA forward and backward of one (batch, KV head) slice with
 * explicit segments, exposed for kernels that run GLA over a selection of
 * tokens (sse: each partition's gathered bucket, see sse.c). gla.c and
 * gla_bwd.c call the same functions for their own slices, so gla's results are
 * those of these functions.
 *
 * The slice is KV head hk of batch b of the given tensors: Q, O rows of the G
 * query heads hk*G .. hk*G+G-1, K, V, gate rows of KV head hk (any strides, so
 * a gathered buffer viewed as B = 1, H = G works with b = hk = 0). Segments:
 * seg[0] < seg[1] < ... < seg[nseg] are row indices; the state restarts at 0
 * at each seg[i] and rows outside [seg[0], seg[nseg]) are not touched. Empty
 * segments (seg[i] == seg[i+1]) are not allowed. w is the scalar log-decay
 * (retnet/lightning presets; ignored for gla), sc the query scale, ws one
 * per-thread slot of pl->thread_floats floats (64-byte aligned). */
#ifndef ATTN_GLA_CORE_H
#define ATTN_GLA_CORE_H

#include "gla.h"

/* Forward: O of the slice; S (Dk x Dv) ends as the state after the last row
 * (unchanged when nseg = 0). Returns the executed matrix-product FLOPs. */
double attn_gla_forward_slice(const gla_plan *pl, const attn_io *io, int64_t b, int64_t hk, const int64_t *seg,
                              int64_t nseg, double w, float sc, float *S, float *ws);

/* Backward (plan made with args.backward = 1): writes (not accumulates) dQ of
 * the G query heads and dK, dV, dgate (gla) of the KV head, from g->d_o.
 * Returns the executed matrix-product FLOPs. */
double attn_gla_backward_slice(const gla_plan *pl, const attn_io *io, const attn_grads *g, int64_t b, int64_t hk,
                               const int64_t *seg, int64_t nseg, double w, float sc, float *ws);

#endif
