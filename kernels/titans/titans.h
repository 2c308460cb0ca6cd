/* Titans' neural long-term memory (docs/kernels/titans.md): a linear memory
 * (or, memory=mlp, a two-layer MLP) trained at test time by gradient steps
 * on |M(k_t) - v_t|^2 with momentum and a forgetting gate, read by the queries; q and k L2-normalised inside
 * the kernel, gates per token from io.beta, io.gate and io.router. */
#ifndef ATTN_TITANS_H
#define ATTN_TITANS_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_titans;

#endif
