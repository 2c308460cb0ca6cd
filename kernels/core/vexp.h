/* Vectorised single-precision exp for the softmax kernels:
 * exp(x) within 2 ulp for -87.3 <= x <= 88.7, exactly 0 below -87.3 (so a
 * softmax never produces slow subnormals, without touching the caller's
 * FTZ/DAZ state), +inf above, NaN for NaN.
 *
 * Method: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (ln2 split in
 * a high part exact in float and a low correction), e^r by a degree-7
 * polynomial, then e^x = e^r 2^n. The scalar, AVX2 and AVX-512 forms run the
 * same operations in the same order, so they return the same bits. */
#ifndef ATTN_VEXP_H
#define ATTN_VEXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define ATTN_EXP_LO (-87.3f)   /* below: 0; e^-87.3 = 1.2e-38 is still normal */
#define ATTN_EXP_HI 88.8f      /* above: inf (e^88.73 overflows) */
#define ATTN_EXP_LOG2E 1.44269504088896341f
#define ATTN_EXP_LN2_HI 0.693145751953125f       /* fma forms x - n*hi exactly, rounds once */
#define ATTN_EXP_LN2_LO 1.42860682030941723e-6f  /* ln2 - hi */
/* Taylor coefficients 1/k! of e^r up to degree 7: the remainder r^8/8! is
 * below 6e-9 at |r| = ln2/2 (0.1 ulp), leaving the
 * roundings (measured over every float in [-87.3, 88.7] against double exp:
 * 0.94 ulp at worst). */
#define ATTN_EXP_C7 (1.0f / 5040.0f)
#define ATTN_EXP_C6 (1.0f / 720.0f)
#define ATTN_EXP_C5 (1.0f / 120.0f)
#define ATTN_EXP_C4 (1.0f / 24.0f)
#define ATTN_EXP_C3 (1.0f / 6.0f)
#define ATTN_EXP_C2 0.5f

