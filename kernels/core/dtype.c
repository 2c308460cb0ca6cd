/* Operand storage types (dtype.h, docs/dtypes.md). */
#include "dtype.h"

#include "common/attn_error.h"
#include "kv_format.h"

#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

const char *const attn_dtype_names[] = {"fp32", "bf16", "fp16", NULL};

int attn_dtype_parse(const char *s, attn_dtype *t)
{
    for (int i = 0; attn_dtype_names[i]; i++)
        if (strcmp(s, attn_dtype_names[i]) == 0) {
            *t = (attn_dtype)i;
            return 0;
        }
    return attn_fail(ATTN_EINVAL, "dtype: expected one of fp32, bf16, fp16, found '%s'", s);
}

double attn_dtype_unit_roundoff(attn_dtype t)
{
    /* 24, 8 and 11 significant bits */
    return t == ATTN_DT_BF16 ? 0x1p-8 : t == ATTN_DT_FP16 ? 0x1p-11 : 0x1p-24;
}

void attn_widen_plain(attn_dtype t, const uint16_t *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = t == ATTN_DT_BF16 ? attn_bf16_to_f32(x[i]) : attn_fp16_to_f32(x[i]);
}

/* Values [0, n - n % width) of the vector path; returns how many it did. */
static int64_t widen_vector(attn_dtype t, const uint16_t *x, int64_t n, float *y)
{
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const void *)(x + i));
        __m512 f = t == ATTN_DT_BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                                     : _mm512_cvtph_ps(h);
        _mm512_storeu_ps(y + i, f);
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const void *)(x + i));
        if (t == ATTN_DT_BF16)
            _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
#if defined(__F16C__)
        else
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
#else
        else
            return i; /* no F16C: the plain loop does fp16 */
#endif
    }
#else
    (void)t, (void)x, (void)n, (void)y;
#endif
    return i;
}

void attn_widen(attn_dtype t, const uint16_t *x, int64_t n, float *y)
{
    int64_t done = widen_vector(t, x, n, y);
    attn_widen_plain(t, x + done, n - done, y + done);
}

void attn_narrow(attn_dtype t, const float *x, int64_t n, uint16_t *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = t == ATTN_DT_BF16 ? attn_f32_to_bf16(x[i]) : attn_f32_to_fp16(x[i]);
}
