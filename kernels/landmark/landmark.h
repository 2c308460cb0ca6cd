/* `landmark`: Landmark Attention (Mohtashami & Jaggi 2023, "Landmark
 * Attention: Random-Access Infinite Context Length for Transformers",
 * arXiv 2305.16300; docs/kernels/landmark.md).
 *
 * Keys are cut into blocks of l tokens by position (key coordinates: key j
 * is in block j / l); the last token of each block, j = b*l + l - 1, is that
 * block's landmark (its K/V rows are part of K/V; the model must put a
 * landmark token there, the kernel only designates the positions). For a
 * query at key coordinate t = q_off + i - k_off in block c = t / l (paper
 * Sec. 3.1, eq. 2-4, "grouped softmax"):
 *
 *   own group  U = {j in [c*l, t], j != c*l + l - 1}  +  {landmark L_b, b < c selected}
 *   p_u        = softmax over U of s_u                (s = sc <q, k>)
 *   block b    = tokens b*l .. b*l + l - 2 (its landmark excluded)
 *   q_j        = softmax over block b of s_j
 *   weight     w_j = p_u for j in the own block, w_j = q_j * p_{L_b} for j in a
 *              selected block b, 0 for every landmark (landmarks carry no value)
 *              and for unselected blocks;  o = sum_j w_j v_j,  sum_j w_j = 1.
 *
 * The current block's landmark is never a gate (not even for the landmark
 * query itself), as in the reference code (models/landmark.py: "the landmark
 * token for the current block should be ignored"). mode=train selects every
 * earlier block (the training form, cost ~ causal dense). mode=topk selects,
 * per query, the k earlier blocks with the highest landmark score s_{L_b}
 * (ties: the lower block index) and takes the own-group softmax over the own
 * tokens and the *selected* landmarks only: the reference code's cached
 * inference (models/caches/mem_cache.py) concatenates the top-k retrieved
 * blocks, landmarks included, in front of the local context and applies the
 * same grouped softmax, so unselected landmarks are absent from the
 * normaliser. With k >= the number of earlier blocks topk is train.
 *
 * No single normaliser exists: io->lse is left untouched. */
#ifndef ATTN_LANDMARK_H
#define ATTN_LANDMARK_H

#include "kernels/core/attn.h"

#include <stdint.h>

extern const attn_kernel attn_kernel_landmark;

#define LM_DEFAULT_L 64
#define LM_DEFAULT_K 4
#define LM_TILE 128     /* query rows per task: single-threaded sgemm with k = 64 (dK, dV) ran at
                           about half the speed of k = 128 (N = 4096, D = 64); 256 was slower */

/* Parameters and per-thread scratch sizes of one problem. */
typedef struct {
    int64_t l;          /* block length (landmark every l-th key) */
    int64_t k;          /* blocks retrieved per query (topk); INT64_MAX for train */
    int topk;           /* 1: mode=topk (sparse forward), 0: mode=train */
    int64_t T, nqt;     /* query rows per task, tasks per (b, h) */
    int64_t nblk;       /* key blocks, ceil(Nk / l) */
    int64_t ld;         /* leading dimension of the dense score rows (>= Nk) */
    size_t fwd_floats, bwd_floats; /* per-thread scratch */
} lm_plan;

/* Parses l, mode, k and checks the offsets (0, or ATTN_EINVAL with a message). */
int attn_landmark_plan(lm_plan *pl, const attn_args *a);

/* Grouped softmax of one query row at key coordinate t >= 0 (row routine
 * shared by the dense forward and the backward). s[0..t] holds the scaled
 * scores of keys 0..t, w[0..t] receives the weights (w may alias s). gate
 * [t/l] receives p_{L_b} of every earlier block (0 when unselected); sel is
 * scratch of t/l + 1 ints. Returns the number of exponentials evaluated. */
int64_t attn_landmark_row(const lm_plan *pl, int64_t t, const float *s, float *w, float *gate, int64_t *sel);

/* Marks in sel[0..c) (1/0) the blocks a query of block c reads, from the
 * landmark scores sL(b) = sL[b * stride]: all of them for train, the k best
 * (ties: lower b) for topk. */
void attn_landmark_select(const lm_plan *pl, int64_t c, const float *sL, int64_t stride, int64_t *sel);

/* Key coordinate of query row i (may be < 0: no visible key). */
static inline int64_t attn_landmark_t(const attn_args *a, int64_t i) { return a->q_off + i - a->k_off; }

/* Plain double reference of the formulas above (landmark_ref.c; writes io->o). */
int attn_landmark_ref_forward(const attn_args *a, const attn_io64 *io);
/* The fidelity view (attn_kernel.ref_view): rows always, keys in top-k mode. */
int attn_landmark_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                           int64_t n, double *P, unsigned char *sel_keys);

/* Backward of either mode through the dense grouped form (landmark_bwd.c):
 * the top-k selection is piecewise constant, so its gradient is that of the
 * grouped form restricted to the selected blocks. */
int attn_landmark_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Per-thread scratch of ctx (workspace slot of thread `thread`). */
float *attn_landmark_scratch(const attn_ctx *ctx, const lm_plan *pl, int thread);

/* Dense scaled scores S[r][j] = sc <q_{i0+r}, k_j>, r < nb, j < nk (ld pl->ld). */
double attn_landmark_scores(const attn_args *a, const lm_plan *pl, const attn_io *io, int64_t b, int64_t h,
                            int64_t i0, int64_t nb, int64_t nk, float *S);

#endif
