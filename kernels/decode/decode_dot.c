/* The dot layout of the decode partial (decode_internal.h): for a group of
 * few query rows (one decode query under 4:1 GQA is 4 rows) the two products
 * of a tile are matrix-vector shaped, and their speed is the speed at which
 * K and V rows arrive from memory. This layout reads each K row once, in
 * order, for its scores (dot products with every query row), and each V row
 * once, in order, for the output update, while prefetching the rows a fixed
 * distance ahead along that same order (this tile's K, this tile's V, the
 * next tile's K). Measured on the AMD EPYC VM (AVX2, 2 threads, KV = 32K,
 * D = 128): the row layout (since replaced by the group layout of
 * decode_group.c), which transposed K per tile and read V in column strips
 * for the micro-kernel, moved 9.5 GB/s; this one is in docs/results.md
 * (decode).
 *
 * The same loops read a KV cache stored in a low-precision format
 * (attn_args.kv_dtype, kv_format.h, docs/kv-formats.md): each row is loaded
 * in its stored bytes and widened to fp32 in registers, ATTN_VW values at a
 * time, where the fp32 layout loads it; the products and every sum stay
 * fp32. Decode is bound by the bytes of K and V, so narrower rows are the
 * speed. Widening is exact: bf16 and fp16 values are floats already, and a
 * block value is (float)q * scale, one rounding, as attn_kv_dequantize_row
 * computes it.
 *
 * Each score sums its D products in ATTN_VW partial sums, then across them:
 * equal to flash within rounding, not bitwise (the row and lane layouts are
 * bitwise equal to flash). */
#include "decode_internal.h"

#include <string.h>

int attn_dec_kv_check(const attn_args *a, const attn_io *io, const char *kernel)
{
    if (a->kv_dtype == ATTN_KV_FP32)
        return 0;
    const attn_kv_cache *c[2] = {&io->kc, &io->vc};
    for (int i = 0; i < 2; i++)
        if (!c[i]->data || c[i]->dtype != a->kv_dtype || c[i]->B != a->B || c[i]->H != a->H_kv ||
            c[i]->N < a->Nk || c[i]->D != a->D)
            return attn_fail(ATTN_EINVAL, "%s: expected a %s %s cache [%lld, %lld, %lld, %lld] in io.%s, found %s",
                             kernel, attn_kv_dtype_names[a->kv_dtype], i ? "V" : "K", (long long)a->B,
                             (long long)a->H_kv, (long long)a->Nk, (long long)a->D, i ? "vc" : "kc",
                             c[i]->data ? "another format or shape" : "none");
    return 0;
}

dec_kv_rows attn_dec_kv_tile(const attn_io *io, attn_kv_dtype t, int64_t b, int64_t hk, int64_t j, int64_t n)
{
    dec_kv_rows r = {NULL, NULL, 0, 0, 0, attn_kv_row_bytes(t, t == ATTN_KV_FP32 ? io->k.D : io->kc.D)};
    if (n <= 0)
        return r;
    if (t == ATTN_KV_FP32 && io->k.data) {
        r.k = (const unsigned char *)attn_at(&io->k, b, hk, j), r.v = (const unsigned char *)attn_at(&io->v, b, hk, j);
        r.ksn = 4 * io->k.sn, r.vsn = 4 * io->v.sn, r.n = n;
    } else if (t != ATTN_KV_FP32 && io->kc.data) {
        r.k = attn_kv_row(&io->kc, b, hk, j), r.v = attn_kv_row(&io->vc, b, hk, j);
        r.ksn = io->kc.sn, r.vsn = io->vc.sn, r.n = n;
    }
    return r;
}

/* ~4 KiB ahead: far enough to cover the memory latency at the rate the
 * loops consume rows, near enough to stay in L1 until used. */
#define DEC_KV_AHEAD_BYTES 4096

/* Prefetches row `pos` of the read order: this tile's K rows, its V rows,
 * the next tile's K rows. */
