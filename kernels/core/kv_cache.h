/* A KV cache in a stored format made from an fp32 tensor (kv_format.h):
 * what the harness and the tests hand a kernel that reads its cache in that
 * format, converted once before anything is timed. */
#ifndef ATTN_KV_CACHE_H
#define ATTN_KV_CACHE_H

#include "attn.h"

/* Allocates c (rows contiguous, [B, H, N, D] order) and fills it with x's
 * rows in format t. t must suit x->D (block formats: a multiple of 32).
 * Returns 0, ATTN_EINVAL for a D the format cannot hold, or ATTN_ENOMEM. */
int attn_kv_cache_make(attn_kv_cache *c, attn_kv_dtype t, const attn_tensor *x);
void attn_kv_cache_free(attn_kv_cache *c);
/* x's rows into c again (x of c's shape), after x changed. */
void attn_kv_cache_store(attn_kv_cache *c, const attn_tensor *x);

/* Row (b, h, n) of c widened to fp32 (the plain-loop dequantization). */
void attn_kv_cache_row_f32(const attn_kv_cache *c, int64_t b, int64_t h, int64_t n, float *out);

#endif
