/* `aaren`: attention as an RNN (Feng et al. 2024, "Attention as an RNN";
 * docs/kernels/aaren.md). One learned query per head (Q is [B,H,1,D],
 * ATTN_ONE_QUERY) and an output at every key position: O[b,h,t] is the
 * softmax attention of that query over keys 0..t (within t's document under
 * a DOCUMENT mask), computed as a parallel prefix scan. Causality is
 * intrinsic; the query has no position of its own (q_off is not used).
 *
 * lse is left untouched: it is [B,H,1] and cannot hold the per-step
 * logsumexp; the backward recomputes what it needs. */
#ifndef ATTN_AAREN_H
#define ATTN_AAREN_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_aaren;

#endif