static void dec_kv_prefetch(const dec_kv_rows *cur, const dec_kv_rows *nx, int64_t pos)
{
    const unsigned char *row = NULL;
    if (pos < cur->n)
        row = cur->k + pos * cur->ksn;
    else if (pos < 2 * cur->n)
        row = cur->v + (pos - cur->n) * cur->vsn;
    else if (nx->k && pos - 2 * cur->n < nx->n)
        row = nx->k + (pos - 2 * cur->n) * nx->ksn;
    for (size_t o = 0; row && o < cur->row_bytes; o += 64)
        dec_prefetch_line(1, (const float *)(const void *)(row + o));
}

static int64_t dec_kv_ahead(const dec_kv_rows *cur)
{
    int64_t rows = DEC_KV_AHEAD_BYTES / (int64_t)cur->row_bytes;
    return rows < 2 ? 2 : rows;
}

/* A block's fp16 scale: F16C's conversion where the build has it (exact,
 * as attn_fp16_to_f32), not a call per ATTN_VW values. */
static inline float dec_kv_scale(const unsigned char *blk)
{
    uint16_t h = (uint16_t)(blk[0] | blk[1] << 8);
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    return attn_fp16_to_f32(h);
#endif
}

#ifdef ATTN_VW

/* Values [d, d + ATTN_VW) of a stored row as floats (d a multiple of
 * ATTN_VW, which divides the block of 32). Inlined with a constant format,
 * so each caller's loop is specialised to one format. */
static inline __attribute__((always_inline)) attn_vf dec_kv_load(attn_kv_dtype t, const unsigned char *row, int64_t d)
{
    const unsigned char *blk = row, *qs;
    int64_t j = d % ATTN_KV_BLOCK;
    switch (t) {
    case ATTN_KV_FP32:
        return attn_vf_loadu((const float *)(const void *)row + d);
    case ATTN_KV_BF16: /* bf16 is the top half of an fp32 */
#ifdef __AVX512F__
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(row + 2 * d))), 16));
#else
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(row + 2 * d))), 16));
#endif
    case ATTN_KV_FP16:
#ifdef __AVX512F__
        return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(row + 2 * d)));
#elif defined(__F16C__)
        return _mm256_cvtph_ps(_mm_loadu_si128((const void *)(row + 2 * d)));
#else
        {
            float x[8];
            for (int i = 0; i < 8; i++) {
                uint16_t h;
                memcpy(&h, row + 2 * (d + i), 2);
                x[i] = attn_fp16_to_f32(h);
            }
            return attn_vf_loadu(x);
        }
#endif
    case ATTN_KV_Q8_0:
        blk = row + d / ATTN_KV_BLOCK * ATTN_KV_Q8_0_BYTES, qs = blk + 2 + j;
#ifdef __AVX512F__
        return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)qs))),
                             _mm512_set1_ps(dec_kv_scale(blk)));
#else
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const void *)qs))),
                             _mm256_set1_ps(dec_kv_scale(blk)));
#endif
    default: { /* q4_0: values 0..15 of a block in the low nibbles, 16..31 in the high ones */
        blk = row + d / ATTN_KV_BLOCK * ATTN_KV_Q4_0_BYTES, qs = blk + 2 + j % 16;
#ifdef __AVX512F__
        __m128i b = _mm_loadu_si128((const void *)qs);
#else /* 8 bytes: a 16-byte load at byte 8 would run past the block (and the cache's end) */
        __m128i b = _mm_loadl_epi64((const void *)qs);
#endif
        __m128i lo4 = _mm_set1_epi8(15);
        __m128i nib = j < 16 ? _mm_and_si128(b, lo4) : _mm_and_si128(_mm_srli_epi16(b, 4), lo4);
#ifdef __AVX512F__
        __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(nib), _mm512_set1_epi32(8));
        return _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(dec_kv_scale(blk)));
#else
        __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(nib), _mm256_set1_epi32(8));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(dec_kv_scale(blk)));
#endif
    }
    }
}

/* out[i] = the sum of the lanes of c[i], i < 8. */
static inline void dec_kv_reduce8(const attn_vf c[8], float out[8])
{
    __m256 h[8];
#ifdef __AVX512F__
    for (int i = 0; i < 8; i++)
        h[i] = _mm256_add_ps(_mm512_castps512_ps256(c[i]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c[i]), 1)));
#else
    for (int i = 0; i < 8; i++)
        h[i] = c[i];
