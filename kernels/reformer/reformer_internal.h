/* What the `reformer` forward, backward and double reference share
 * (docs/kernels/reformer.md).
 *
 * Per (batch b, query head h), a sequence of L rows (L = N, or seq_len[b]
 * of a padded batch), keys k_j = q_j / |q_j| (shared QK), s_ij = sc <q_i, k_j>.
 * Round r = 0 .. R-1:
 *   bucket_r(i) = argmax [q_i R_r ; -q_i R_r], R_r a D x nb/2 standard
 *                 Gaussian matrix drawn from (seed, h, r); nb = 1: bucket 0.
 *                 An automatic nb above 128 is factored as trax does, nb =
 *                 f1 f2 from R_r = [R1 | R2] of f1/2 + f2/2 columns:
 *                 bucket = argmax[q R1; -q R1] + f1 argmax[q R2; -q R2]
 *   sort        = rows ordered by (bucket_r, position) (stable)
 *   chunk_r(i)  = rank_r(i) / c; nc = ceil(L / c) chunks, the last one shorter
 *   cand_r(i)   = keys j whose chunk is chunk_r(i) or the one before it
 *                 (chunk 0's is chunk nc-1), in the same bucket (same_bucket=1),
 *                 j <= i under a causal mask, j != i
 *   count_ij    = rounds r' with j in cand_r'(i)
 *   lse_r(i), O_r(i) = softmax over cand_r(i) of s_ij - ln count_ij
 * lse = logsumexp_r lse_r, O = sum_r exp(lse_r - lse) O_r, which is softmax
 * over the union of the candidates of every round. The self score is -1e5
 * (Reformer's penalty), so the query's own key carries weight only when no
 * other key is a candidate in any round: then O = v_i and lse = -1e5. That
 * limit is taken exactly here (e^-1e5 is 0 in any floating type). */
#ifndef ATTN_REFORMER_INTERNAL_H
#define ATTN_REFORMER_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

#define RF_SELF_SCORE (-1e5)   /* lse of a row whose only candidate is itself */
#define RF_ROUNDS_MAX 64
#define RF_HASH_TILE 256       /* rows per sgemm of the hash projection */
#define RF_ROUND16(n) (((n) + 15) / 16 * 16)

typedef struct {
    int64_t c;            /* chunk length */
    int64_t nb;           /* buckets: 0 auto (2 max(1, L / c)), 1, or even */
    int rounds;
    uint64_t seed;
    int same_bucket;      /* 1: keys of other buckets in the two chunks are masked */
    int causal;
    int64_t shift;        /* q_off - k_off: causal allows key j for query i when j <= i + shift */
} rf_plan;

/* Parses and checks the parameters and the mask (0, or a code with a message). */
int rf_plan_make(rf_plan *pl, const attn_args *a);

/* The hash of a sequence of L rows: nb = f1 f2 buckets from cols = f1/2 +
 * f2/2 rotation columns (f2 = 1: one factor; nb = 1: no rotation). */
typedef struct {
    int64_t nb, f1, f2, cols;
} rf_hash_shape;

rf_hash_shape rf_hash_of(const rf_plan *pl, int64_t L);

/* Buckets and chunks of a sequence of L rows. */
static inline int64_t rf_buckets(const rf_plan *pl, int64_t L) { return rf_hash_of(pl, L).nb; }
static inline int64_t rf_chunks(const rf_plan *pl, int64_t L) { return (L + pl->c - 1) / pl->c; }

/* Rows of sequence b. */
static inline int64_t rf_len(const attn_args *a, int64_t b) { return attn_q_len(a, b); }

/* R_r of head h: D x cols row-major, standard normal from (seed, h, r). */
void rf_rotation(const rf_plan *pl, int64_t h, int r, int64_t D, int64_t cols, double *R);

/* Bucket of x (D values) under R (D x hs.cols): per factor the first index
 * of the largest of [x R_f, -x R_f], each product summed in ascending d (p:
 * scratch of cols doubles). The kernel falls back to this exact form when
 * its fp32 projection is too close to a tie to decide, so kernel and
 * reference always agree on the buckets. */
int32_t rf_bucket_f64(const double *x, const double *R, int64_t D, rf_hash_shape hs, double *p);

/* Stable counting sort of L rows by bucket (nb buckets): order[slot] = row,
 * rank[row] = slot, rows of one bucket in ascending position. count is
 * scratch of nb + 1 ints. */
void rf_sort(const int32_t *bucket, int64_t L, int64_t nb, int32_t *order, int32_t *rank, int32_t *count);

/* Hash tables of one head, all rounds: bucket[r N + row], rank[r N + row],
 * order[r N + slot] (N = the problem's rows, L of them used). */
