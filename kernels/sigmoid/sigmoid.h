/* `sigmoid`: sigmoid attention (Ramapuram et al. 2024, "Theory, Analysis,
 * and Best Practices for Sigmoid Self-Attention"; docs/kernels/sigmoid.md):
 *
 *     O = (A (.) sigma(sc Q K^T + b)) V,   b = -ln Nk by default
 *
 * with no softmax normaliser, so rows do not sum to one and there is no
 * logsumexp: the kernel leaves io->lse untouched. The logistic function is
 * evaluated in its stable form (below), shared by the kernel and its tests. */
#ifndef ATTN_SIGMOID_H
#define ATTN_SIGMOID_H

#include "kernels/core/attn.h"
#include "kernels/core/vexp.h"

#include <math.h>

extern const attn_kernel attn_kernel_sigmoid;

/* Stable logistic: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise, both as
 * num/(1+e) with e = exp(-|x|) <= 1, so neither form overflows (sigma(+-100)
 * is 1 and 0, not inf/inf). Same operations as attn_vsigmoid16 and
 * attn_vsigmoid8, same bits. */
static inline float attn_sigmoidf(float x)
{
    float e = attn_expf(-fabsf(x));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

#ifdef __AVX512F__
/* Sixteen lanes of attn_sigmoidf. */
static inline __m512 attn_vsigmoid16(__m512 x)
{
    __m512 e = attn_vexp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
    __m512 one = _mm512_set1_ps(1.0f);
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_div_ps(_mm512_mask_mov_ps(e, pos, one), _mm512_add_ps(one, e));
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* Eight lanes of attn_sigmoidf (same bits: -|x| is exact, and a NaN x
 * fails x >= 0 in both forms). */
static inline __m256 attn_vsigmoid8(__m256 x)
{
    __m256 e = attn_vexp8(_mm256_or_ps(_mm256_set1_ps(-0.0f), x)); /* exp(-|x|) */
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_div_ps(_mm256_blendv_ps(e, one, pos), _mm256_add_ps(one, e));
}
#endif

#if defined(ATTN_VW) && ATTN_VW == 16
#define attn_vf_sigmoid(x) attn_vsigmoid16(x)
#elif defined(ATTN_VW) && ATTN_VW == 8
#define attn_vf_sigmoid(x) attn_vsigmoid8(x)
#endif

#endif
