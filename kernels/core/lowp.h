/* A kernel on bf16 or fp16 operands (attn_args.dtype; docs/dtypes.md) by
 * conversion: the 16-bit Q, K, V (O and dO in a backward) are widened to fp32
 * into the end of the context's workspace by the vector conversions of
 * dtype.h, the kernel's fp32 pass runs on them, and O (dQ, dK, dV) are
 * rounded to the operand type as they are written back. Accumulation, state,
 * the softmax statistics and the LSE stay fp32; a kernel's extra inputs
 * (gates, write strengths) and their gradients stay fp32 tensors. */
#ifndef ATTN_LOWP_H
#define ATTN_LOWP_H

#include "attn.h"

typedef int (*attn_fwd_fn)(attn_ctx *ctx, const attn_io *io);
typedef int (*attn_bwd_fn)(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Bytes the widened operands take (0 for fp32). */
size_t attn_lowp_bytes(const attn_kernel *k, const attn_args *a);

/* At the end of init: the widened operands after the kernel's own
 * workspace (rounded up to 64 bytes). Nothing for fp32. */
void attn_lowp_reserve(attn_ctx *ctx);

/* The pass f32 on the widened operands of io (and g), the results rounded
 * into io->oh (g->dqh, dkh, dvh); with fp32 operands, f32 on io itself.
 * ATTN_EINVAL naming them when a 16-bit tensor is missing. */
int attn_lowp_forward(attn_ctx *ctx, const attn_io *io, attn_fwd_fn f32);
int attn_lowp_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g, attn_bwd_fn f32);

#endif
