/* The one small-matrix product the `flash` kernels are built from:
 *
 *     C[i][n] = (mode) + sum_p A(i,p) * B[p][n]
 *
 * B and C are packed tiles whose n extent is a multiple of 16 (one AVX-512
 * vector, two AVX2 ones); A is addressed with arbitrary strides, A(i,p) =
 * A[i*sam + p*sak], and only ever broadcast, so it can be a tile of the
 * caller's strided Q, K, V or dO read in place, in either orientation.
 * Every product of the forward and backward pass is of this form once the
 * other operand is packed with the softmax axis in the vector lanes (see
 * flash_internal.h). */
#ifndef ATTN_FLASH_MICROKERNEL_H
#define ATTN_FLASH_MICROKERNEL_H

#include <stdint.h>

typedef enum {
    ATTN_MK_SET = 0,      /* C = A B */
    ATTN_MK_ADD,          /* C += A B */
    ATTN_MK_SCALE_ADD,    /* C = C * diag(cscale) + A B  (online-softmax rescale) */
} attn_mk_mode;

/* i < m, n < nn (nn % 16 == 0), p < k. B and C 64-byte aligned with ldb and
 * ldc multiples of 16; cscale (SCALE_ADD only) holds nn floats. With cmax
 * non-NULL also cmax[n] = max(cmax[n], max_i C[i][n]) on the result, which
 * saves the online softmax a pass over the tile. Returns the FLOPs executed,
 * 2*m*nn*k. */
double attn_mk_gemm(int64_t m, int64_t nn, int64_t k, const float *A, int64_t sam, int64_t sak,
                    const float *B, int64_t ldb, float *C, int64_t ldc, attn_mk_mode mode,
                    const float *cscale, float *cmax);

#endif
