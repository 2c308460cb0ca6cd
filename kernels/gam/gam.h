/* `gam`: Gated Associative Memory (Acharya 2025, arXiv 2509.00605;
 * docs/kernels/gam.md), a token mixer: depthwise conv + softmax read of a learned
 * slot bank, fused by sigmoid gates. Q carries the block input X; K and V are
 * not read. The learned weights arrive through ATTN_IN_WEIGHTS. */
#ifndef ATTN_GAM_H
#define ATTN_GAM_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_gam;

/* Buffers inside the workspace start on 16-float (64-byte) boundaries. */
#define GAM_ROUND16(n) (((n) + 15) / 16 * 16)

/* Layout of one head's weight row (io.w [1,H,1,W]) and the problem's
 * parameters, from args (params slots, taps, scaled, tile, chunks). */
typedef struct {
    int64_t S, k;          /* slots, conv taps */
    int64_t shift;         /* tap tau multiplies x_{t - tau + shift}: 0 causal, k/2 FULL ("same") */
    float sc;              /* score scale: 1 (reference) or attn_scale(a) with scaled=1 */
    int64_t T, ntiles;     /* rows per tile, tiles per sequence */
    int64_t chunks;        /* backward: dW partial sums per head (fixed, not per thread) */
    int64_t W;             /* floats per head */
    int64_t off_taps, off_cbias, off_wg, off_bg; /* M [S x D] sits at 0 */
    size_t fwd_floats, bwd_floats; /* per-thread scratch */
} gam_plan;

/* Parses and checks the parameters (0, or ATTN_EINVAL with a message). */
int attn_gam_plan(gam_plan *pl, const attn_args *a);

/* Streaming form (CAUSAL only): output f [D] of token t from its input x [D]
 * and a ring buffer `ring` [(k-1) x D] holding the k-1 previous inputs, row
 * (t' mod (k-1)) for token t' (zeros before the sequence start); stores x
 * into the ring. w is the head's weight row. Same math as the parallel
 * forward, in a different summation order. */
int attn_gam_step(const attn_args *a, const float *w, float *ring, int64_t t, const float *x, float *f);

/* The conv tail the last forward of ctx kept for (b, h): the last k-1 input
 * rows [(k-1) x D], oldest first, zero rows where N < k-1. The whole state a
 * streaming continuation needs (ctx->state_bytes_used covers all (b, h)). */
const float *attn_gam_tail(const attn_ctx *ctx, int64_t b, int64_t h);

/* Plain double reference of the formulas (writes io->o). */
int attn_gam_ref_forward(const attn_args *a, const attn_io64 *io);

/* Backward (gam_bwd.c). */
int attn_gam_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Shared by forward and backward (gam.c). Shapes in the definitions. */
void attn_gam_global(const gam_plan *pl, int64_t D, const float *X, int64_t ldx, const float *w, int64_t nb,
                     float *P, float *Gm);
void attn_gam_gates(const gam_plan *pl, int64_t D, const float *X, int64_t ldx, const float *w, int64_t nb,
                    float *Gt);
void attn_gam_conv(const gam_plan *pl, int64_t N, int64_t D, const float *X, int64_t ldx, const float *w,
                   int64_t i0, int64_t nb, float *L);
float attn_gam_sigmoid(float x);
float *attn_gam_scratch(const attn_ctx *ctx, const gam_plan *pl, int thread);

#endif
