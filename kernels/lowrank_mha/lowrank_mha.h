/* `lowrank_mha`: low-rank multi-head attention pooling (Mehta, Rangwala,
 * Ramakrishnan 2019, "Low Rank Factorization for Compact Multi-Head
 * Self-Attention"; docs/kernels/lowrank_mha.md). An encoder pooling mixer: m
 * heads pool the sequence against one global context with a shared low-rank
 * bilinear form. Per (b, h), X the rows 0..n-1 of Q (the block input; K and
 * V are not read):
 *
 *   c = mean_j x_j,   u = U^T c,   k_j = V^T x_j            (U, V: D x r)
 *   f_ij = <p_i (.) u, k_j>,   a_ij = softmax_j f_ij        (no 1/sqrt(r))
 *   e_i = sum_j a_ij x_j  (i < m),   o_t = (1/m) sum_i e_i  for every row t < n
 *
 * The m x D matrix of head vectors enters the model as its mean, broadcast to
 * every real row (padding rows get 0): a classifier pooling the sequence (cls
 * or mean) reads it, and with m = 1 per model head the model's output
 * projection over its H heads is the paper's linear layer on the flattened
 * H x D matrix. Learned weights io.w [1, H, 1, 2 D r + m r] per head: U
 * (row-major D x r) at 0, V at D r, p_i (m x r) at 2 D r. */
#ifndef ATTN_LOWRANK_MHA_H
#define ATTN_LOWRANK_MHA_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_lowrank_mha;

typedef struct {
    int64_t m, r;            /* pooling heads, rank */
    int64_t off_v, off_p, W; /* weight layout */
} lowrank_plan;

/* Parses and checks m and r (0, or ATTN_EINVAL with a message). */
int attn_lowrank_plan(lowrank_plan *pl, const attn_args *a);

/* Buffers inside the scratch start on 16-float (64-byte) boundaries. */
#define LOWRANK_ROUND16(n) (((n) + 15) / 16 * 16)

/* Per-thread scratch and its pieces (lowrank_mha.c). */
typedef struct {
    float *kmat, *att, *datt, *dk, *q, *dq, *e, *c, *u, *du, *dc;
} lowrank_scratch;
size_t attn_lowrank_thread_floats(const attn_args *a, const lowrank_plan *pl);
lowrank_scratch attn_lowrank_scratch(const attn_ctx *ctx, const lowrank_plan *pl, int thread);
float *attn_lowrank_dw_partial(const attn_ctx *ctx, const lowrank_plan *pl, int64_t b, int64_t h);

/* The forward of one (b, h) of n rows x (row stride ldx), up to the head
 * vectors: s.c, s.u, s.kmat (n x r), s.q (m x r), s.att (m x n, the softmax
 * weights), s.e (m x D). */
void attn_lowrank_pool(const lowrank_plan *pl, int64_t n, int64_t D, const float *x, int64_t ldx, const float *w,
                       const lowrank_scratch *s);

/* Plain double reference (writes io->o). */
int attn_lowrank_ref_forward(const attn_args *a, const attn_io64 *io);

/* Backward (lowrank_mha_bwd.c). */
int attn_lowrank_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

#endif
