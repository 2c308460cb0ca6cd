/* What the `retrieval` forward, its index and its double reference share
 * (docs/kernels/retrieval.md).
 *
 * Query row i is a decode step at position p_i = q_off + i. In key rows
 * (j = position - k_off) it sees keys [0, hj], hj = Nk - 1 under FULL (the
 * whole cache, bottom-right decode) and min(p_i - k_off, Nk - 1) under
 * CAUSAL. Its keys split into three disjoint ranges:
 *   sinks   [0, sink_end)           positions < n_sink
 *   index   [idx_lo, idx_lo + s)    the rest before the window
 *   window  [win_lo, hj]            the w most recent positions (its own included)
 * The static set (sinks + window) is attended exactly; from the index the r
 * keys of largest <q, k> are retrieved (exactly, or through the IVF index)
 * and attended exactly with it: one softmax over the disjoint union, which
 * is the logsumexp merge of the two partial attentions.
 *
 * The index, per (b, KV head), is a list of stages fixed by the problem's
 * rows (ret_plan_make): stage t is trained (k-means) on the first S_t index
 * keys, S_t = S_0 2^t, S_0 = max(s of the first row with index keys,
 * min_index), and holds the first M_t = min(S_{t+1} - 1, s_last) index keys,
 * each in the list of its nearest centroid, lists sorted by position, each
 * member with the largest distance to its centroid over the members up to
 * it (prefix radius) and a copy of its key (the lists' keys are contiguous,
 * IVF-Flat: a list is one sequential read, not rows scattered over the cache). A row whose index has s keys uses the stage with
 * S_t <= s < S_{t+1}, sees only the members with index order < s and their
 * radius: exactly what inserting keys into the lists as they leave the
 * window (centroids fixed, radii grown) gives, so row i depends on no key
 * after its position (causal; a prefix of the rows is a problem of its own).
 * Rows with s < S_0 search their few keys exhaustively. With one decode
 * row (Nq = 1) there is one stage, trained on the whole index.
 *
 * Selection is replayed exactly by the double reference: it calls the same
 * index build on the same float keys, and every selection score (key,
 * centroid, radius, bound) is ret_dot / ret_dist of float rows in double
 * (out of line, one order of operations); ties go to the lower key row and
 * the lower list. */
#ifndef ATTN_RETRIEVAL_INTERNAL_H
#define ATTN_RETRIEVAL_INTERNAL_H

#include "kernels/core/attn.h"

#include <stddef.h>
#include <stdint.h>

#define RET_MAX_STAGES 40
#define RET_MAX_GROUP 256          /* query heads per KV head */
#define RET_BLOCK 256              /* keys per sgemm block of the k-means */
#define RET_ROUND16(n) (((n) + 15) / 16 * 16)

typedef struct {
    int64_t size;       /* S_t: trained on index keys 0 .. S_t - 1 */
    int64_t members;    /* M_t: holds index keys 0 .. M_t - 1 */
    int64_t nlist, nprobe, train;
    size_t off;         /* floats from the start of a (b, KV head) index slot */
} ret_stage;

typedef struct {
    int64_t n_sink, w, r;
    int exact, once, causal;
    int64_t nlist, nprobe, iters, train, min_index; /* parameters as given (0 = automatic) */
    uint64_t seed;
    int64_t G, D, ns;   /* heads per KV head, columns, key rows of the sinks */
    int n_stages;
    int64_t S0;         /* rows with fewer index keys search exhaustively */
    ret_stage st[RET_MAX_STAGES];
    size_t slot_floats; /* one (b, KV head) index, every stage */
    size_t thread_floats;
    int64_t nlist_max, members_max, train_max, static_max, hits_max;
} ret_plan;

/* Parses the parameters and lays out the stages (0, or a code with a message). */
int ret_plan_make(ret_plan *pl, const attn_args *a);

/* The key ranges of query row i (above); hj < 0: no visible key. */
typedef struct {
    int64_t hj, sink_end, win_lo, idx_lo, s;
} ret_row;

ret_row ret_row_of(const ret_plan *pl, const attn_args *a, int64_t i);

