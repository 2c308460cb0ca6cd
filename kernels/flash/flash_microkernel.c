/* Register-blocked product for flash_internal.h. An MR x (W*NV) block
 * of C stays in vector registers while p runs over k: per p, NV vector
 * loads of B and MR broadcasts of A feed MR*NV FMAs, enough independent
 * accumulators to cover the FMA latency on both ports.
 *
 * AVX-512 (W = 16, zmm), measured on the tile shapes flash uses (single
 * thread, Sapphire Rapids class): S = K Q^T at 128 x 64 x 64 runs at 186
 * GFLOP/s against 180 for cblas_sgemm, Acc += V^T P at 64 x 64 x 128 at 172
 * against 178; MR x NV = 4x4, 8x3 and 8x2 were 2-10% slower than 6x4.
 *
 * AVX2 + FMA without AVX-512 (W = 8, ymm; a 16-float lane block is two
 * vectors): 6 x 2, the classic 6x16 shape, 12 accumulators + 2 loads of B +
 * 1 broadcast = 15 of the 16 ymm registers. Measured single thread on AMD
 * EPYC (Zen class, shared machine, best of 3, GFLOP/s over S = K Q^T and
 * Acc = V^T P at D x nk x lanes = 32x256x64, 64x256x64, 128x128x64):
 * 6x2 52-72, 5x2 46-71, 3x4 (4 rows x 32 cols needs 21 registers and
 * spills, so 3 rows) 45-62, 4x3 42-55, 8x1 38-55; the portable loops 15-23.
 *
 * BLAS would also need its operands in one of its two layouts and an extra
 * pass for the rescale and the column max, which this kernel fuses. */
#include "flash_internal.h"

#include "kernels/core/vexp.h" /* attn_vf: the build's vector (vexp.h) */

#ifdef ATTN_VW
#define MK_W ATTN_VW
#if ATTN_VW == 16
#define MK_NV 4       /* vectors of C per block row (loads of B) */
#define MK_NV_REM 4   /* the same blocks for the last rows */
#else
#define MK_NV 2
#define MK_NV_REM 4   /* the last m % 6 <= 3 rows: blocks of 32 columns */
#endif
#define MK_MR 6   /* rows of C per block (broadcasts of A) */

/* One mr x nv block; mr and nv are compile-time constants at every call
 * site below, so the loops unroll and acc lives in registers. Each C
 * element is its initial value followed by one FMA per p, ascending, in
 * every block shape (tests/test_flash_avx2.c checks it bitwise). */
static inline __attribute__((always_inline)) void mk_block(const int mr, const int nv, int64_t k,
                                                           const float *A, int64_t sam, int64_t sak,
                                                           const float *B, int64_t ldb, float *C,
                                                           int64_t ldc, attn_mk_mode mode,
                                                           const float *cscale, float *cmax)
{
    attn_vf acc[MK_MR][MK_NV_REM];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++) {
            if (mode == ATTN_MK_SET)
                acc[i][v] = attn_vf_zero();
            else if (mode == ATTN_MK_ADD)
                acc[i][v] = attn_vf_load(C + i * ldc + MK_W * v);
            else
                acc[i][v] = attn_vf_mul(attn_vf_load(C + i * ldc + MK_W * v), attn_vf_load(cscale + MK_W * v));
        }
    for (int64_t p = 0; p < k; p++) {
        const float *a = A + p * sak, *b = B + p * ldb;
        attn_vf bv[MK_NV_REM];
        for (int v = 0; v < nv; v++)
            bv[v] = attn_vf_load(b + MK_W * v);
        for (int i = 0; i < mr; i++) {
            attn_vf ai = attn_vf_bcast(a + i * sam);
            for (int v = 0; v < nv; v++)
                acc[i][v] = attn_vf_fma(ai, bv[v], acc[i][v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            attn_vf_store(C + i * ldc + MK_W * v, acc[i][v]);
    if (cmax)
        for (int v = 0; v < nv; v++) {
            attn_vf mx = attn_vf_load(cmax + MK_W * v);
            for (int i = 0; i < mr; i++)
                mx = attn_vf_max(mx, acc[i][v]);
            attn_vf_store(cmax + MK_W * v, mx);
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
    /* AVX2: a remainder of 1-3 rows in 16-column blocks would run only 2-6
     * FMA chains, short of covering the latency on both ports; it takes
     * 32-column blocks instead (4-12 chains). Best of 5, m x 64 C, k = 256:
     * m = 2 44 -> 55 GFLOP/s, m = 8 76 -> 82; m = 32, 128 within the noise */
    int64_t rem = MK_NV_REM > MK_NV && m % MK_MR <= 3 ? m % MK_MR : 0, mb = m - rem;
    for (int64_t n0 = 0; n0 < nn; n0 += MK_W * MK_NV) {
        int nv = (nn - n0) / MK_W < MK_NV ? (int)((nn - n0) / MK_W) : MK_NV;
        const float *cs = mode == ATTN_MK_SCALE_ADD ? cscale + n0 : NULL;
        float *cm = cmax ? cmax + n0 : NULL;
        for (int64_t i0 = 0; i0 < mb; i0 += MK_MR) {
            int mr = mb - i0 < MK_MR ? (int)(mb - i0) : MK_MR;
            switch (nv * 16 + mr) {
#if MK_NV == 4
                MK_CASES(1)
                MK_CASES(2)
                MK_CASES(3)
                MK_CASES(4)
#else /* nn % 16 == 0: every block is two 8-float vectors wide */
                MK_CASES(2)
#endif
            }
        }
    }
#if MK_NV_REM > MK_NV
    for (int64_t n0 = 0, i0 = mb; rem && n0 < nn; n0 += MK_W * MK_NV_REM) {
        int nv = nn - n0 >= MK_W * MK_NV_REM ? MK_NV_REM : MK_NV;
        const float *cs = mode == ATTN_MK_SCALE_ADD ? cscale + n0 : NULL;
        float *cm = cmax ? cmax + n0 : NULL;
        switch (nv * 16 + (int)rem) {
            MK_CASE(1, MK_NV) MK_CASE(2, MK_NV) MK_CASE(3, MK_NV)
            MK_CASE(1, MK_NV_REM) MK_CASE(2, MK_NV_REM) MK_CASE(3, MK_NV_REM)
        }
    }
#endif
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