typedef struct {
    int32_t *bucket, *rank, *order;
    int64_t N;
} rf_tables;

/* Is key j a candidate of query i in round r? Chunk of j = chunk of i or
 * the one before (cyclic), and the same bucket when same_bucket. Causality
 * and self are the caller's. */
static inline int rf_in_round(const rf_plan *pl, const rf_tables *t, int r, int64_t nc, int64_t i, int64_t j)
{
    const int64_t o = (int64_t)r * t->N;
    if (pl->same_bucket && t->bucket[o + i] != t->bucket[o + j])
        return 0;
    int64_t ci = t->rank[o + i] / pl->c, cj = t->rank[o + j] / pl->c;
    return cj == ci || cj == (ci + nc - 1) % nc;
}

/* ---- fp32 kernel: workspace and shared passes (reformer_hash.c) ---- */

/* Workspace: per (b, h) the tables of every round, the inverse key norms and
 * the running lse; then one scratch slot per thread. */
typedef struct {
    rf_plan pl;
    int64_t N, D, Dv, nb_max, cols_max;
    size_t tables_ints;       /* per (b, h): 3 R N */
    size_t head_floats;       /* per (b, h): 2 N (inverse norms, lse) */
    size_t hash_floats;       /* hashing scratch inside a thread slot */
    size_t tile_floats;       /* chunk tiles both passes use (rf_tiles) */
    size_t chunk_floats;      /* forward chunk scratch (tiles included) */
    size_t bwd_floats;        /* backward scratch */
    size_t slot_floats;
} rf_layout;

int rf_layout_make(rf_layout *ly, const attn_args *a);
size_t rf_workspace_bytes(const rf_layout *ly, const attn_args *a);
rf_tables rf_head_tables(const attn_ctx *ctx, const rf_layout *ly, int64_t bh);
float *rf_head_floats(const attn_ctx *ctx, const rf_layout *ly, int64_t bh); /* invnorm [N], lse [N] */
float *rf_thread_slot(const attn_ctx *ctx, const rf_layout *ly, int thread);

/* 1 / |q_j| of the L rows of (b, h) (0 for a zero row: its key is 0). */
void rf_inverse_norms(const attn_tensor *q, int64_t b, int64_t h, int64_t L, int64_t D, float *inv);

/* Round r's buckets and sort for (b, h): fp32 sgemm projection, exact
 * double fallback near ties (rf_bucket_f64). Returns executed FLOPs. */
double rf_hash_sort(const rf_layout *ly, const attn_tensor *q, int64_t b, int64_t h, int r, int64_t L,
                    const rf_tables *t, float *scratch);

/* One chunk's gathered rows: sorted slots [p0, p0+np) (previous chunk) then
 * [q0, q0+nq) (own chunk, the queries); pos[] their rows. */
typedef struct {
    int64_t q0, nq, p0, np, nk, nc;
    int32_t pos[];            /* nk entries (flexible, in the thread slot) */
} rf_chunk;

/* A thread's chunk tiles, at the start of its slot after the hash scratch;
 * what a pass needs besides starts tile_floats further. */
typedef struct {
    rf_chunk *ch;
    float *Q, *K, *V, *S; /* nq x D queries, nk x D unit keys, nk x Dv values, nq x nk scores */
    int64_t ldD, ldV, ldK;
} rf_tiles;

rf_tiles rf_chunk_tiles(const rf_layout *ly, float *slot);

/* Head (b, h) as a chunk pass reads it. */
typedef struct {
    const attn_args *a;
    const attn_io *io;
    rf_tables t;
    const float *inv;     /* inverse key norms */
    int64_t b, h, hk, L;
} rf_head;

/* Chunk k of round r of the head into w: its geometry and rows, the
 * gathered queries, unit keys and values, S = sc Q K^T (sgemm) turned into
 * adjusted scores s - ln count for candidates and -inf elsewhere. Returns
 * the FLOPs of S. */
double rf_chunk_load(const rf_layout *ly, const rf_head *hd, int r, int64_t k, const rf_tiles *w);

/* Extra scratch of a pass in a thread slot (after the tiles). */
static inline float *rf_pass_scratch(const rf_layout *ly, float *slot) { return slot + ly->hash_floats + ly->tile_floats; }

/* Gathers rows pos[0..n) of (b, h) of t into X (ld), each scaled by
 * scale[pos] when scale is not NULL. */
void rf_gather(const attn_tensor *t, int64_t b, int64_t h, const int32_t *pos, int64_t n, const float *scale,
               float *X, int64_t ld);

/* Backward (reformer_bwd.c) and reference (reformer_ref.c). */
int rf_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int rf_ref_forward(const attn_args *a, const attn_io64 *io);
int rf_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);

#endif
