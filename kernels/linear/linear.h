/* Kernelised linear attention: `linear` (Katharopoulos et al. 2020, elu+1
 * feature map) and `based` (Arora et al. 2024, 2nd-order
 * Taylor feature map), docs/kernels/linear.md, both on the chunked core of linear_internal.h. */
#ifndef ATTN_LINEAR_H
#define ATTN_LINEAR_H

#include "linear_internal.h"

extern const attn_kernel attn_kernel_linear, attn_kernel_based;

/* The elu(x)+1 map of `linear` on D channels (F = D). */
void attn_linear_elu1_map(lin_fmap *m, int64_t D);

/* The Taylor map of `based` on d' = D channels: F = 1 + D + D(D+1)/2 unique
 * quadratic terms, or 1 + D + D*D with `full` (same inner products). */
void attn_based_taylor_map(lin_fmap *m, int64_t D, int full);

#endif
