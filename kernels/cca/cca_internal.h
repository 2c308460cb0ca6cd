/* What the `cca` forward (cca_fwd.c), backward (cca_bwd.c), double reference
 * (cca_ref.c) and kernel object (cca.c) share.
 *
 * Keys are cut into groups of g rows (group c = rows c g .. c g + g - 1). A
 * complete group is pooled by its last query r_c = c g + g - 1 (the first
 * row that has seen the whole group) into one core token per query head:
 *
 *   a_cj = sc <q_{r_c}, k_j>,  w_c = softmax_j(a_c),  k̄_c = sum_j w_cj k_j,
 *   v̄_c = sum_j w_cj v_j      (j in group c; sc the attention scale).
 *
 * Query i (self-attention, causal) attends, in ONE softmax,
 *   the core tokens of groups c < cores(i) = max(0, floor(i/g) - n_loc + 1)
 *   and the exact local tokens j in [cores(i) g, i]
 * (its own, possibly incomplete, group and the n_loc - 1 groups before it):
 * each key reaches the query once, either pooled or exact, never both, and
 * no group is pooled before it is complete and out of the local window.
 * o_i = sum_c p_ic v̄_c + sum_j p_ij v_j, lse_i = ln of the normaliser.
 * g = 1 makes every core token a key itself: causal softmax attention. */
#ifndef ATTN_CCA_INTERNAL_H
#define ATTN_CCA_INTERNAL_H

#include "kernels/core/attn.h"

#include <stddef.h>
#include <stdint.h>

#define CCA_DEFAULT_G 16
#define CCA_DEFAULT_N_LOC 4
#define CCA_TILE 64 /* query rows per task */

typedef struct {
    int64_t g, n_loc;
    int64_t T, nqt;        /* query rows per tile, tiles per head */
    int64_t n_pool;        /* groups pooled for the last query, cca_cores(N - 1) */
    int64_t ld;            /* leading dimension of a tile's score rows: cores, then local keys */
    int64_t head_floats;   /* pooled floats of one (b, query head): K̄, V̄, pooling weights */
    size_t fwd_floats, bwd_floats; /* per-thread scratch */
} cca_plan;

/* Reads g and n_loc and checks the problem (self-attention, q_off = k_off). */
int cca_plan_make(cca_plan *pl, const attn_args *a);

/* Core tokens query row i attends: groups c < cca_cores(pl, i). */
static inline int64_t cca_cores(const cca_plan *pl, int64_t i)
{
    int64_t c = i / pl->g - pl->n_loc + 1;
    return c > 0 ? c : 0;
}

/* First exact (local) key of query row i. */
static inline int64_t cca_local_start(const cca_plan *pl, int64_t i) { return cca_cores(pl, i) * pl->g; }

/* Pooled tokens of head (b, h) inside the shared region of the workspace:
 * K̄ [n_pool x D], V̄ [n_pool x Dv], pooling weights [n_pool x g]. */
typedef struct {
    float *kbar, *vbar, *w;
} cca_pooled;

cca_pooled cca_pooled_of(const attn_ctx *ctx, const cca_plan *pl, int64_t b, int64_t h);
float *cca_thread_scratch(const attn_ctx *ctx, const cca_plan *pl, int thread);

typedef struct {
    double flops, exps, bytes;
} cca_tally;

/* Pools groups [c0, c1) of head (b, h) into pt (fp32). */
void cca_pool_groups(const attn_args *a, const cca_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t c0,
                     int64_t c1, const cca_pooled *pt, cca_tally *tl);

/* Pools every head in parallel (OpenMP for inside the caller's parallel region). */
void cca_pool_all(const attn_ctx *ctx, const cca_plan *pl, const attn_io *io, cca_tally *tl);

/* Score rows of query rows [i0, i0 + nb) of head (b, h): S[r][0 .. nc) the core
 * scores, S[r][nc .. nc + nl) the local keys [l0, l0 + nl), masked (-inf) where
 * row r may not attend; then softmaxed in place. lse[r] receives the row's
 * logsumexp. Returns through *nc, *l0, *nl. */
void cca_tile_probs(const attn_args *a, const cca_plan *pl, const attn_io *io, const cca_pooled *pt, int64_t b,
                    int64_t h, int64_t i0, int64_t nb, float *S, float *lse, int64_t *nc, int64_t *l0, int64_t *nl,
                    cca_tally *tl);

int cca_forward(attn_ctx *ctx, const attn_io *io);
int cca_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int cca_ref_forward(const attn_args *a, const attn_io64 *io);
int cca_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n,
                 double *P, unsigned char *sel);

#endif
