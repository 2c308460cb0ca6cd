/* The KV cache formats (kv_format.h, docs/kv-formats.md). The block formats
 * follow ggml's reference quantizers (quantize_row_q8_0_ref,
 * quantize_row_q4_0_ref) operation for operation, so a cache made here holds
 * the bytes ggml would store. */
#include "kv_format.h"

#include "common/attn_error.h"

#include <math.h>
#include <string.h>

const char *const attn_kv_dtype_names[] = {"fp32", "bf16", "fp16", "q8_0", "q4_0", NULL};

int attn_kv_dtype_parse(const char *s, attn_kv_dtype *t)
{
    for (int i = 0; attn_kv_dtype_names[i]; i++)
        if (strcmp(s, attn_kv_dtype_names[i]) == 0) {
            *t = (attn_kv_dtype)i;
            return 0;
        }
    return attn_fail(ATTN_EINVAL, "kv dtype: expected one of fp32, bf16, fp16, q8_0, q4_0, found '%s'", s);
}

int attn_kv_dtype_blocked(attn_kv_dtype t)
{
    return t == ATTN_KV_Q8_0 || t == ATTN_KV_Q4_0;
}

size_t attn_kv_row_bytes(attn_kv_dtype t, int64_t D)
{
    switch (t) {
    case ATTN_KV_BF16:
    case ATTN_KV_FP16:
        return 2 * (size_t)D;
    case ATTN_KV_Q8_0:
        return (size_t)(D / ATTN_KV_BLOCK) * ATTN_KV_Q8_0_BYTES;
    case ATTN_KV_Q4_0:
        return (size_t)(D / ATTN_KV_BLOCK) * ATTN_KV_Q4_0_BYTES;
    default:
        return 4 * (size_t)D;
    }
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t attn_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep the sign and payload's top, made quiet */
        return (uint16_t)((u >> 16) | 0x40);
    /* adding half an ulp of bf16, less one when the kept bit is even, rounds to nearest even */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float attn_bf16_to_f32(uint16_t h)
{
    return f32_of((uint32_t)h << 16);
}

uint16_t attn_f32_to_fp16(float x)
{
    uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* 65520 and up (the tie above 65504 goes to even: inf) */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* normal: rebias the exponent (127 -> 15), round 23 mantissa bits to 10 */
        uint32_t m = a - 0x38000000u;
        m += 0xfffu + ((m >> 13) & 1u);
        return (uint16_t)(sign | (m >> 13));
    }
    /* subnormal half: units of 2^-24; the scaling is exact, lrintf rounds to nearest even */
    return (uint16_t)(sign | (uint32_t)lrintf(f32_of(a) * 0x1p24f));
}

float attn_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float f = ldexpf((float)m, -24);
        return sign ? -f : f;
    }
    if (e == 31) /* a NaN comes out quiet, as F16C's vcvtph2ps makes it */
        return f32_of(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    return f32_of(sign | ((e + 112) << 23) | (m << 13));
}

/* The block's fp16 scale, little-endian in its first two bytes. */
static void put_scale(unsigned char *blk, float d)
{
    uint16_t h = attn_f32_to_fp16(d);
    blk[0] = (unsigned char)(h & 0xff);
    blk[1] = (unsigned char)(h >> 8);
}

static float get_scale(const unsigned char *blk)
{
    return attn_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
}

/* ggml: d = max|x| / 127, q = round(x / d) half away from zero (roundf),
 * with the fp32 d; the stored scale is fp16(d). */
static void quantize_q8_0(const float *x, unsigned char *blk)
{
    float amax = 0;
    for (int j = 0; j < ATTN_KV_BLOCK; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
    put_scale(blk, d);
    for (int j = 0; j < ATTN_KV_BLOCK; j++)
        blk[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

/* ggml: d = m / -8 with m the value of largest magnitude (the first such),
 * so m itself is -8 exactly; q = min(15, trunc(x / d + 8.5)), which is
 * floor(x / d + 0.5) + 8 (ties upward) as x / d + 8.5 > 0. Byte j holds
 * value j in its low nibble and value j + 16 in its high one. */
static void quantize_q4_0(const float *x, unsigned char *blk)
{
    float amax = 0, max = 0;
    for (int j = 0; j < ATTN_KV_BLOCK; j++)
        if (amax < fabsf(x[j]))
            amax = fabsf(x[j]), max = x[j];
    float d = max / -8, id = d != 0 ? 1.0f / d : 0.0f;
    put_scale(blk, d);
    for (int j = 0; j < ATTN_KV_BLOCK / 2; j++) {
        int lo = (int8_t)(x[j] * id + 8.5f), hi = (int8_t)(x[j + ATTN_KV_BLOCK / 2] * id + 8.5f);
        lo = lo < 15 ? lo : 15;
        hi = hi < 15 ? hi : 15;
        blk[2 + j] = (unsigned char)(lo | hi << 4);
    }
}

void attn_kv_quantize_row(attn_kv_dtype t, const float *x, int64_t D, unsigned char *out)
{
    for (int64_t d = 0; t == ATTN_KV_BF16 && d < D; d++) {
        uint16_t h = attn_f32_to_bf16(x[d]);
        memcpy(out + 2 * d, &h, 2);
    }
    for (int64_t d = 0; t == ATTN_KV_FP16 && d < D; d++) {
        uint16_t h = attn_f32_to_fp16(x[d]);
        memcpy(out + 2 * d, &h, 2);
    }
    for (int64_t i = 0; t == ATTN_KV_Q8_0 && i < D / ATTN_KV_BLOCK; i++)
        quantize_q8_0(x + i * ATTN_KV_BLOCK, out + i * ATTN_KV_Q8_0_BYTES);
    for (int64_t i = 0; t == ATTN_KV_Q4_0 && i < D / ATTN_KV_BLOCK; i++)
        quantize_q4_0(x + i * ATTN_KV_BLOCK, out + i * ATTN_KV_Q4_0_BYTES);
    if (t == ATTN_KV_FP32)
        memcpy(out, x, sizeof(float) * (size_t)D);
}

/* Every format's value is one float: (float)q * scale for the block
 * formats, a single rounding, which the vector paths repeat bitwise. */
void attn_kv_dequantize_row(attn_kv_dtype t, const unsigned char *in, int64_t D, float *x)
{
    for (int64_t d = 0; d < D; d++) {
        uint16_t h;
        const unsigned char *blk;
        int64_t j = d % ATTN_KV_BLOCK;
        switch (t) {
        case ATTN_KV_BF16:
            memcpy(&h, in + 2 * d, 2);
            x[d] = attn_bf16_to_f32(h);
            break;
        case ATTN_KV_FP16:
            memcpy(&h, in + 2 * d, 2);
            x[d] = attn_fp16_to_f32(h);
            break;
        case ATTN_KV_Q8_0:
            blk = in + d / ATTN_KV_BLOCK * ATTN_KV_Q8_0_BYTES;
            x[d] = (float)(int8_t)blk[2 + j] * get_scale(blk);
            break;
        case ATTN_KV_Q4_0:
            blk = in + d / ATTN_KV_BLOCK * ATTN_KV_Q4_0_BYTES;
            x[d] = (float)((j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4) - 8) * get_scale(blk);
            break;
        default:
            memcpy(x + d, in + 4 * d, sizeof(float));
        }
    }
}
