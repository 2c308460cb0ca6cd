/* The inner loops of flash's per-row path (flash_rows.h): scores of one
 * query row against a list of gathered K rows, and the P V update from the
 * gathered V rows. Each has a plain-C variant and, where the build allows,
 * AVX2+FMA and AVX-512 ones; an AVX-512 build compiles all three, so the
 * tests compare the AVX2 variant with the plain one on this machine too.
 *
 * Scores take 16 keys (AVX2: 8) at a time: each key's D-long product is
 * accumulated in one vector across the D/16 chunks, and the 16 vectors are
 * then summed lane-wise in one transposing reduction (4 shuffle levels), so
 * no key pays a horizontal sum of its own. */
#include "flash_rows.h"
#include "kernels/core/vexp.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static void dot_plain(const float *q, const float *K, int64_t sn, const int32_t *idx, int64_t n, int64_t D, float *s)
{
    for (int64_t k = 0; k < n; k++) {
        const float *kr = K + (int64_t)idx[k] * sn;
        float acc = 0;
        for (int64_t d = 0; d < D; d++)
            acc += q[d] * kr[d];
        s[k] = acc;
    }
}

static void pv_plain(float *acc, float alpha, const float *p, const float *V, int64_t sn, const int32_t *idx,
                     int64_t n, int64_t D)
{
    for (int64_t d = 0; d < D; d++)
        acc[d] *= alpha;
    for (int64_t k = 0; k < n; k++) {
        const float *vr = V + (int64_t)idx[k] * sn;
        for (int64_t d = 0; d < D; d++)
            acc[d] += p[k] * vr[d];
    }
}

#ifdef __AVX512F__
/* v[0..16) -> one vector whose lane k is the sum of v[k]'s lanes. */
static inline __m512 sum16x16(__m512 *v)
{
    __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* per 128-bit chunk: [a0+a2, b0+b2, a1+a3, b1+b3] */
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* per chunk: the chunk's sums of v[4i..4i+4) */
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) /* chunk pairs added */
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The scores of keys idx[0..kn) (kn 8 or 16, known at the call) in lanes
 * 0..kn, 0 in the others. */
static inline __attribute__((always_inline)) __m512 dot512_batch(const __m512 *qv, const float *K, int64_t sn,
                                                                 const int32_t *idx, int64_t nc, __mmask16 tail,
                                                                 int kn)
{
    __m512 v[16];
    /* unrolled so that v stays in registers; even and odd chunks in two
     * chains per key */
#pragma GCC unroll 16
    for (int k = 0; k < 16; k++) {
        if (k >= kn) {
            v[k] = _mm512_setzero_ps();
            continue;
        }
        const float *kr = K + (int64_t)idx[k] * sn;
        __m512 a = _mm512_mul_ps(_mm512_maskz_loadu_ps(nc == 1 ? tail : 0xffff, kr), qv[0]);
        __m512 b = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int64_t c = 1; c < nc; c += 2) {
            b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(c == nc - 1 ? tail : 0xffff, kr + 16 * c), qv[c], b);
            if (c + 1 < nc)
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(c + 1 == nc - 1 ? tail : 0xffff, kr + 16 * c + 16),
                                    qv[c + 1], a);
        }
        v[k] = _mm512_add_ps(a, b);
    }
    return sum16x16(v);
}

/* D known at the call for the common head sizes, so q stays in registers. */
static inline __attribute__((always_inline)) void dot512_d(const float *q, const float *K, int64_t sn,
                                                           const int32_t *idx, int64_t n, int64_t D, float *s)
{
    enum { MAXC = 16 };
    int64_t nc = (D + 15) / 16;
    __mmask16 tail = D % 16 ? (__mmask16)((1u << (D % 16)) - 1) : (__mmask16)0xffff;
    __m512 qv[MAXC];
    for (int64_t c = 0; c < nc; c++)
        qv[c] = _mm512_load_ps(q + 16 * c);
    for (int64_t k0 = 0; k0 < n; k0 += 16)
        /* a last batch of at most 8 keys computes 8 (the reduction is the
         * same): rows of a sparse tile often have fewer than 16 */
        _mm512_storeu_ps(s + k0, n - k0 <= 8 ? dot512_batch(qv, K, sn, idx + k0, nc, tail, 8)
                                             : dot512_batch(qv, K, sn, idx + k0, nc, tail, 16));
}

