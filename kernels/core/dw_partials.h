/* Learned-weight gradients of kernels that compute one partial per (b, h)
 * in parallel tasks: g.dw of head h is their sum over b, always in the same
 * order, so the result does not depend on the thread count. The partials
 * sit in the kernel's workspace, `stride` floats apart, (b, h) at
 * base + (b * H + h) * stride. */
#ifndef ATTN_DW_PARTIALS_H
#define ATTN_DW_PARTIALS_H

#include "attn.h"

#include <stddef.h>

/* W floats rounded up to 16: each partial starts 64-byte aligned. */
static inline size_t attn_dw_stride(int64_t W)
{
    return ((size_t)W + 15) / 16 * 16;
}

/* Workspace floats the B * H partials take. */
static inline size_t attn_dw_partials_floats(const attn_args *a, size_t stride)
{
    return (size_t)(a->B * a->H) * stride;
}

/* The partial of (b, h). */
static inline float *attn_dw_partial(const attn_args *a, float *base, size_t stride, int64_t b, int64_t h)
{
    return base + (size_t)(b * a->H + h) * stride;
}

/* Writes (not accumulates) row h of dw for every head: floats [0, used) the
 * partials' sum over b in batch order, floats [used, W) zero. */
void attn_sum_dw_partials(const attn_args *a, const float *base, size_t stride, int64_t used, int64_t W,
                          const attn_tensor *dw);

#endif
