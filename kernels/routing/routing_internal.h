/* What the `routing` forward, backward, reference and centroid update share
 * (docs/kernels/routing.md).
 *
 * Per (batch b, query head h), N rows, kappa unit centroids mu_c of head h
 * (io.w row h: kappa x D, row-major), unit rows x^ = x / |x| (0 for a zero
 * row) and the routing score r_c(x) = <x^, mu_c>:
 *   argmax:   cl(x) = the first c of largest r_c(x); query i attends the
 *             keys j with cl(k_j) = cl(q_i): one membership per query.
 *   balanced: cluster c takes the w = ceil(N / kappa) queries and the w keys
 *             of largest r_c (ties: lower position); query i has one
 *             membership per cluster that took it (zero, one or several).
 * A membership of query i in cluster c attends the keys of c the mask allows
 * (causal: position <= its own), plus its own key j = i + q_off - k_off when
 * keep_diag and that key is not one of them: softmax of s_ij = sc <q_i, k_j>
 * over them gives (O_c, lse_c). Memberships merge by logsumexp: lse =
 * logsumexp_c lse_c, O = sum_c exp(lse_c - lse) O_c (no membership, or only
 * empty ones: O = 0, lse = -inf). That is the softmax over the memberships'
 * candidates counted with multiplicity, so the backward is the softmax
 * backward over that multiset with P = exp(s - lse) per occurrence. */
#ifndef ATTN_ROUTING_INTERNAL_H
#define ATTN_ROUTING_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

enum { RT_ARGMAX = 0, RT_BALANCED = 1 };

#define RT_BQ 64   /* query rows per tile */
#define RT_BK 128  /* keys per tile */

typedef struct {
    int64_t N, D, Dv;
    double scale;         /* softmax scale (attn_scale) */
    int64_t kappa;        /* clusters */
    int64_t w;            /* balanced: members per cluster, ceil(N / kappa) */
    int64_t bk;           /* keys per tile: min(RT_BK, w rounded up to 16) */
    int64_t bq;           /* forward query rows per tile: min(RT_BQ, w rounded up to 16) */
    int assign;           /* RT_ARGMAX or RT_BALANCED */
    int keep_diag;
    int causal;
    int64_t shift;        /* q_off - k_off: causal allows key j for query i when j <= i + shift */
    uint64_t seed;        /* mixed into the centroids' initial draw */
    int64_t iters;        /* Lloyd steps on the sequence's own rows before routing (full mask) */
    double decay;         /* EMA lambda of the centroid update */
} rt_plan;

/* Parses and checks the parameters and the mask (0, or a code with a message). */
int rt_plan_make(rt_plan *pl, const attn_args *a);

/* Query slots / key slots over all clusters of one head: N (argmax) or kappa w. */
static inline int64_t rt_members_max(const rt_plan *pl) { return pl->assign == RT_ARGMAX ? pl->N : pl->kappa * pl->w; }

/* Centroid c of head h (kappa x D floats at the start of io.w's row h). */
static inline const float *rt_centroid(const attn_tensor *w, int64_t h, int64_t c, int64_t D)
{
    return attn_at(w, 0, h, 0) + c * D;
}

/* ---- exact routing scores: the rule kernel and reference share ---- */

/* xh = x / |x| in double (0 for a zero row). */
void rt_unit_f64(const double *x, int64_t D, double *xh);
/* <a, b> summed in ascending d. */
double rt_dot_f64(const double *a, const double *b, int64_t D);

/* ---- k-means steps (routing_update.c) ---- */

/* Per-cluster sums of unit rows and the centroids they move. */
typedef struct {
    double *sq, *sk, *u;      /* kappa x D sums of unit queries, of unit keys; 2 D scratch */
    int64_t *nq, *nk;         /* kappa member counts */
    float *mu;                /* kappa x D centroids */
} rt_kmeans_sums;

size_t rt_kmeans_floats(const rt_plan *pl);
rt_kmeans_sums rt_kmeans_at(const rt_plan *pl, float *p); /* p 8-byte aligned */
void rt_kmeans_clear(const rt_plan *pl, const rt_kmeans_sums *km);

/* sum += x / |x| (u: D scratch); the one way kernel and reference add a row. */
void rt_sum_unit(const double *x, int64_t D, double *sum, double *u);

/* mu_c <- normalise(lambda mu_c + (1 - lambda) m_c) for every cluster with
 * members, m_c = (mean unit query + mean unit key) / 2, or one side's mean
 * when the other has none. lambda = 0: a Lloyd step; decay: the EMA. */
void rt_kmeans_step(const rt_plan *pl, double lambda, const rt_kmeans_sums *km, float *mu);

/* ---- fp32 assignment (routing_assign.c) ---- */

/* Members of one head: cluster c's queries are qidx[qoff[c] .. qoff[c+1]),
 * its keys kidx[koff[c] .. koff[c+1]), each in ascending position. */
typedef struct {
    int32_t *qoff, *koff;     /* kappa + 1 */
    int32_t *qidx, *kidx;     /* rt_members_max */
} rt_members;

/* Floats of the assignment scratch of one thread (members included). */
size_t rt_assign_floats(const rt_plan *pl);

/* The members of (b, h) from io's q, k and w into scratch: with iters, the
 * centroids first take iters Lloyd steps on the sequence's own unit rows;
 * fp32 scores by sgemm, decided exactly (rt_unit_f64, rt_dot_f64 on the
 * widened rows) where rounding could change the answer, so they equal the
 * double reference's. Returns the FLOPs of the score products. */
