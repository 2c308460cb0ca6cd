/* `nystrom`: Nyströmformer (Xiong, Zeng, Chakraborty, Tan, Fung, Li, Singh
 * 2021, "Nyströmformer: A Nyström-Based Algorithm for Approximating
 * Self-Attention"; docs/kernels/nystrom.md). Per (batch, query head) over the
 * n real rows of the sequence, with mm = min(m, n) landmarks:
 *
 *   Q~, K~  = means of mm contiguous segments of the rows of Q and K
 *             (segment s is rows [s n / mm, (s+1) n / mm): sizes floor(n/mm)
 *             and ceil(n/mm), no padding)
 *   F = softmax(sc Q K~^T)  [n x mm]     A = softmax(sc Q~ K~^T)  [mm x mm]
 *   Bt = softmax(sc Q~ K^T) [mm x n]     Z ~ A^+ by the iteration below
 *   O = F (Z (Bt V))                     (+ the optional conv skip on V)
 *
 * Z_0 = A^T / (max column sum of A) and
 * Z <- 1/4 Z (13 I - A Z (15 I - A Z (7 I - A Z))), `iters` times; A is never
 * inverted explicitly (it is near-singular when attention is flat).
 * The conv skip (conv = k > 0 taps, learned per query head, shared by the
 * head's channels: the reference code's Conv2d with groups = heads and a
 * (k, 1) kernel): O_t += sum_tau w_tau V_{t + tau - k/2}, zero outside the
 * sequence. No causal form (the landmarks mix every row). */
#ifndef ATTN_NYSTROM_H
#define ATTN_NYSTROM_H

#include "kernels/core/attn.h"

#include <stdint.h>

extern const attn_kernel attn_kernel_nystrom;

/* Parameters of one problem and the per-thread scratch sizes (floats). */
typedef struct {
    int64_t m;          /* landmarks requested (min(m, n) are used per sequence) */
    int iters;          /* pseudo-inverse iterations */
    int64_t conv;       /* taps of the conv skip on V, 0: none; also the weights per head */
    int64_t T;          /* query rows per output task and backward block; keys per block */
    int64_t ntiles;     /* tasks per (b, h) of the output phase */
    size_t head_floats; /* per (b, h), kept from the landmark phase: K~ and Z (Bt V) */
    size_t fwd_floats, bwd_floats;
} ny_plan;

/* Parses and checks the parameters (0, or ATTN_EINVAL with a message). */
int attn_nystrom_plan(ny_plan *pl, const attn_args *a);

/* Landmarks of a sequence of n rows (n >= 1). */
static inline int64_t attn_nystrom_landmarks(const ny_plan *pl, int64_t n) { return pl->m < n ? pl->m : n; }

/* First row of segment s of n rows cut into mm segments (s = mm gives n). */
static inline int64_t attn_nystrom_seg(int64_t s, int64_t n, int64_t mm) { return s * n / mm; }

/* The iteration in fp32 on the m x m matrix A (row-major): returns Z
 * (inside zs). zs holds (iters + 1) m x m matrices and ps `iters` when
 * `keep` (Z_k at zs + k m^2 and A Z_k at ps + k m^2, for the backward), else
 * zs holds 2 and ps 1; tmp holds 2 m x m. */
float *attn_nystrom_pinv(const float *A, int64_t m, int iters, int keep, float *zs, float *ps, float *tmp);

/* Reverse mode through attn_nystrom_pinv (keep = 1 history zs, ps): from
 * dZ (dL/dZ_iters, overwritten) adds dL/dA into dA; tmp holds 7 m x m. */
void attn_nystrom_pinv_backward(const float *A, int64_t m, int iters, const float *zs, const float *ps, float *dZ,
                                float *dA, float *tmp);

/* The same iteration in double with plain loops (the reference's; tests
 * compare it with an SVD pseudo-inverse). tmp holds 3 m x m. */
void attn_nystrom_pinv64(const double *A, int64_t m, int iters, double *Z, double *tmp);

/* Plain double reference of the formulas above (nystrom_ref.c; writes io->o). */
int attn_nystrom_ref_forward(const attn_args *a, const attn_io64 *io);

/* Backward (nystrom_bwd.c): reverse mode through the output products, the
 * iteration, the three softmaxes, the segment means and the conv skip. */
int attn_nystrom_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Per-thread scratch of ctx and the kept (K~, X = Z Bt V) of head (b, h). */
float *attn_nystrom_scratch(const attn_ctx *ctx, const ny_plan *pl, int thread);

#endif