#endif
    /* pairwise adds: u0 holds the 128-bit halves' sums of c0..c3, u1 of c4..c7 */
    __m256 t0 = _mm256_hadd_ps(h[0], h[1]), t1 = _mm256_hadd_ps(h[2], h[3]);
    __m256 t2 = _mm256_hadd_ps(h[4], h[5]), t3 = _mm256_hadd_ps(h[6], h[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31)));
}

static inline __attribute__((always_inline)) void
dec_kv_scores_fmt(attn_kv_dtype t, const float *qs, int64_t R, int64_t D, const dec_kv_rows *cur,
                  const dec_kv_rows *nx, float *S, int64_t ld)
{
    int64_t nk = cur->n, ahead = dec_kv_ahead(cur);
    for (int64_t j = 0; j < nk; j += 2) {
        dec_kv_prefetch(cur, nx, j + ahead);
        dec_kv_prefetch(cur, nx, j + 1 + ahead);
        /* an odd last key is paired with itself; its twin's scores are dropped */
        const unsigned char *k0 = cur->k + j * cur->ksn, *k1 = j + 1 < nk ? k0 + cur->ksn : k0;
        for (int64_t r0 = 0; r0 < R; r0 += 4) {
            int64_t nr = R - r0 < 4 ? R - r0 : 4;
            attn_vf c[8];
            for (int i = 0; i < 8; i++)
                c[i] = attn_vf_zero();
            const float *q = qs + r0 * D;
            for (int64_t d = 0; d < D; d += ATTN_VW) {
                attn_vf x0 = dec_kv_load(t, k0, d), x1 = dec_kv_load(t, k1, d);
                for (int64_t r = 0; r < nr; r++) {
                    attn_vf qv = attn_vf_loadu(q + r * D + d);
                    c[2 * r] = attn_vf_fma(qv, x0, c[2 * r]);
                    c[2 * r + 1] = attn_vf_fma(qv, x1, c[2 * r + 1]);
                }
            }
            float s[8];
            dec_kv_reduce8(c, s);
            for (int64_t r = 0; r < nr; r++) {
                S[(r0 + r) * ld + j] = s[2 * r];
                if (j + 1 < nk)
                    S[(r0 + r) * ld + j + 1] = s[2 * r + 1];
            }
        }
    }
}

/* V rows two at a time: each ATTN_VW slice of the pair is loaded (widened)
 * once and added into every row's accumulator, o = fma(p1, v1, fma(p0, v0, o)). */
static inline __attribute__((always_inline)) void
dec_kv_pv_fmt(attn_kv_dtype t, const float *P, int64_t ld, int64_t R, int64_t D, const dec_kv_rows *cur,
              const dec_kv_rows *nx, float *acc)
{
    int64_t nk = cur->n, ahead = dec_kv_ahead(cur);
    for (int64_t j = 0; j < nk; j += 2) {
        dec_kv_prefetch(cur, nx, nk + j + ahead);
        dec_kv_prefetch(cur, nx, nk + j + 1 + ahead);
        int pair = j + 1 < nk;
        const unsigned char *v0 = cur->v + j * cur->vsn, *v1 = pair ? v0 + cur->vsn : v0;
        for (int64_t d = 0; d < D; d += ATTN_VW) {
            attn_vf x0 = dec_kv_load(t, v0, d), x1 = pair ? dec_kv_load(t, v1, d) : attn_vf_zero();
            for (int64_t r = 0; r < R; r++) {
                float *o = acc + r * D + d;
                attn_vf y = attn_vf_fma(attn_vf_bcast(P + r * ld + j), x0, attn_vf_loadu(o));
                if (pair)
                    y = attn_vf_fma(attn_vf_bcast(P + r * ld + j + 1), x1, y);
                attn_vf_storeu(o, y);
            }
        }
    }
}

