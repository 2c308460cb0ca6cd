/* `ponet`: PoNet's pooling token mixer (Tan et al. 2021, "PoNet: Pooling
 * Network for Efficient Token Mixing in Long Sequences"; docs/kernels/ponet.md).
 * Encoder only (FULL mask). Per (b, h), rows i of Q, K, V and of the two
 * per-token projections in io.router ([B,H_kv,N,2D]: columns [0,D) segment
 * projection Sg, [D,2D) local projection L):
 *
 *   global   g = mean_i Q_i,  a = softmax_j(sc <g, K_j>),  gp = sum_j a_j K_j
 *   segment  s_i = max over the segment of i of Sg_j     (per channel)
 *   local    l_i = max over |j - i| <= window/2 of L_j   (per channel)
 *   output   o_i = (gp + s_i) (.) V_i + l_i
 *
 * V carries the paper's per-token output projection O; the global
 * aggregation's values are K, as in the released code. Under GQA the query
 * heads of a group share K, V and the projections; each has its own g.
 * Padded batches (attn_args.seq_len): sequence b is its first n rows, pooled
 * and averaged alone (its segments from n); padding rows get O = 0 and zero
 * gradients and are never read. */
#ifndef ATTN_PONET_H
#define ATTN_PONET_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_ponet;

typedef struct {
    int64_t half;    /* local window reaches half tokens each side (window = 2 half + 1) */
    int64_t n_seg;   /* segments of ceil(n / n_seg) tokens, n the sequence's length */
    double sc;       /* score scale of the global aggregation */
} ponet_plan;

/* Parses and checks window and n_seg (0, or ATTN_EINVAL with a message). */
int attn_ponet_plan(ponet_plan *pl, const attn_args *a);

/* First and one-past-last token of the segment holding token i of a
 * sequence of n tokens (segments of ceil(n / n_seg) tokens). */
void attn_ponet_segment(const ponet_plan *pl, int64_t n, int64_t i, int64_t *lo, int64_t *hi);

/* First and one-past-last token of the local window of token i. */
void attn_ponet_window(const ponet_plan *pl, int64_t N, int64_t i, int64_t *lo, int64_t *hi);

/* Scratch buffers start on 16-float (64-byte) boundaries. */
#define PONET_ROUND16(n) (((n) + 15) / 16 * 16)

/* Plain double reference of the formulas (ponet_ref.c; writes io->o). */
int attn_ponet_ref_forward(const attn_args *a, const attn_io64 *io);

/* Backward (ponet_bwd.c). */
int attn_ponet_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Shared by forward and backward (ponet.c): the global aggregation of one
 * (b, h). q, k are N x D with row strides; writes g [D], a [N] (the softmax
 * weights) and gp [D]. */
void attn_ponet_global(const ponet_plan *pl, int64_t N, int64_t D, const float *q, int64_t ldq, const float *k,
                       int64_t ldk, float *g, float *a, float *gp);
/* Per-thread scratch of n floats (the harness-sized workspace). */
float *attn_ponet_scratch(const attn_ctx *ctx, int thread);
size_t attn_ponet_thread_floats(const attn_args *a);

#endif
