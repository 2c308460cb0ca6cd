#include "dw_partials.h"

void attn_sum_dw_partials(const attn_args *a, const float *base, size_t stride, int64_t used, int64_t W,
                          const attn_tensor *dw)
{
    /* each element is its own sum in batch order, so the threads split the
     * elements without changing a bit */
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t e = 0; e < a->H * W; e++) {
        int64_t h = e / W, i = e % W;
        float sum = 0;
        for (int64_t b = 0; i < used && b < a->B; b++)
            sum += base[(size_t)(b * a->H + h) * stride + (size_t)i];
        attn_at(dw, 0, h, 0)[i] = sum;
    }
}
