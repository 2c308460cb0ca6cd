/* What the `probsparse` forward (probsparse_fwd.c), its double reference
 * (probsparse_ref.c) and the plan (probsparse.c) share
 * (docs/kernels/probsparse.md).
 *
 * Per (batch b, query head h), query i at position pi = q_off + i may attend
 * n_i keys: n_i = Nk (FULL) or the keys at positions <= pi (CAUSAL).
 *   U   = max(1, min(Nk, c ceil(ln Nk)))      sampled keys per query
 *   u   = min(Nq, c ceil(ln Nq))              active queries
 *   j_1 .. j_U  drawn with replacement, uniform in [0, n_i) (CAUSAL, past
 *               samples) or [0, Nk) (FULL, or the reference's causal
 *               sampling), from the stream (seed, i): the same draws for
 *               every batch entry and head, as the authors' code shares one
 *               index table
 *   M(q_i) = max_t <q_i, k_jt> - (sum_t <q_i, k_jt>) / U   (reference: / Nk)
 *   active = the u rows of largest M (ties: the lower row)
 *   active row:  O_i = softmax over its n_i keys of sc <q_i, k_j>, lse_i
 *   lazy row:    O_i = (1/n_i) sum_{j < n_i} v_j   (reference causal: the sum),
 *                lse_i = ln n_i, what a zero query would give
 *   n_i = 0:     O_i = 0, lse_i = -inf
 * The measure is computed in double from the fp32 inputs by ps_measure in
 * both the kernel and the reference (products of two floats are exact in
 * double, the sums run in one fixed order), so both pick the same rows. */
#ifndef ATTN_PROBSPARSE_INTERNAL_H
#define ATTN_PROBSPARSE_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

typedef enum { PS_DIV_SAMPLES = 0, PS_DIV_KEYS } ps_divisor;
typedef enum { PS_SAMPLE_PAST = 0, PS_SAMPLE_ALL } ps_sampling;
typedef enum { PS_LAZY_MEAN = 0, PS_LAZY_SUM } ps_lazy;

typedef struct {
    int64_t factor;      /* c */
    int64_t U, u;        /* samples per query, active queries per head */
    uint64_t seed;
    int causal;
    ps_divisor divisor;  /* what the sampled sum is divided by */
    ps_sampling sampling; /* causal: sample the past only, or every key */
    ps_lazy lazy;        /* causal lazy rows: cumulative mean or sum */
    int64_t shift;       /* q_off - k_off: query i may see keys j <= i + shift (causal) */
    int64_t Nq, Nk;
} ps_plan;

/* Parses the parameters and the mask of a (0, or a code with a message). */
int ps_plan_make(ps_plan *pl, const attn_args *a);

/* c ceil(ln n), capped at n (0 for n <= 1). */
int64_t ps_budget(int64_t factor, int64_t n);

/* Keys query i may attend. */
static inline int64_t ps_keys_of(const ps_plan *pl, int64_t i)
{
    if (!pl->causal)
        return pl->Nk;
    int64_t n = i + pl->shift + 1;
    return n < 0 ? 0 : n > pl->Nk ? pl->Nk : n;
}

/* The sparsity measure of query i, q its row widened to double (D values):
 * keys are rows of k32 (fp32 kernel) or k64 (reference; exactly one of them
 * non-NULL) with row stride ksn. -inf when the query has no key to sample. */
double ps_measure(const ps_plan *pl, int64_t i, const double *q, int64_t D, const float *k32, const double *k64,
                  int64_t ksn);

/* One row's place in the ranking (ps_select's scratch). */
typedef struct {
    double m;
    int64_t row;
} ps_rank;

/* The u rows of largest M[0..n) (ties: lower row; NaN ranks last) into
 * active[0..u), ascending. scratch: n entries. */
void ps_select(const double *M, int64_t n, int64_t u, int64_t *active, ps_rank *scratch);

/* Double reference and fidelity view (probsparse_ref.c). */
int ps_ref_forward(const attn_args *a, const attn_io64 *io);
int ps_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);

/* fp32 forward (probsparse_fwd.c): workspace size and the pass. */
size_t ps_workspace_bytes(const ps_plan *pl, const attn_args *a);
int ps_forward(attn_ctx *ctx, const attn_io *io);

#endif
