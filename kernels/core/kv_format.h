/* Storage formats of a decode-time KV cache (docs/kv-formats.md): fp32, the
 * 16-bit floats bf16 and fp16, and ggml's block formats q8_0 and q4_0 (32
 * values of one row share an fp16 scale). A kernel that implements a format
 * reads the cache in it and widens to fp32 in registers; accumulation stays
 * fp32. The conversions here are the plain-loop definitions every kernel
 * path and every test is compared with. */
#ifndef ATTN_KV_FORMAT_H
#define ATTN_KV_FORMAT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ATTN_KV_FP32 = 0,
    ATTN_KV_BF16,
    ATTN_KV_FP16,
    ATTN_KV_Q8_0,
    ATTN_KV_Q4_0,
    ATTN_KV__COUNT
} attn_kv_dtype;

#define ATTN_KV_BIT(t) (1u << (t))

/* Values per block of q8_0 / q4_0, and the bytes of one block: an fp16
 * scale, then 32 int8 values (q8_0) or 16 bytes of two 4-bit values (q4_0). */
#define ATTN_KV_BLOCK 32
#define ATTN_KV_Q8_0_BYTES 34
#define ATTN_KV_Q4_0_BYTES 18

/* The names by value ("fp32", "bf16", "fp16", "q8_0", "q4_0"), NULL-terminated. */
extern const char *const attn_kv_dtype_names[];
/* 0 and *t set, or ATTN_EINVAL naming the valid names. */
int attn_kv_dtype_parse(const char *s, attn_kv_dtype *t);

/* 1 for the block formats: a row's D must be a multiple of ATTN_KV_BLOCK. */
int attn_kv_dtype_blocked(attn_kv_dtype t);
/* Bytes of one stored row of D values (D a multiple of 32 for block formats). */
size_t attn_kv_row_bytes(attn_kv_dtype t, int64_t D);

/* Scalar conversions, round to nearest even (NaN stays a quiet NaN). */
uint16_t attn_f32_to_bf16(float x);
float attn_bf16_to_f32(uint16_t h);
uint16_t attn_f32_to_fp16(float x);
float attn_fp16_to_f32(uint16_t h);

/* One row of D values into its stored form and back (fp32: a copy). */
void attn_kv_quantize_row(attn_kv_dtype t, const float *x, int64_t D, unsigned char *out);
void attn_kv_dequantize_row(attn_kv_dtype t, const unsigned char *in, int64_t D, float *x);

/* A KV cache [B, H_kv, N, D] in format t: row (b, h, n) starts at byte
 * b*sb + h*sh + n*sn of data (rows contiguous, 64-byte aligned buffer). */
typedef struct {
    unsigned char *data;
    attn_kv_dtype dtype;
    int64_t B, H, N, D;
    int64_t sb, sh, sn;
} attn_kv_cache;

static inline const unsigned char *attn_kv_row(const attn_kv_cache *c, int64_t b, int64_t h, int64_t n)
{
    return c->data + b * c->sb + h * c->sh + n * c->sn;
}

#endif