/* 2^k for integer k in [-126, 127] as a float, from its bits. */
static inline float attn_exp_pow2i(int32_t k)
{
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* e^r on the reduced range |r| <= ln2/2: the degree-7 polynomial every exp
 * here (and the branch-free variants of linear.c and gla_chunk.c) shares. */
static inline float attn_exp_poly(float r)
{
    float p = fmaf(ATTN_EXP_C7, r, ATTN_EXP_C6);
    p = fmaf(p, r, ATTN_EXP_C5);
    p = fmaf(p, r, ATTN_EXP_C4);
    p = fmaf(p, r, ATTN_EXP_C3);
    p = fmaf(p, r, ATTN_EXP_C2);
    p = fmaf(p, r, 1.0f);
    return fmaf(p, r, 1.0f);
}

#ifdef __AVX2__
/* Eight lanes of attn_exp_poly (same operations, same bits). */
static inline __m256 attn_exp_poly8(__m256 r)
{
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(ATTN_EXP_C7), r, _mm256_set1_ps(ATTN_EXP_C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATTN_EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATTN_EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATTN_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ATTN_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    return _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
}
#endif

/* Scalar exp with the accuracy contract above. */
static inline float attn_expf(float x)
{
    if (x < ATTN_EXP_LO)
        return 0.0f;
    if (x > ATTN_EXP_HI)
        return INFINITY;
    if (x != x)
        return x;
    float n = rintf(x * ATTN_EXP_LOG2E);
    float r = fmaf(-n, ATTN_EXP_LN2_HI, x);
    r = fmaf(-n, ATTN_EXP_LN2_LO, r);
    float p = attn_exp_poly(r);
    /* n is in [-126, 129]: two power-of-two factors, each a normal float, so
     * the scaling is exact (the result is normal or overflows to inf). */
    int32_t k = (int32_t)n, k1 = k / 2;
    return p * attn_exp_pow2i(k1) * attn_exp_pow2i(k - k1);
}

#ifdef __AVX512F__
/* Sixteen lanes of attn_expf. vscalefps computes p * 2^n exactly (n is
 * integral), overflowing to inf like the scalar path. */
static inline __m512 attn_vexp16(__m512 x)
{
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(ATTN_EXP_LO), _CMP_NLT_UQ); /* NaN kept */
    x = _mm512_min_ps(_mm512_set1_ps(ATTN_EXP_HI), x); /* NaN passes through */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(ATTN_EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ATTN_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ATTN_EXP_LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(ATTN_EXP_C7), r, _mm512_set1_ps(ATTN_EXP_C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATTN_EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATTN_EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATTN_EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ATTN_EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* Eight lanes of attn_expf (same bits): without vscalefps the scaling by
 * 2^n takes two power-of-two factors like the scalar form, here k1 =
 * floor(n/2) (one shift) and n - k1, each a normal float for n in [-126,
 * 129]; both products are exact, so the split does not change the bits.
 * Lanes below ATTN_EXP_LO are zeroed by the mask instead. */
static inline __m256 attn_vexp8(__m256 x)
{
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(ATTN_EXP_LO), _CMP_NLT_UQ); /* NaN kept */
    x = _mm256_min_ps(_mm256_set1_ps(ATTN_EXP_HI), x); /* NaN passes through */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(ATTN_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ATTN_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ATTN_EXP_LN2_LO), r);
    __m256 p = attn_exp_poly8(r);
    __m256i k = _mm256_cvtps_epi32(n);
    __m256i k1 = _mm256_srai_epi32(k, 1);
    __m256i k2 = _mm256_sub_epi32(k, k1), bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    return _mm256_and_ps(keep, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}
#endif

/* The widest float vector of the build, attn_vf of ATTN_VW floats, with
 * the operations the lane loops of flash, decode, sigmoid and the
 * micro-kernel use, so each of those loops is written once for AVX-512 and
 * AVX2 + FMA. ATTN_VW undefined: no vector path (portable loops). */
#ifdef __AVX512F__
#define ATTN_VW 16
typedef __m512 attn_vf;
#define attn_vf_zero() _mm512_setzero_ps()
#define attn_vf_set1(x) _mm512_set1_ps(x)
#define attn_vf_bcast(p) _mm512_set1_ps(*(p))
#define attn_vf_load(p) _mm512_load_ps(p)
#define attn_vf_loadu(p) _mm512_loadu_ps(p)
#define attn_vf_store(p, x) _mm512_store_ps(p, x)
#define attn_vf_storeu(p, x) _mm512_storeu_ps(p, x)
#define attn_vf_add(x, y) _mm512_add_ps(x, y)
#define attn_vf_sub(x, y) _mm512_sub_ps(x, y)
#define attn_vf_mul(x, y) _mm512_mul_ps(x, y)
#define attn_vf_max(x, y) _mm512_max_ps(x, y)
#define attn_vf_fma(x, y, z) _mm512_fmadd_ps(x, y, z)
#define attn_vf_exp(x) attn_vexp16(x)
#elif defined(__AVX2__) && defined(__FMA__)
#define ATTN_VW 8
typedef __m256 attn_vf;
#define attn_vf_zero() _mm256_setzero_ps()
#define attn_vf_set1(x) _mm256_set1_ps(x)
#define attn_vf_bcast(p) _mm256_broadcast_ss(p)
#define attn_vf_load(p) _mm256_load_ps(p)
#define attn_vf_loadu(p) _mm256_loadu_ps(p)
#define attn_vf_store(p, x) _mm256_store_ps(p, x)
#define attn_vf_storeu(p, x) _mm256_storeu_ps(p, x)
#define attn_vf_add(x, y) _mm256_add_ps(x, y)
#define attn_vf_sub(x, y) _mm256_sub_ps(x, y)
#define attn_vf_mul(x, y) _mm256_mul_ps(x, y)
#define attn_vf_max(x, y) _mm256_max_ps(x, y)
#define attn_vf_fma(x, y, z) _mm256_fmadd_ps(x, y, z)
#define attn_vf_exp(x) attn_vexp8(x)
#endif

/* y[i] = exp(x[i]) for i < n (y may alias x). */
static inline void attn_vexp(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
#ifdef __AVX512F__
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, attn_vexp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, attn_vexp16(_mm512_maskz_loadu_ps(m, x + i)));
        return;
    }
#elif defined(ATTN_VW)
    for (; i + ATTN_VW <= n; i += ATTN_VW)
        attn_vf_storeu(y + i, attn_vf_exp(attn_vf_loadu(x + i)));
#endif
    for (; i < n; i++)
        y[i] = attn_expf(x[i]);
}

#endif
