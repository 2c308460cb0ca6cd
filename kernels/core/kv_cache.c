#include "kv_cache.h"

#include <string.h>

int attn_kv_cache_make(attn_kv_cache *c, attn_kv_dtype t, const attn_tensor *x)
{
    memset(c, 0, sizeof *c);
    if (attn_kv_dtype_blocked(t) && x->D % ATTN_KV_BLOCK != 0)
        return attn_fail(ATTN_EINVAL, "kv cache %s: expected D a multiple of %d (one scale per %d values), found %lld",
                         attn_kv_dtype_names[t], ATTN_KV_BLOCK, ATTN_KV_BLOCK, (long long)x->D);
    size_t row = attn_kv_row_bytes(t, x->D);
    c->data = attn_alloc(row * (size_t)(x->B * x->H * x->N) + 1);
    if (!c->data)
        return attn_fail(ATTN_ENOMEM, "kv cache %s: out of memory for %lld rows", attn_kv_dtype_names[t],
                         (long long)(x->B * x->H * x->N));
    c->dtype = t;
    c->B = x->B, c->H = x->H, c->N = x->N, c->D = x->D;
    c->sn = (int64_t)row, c->sh = c->sn * x->N, c->sb = c->sh * x->H;
    attn_kv_cache_store(c, x);
    return 0;
}

void attn_kv_cache_store(attn_kv_cache *c, const attn_tensor *x)
{
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++)
            for (int64_t n = 0; n < c->N; n++)
                attn_kv_quantize_row(c->dtype, attn_at(x, b, h, n), c->D, c->data + b * c->sb + h * c->sh + n * c->sn);
}

void attn_kv_cache_free(attn_kv_cache *c)
{
    attn_free(c->data);
    memset(c, 0, sizeof *c);
}

void attn_kv_cache_row_f32(const attn_kv_cache *c, int64_t b, int64_t h, int64_t n, float *out)
{
    attn_kv_dequantize_row(c->dtype, attn_kv_row(c, b, h, n), c->D, out);
}