/* Stage of a row whose index holds s keys; -1: exhaustive search. */
int ret_stage_of(const ret_plan *pl, int64_t s);

/* The arrays of stage t inside a (b, KV head) slot. */
typedef struct {
    const float *cent;      /* nlist x D centroids */
    const int32_t *start;   /* nlist + 1 list offsets into members */
    const int32_t *member;  /* index order of each member, ascending within a list */
    const float *prad;      /* prefix radius of each member (rounded up) */
    const float *keys;      /* each member's key row, in member order (D floats apart) */
} ret_lists;

ret_lists ret_lists_of(const ret_plan *pl, int t, const float *slot);
/* Floats of a stage with nlist lists and M members in a slot (64-byte aligned parts). */
size_t ret_stage_floats(int64_t nlist, int64_t members, int64_t D);

/* Selection scores: sum_d x[d] y[d] and ||x - y|| in double from float rows,
 * out of line so that the kernel and the reference round them alike. */
double ret_dot(const float *x, const float *y, int64_t D);
double ret_dist(const float *x, const float *y, int64_t D);

/* Members of list c with index order < s (the list is sorted ascending). */
int64_t ret_eligible(const ret_lists *L, int64_t c, int64_t s);

/* Upper bound on <q, k> over the first n members of list c (n > 0):
 * <q, mu_c> + ||q|| rho_c(n), ||q|| = qn. */
double ret_bound(const ret_lists *L, int64_t c, int64_t n, const float *q, double qn, int64_t D);

/* Is (s1, j1) a better retrieval than (s2, j2)? Higher score, ties to the
 * lower key row: a total order, so the top r is unique. */
static inline int ret_better(double s1, int64_t j1, double s2, int64_t j2)
{
    return s1 > s2 || (s1 == s2 && j1 < j2);
}

/* Is list c1 ranked before list c2? Higher bound, ties to the lower list. */
static inline int ret_list_before(double b1, int64_t c1, double b2, int64_t c2)
{
    return b1 > b2 || (b1 == b2 && c1 < c2);
}

/* Executed work, for the counters. */
typedef struct {
    double flops, bytes, exps;
} ret_tally;

/* Builds stage t of the index of KV head (b, hk) of K into `slot` (the k-means,
 * the lists and their radii), in fp32 with OpenBLAS, single-threaded;
 * scratch holds ret_build_scratch_floats(pl) floats. */
void ret_build_stage(const ret_plan *pl, int t, const attn_tensor *K, int64_t b, int64_t hk, float *slot,
                     float *scratch, ret_tally *tally);
size_t ret_build_scratch_floats(const ret_plan *pl);

/* Index bytes of one (b, KV head): centroids, list offsets, members, radii and
 * the members' keys. */
size_t ret_index_bytes(const ret_plan *pl);

/* A retrieved key: its selection score and key row. */
typedef struct {
    double s;
    int64_t j;
} ret_hit;

/* Per-thread scratch of one decode step (retrieval_fwd.c). */
typedef struct {
    float *ranked;          /* lists ranked by bound */
    int32_t *count;         /* visible members per list */
    unsigned char *chosen;  /* lists chosen per head */
    ret_hit *hits;          /* per head, hits_ld apart */
    int64_t hits_ld;
    float *S, *P;           /* static scores (ldS apart) and retrieved weights (hits_ld apart) per head */
    int64_t ldS;
    float *Q, *O;           /* the group's query and output rows, G x D */
} ret_search_ws;

ret_search_ws ret_search_carve(const ret_plan *pl, float *p);

/* One decode step: query row i of the G heads of KV head (b, hk), its
 * search in the index `slot` and its attention, into io->o and io->lse. */
void ret_step_row(const ret_plan *pl, const attn_args *a, const attn_io *io, const float *slot, int64_t b,
                  int64_t hk, int64_t i, ret_search_ws *w, ret_tally *t);

/* The double reference (retrieval_ref.c) and its fidelity view. */
int ret_ref_forward(const attn_args *a, const attn_io64 *io);
int ret_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                 double *P, unsigned char *sel);

#endif
