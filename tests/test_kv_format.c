/* The KV cache formats (kernels/core/kv_format.h, docs/kv-formats.md):
 * every 16-bit pattern survives widening and narrowing, fp32 narrows by
 * round-to-nearest-even (ties, overflow, subnormals; fp16 bitwise as F16C
 * where the build has it), the block formats store ggml's bytes (scale,
 * value layout, ties, the extremes, zero blocks) and bound their round-trip
 * error, and the decode layout's vector widening equals the plain-loop
 * dequantization bitwise in every format. */
#include "kernels/core/kv_cache.h"
#include "kernels/decode/decode_internal.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>
#ifdef __F16C__
#include <immintrin.h>
#endif

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

Test(kv_format, every_16_bit_value_round_trips_through_fp32)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float b = attn_bf16_to_f32((uint16_t)h), f = attn_fp16_to_f32((uint16_t)h);
        if (!isnan(b))
            cr_assert_eq(attn_f32_to_bf16(b), h, "bf16 %04x", h);
        if (!isnan(f))
            cr_assert_eq(attn_f32_to_fp16(f), h, "fp16 %04x", h);
        else
            cr_assert(isnan(attn_fp16_to_f32(attn_f32_to_fp16(f))), "fp16 NaN %04x stays NaN", h);
    }
}