#define DEC_KV_DISPATCH(body, ...)                                                                               \
    switch (t) {                                                                                                 \
    case ATTN_KV_FP32: body(ATTN_KV_FP32, __VA_ARGS__); break;                                                   \
    case ATTN_KV_BF16: body(ATTN_KV_BF16, __VA_ARGS__); break;                                                   \
    case ATTN_KV_FP16: body(ATTN_KV_FP16, __VA_ARGS__); break;                                                   \
    case ATTN_KV_Q8_0: body(ATTN_KV_Q8_0, __VA_ARGS__); break;                                                   \
    default: body(ATTN_KV_Q4_0, __VA_ARGS__); break;                                                             \
    }

void attn_dec_dot_scores(attn_kv_dtype t, const float *qs, int64_t R, int64_t D, const dec_kv_rows *cur,
                        const dec_kv_rows *nx, float *S, int64_t ld)
{
    DEC_KV_DISPATCH(dec_kv_scores_fmt, qs, R, D, cur, nx, S, ld)
}

void attn_dec_dot_pv(attn_kv_dtype t, const float *P, int64_t ld, int64_t R, int64_t D, const dec_kv_rows *cur,
                    const dec_kv_rows *nx, float *acc)
{
    DEC_KV_DISPATCH(dec_kv_pv_fmt, P, ld, R, D, cur, nx, acc)
}

static inline __attribute__((always_inline)) void dec_kv_widen_fmt(attn_kv_dtype t, const unsigned char *row,
                                                                   int64_t D, float *out)
{
    for (int64_t d = 0; d < D; d += ATTN_VW)
        attn_vf_storeu(out + d, dec_kv_load(t, row, d));
}

void attn_dec_kv_widen(attn_kv_dtype t, const unsigned char *row, int64_t D, float *out)
{
    DEC_KV_DISPATCH(dec_kv_widen_fmt, row, D, out)
}

#else /* no vector width: 32 values at a time widened into a buffer, then plain loops (fp32 only
        comes here for a stored cache's tests: dec_dot_ok never picks this layout for fp32) */

void attn_dec_kv_widen(attn_kv_dtype t, const unsigned char *row, int64_t D, float *out)
{
    attn_kv_dequantize_row(t, row, D, out);
}

/* Values [32c, 32c + 32) of a stored row (every format's row is whole
 * 32-value pieces of attn_kv_row_bytes(t, 32) bytes). */
static void dec_kv_chunk(attn_kv_dtype t, const unsigned char *row, int64_t c, float x[ATTN_KV_BLOCK])
{
    attn_kv_dequantize_row(t, row + (size_t)c * attn_kv_row_bytes(t, ATTN_KV_BLOCK), ATTN_KV_BLOCK, x);
}

void attn_dec_dot_scores(attn_kv_dtype t, const float *qs, int64_t R, int64_t D, const dec_kv_rows *cur,
                         const dec_kv_rows *nx, float *S, int64_t ld)
{
    float x[ATTN_KV_BLOCK];
    for (int64_t j = 0; j < cur->n; j++) {
        dec_kv_prefetch(cur, nx, j + dec_kv_ahead(cur));
        for (int64_t r = 0; r < R; r++)
            S[r * ld + j] = 0;
        for (int64_t c = 0; c < D / ATTN_KV_BLOCK; c++) {
            dec_kv_chunk(t, cur->k + j * cur->ksn, c, x);
            for (int64_t r = 0; r < R; r++)
                for (int64_t i = 0; i < ATTN_KV_BLOCK; i++)
                    S[r * ld + j] += qs[r * D + c * ATTN_KV_BLOCK + i] * x[i];
        }
    }
}

void attn_dec_dot_pv(attn_kv_dtype t, const float *P, int64_t ld, int64_t R, int64_t D, const dec_kv_rows *cur,
                     const dec_kv_rows *nx, float *acc)
{
    float x[ATTN_KV_BLOCK];
    for (int64_t j = 0; j < cur->n; j++) {
        dec_kv_prefetch(cur, nx, cur->n + j + dec_kv_ahead(cur));
        for (int64_t c = 0; c < D / ATTN_KV_BLOCK; c++) {
            dec_kv_chunk(t, cur->v + j * cur->vsn, c, x);
            for (int64_t r = 0; r < R; r++)
                for (int64_t i = 0; i < ATTN_KV_BLOCK; i++)
                    acc[r * D + c * ATTN_KV_BLOCK + i] += P[r * ld + j] * x[i];
        }
    }
}

#endif