static void dot_avx512(const float *q, const float *K, int64_t sn, const int32_t *idx, int64_t n, int64_t D,
                       float *s)
{
    if (D == 64)
        dot512_d(q, K, sn, idx, n, 64, s);
    else if (D == 128)
        dot512_d(q, K, sn, idx, n, 128, s);
    else if (D <= 256)
        dot512_d(q, K, sn, idx, n, D, s);
    else
        dot_plain(q, K, sn, idx, n, D, s);
}

/* Key by key, the row's D accumulators in registers (two interleaved sets
 * of up to 8 vectors, so that 8 or more FMA chains are in flight): each key
 * costs one index, one broadcast and its D/16 V loads and FMAs. The earlier
 * chunk-by-chunk order reloaded every key's index and probability once per
 * chunk and was bound by those loads. */
static inline __attribute__((always_inline)) void pv512_d(float *acc, float alpha, const float *p, const float *V,
                                                          int64_t sn, const int32_t *idx, int64_t n, int64_t D)
{
    enum { MAXC = 16 };
    int64_t nc = (D + 15) / 16;
    int two = nc <= 8;
    __mmask16 tail = D % 16 ? (__mmask16)((1u << (D % 16)) - 1) : (__mmask16)0xffff;
    __m512 a[MAXC], b[MAXC], al = _mm512_set1_ps(alpha);
#pragma GCC unroll 16
    for (int64_t c = 0; c < MAXC; c++) /* all set: those past nc are never used */
        a[c] = c < nc ? _mm512_mul_ps(_mm512_load_ps(acc + 16 * c), al) : _mm512_setzero_ps(), b[c] = a[c];
#pragma GCC unroll 16
    for (int64_t c = 0; c < MAXC; c++)
        b[c] = _mm512_setzero_ps();
    int64_t k = 0;
    if (two)
        for (; k + 2 <= n; k += 2) {
            const float *v0 = V + (int64_t)idx[k] * sn, *v1 = V + (int64_t)idx[k + 1] * sn;
            __m512 p0 = _mm512_set1_ps(p[k]), p1 = _mm512_set1_ps(p[k + 1]);
#pragma GCC unroll 8
            for (int64_t c = 0; c < 8; c++)
                if (c < nc) {
                    __mmask16 mk = c == nc - 1 ? tail : (__mmask16)0xffff;
                    a[c] = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(mk, v0 + 16 * c), a[c]);
                    b[c] = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(mk, v1 + 16 * c), b[c]);
                }
        }
    for (; k < n; k++) {
        const float *v0 = V + (int64_t)idx[k] * sn;
        __m512 p0 = _mm512_set1_ps(p[k]);
#pragma GCC unroll 16
        for (int64_t c = 0; c < MAXC; c++)
            if (c < nc)
                a[c] = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(c == nc - 1 ? tail : (__mmask16)0xffff, v0 + 16 * c),
                                       a[c]);
    }
#pragma GCC unroll 16
    for (int64_t c = 0; c < MAXC; c++)
        if (c < nc)
            _mm512_store_ps(acc + 16 * c, _mm512_add_ps(a[c], b[c]));
}

