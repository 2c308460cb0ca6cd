/* Decode-time softmax attention over a long KV cache: `decode` (split-KV
 * partitions reduced by their logsumexp, as FlashDecoding) and `lean`
 * (Stream-K style equal work per thread across ragged sequences). */
#ifndef ATTN_DECODE_H
#define ATTN_DECODE_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_decode;
extern const attn_kernel attn_kernel_lean;

#endif
