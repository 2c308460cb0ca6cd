/* Learned-weight gradients of kernels that compute one partial per (b, h)
 * in parallel tasks: g.dw of head h is their sum over b, always in the same
 * order, so the result does not depend on the thread count. */
#ifndef ATTN_DW_PARTIALS_H
#define ATTN_DW_PARTIALS_H

#include "attn.h"

#include <string.h>

/* Partial (b, h) holds W floats at base + (b * H + h) * stride; writes (not
 * accumulates) row h of dw for every head. */
static inline void attn_sum_dw_partials(const attn_args *a, const float *base, size_t stride, int64_t W,
                                        const attn_tensor *dw)
{
    for (int64_t h = 0; h < a->H && W > 0; h++) {
        float *out = attn_at(dw, 0, h, 0);
        memset(out, 0, sizeof(float) * (size_t)W);
        for (int64_t b = 0; b < a->B; b++) {
            const float *part = base + (size_t)(b * a->H + h) * stride;
            for (int64_t i = 0; i < W; i++)
                out[i] += part[i];
        }
    }
}

#endif
