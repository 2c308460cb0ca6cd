/* Shared by the `local_linear` forward (local_linear.c) and backward
 * (local_linear_bwd.c): the tile plan and the per-query-tile building blocks.
 *
 * Notation (Zuo et al. 2025, docs/kernels/local_linear.md), per query row i of (b, h):
 * p_ij = softmax_j(sc <q_i, k_j>) over the allowed keys, k̄_i = sum_j p_ij k_j,
 * Sigma_i = sum_j p_ij (k_j - k̄_i)(k_j - k̄_i)^T, rho_i = (Sigma_i + lambda I)^-1 (q_i - k̄_i),
 * c_ij = <k_j - k̄_i, rho_i>, o_i = sum_j p_ij (1 + c_ij) v_j. */
#ifndef ATTN_LOCAL_LINEAR_INTERNAL_H
#define ATTN_LOCAL_LINEAR_INTERNAL_H

#include "kernels/core/attn.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t br, bc;        /* query rows and keys per tile */
    int64_t nqt, nkt;      /* query / key tiles */
    double lambda;         /* ridge strength */
    size_t thread_floats;  /* per-thread scratch (multiple of 16 floats) */
    size_t row_floats;     /* floats of one row record (LL_ROW_FLOATS) */
} ll_plan;

#define LL_DEFAULT_BR 16
#define LL_DEFAULT_BC 64

/* Work done by one thread, added to the SDE counters once. */
typedef struct {
    double flops, bytes;
} ll_tally;

void ll_tally_flush(const ll_tally *t);

/* Plan from the args and the params (lambda, br, bc); fails with a message. */
int ll_plan_make(ll_plan *pl, const attn_args *a);

/* Carves n floats (rounded up to 16) from *cursor. */
float *ll_take(float **cursor, int64_t n);

/* Scores of rows [i0, i0+nb) of head h against keys [j0, j0+nk):
 * S (nb, nk; row stride ld) = sc Q K^T, -inf where the mask forbids. */
void ll_scores(const attn_args *a, const attn_io *io, int64_t b, int64_t h, int64_t i0, int64_t nb, int64_t j0,
               int64_t nk, float *S, int64_t ld, ll_tally *t);

/* In place: P = exp(S - lse_r) per row r (0 where masked or lse = -inf). */
void ll_probs(float *S, int64_t nb, int64_t nk, int64_t ld, const float *lse);

/* P (nb, nk; row stride bc) = exp(S - lse) for rows [i0, i0+nb) of head h
 * and the key tile from j0; returns nk, or 0 when the mask empties the tile. */
int64_t ll_tile_probs(const attn_args *a, const ll_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t i0,
                      int64_t nb, int64_t j0, const float *lse, float *P, ll_tally *t);

/* 1 if the tile of rows [i0,i0+nb) x keys [j0,j0+nk) of (b, h) has no allowed pair. */
int ll_tile_empty(const attn_args *a, int64_t b, int64_t h, int64_t i0, int64_t nb, int64_t j0, int64_t nk);

/* lse of rows [i0, i0+nb) of (b, h) by an online max/sum over the key tiles. */
void ll_lse_rows(const attn_args *a, const ll_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t i0,
                 int64_t nb, float *S, float *lse, ll_tally *t);

/* Row record (row_floats floats per query row): k̄ in double (2 D floats),
 * then rho, mu (D each), ē, Di. */
#define LL_ROW_FLOATS(D) (4 * (D) + 2)
#define LL_RHO(D) (2 * (D))
#define LL_MU(D) (3 * (D))
#define LL_EBAR(D) (4 * (D))
#define LL_DI(D) (4 * (D) + 1)

/* The regression of rows [i0, i0+nb) given their lse: fills the records
 * rec (nb rows, row_floats apart) with k̄ and rho, and with g non-NULL (the
 * rows of dO) also mu = (Sigma + lambda I)^-1 g_rho and ē = <g, v̄>, where
 * g_rho = sum_j p_ij <g_i, v_j> (k_j - k̄_i) (the adjoint right-hand side,
 * solved with the same factor). Di is left 0. Scratch ws: ll_regress_floats. */
void ll_regress_rows(const attn_args *a, const ll_plan *pl, const attn_io *io, const attn_tensor *g, int64_t b,
                     int64_t h, int64_t i0, int64_t nb, const float *lse, float *rec, float *ws, ll_tally *t);
size_t ll_regress_floats(const attn_args *a, const ll_plan *pl);

/* c_rj = <k_j - k̄_r, x_r> for rows r < nb and keys j < nk, with k̄_r the
 * double at rec + r*rf and x_r at rec + r*rf + off: out (nb, nk; stride ld).
 * Explicit differences in double, not K x^T - <k̄, x>: x may be large
 * (1 / lambda) along directions where k_j - k̄ vanishes. */
void ll_row_dots(const float *K, int64_t ldk, int64_t nk, const float *rec, int64_t rf, int64_t off, int64_t nb,
                 int64_t D, float *out, int64_t ld);

/* Solves (A + lambda I) x = r for SPD A (n x n, upper triangle read, double)
 * by Cholesky, then the optional second right-hand side r2 -> x2. A is
 * overwritten. Pivots below lambda * 1e-12 (a Sigma made slightly indefinite
 * by rounding) are clamped there. */
void ll_chol_solve(double *A, int64_t n, double lambda, double *x, double *x2);

int attn_local_linear_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

#endif