static void pv_avx512(float *acc, float alpha, const float *p, const float *V, int64_t sn, const int32_t *idx,
                      int64_t n, int64_t D)
{
    if (D == 64)
        pv512_d(acc, alpha, p, V, sn, idx, n, 64);
    else if (D == 128)
        pv512_d(acc, alpha, p, V, sn, idx, n, 128);
    else if (D <= 256)
        pv512_d(acc, alpha, p, V, sn, idx, n, D);
    else
        pv_plain(acc, alpha, p, V, sn, idx, n, D);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* v[0..8) -> one vector whose lane k is the sum of v[k]'s lanes. */
static inline __m256 sum8x8(const __m256 *v)
{
    __m256 h01 = _mm256_hadd_ps(v[0], v[1]), h23 = _mm256_hadd_ps(v[2], v[3]);
    __m256 h45 = _mm256_hadd_ps(v[4], v[5]), h67 = _mm256_hadd_ps(v[6], v[7]);
    __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

static void dot_avx2(const float *q, const float *K, int64_t sn, const int32_t *idx, int64_t n, int64_t D, float *s)
{
    int64_t full = D / 8 * 8;
    for (int64_t k0 = 0; k0 < n; k0 += 8) {
        __m256 v[8];
        float tail[8];
        for (int k = 0; k < 8; k++) {
            const float *kr = K + (int64_t)idx[k0 + k] * sn;
            __m256 a = _mm256_setzero_ps();
            for (int64_t d = 0; d < full; d += 8)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(kr + d), _mm256_load_ps(q + d), a);
            v[k] = a;
            tail[k] = 0;
            for (int64_t d = full; d < D; d++)
                tail[k] += q[d] * kr[d];
        }
        _mm256_storeu_ps(s + k0, _mm256_add_ps(sum8x8(v), _mm256_loadu_ps(tail)));
    }
}

static void pv_avx2(float *acc, float alpha, const float *p, const float *V, int64_t sn, const int32_t *idx,
                    int64_t n, int64_t D)
{
    int64_t full = D / 8 * 8;
    __m256 al = _mm256_set1_ps(alpha);
    for (int64_t d = 0; d < full; d += 8) {
        __m256 a = _mm256_mul_ps(_mm256_load_ps(acc + d), al);
        for (int64_t k = 0; k < n; k++)
            a = _mm256_fmadd_ps(_mm256_set1_ps(p[k]), _mm256_loadu_ps(V + (int64_t)idx[k] * sn + d), a);
        _mm256_store_ps(acc + d, a);
    }
    for (int64_t d = full; d < D; d++) {
        float a = acc[d] * alpha;
        for (int64_t k = 0; k < n; k++)
            a += p[k] * V[(int64_t)idx[k] * sn + d];
        acc[d] = a;
    }
}
#endif

int flash_rows_has_isa(flash_rows_isa isa)
{
    switch (isa) {
    case FLASH_ROWS_PLAIN:
        return 1;
    case FLASH_ROWS_AVX2:
#if defined(__AVX2__) && defined(__FMA__)
        return 1;
#else
        return 0;
#endif
    case FLASH_ROWS_AVX512:
#ifdef __AVX512F__
        return 1;
#else
        return 0;
#endif
    }
    return 0;
}

flash_rows_isa flash_rows_best_isa(void)
{
    return flash_rows_has_isa(FLASH_ROWS_AVX512) ? FLASH_ROWS_AVX512
           : flash_rows_has_isa(FLASH_ROWS_AVX2) ? FLASH_ROWS_AVX2
                                                 : FLASH_ROWS_PLAIN;
}

void flash_rows_dot(flash_rows_isa isa, const float *q, const float *K, int64_t sn, const int32_t *idx, int64_t n,
                    int64_t D, float *s)
{
#ifdef __AVX512F__
    if (isa == FLASH_ROWS_AVX512) {
        dot_avx512(q, K, sn, idx, n, D, s);
        return;
    }
#endif
#if defined(__AVX2__) && defined(__FMA__)
    if (isa == FLASH_ROWS_AVX2) {
        dot_avx2(q, K, sn, idx, n, D, s);
        return;
    }
#endif
    (void)isa;
    dot_plain(q, K, sn, idx, n, D, s);
}

void flash_rows_pv(flash_rows_isa isa, float *acc, float alpha, const float *p, const float *V, int64_t sn,
                   const int32_t *idx, int64_t n, int64_t D)
{
#ifdef __AVX512F__
    if (isa == FLASH_ROWS_AVX512) {
        pv_avx512(acc, alpha, p, V, sn, idx, n, D);
        return;
    }
#endif
#if defined(__AVX2__) && defined(__FMA__)
    if (isa == FLASH_ROWS_AVX2) {
        pv_avx2(acc, alpha, p, V, sn, idx, n, D);
        return;
    }
#endif
    (void)isa;
    pv_plain(acc, alpha, p, V, sn, idx, n, D);
}

float flash_rows_softmax(flash_rows_isa isa, float *s, int64_t n, float *m, float *l)
{
    float mx = *m;
    int64_t k = 0;
#ifdef __AVX512F__
    if (isa == FLASH_ROWS_AVX512) {
        /* the scores past n repeat s[0] (flash_rows_dot's padding): the max
         * may read them */
        __m512 v = _mm512_set1_ps(mx);
        for (; k < n; k += 16)
            v = _mm512_max_ps(v, _mm512_loadu_ps(s + k));
        mx = _mm512_reduce_max_ps(v);
        /* most steps do not raise the max: alpha = exp(0) = 1 without the exp */
        float shift = mx == -INFINITY ? 0.0f : mx, alpha = mx == *m ? 1.0f : attn_expf(*m - shift);
        __m512 sh = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
        for (k = 0; k < n; k += 16) {
            __mmask16 in = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
            __m512 pk = _mm512_maskz_mov_ps(in, attn_vexp16(_mm512_sub_ps(_mm512_loadu_ps(s + k), sh)));
            _mm512_storeu_ps(s + k, pk);
            sum = _mm512_add_ps(sum, pk);
        }
        *l = alpha * *l + _mm512_reduce_add_ps(sum);
        *m = mx;
        return alpha;
    }
#endif
    (void)isa;
    for (; k < n; k++)
        mx = s[k] > mx ? s[k] : mx;
    /* as flash_lanes_rescale: a row whose scores are all -inf keeps
     * m = -inf and subtracts 0, so its P and l stay 0 */
    float shift = mx == -INFINITY ? 0.0f : mx, alpha = attn_expf(*m - shift), sum = 0;
    for (k = 0; k < n; k++)
        s[k] -= shift;
    attn_vexp(s, s, n);
    for (k = 0; k < n; k++)
        sum += s[k];
    *l = alpha * *l + sum;
    *m = mx;
    return alpha;
}

int64_t flash_rows_list(const uint64_t *words, int64_t nw, int32_t j0, int32_t *idx)
{
    int64_t n = 0;
#ifdef __AVX512F__
    /* register-form compress then a plain store: the memory form of
     * vpcompressd is microcoded and slow on some cores */
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t w = 0; w < nw; w++) {
        uint64_t x = words[w];
        /* no early exits: at p = 0.1 a fifth of the 16-bit pieces are empty,
         * at random, and a branch on them is mispredicted */
        for (int q = 0; q < 4; q++, x >>= 16) {
            __mmask16 m = (__mmask16)(x & 0xffff);
            __m512i base = _mm512_add_epi32(iota, _mm512_set1_epi32(j0 + (int32_t)(64 * w + 16 * q)));
            _mm512_storeu_si512(idx + n, _mm512_maskz_compress_epi32(m, base));
            n += __builtin_popcount(m);
        }
    }
#else
    for (int64_t w = 0; w < nw; w++)
        for (uint64_t x = words[w]; x; x &= x - 1)
            idx[n++] = j0 + (int32_t)(64 * w + __builtin_ctzll(x));
#endif
    return n;
}
