/* What the `hip` forward, its double reference and its tests share
 * (docs/kernels/hip.md).
 *
 * Per (b, query head h) the query rows are successive decode steps. Rows are
 * cut into refresh groups of `refresh` rows from row 0; the first row s of a
 * group runs the search, the others reuse its selection. Row i sees the keys
 * [0, e_i): e_i = Nk under FULL, the keys at positions <= its own under
 * CAUSAL. The search of row s:
 *   query block   rows max(0, s - bq + 1) .. s (this step and the bq - 1 before)
 *   blocks        nb = ceil(e_s / bk) key blocks [t bk, (t+1) bk) cut at e_s
 *   nb <= k       every block
 *   else          nodes = k equal ranges of blocks [t nb / k, (t+1) nb / k);
 *                 while a node spans more than one block: every such node
 *                 splits into [a, a + n/2) and [a + n/2, c) (single blocks
 *                 stay), each child is scored
 *                     max over the block's rows r of sc <q_r, k_rep>,
 *                     rep = first key of the child's middle block a' + n'/2,
 *                 and the k best children (higher score, then lower first
 *                 block) become the nodes
 * Row i of the group attends, exactly, the union of the selected blocks, the
 * sinks [0, sink) and the tail [min(e_s, e_i - window), e_i) (the window and
 * every key that arrived since the search), all cut at e_i.
 *
 * Scores are computed in double by hip_block_score (one out-of-line function the
 * fp32 kernel and the reference both call on the same widened floats), so
 * both select the same blocks: check compares arithmetic, not selection
 * flips. */
#ifndef ATTN_HIP_INTERNAL_H
#define ATTN_HIP_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

typedef struct {
    int64_t k, bk, bq, refresh, sink, window;
    int causal;
} hip_plan;

/* Parses and checks the parameters (0, or a code with a message). */
int hip_plan_make(hip_plan *pl, const attn_args *a);

/* Keys [0, e) row i may see. */
static inline int64_t hip_row_end(const attn_args *a, const hip_plan *pl, int64_t i)
{
    if (!pl->causal)
        return a->Nk;
    int64_t e = a->q_off + i - a->k_off + 1;
    return e < 0 ? 0 : e > a->Nk ? a->Nk : e;
}

/* The search row of row i, and the first row of its query block. */
static inline int64_t hip_search_row(const hip_plan *pl, int64_t i) { return i / pl->refresh * pl->refresh; }
static inline int64_t hip_block_first(const hip_plan *pl, int64_t s) { return s - pl->bq + 1 > 0 ? s - pl->bq + 1 : 0; }

/* First key of the tail of row i whose search row saw [0, e_s). */
static inline int64_t hip_tail_start(const hip_plan *pl, int64_t e_s, int64_t e_i)
{
    int64_t t = e_i - pl->window < e_s ? e_i - pl->window : e_s;
    return t < 0 ? 0 : t;
}

/* Halving rounds of a search over nb blocks (0 when nb <= k). */
int64_t hip_rounds(const hip_plan *pl, int64_t nb);

/* max over the nq rows q + r ldq of sc <q_r, key> (D doubles each), every
 * dot product in a fixed order; NaN products never win (all NaN: -inf).
 * The one score function of the search, for the kernel and the reference. */
double hip_block_score(const double *q, int64_t ldq, int64_t nq, const double *key, int64_t D, double sc);

/* A node of the search: blocks [a, c), its score. */
typedef struct {
    int64_t a, c;
    double score;
} hip_node;

/* Scratch of one fp32 search: k nodes, 2k children and 2k of selection
 * scratch, the widened query block and key. */
typedef struct {
    hip_node *nodes, *kids, *tmp;
    double *qb, *key;
    double reps;          /* representatives scored (for the counters) */
} hip_search_ws;

size_t hip_search_ws_bytes(const hip_plan *pl, const attn_args *a);
hip_search_ws hip_search_ws_at(const hip_plan *pl, const attn_args *a, void *mem);

/* The fp32 kernel's search of row s of (b, h) over keys [0, e): the selected
 * blocks in ascending order into blocks[] (at most k), their count returned.
 * ws->reps counts the representatives scored. */
int64_t hip_search(const hip_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t h, int64_t s,
                   int64_t e, hip_search_ws *ws, int64_t *blocks);

/* Reference (hip_ref.c). */
int hip_ref_forward(const attn_args *a, const attn_io64 *io);
int hip_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                 double *P, unsigned char *sel);

#endif