double rt_assign_head(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *scratch, rt_members *m);

/* Argmax clusters of the N rows of (b, hx) of x under centroids mu (kappa x
 * D), their unit rows added to sum and counted in cnt (the EMA's
 * accumulation; scratch as rt_assign_head). Returns the FLOPs. */
double rt_argmax_sums(const rt_plan *pl, const attn_tensor *x, const float *mu, int64_t b, int64_t hx, float *scratch,
                      double *sum, int64_t *cnt);

/* ---- attention tiles shared by forward and backward (routing_tile.c) ---- */

/* A thread's tile buffers. */
typedef struct {
    float *Q, *K, *V, *S, *dO, *dP, *A; /* BQ x D, BK x D, BK x Dv, BQ x BK, BQ x Dv, BQ x BK, BQ x max(D, Dv) */
    float *m, *l, *Di;                  /* BQ each */
    float *lse;                         /* N: the head's running lse (forward) */
    unsigned char *in_c;                /* N: key j belongs to the current cluster */
} rt_tiles;

size_t rt_tile_floats(const rt_plan *pl);
rt_tiles rt_tiles_at(const rt_plan *pl, float *p);

/* Gathers rows idx[0..n) of (b, h) of t into X (ld columns), times scale,
 * and zero rows up to n_pad. */
void rt_gather(const attn_tensor *t, int64_t b, int64_t h, const int32_t *idx, int64_t n, int64_t n_pad, float scale,
               float *X, int64_t ld);

/* A key tile of the cluster's keys from k0: m real keys, always pl->bk
 * columns wide (the rest padding with S = -inf); the forward's query tiles
 * are likewise always pl->bq rows (zero padding). The sgemm shapes are then
 * fixed by N and kappa, and a row's arithmetic never depends on how many
 * later rows its cluster has: under a causal mask a row's output is bitwise
 * independent of every later row (sgemm rounds by shape). */
static inline int64_t rt_tile_keys(const rt_plan *pl, int64_t nk, int64_t k0)
{
    return nk - k0 < pl->bk ? nk - k0 : pl->bk;
}

/* Sets S[r][c] = -inf for the padding columns m .. bk and where key kidx[c]
 * is masked for query qidx[r] (causal). */
void rt_mask_tile(const rt_plan *pl, const int32_t *qidx, int64_t nq, const int32_t *kidx, int64_t nk, float *S);

/* Own key of query i when keep_diag adds it (not a member of the current
 * cluster, inside the key range); -1 otherwise. */
static inline int64_t rt_self_key(const rt_plan *pl, const rt_tiles *t, int64_t i)
{
    int64_t j = i + pl->shift;
    return pl->keep_diag && j >= 0 && j < pl->N && !t->in_c[j] ? j : -1;
}

/* Fails unless io.w holds kappa D centroid columns per head. */
int rt_check_weights(const rt_plan *pl, const attn_io *io);

/* Forward, backward, reference, view and the centroid update. */
int rt_forward(attn_ctx *ctx, const attn_io *io);
int rt_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int rt_ref_forward(const attn_args *a, const attn_io64 *io);
int rt_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);
int rt_train_update(const attn_args *a, const attn_io *io, attn_tensor *w);

/* Workspace layout: per thread one slot (assignment scratch, tiles,
 * backward rows); backward: per (b, h) dK and dV before the GQA sum. */
typedef struct {
    size_t assign_floats, tile_floats, slot_floats;
    size_t head_grad_floats;  /* per (b, h): N (D + Dv), backward only */
} rt_layout;

rt_layout rt_layout_of(const rt_plan *pl, const attn_args *a);
float *rt_thread_slot(const attn_ctx *ctx, const rt_layout *ly, int thread);
float *rt_head_grads(const attn_ctx *ctx, const rt_layout *ly, int64_t bh);

/* What a pass executed, counted once per thread (attn_counter_add). */
typedef struct {
    double flops, exps, bytes;
} rt_tally;

void rt_tally_flush(const rt_tally *t);

/* The plan and layout of a planned pass on io (parameters, centroid
 * columns), and OpenBLAS set to one thread: the passes parallelise with
 * OpenMP over (b, h). */
int rt_pass_open(const attn_ctx *ctx, const attn_io *io, rt_plan *pl, rt_layout *ly);

/* One query tile of a cluster: n member queries qi, the cluster's nk keys kj. */
typedef void (*rt_tile_fn)(const rt_plan *pl, const attn_io *io, rt_tiles *t, int64_t b, int64_t h, const int32_t *qi,
                           int64_t n, const int32_t *kj, int64_t nk, void *arg, rt_tally *tl);

/* Routes (b, h) (rt_assign_head) and calls fn on every tile of bq member
 * queries of every cluster, clusters in order, t->in_c marking the current
 * cluster's keys. */
void rt_walk_clusters(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *assign, rt_tiles *t,
                      int64_t bq, rt_tile_fn fn, void *arg, rt_tally *tl);

/* fn(b, h) for every head: one OpenMP task each, with the thread's scratch
 * (assignment, tiles); the counters flushed once per thread. */
typedef void (*rt_head_fn)(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *assign, rt_tiles *t,
                           void *arg, rt_tally *tl);
void rt_for_heads(const attn_ctx *ctx, const attn_io *io, const rt_plan *pl, const rt_layout *ly, rt_head_fn fn,
                  void *arg);

#endif