Test(kv_format, narrowing_rounds_ties_to_even_and_overflows_to_infinity)
{
    /* bf16 keeps 7 mantissa bits: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 */
    cr_assert_eq(attn_bf16_to_f32(attn_f32_to_bf16(1.0f + 0x1p-8f)), 1.0f);
    cr_assert_eq(attn_bf16_to_f32(attn_f32_to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
    cr_assert_eq(attn_bf16_to_f32(attn_f32_to_bf16(-(1.0f + 0x1p-8f + 0x1p-20f))), -(1.0f + 0x1p-7f));
    cr_assert(isinf(attn_bf16_to_f32(attn_f32_to_bf16(FLT_MAX))), "FLT_MAX is past bf16's largest + half an ulp");
    cr_assert_eq(attn_f32_to_bf16(-INFINITY), 0xff80);
    /* fp16 keeps 10: ties at 2^-11 above 1; the largest finite 65504, the tie 65520 goes to inf */
    cr_assert_eq(attn_fp16_to_f32(attn_f32_to_fp16(1.0f + 0x1p-11f)), 1.0f);
    cr_assert_eq(attn_fp16_to_f32(attn_f32_to_fp16(1.0f + 3 * 0x1p-11f)), 1.0f + 0x1p-9f);
    cr_assert_eq(attn_fp16_to_f32(attn_f32_to_fp16(65519.0f)), 65504.0f);
    cr_assert(isinf(attn_fp16_to_f32(attn_f32_to_fp16(65520.0f))));
    cr_assert_eq(attn_f32_to_fp16(-1e30f), 0xfc00);
    /* subnormals in units of 2^-24: 2^-25 ties to 0, 3 * 2^-25 to 2 units */
    cr_assert_eq(attn_f32_to_fp16(0x1p-24f), 1);
    cr_assert_eq(attn_f32_to_fp16(0x1p-25f), 0);
    cr_assert_eq(attn_f32_to_fp16(3 * 0x1p-25f), 2);
    cr_assert_eq(attn_f32_to_fp16(-0x1p-14f), 0x8400, "the smallest normal");
    cr_assert_eq(attn_f32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400, "rounds up into the smallest normal");
}

Test(kv_format, fp16_narrowing_equals_f16c_on_random_floats)
{
#ifdef __F16C__
    attn_rng r;
    attn_rng_seed(&r, 5);
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = (uint32_t)attn_rng_next(&r);
        float x;
        memcpy(&x, &u, sizeof x);
        if (isnan(x))
            continue;
        uint16_t want = (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        cr_assert_eq(attn_f32_to_fp16(x), want, "%a (%08x)", x, u);
        cr_assert_eq(bits(attn_fp16_to_f32(want)), bits(_cvtsh_ss(want)), "%04x", want);
    }
#else
    cr_skip_test("the build has no F16C to compare with");
#endif
}

/* One 32-value block of format t from x, and its values back. */
static void block_round_trip(attn_kv_dtype t, const float x[32], unsigned char *blk, float y[32])
{
    attn_kv_quantize_row(t, x, 32, blk);
    attn_kv_dequantize_row(t, blk, 32, y);
}

Test(kv_format, q8_0_stores_ggml_bytes_rounding_half_away_from_zero)
{
    float x[32] = {0}, y[32];
    unsigned char blk[ATTN_KV_Q8_0_BYTES];
    x[0] = 127, x[1] = -127, x[2] = 2.5f, x[3] = -2.5f, x[4] = 0.49f, x[31] = 100.5f;
    block_round_trip(ATTN_KV_Q8_0, x, blk, y);
    cr_assert(blk[0] == 0x00 && blk[1] == 0x3c, "the scale 127/127 = 1 is fp16 0x3c00, little-endian");
    cr_assert_eq((int8_t)blk[2], 127, "the largest magnitude is +-127");
    cr_assert_eq((int8_t)blk[3], -127);
    cr_assert_eq((int8_t)blk[4], 3, "2.5 rounds away from zero");
    cr_assert_eq((int8_t)blk[5], -3);
    cr_assert_eq((int8_t)blk[6], 0);
    cr_assert_eq((int8_t)blk[33], 101, "value 31 is the block's last byte");
    cr_assert(y[0] == 127 && y[1] == -127 && y[2] == 3 && y[3] == -3 && y[31] == 101);
    float zero[32] = {0};
    block_round_trip(ATTN_KV_Q8_0, zero, blk, y);
    for (int j = 0; j < 32; j++)
        cr_assert(y[j] == 0 && bits(y[j]) == 0, "a zero block has scale 0 and values 0");
}

Test(kv_format, q4_0_stores_ggml_bytes_with_offset_8_rounding_ties_up)
{
    float x[32] = {0}, y[32];
    unsigned char blk[ATTN_KV_Q4_0_BYTES];
    /* the value of largest magnitude, -8, sets d = -8 / -8 = 1 and is stored as 0 */
    x[0] = -8, x[1] = 2.5f, x[2] = -2.5f, x[3] = 7.5f, x[16] = 3, x[17] = -0.5f;
    block_round_trip(ATTN_KV_Q4_0, x, blk, y);
    cr_assert(blk[0] == 0x00 && blk[1] == 0x3c, "scale 1.0");
    cr_assert_eq(blk[2] & 15, 0, "value 0 (-8) is nibble 0 in the low half of byte 0");
    cr_assert_eq(blk[2] >> 4, 11, "value 16 (3) is nibble 11 in the high half of byte 0");
    cr_assert_eq(blk[3] & 15, 11, "2.5 ties up to 3");
    cr_assert_eq(blk[4] & 15, 6, "-2.5 ties up to -2");
    cr_assert_eq(blk[5] & 15, 15, "7.5 would be 8: clamped to 7");
    cr_assert_eq(blk[3] >> 4, 8, "-0.5 ties up to 0");
    cr_assert(y[0] == -8 && y[1] == 3 && y[2] == -2 && y[3] == 7 && y[16] == 3 && y[17] == 0);
    /* a positive extreme: d = 8 / -8 = -1, stored exactly; the opposite extreme clamps */
    float z[32] = {0};
    z[5] = 8, z[6] = -8;
    block_round_trip(ATTN_KV_Q4_0, z, blk, y);
    cr_assert(y[5] == 8, "the extreme is exact: %g", y[5]);
    cr_assert(y[6] == -7, "-8 / d = 8 is past the 4 bits: 7 * d = -7, found %g", y[6]);
}

/* Round trips of gaussian blocks stay within the format's step: bf16 and
 * fp16 half an ulp; q8_0 half a step d plus the fp16 scale's rounding
 * times 127 (half an ulp of d, or 2^-25 when d is an fp16 subnormal, as for
 * the 1e-3 blocks); q4_0 one step |d| (the clamped extreme) plus 8 times it. */
Test(kv_format, round_trip_error_of_gaussian_blocks_is_within_the_format_step)
{
    attn_rng r;
    attn_rng_seed(&r, 9);
    for (int it = 0; it < 2000; it++) {
        float x[32], y[32], amax = 0;
        unsigned char blk[64];
        double sd = it % 4 == 0 ? 1e-3 : it % 4 == 1 ? 1.0 : 30.0;
        for (int j = 0; j < 32; j++)
            x[j] = (float)(sd * attn_rng_normal(&r)), amax = fmaxf(amax, fabsf(x[j]));
        for (int t = ATTN_KV_BF16; t < ATTN_KV__COUNT; t++) {
            block_round_trip((attn_kv_dtype)t, x, blk, y);
            for (int j = 0; j < 32; j++) {
                double e = fabs((double)y[j] - x[j]), bound;
                if (t == ATTN_KV_BF16)
                    bound = fabs(x[j]) * 0x1p-8;
                else if (t == ATTN_KV_FP16)
                    bound = fabs(x[j]) * 0x1p-11 + 0x1p-25;
                else if (t == ATTN_KV_Q8_0)
                    bound = amax / 127 * (0.5 + 1e-5) + 127 * fmax(amax / 127 * 0x1p-11, 0x1p-25);
                else
                    bound = amax / 8 * (1 + 1e-5) + 8 * fmax(amax / 8 * 0x1p-11, 0x1p-25);
                cr_assert(e <= bound, "%s x=%a y=%a err %g > %g", attn_kv_dtype_names[t], x[j], y[j], e, bound);
            }
        }
    }
}

Test(kv_format, row_bytes_and_names)
{
    cr_assert_eq(attn_kv_row_bytes(ATTN_KV_FP32, 128), 512);
    cr_assert_eq(attn_kv_row_bytes(ATTN_KV_BF16, 128), 256);
    cr_assert_eq(attn_kv_row_bytes(ATTN_KV_Q8_0, 128), 4 * 34);
    cr_assert_eq(attn_kv_row_bytes(ATTN_KV_Q4_0, 128), 4 * 18);
    for (int t = 0; t < ATTN_KV__COUNT; t++) {
        attn_kv_dtype got;
        cr_assert_eq(attn_kv_dtype_parse(attn_kv_dtype_names[t], &got), 0);
        cr_assert_eq((int)got, t);
    }
    attn_kv_dtype got;
    cr_assert_eq(attn_kv_dtype_parse("int8", &got), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "q4_0"), "the message lists the names: %s", attn_last_error());
}

/* The decode layout's vector loads (AVX-512 or AVX2 + F16C, whichever the
 * build has; the portable build's plain loop) against the plain-loop
 * dequantization, bitwise, on rows with ties, zero blocks and extremes. */
Test(kv_format, decode_vector_widening_equals_plain_dequantization_bitwise)
{
    enum { D = 256 };
    attn_rng r;
    attn_rng_seed(&r, 13);
    float x[D], want[D], got[D];
    unsigned char row[4 * D];
    for (int it = 0; it < 200; it++) {
        for (int d = 0; d < D; d++)
            x[d] = (float)attn_rng_normal(&r) * (it % 3 ? 1.0f : 1e3f);
        for (int d = 64; d < 96; d++) /* a zero block, and a block of exact steps */
            x[d] = 0, x[d + 32] = (float)(d % 17) - 8;
        for (int t = ATTN_KV_BF16; t < ATTN_KV__COUNT; t++) {
            attn_kv_quantize_row((attn_kv_dtype)t, x, D, row);
            attn_kv_dequantize_row((attn_kv_dtype)t, row, D, want);
            memset(got, 0xff, sizeof got);
            attn_dec_kv_widen((attn_kv_dtype)t, row, D, got);
            cr_assert(memcmp(got, want, sizeof got) == 0, "%s: vector widening differs from the plain loop",
                      attn_kv_dtype_names[t]);
        }
    }
}
