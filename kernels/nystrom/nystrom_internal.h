/* What the forward and the backward of `nystrom` share: the per-head
 * landmark phase (segment means, the three score blocks that do not depend
 * on a query tile, the pseudo-inverse and X = Z (Bt V)), a row-major sgemm
 * shorthand and the row softmax backward. */
#ifndef ATTN_NYSTROM_INTERNAL_H
#define ATTN_NYSTROM_INTERNAL_H

#include "nystrom.h"

#include <cblas.h>

#define NY_ROUND16(n) (((n) + 15) / 16 * 16)

/* C = alpha op(A) op(B) + beta C, row-major, op = transpose when t* is 1. */
static inline void ny_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* One head's landmark phase. The caller points Kt and X where they must
 * live (the forward keeps them per head for its output phase); every other
 * buffer is scratch carved by ny_head_carve. Bt = softmax(sc Q~ K^T) is
 * never stored: Y = Bt V is accumulated over blocks of `tile` keys with an
 * online softmax (running row maxima, rescaled sums), and lse keeps each
 * landmark row's log-normaliser so the backward recomputes Bt block by block. */
typedef struct {
    int64_t n, mm;         /* real rows, landmarks */
    float *Qt, *Kt;        /* mm x D landmark means */
    float *A;              /* mm x mm softmax(sc Q~ K~^T) */
    float *Y, *X;          /* mm x Dv: Bt V and Z Y */
    float *lse, *run;      /* mm: log-normalisers of Bt's rows; running sums */
    float *S;              /* scratch of one block: mm x tile (or tile x mm) */
    float *zs, *ps, *tmp;  /* pseudo-inverse history (attn_nystrom_pinv) and scratch */
    float *Z;              /* the final iterate (inside zs) */
} ny_head;

/* Floats of ny_head_carve's scratch (Kt and X excluded) for at most m
 * landmarks; keep: the whole iteration history and 7 m x m of scratch. */
size_t ny_head_floats(const ny_plan *pl, const attn_args *a, int keep);
/* Points Qt, A, Y, lse, run, S, zs, ps, tmp into ws (ny_head_floats of them). */
void ny_head_carve(ny_head *w, const ny_plan *pl, const attn_args *a, int keep, float *ws);

/* Runs the landmark phase of (b, h) into w (n >= 1 real rows). Returns the
 * FLOPs executed; *exps receives the exponentials. */
double ny_head_run(const attn_args *a, const ny_plan *pl, const attn_io *io, int64_t b, int64_t h, int keep,
                   ny_head *w, double *exps);

/* Rows of S (rows x cols, stride ld) become softmax(S) in place; returns
 * the exponentials evaluated. */
double ny_softmax_rows(float *S, int64_t rows, int64_t cols, int64_t ld);

/* Segment means: out row s = mean of rows [seg(s), seg(s+1)) of X (n rows, stride ldx). */
void ny_segment_means(const float *X, int64_t ldx, int64_t n, int64_t mm, int64_t D, float *out);

/* The conv skip over the n real rows: O rows r0..r1-1 (stride ldo) +=
 * sum_tau w_tau V_{t + tau - k/2} (V stride ldv, Dv columns). */
void ny_conv_add(const float *w, int64_t k, const float *V, int64_t ldv, int64_t n, int64_t Dv, int64_t r0,
                 int64_t r1, float *O, int64_t ldo);

#endif
