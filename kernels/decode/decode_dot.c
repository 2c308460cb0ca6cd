/* The dot layout of the decode partial (decode_internal.h): for a group of
 * few query rows (one decode query under 4:1 GQA is 4 rows) the two products
 * of a tile are matrix-vector shaped, and their speed is the speed at which
 * K and V rows arrive from memory. This layout reads each K row once, in
 * order, for its scores (dot products with every query row), and each V row
 * once, in order, for the output update, while prefetching the rows a fixed
 * distance ahead along that same order (this tile's K, this tile's V, the
 * next tile's K). Measured on the AMD EPYC VM (AVX2, 2 threads, KV = 32K,
 * D = 128): the row layout, which transposes K per tile and reads V in
 * column strips for the micro-kernel, moved 9.5 GB/s; this one is in
 * docs/results.md (decode).
 *
 * Each score sums its D products in ATTN_VW partial sums, then across them:
 * equal to flash within rounding, not bitwise (the row and lane layouts are
 * bitwise equal to flash). */
#include "decode_internal.h"
#include "kernels/core/vexp.h"

#ifdef ATTN_VW

/* ~4 KiB ahead: far enough to cover the memory latency at the rate the
 * loops consume rows, near enough to stay in L1 until used. */
#define DEC_DOT_AHEAD_BYTES 4096

/* Prefetches row `pos` of the read order K rows [0, n), V rows [0, n),
 * next tile's K rows (nothing past those). */
static void dec_dot_prefetch(const dec_tile_rows *cur, const dec_tile_rows *nx, int64_t pos, int64_t D)
{
    const float *row = NULL;
    if (pos < cur->n)
        row = cur->k + pos * cur->ksn;
    else if (pos < 2 * cur->n)
        row = cur->v + (pos - cur->n) * cur->vsn;
    else if (nx->k && pos - 2 * cur->n < nx->n)
        row = nx->k + (pos - 2 * cur->n) * nx->ksn;
    for (int64_t d = 0; row && d < D; d += 16) /* one 64-byte line per 16 floats */
        dec_prefetch_line(1, row + d);
}

static int64_t dec_dot_ahead(int64_t D)
{
    int64_t rows = DEC_DOT_AHEAD_BYTES / (4 * D);
    return rows < 2 ? 2 : rows;
}

/* out[i] = the sum of the lanes of c[i], i < 8. */
static inline void dec_reduce8(const attn_vf c[8], float out[8])
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
    __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(out, s);
}

void attn_dec_dot_scores(const float *qs, int64_t R, int64_t D, const dec_tile_rows *cur, const dec_tile_rows *nx,
                         float *S, int64_t ld)
{
    int64_t nk = cur->n, ahead = dec_dot_ahead(D);
    for (int64_t j = 0; j < nk; j += 2) {
        dec_dot_prefetch(cur, nx, j + ahead, D);
        dec_dot_prefetch(cur, nx, j + 1 + ahead, D);
        /* an odd last key is paired with itself; its twin's scores are dropped */
        const float *k0 = cur->k + j * cur->ksn, *k1 = j + 1 < nk ? k0 + cur->ksn : k0;
        for (int64_t r0 = 0; r0 < R; r0 += 4) {
            int64_t nr = R - r0 < 4 ? R - r0 : 4;
            attn_vf c[8];
            for (int i = 0; i < 8; i++)
                c[i] = attn_vf_zero();
            const float *q = qs + r0 * D;
            for (int64_t d = 0; d < D; d += ATTN_VW) {
                attn_vf x0 = attn_vf_loadu(k0 + d), x1 = attn_vf_loadu(k1 + d);
                for (int64_t r = 0; r < nr; r++) {
                    attn_vf qv = attn_vf_loadu(q + r * D + d);
                    c[2 * r] = attn_vf_fma(qv, x0, c[2 * r]);
                    c[2 * r + 1] = attn_vf_fma(qv, x1, c[2 * r + 1]);
                }
            }
            float s[8];
            dec_reduce8(c, s);
            for (int64_t r = 0; r < nr; r++) {
                S[(r0 + r) * ld + j] = s[2 * r];
                if (j + 1 < nk)
                    S[(r0 + r) * ld + j + 1] = s[2 * r + 1];
            }
        }
    }
}

void attn_dec_dot_pv(const float *P, int64_t ld, int64_t R, int64_t D, const dec_tile_rows *cur,
                     const dec_tile_rows *nx, float *acc)
{
    int64_t nk = cur->n, ahead = dec_dot_ahead(D), j = 0;
    for (; j + 1 < nk; j += 2) {
        dec_dot_prefetch(cur, nx, nk + j + ahead, D);
        dec_dot_prefetch(cur, nx, nk + j + 1 + ahead, D);
        const float *v0 = cur->v + j * cur->vsn, *v1 = v0 + cur->vsn;
        for (int64_t r = 0; r < R; r++) {
            attn_vf p0 = attn_vf_bcast(P + r * ld + j), p1 = attn_vf_bcast(P + r * ld + j + 1);
            float *o = acc + r * D;
            for (int64_t d = 0; d < D; d += ATTN_VW)
                attn_vf_storeu(o + d, attn_vf_fma(p1, attn_vf_loadu(v1 + d),
                                                  attn_vf_fma(p0, attn_vf_loadu(v0 + d), attn_vf_loadu(o + d))));
        }
    }
    for (; j < nk; j++) { /* the odd last key */
        const float *v0 = cur->v + j * cur->vsn;
        for (int64_t r = 0; r < R; r++) {
            attn_vf p0 = attn_vf_bcast(P + r * ld + j);
            float *o = acc + r * D;
            for (int64_t d = 0; d < D; d += ATTN_VW)
                attn_vf_storeu(o + d, attn_vf_fma(p0, attn_vf_loadu(v0 + d), attn_vf_loadu(o + d)));
        }
    }
}

#else /* no vector width: plain loops, so the entry points exist (dec_dot_ok never picks them) */

void attn_dec_dot_scores(const float *qs, int64_t R, int64_t D, const dec_tile_rows *cur, const dec_tile_rows *nx,
                         float *S, int64_t ld)
{
    (void)nx;
    for (int64_t j = 0; j < cur->n; j++)
        for (int64_t r = 0; r < R; r++) {
            float s = 0;
            for (int64_t d = 0; d < D; d++)
                s += qs[r * D + d] * cur->k[j * cur->ksn + d];
            S[r * ld + j] = s;
        }
}

void attn_dec_dot_pv(const float *P, int64_t ld, int64_t R, int64_t D, const dec_tile_rows *cur,
                     const dec_tile_rows *nx, float *acc)
{
    (void)nx;
    for (int64_t j = 0; j < cur->n; j++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t d = 0; d < D; d++)
                acc[r * D + d] += P[r * ld + j] * cur->v[j * cur->vsn + d];
}

#endif
