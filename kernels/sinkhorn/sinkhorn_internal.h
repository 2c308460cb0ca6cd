/* What the forward (sinkhorn.c), the sort net (sinkhorn_sort.c), the
 * backward (sinkhorn_bwd.c) and the double reference (sinkhorn_ref.c) of
 * `sinkhorn` share. Notation in sinkhorn.h. */
#ifndef ATTN_SINKHORN_INTERNAL_H
#define ATTN_SINKHORN_INTERNAL_H

#include "sinkhorn.h"

#include <stddef.h>
#include <stdint.h>

enum { SK_SORT_SOFTMAX, SK_SORT_SINKHORN };

/* Below this tail mass a padded slot of the sorted block is masked: the same
 * threshold in float and double, far above where either underflows. */
#define SK_MIN_MASS 1e-30

#define SK_ROUND16(n) (((n) + 15) / 16 * 16)

typedef struct {
    int64_t c;             /* block size */
    int sort;              /* SK_SORT_* */
    int64_t iters;         /* Sinkhorn rounds */
    double temp;           /* Sinkhorn temperature */
    int causal;
    int64_t D, G;          /* head dim, query heads per KV head */
    int64_t nb_max;        /* blocks of the longest sequence, ceil(N / c) */
    int64_t rows_w;        /* rows of the weight table: ceil(max(max_len, N) / c) */
    int64_t ldw;           /* floats per row of the table: D + 1 */
    int64_t tile_blocks;   /* query blocks per forward task */
    size_t fwd_floats, bwd_floats; /* per-thread scratch */
} sk_plan;

/* Parses and checks the parameters and the problem (0, or a code with a message). */
int sk_plan_make(sk_plan *pl, const attn_args *a);

/* Blocks of a sequence of L tokens and the rows of its last block. */
typedef struct {
    int64_t L, nb, r;
} sk_geom;

static inline sk_geom sk_geom_of(const sk_plan *pl, int64_t L)
{
    sk_geom g = {L, (L + pl->c - 1) / pl->c, 0};
    g.r = g.nb ? L - (g.nb - 1) * pl->c : 0;
    return g;
}

/* Real rows of block i. */
static inline int64_t sk_rows(const sk_plan *pl, const sk_geom *g, int64_t i)
{
    return i == g->nb - 1 ? g->r : pl->c;
}

/* 1 if slot t of block i's sorted block holds a key (mu: the block's tail mass). */
static inline int sk_slot_valid(const sk_plan *pl, const sk_geom *g, int64_t i, int64_t t, double mu)
{
    if (pl->causal && i == 0)
        return 0; /* no earlier block to mix */
    return t < g->r || mu > SK_MIN_MASS;
}

/* ---- sort net and soft permutation in float (sinkhorn_sort.c) ----
 * Kp is the zero-padded packed key block matrix [nb*c x D]; w the head's
 * table (rows of ldw floats); all matrices row-major and dense. */

/* s [nb x D]: block sums (causal: each block's first key). */
void sk_summaries(const sk_plan *pl, const sk_geom *g, const float *Kp, float *s);
/* R [nb x nb] = s w^T + beta, future blocks -inf under causal. */
void sk_logits(const sk_plan *pl, const sk_geom *g, const float *s, const float *w, float *R);
/* P [nb x nb] from R (R is overwritten). hist: NULL, or 2*iters matrices
 * [nb x nb] receiving exp of the log-iterate after each half round
 * (sinkhorn only), what sk_permute_backward needs. */
void sk_permute(const sk_plan *pl, int64_t nb, float *R, float *P, float *hist);
/* dR [nb x nb] from dP (dP is overwritten). */
void sk_permute_backward(const sk_plan *pl, int64_t nb, const float *P, const float *hist, float *dP, float *dR);
/* mu [nb]: the tail mass of each row (sum over the full blocks). */
void sk_tail_mass(const sk_geom *g, const float *P, float *mu);
/* Sorted rows of the query blocks [i0, i1): Kt [(i1-i0)*c x D] = P[i0:i1] Kp
 * with the tail slots renormalised. Returns the FLOPs executed. */
double sk_sorted_blocks(const sk_plan *pl, const sk_geom *g, const float *P, const float *mu, const float *Kp,
                        int64_t i0, int64_t i1, float *Kt);

/* ---- the block attention of one query block, shared by forward and backward (sinkhorn.c) ----
 * A [n x 2c]: softmax over [local keys; sorted slots] of the n = sk_rows
 * query rows (row stride ldq) of block i; returns the FLOPs executed and
 * writes each row's lse into lse (may be NULL). */
double sk_block_probs(const sk_plan *pl, const sk_geom *g, int64_t i, float sc, const float *q, int64_t ldq,
                      const float *Kb, const float *Ktb, float mu, float *A, float *lse);

/* ---- double reference (sinkhorn_ref.c) ---- */
int sk_ref_forward(const attn_args *a, const attn_io64 *io);
int sk_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);

/* ---- backward (sinkhorn_bwd.c) ---- */
int sk_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
size_t sk_bwd_floats(const sk_plan *pl);

/* ---- workspace (sinkhorn.c): [K, V packs per (b, KV head)][P, mu per (b, h)][thread scratch][dw partials] ---- */
float *sk_thread_scratch(const attn_ctx *ctx, const sk_plan *pl, int thread);
float *sk_dw_partials(const attn_ctx *ctx, const sk_plan *pl);
/* Packs the rows [0, L) of (b, KV head hk) of t into dst [nb*c x D], zero rows after L. */
void sk_pack(const sk_plan *pl, const sk_geom *g, const attn_tensor *t, int64_t b, int64_t hk, float *dst);
int sk_check_weights(const sk_plan *pl, const attn_tensor *w, const char *where);

#endif
