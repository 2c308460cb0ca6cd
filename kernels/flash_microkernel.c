/* Register-blocked product for flash_microkernel.h. An MR x (16*NV) block
 * of C stays in zmm registers while p runs over k: per p, NV vector loads of B
 * and MR broadcasts of A feed MR*NV FMAs, enough independent accumulators to
 * cover the FMA latency on both ports.
 *
 * Measured on the tile shapes flash uses (single thread, Sapphire Rapids
 * class): S = K Q^T at 128 x 64 x 64 runs at 186 GFLOP/s against 180 for
 * cblas_sgemm, Acc += V^T P at 64 x 64 x 128 at 172 against 178; MR x NV =
 * 4x4, 8x3 and 8x2 were 2-10% slower than 6x4. BLAS would also need its
 * operands in one of its two layouts and an extra pass for the rescale and
 * the column max, which this kernel fuses. */
#include "flash_microkernel.h"

#ifdef __AVX512F__
#include <immintrin.h>

#define MK_MR 6   /* rows of C per block (broadcasts of A) */
#define MK_NV 4   /* 16-float vectors of C per block row (loads of B) */

/* One mr x nv block; mr and nv are compile-time constants at every call
 * site below, so the loops unroll and acc lives in registers. */
static inline __attribute__((always_inline)) void mk_block(const int mr, const int nv, int64_t k,
                                                           const float *A, int64_t sam, int64_t sak,
                                                           const float *B, int64_t ldb, float *C,
                                                           int64_t ldc, attn_mk_mode mode,
                                                           const float *cscale, float *cmax)
{
    __m512 acc[MK_MR][MK_NV];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++) {
            if (mode == ATTN_MK_SET)
                acc[i][v] = _mm512_setzero_ps();
            else if (mode == ATTN_MK_ADD)
                acc[i][v] = _mm512_load_ps(C + i * ldc + 16 * v);
            else
                acc[i][v] = _mm512_mul_ps(_mm512_load_ps(C + i * ldc + 16 * v),
                                          _mm512_load_ps(cscale + 16 * v));
        }
    for (int64_t p = 0; p < k; p++) {
        const float *a = A + p * sak, *b = B + p * ldb;
        __m512 bv[MK_NV];
        for (int v = 0; v < nv; v++)
            bv[v] = _mm512_load_ps(b + 16 * v);
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i * sam]);
            for (int v = 0; v < nv; v++)
                acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            _mm512_store_ps(C + i * ldc + 16 * v, acc[i][v]);
    if (cmax)
        for (int v = 0; v < nv; v++) {
            __m512 mx = _mm512_load_ps(cmax + 16 * v);
            for (int i = 0; i < mr; i++)
                mx = _mm512_max_ps(mx, acc[i][v]);
            _mm512_store_ps(cmax + 16 * v, mx);
        }
}

#define MK_CASE(MR, NV)                                                                      \
    case (NV) * 16 + (MR):                                                                   \
        mk_block(MR, NV, k, A + i0 * sam, sam, sak, B + n0, ldb, C + i0 * ldc + n0, ldc, mode, \
                 cs, cm);                                                                      \
        break;
#define MK_CASES(NV)                                                                              \
    MK_CASE(1, NV) MK_CASE(2, NV) MK_CASE(3, NV) MK_CASE(4, NV) MK_CASE(5, NV) MK_CASE(6, NV)

double attn_mk_gemm(int64_t m, int64_t nn, int64_t k, const float *A, int64_t sam, int64_t sak,
                    const float *B, int64_t ldb, float *C, int64_t ldc, attn_mk_mode mode,
                    const float *cscale, float *cmax)
{
    for (int64_t n0 = 0; n0 < nn; n0 += 16 * MK_NV) {
        int nv = (nn - n0) / 16 < MK_NV ? (int)((nn - n0) / 16) : MK_NV;
        const float *cs = mode == ATTN_MK_SCALE_ADD ? cscale + n0 : NULL;
        float *cm = cmax ? cmax + n0 : NULL;
        for (int64_t i0 = 0; i0 < m; i0 += MK_MR) {
            int mr = m - i0 < MK_MR ? (int)(m - i0) : MK_MR;
            switch (nv * 16 + mr) {
                MK_CASES(1)
                MK_CASES(2)
                MK_CASES(3)
                MK_CASES(4)
            }
        }
    }
    return 2.0 * (double)m * (double)nn * (double)k;
}
#else
/* Portable form: the same products in plain loops (n innermost, so the
 * compiler can vectorise for whatever ISA it targets). */
double attn_mk_gemm(int64_t m, int64_t nn, int64_t k, const float *A, int64_t sam, int64_t sak,
                    const float *B, int64_t ldb, float *C, int64_t ldc, attn_mk_mode mode,
                    const float *cscale, float *cmax)
{
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc;
        for (int64_t n = 0; n < nn; n++)
            c[n] = mode == ATTN_MK_SET ? 0.0f : mode == ATTN_MK_ADD ? c[n] : c[n] * cscale[n];
        for (int64_t p = 0; p < k; p++) {
            float a = A[i * sam + p * sak];
            const float *b = B + p * ldb;
            for (int64_t n = 0; n < nn; n++)
                c[n] += a * b[n];
        }
        for (int64_t n = 0; cmax && n < nn; n++)
            cmax[n] = c[n] > cmax[n] ? c[n] : cmax[n];
    }
    return 2.0 * (double)m * (double)nn * (double)k;
}
#endif
