/* Planned memory for the layers (layers.h): a cursor that hands out 64-byte
 * aligned slices of one parameter blob (and the gradient blob of the same
 * layout), or only counts them; and the normal draws used by initialisers. */
#include "layers.h"

#include <math.h>
#include <string.h>

size_t nn_blob_take(nn_blob *b, size_t n, float **p, float **g)
{
    size_t off = (b->used + 15) & ~(size_t)15;   /* 16 floats = 64 bytes */
    if (b->data && off + n > b->cap) {
        attn_fail(ATTN_EINVAL, "parameter/activation blob: expected at least %zu floats, found %zu",
                  off + n, b->cap);
        return SIZE_MAX;
    }
    b->used = off + n;
    if (p)
        *p = b->data ? b->data + off : NULL;
    if (g)
        *g = b->data && b->grad ? b->grad + off : NULL;
    return off;
}

void nn_fill_normal(float *x, size_t n, float std, attn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(std * attn_rng_normal(r));
}

#define ZERO_BLOCK 65536 /* bytes per task */

void nn_zero_n(float *const *x, const size_t *bytes, int n, int threads)
{
    size_t first[9] = {0};
    for (int i = 0; i < n && i < 8; i++)
        first[i + 1] = first[i] + (bytes[i] + ZERO_BLOCK - 1) / ZERO_BLOCK;
    int64_t tasks = (int64_t)first[n < 8 ? n : 8];
#pragma omp parallel for num_threads(threads) schedule(static) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        int i = 0;
        while ((size_t)t >= first[i + 1])
            i++;
        size_t off = ((size_t)t - first[i]) * ZERO_BLOCK, len = bytes[i] - off < ZERO_BLOCK ? bytes[i] - off : ZERO_BLOCK;
        memset((char *)x[i] + off, 0, len);
    }
}
