/* `flash` on bf16 or fp16 operands (attn_args.dtype; docs/dtypes.md): the
 * 16-bit Q, K, V (O and dO in a backward) are widened to fp32 into the
 * context's workspace by the vector conversions of dtype.h, the fp32 pass
 * runs on them, and O (dQ, dK, dV) are rounded to the operand type as they
 * are written back. Accumulation, the online softmax and the LSE are fp32. */
#ifndef ATTN_FLASH_LOWP_H
#define ATTN_FLASH_LOWP_H

#include "kernels/core/attn.h"

typedef int (*flash_fwd_fn)(attn_ctx *ctx, const attn_io *io);
typedef int (*flash_bwd_fn)(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Workspace floats the widened operands take (0 for fp32), placed after
 * the fp32 passes' own `before` floats. */
size_t flash_lowp_floats(const attn_args *a);

/* The pass f32 on the widened operands of io (and g), the results rounded
 * into io->oh (g->dqh, dkh, dvh). `before`: the fp32 passes' workspace floats. */
int flash_lowp_forward(attn_ctx *ctx, size_t before, const attn_io *io, flash_fwd_fn f32);
int flash_lowp_backward(attn_ctx *ctx, size_t before, const attn_io *io, const attn_grads *g, flash_bwd_fn f32);

#endif
