/* What the `hyper` forward, its double reference and its cost model share
 * (docs/kernels/hyper.md).
 *
 * Per (batch b, query head h), self-attention over N rows, s_ij = sc <q_i, k_j>.
 *
 * A non-causal sub-problem ("job"): queries [q0, q0 + nq) against keys
 * [k0, k0 + nk), nq <= nk.
 *   exact when nk <= min_seq_len: softmax over all nk keys.
 *   otherwise:
 *   code(x)  = Gray-code rank of the r sign bits [x.R_c > 0], R a D x r
 *              standard Gaussian matrix drawn from the seed (all heads)
 *   sort     = the job's queries, and its keys, stably by (code, position)
 *   block I  = sorted slots [I bs, (I + 1) bs), cut at nq (queries) and at
 *              nk (keys); query slot t is in block t / bs
 *   samples  = min(s, nk) of the job's keys, uniform without replacement,
 *              drawn from (seed, b, KV head, q0); none when one block holds
 *              every key
 *   row i in block I: softmax over
 *              the keys of block I with logit s_ij, and
 *              the samples outside block I with logit s_ij + ln w_I,
 *              w_I = (nk - |key block I|) / (samples outside block I)
 *   which is the lse merge of the block part and the weighted sample part.
 * FULL: one job (0, N, 0, N).
 * CAUSAL: segment [s, e) of n rows: exact causal when n <= min_seq_len,
 *   else m = s + ceil(n / 2), the job (q0 = m, nq = e - m, k0 = s, nk = m - s)
 *   merged by lse into rows [m, e), and the segments [s, m), [m, e) recurse.
 * Every row is then one softmax over a set of (key, logit) pairs, each key
 * at most once: its exact causal leaf keys, and per job its block keys and
 * weighted samples. That is what the reference computes and the view shows. */
#ifndef ATTN_HYPER_INTERNAL_H
#define ATTN_HYPER_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

#define HY_R_MAX 16           /* sign bits: 2^16 codes at most */
#define HY_HASH_TILE 256      /* rows per sgemm of the hash projection */
#define HY_ROUND16(n) (((n) + 15) / 16 * 16)

typedef struct {
    int r;                /* hyperplanes */
    int64_t bs, s;        /* block size, samples */
    int64_t min_len;      /* min_seq_len: exact at or below */
    uint64_t seed;
    int causal;
} hy_plan;

/* Parses and checks the parameters and the problem (0, or a code with a message). */
int hy_plan_make(hy_plan *pl, const attn_args *a);

/* A non-causal sub-problem and an exact leaf (causal or not). */
typedef struct {
    int64_t q0, nq, k0, nk;
    int depth;
} hy_job;

typedef struct {
    int64_t s, n;
    int causal;
} hy_leaf;

/* The sub-problems of N rows. `fused`: a causal segment whose halving job
 * would be exact (ceil(n/2) <= min_seq_len) is one exact causal leaf (the
 * same softmax, computed in one piece: the fp32 kernel); otherwise the
 * literal recursion (the reference). Arrays may be NULL to count only. */
typedef struct {
    hy_job *jobs;
    hy_leaf *leaves;
    int64_t n_jobs, n_leaves;
    int depths;           /* 1 + the largest job depth (0 without jobs) */
} hy_split;

void hy_split_make(const hy_plan *pl, int64_t N, int fused, hy_split *sp);

/* The same with its arrays allocated (0, or ATTN_ENOMEM with a message);
 * hy_split_free releases them. */
int hy_split_alloc(const hy_plan *pl, int64_t N, int fused, hy_split *sp);
void hy_split_free(hy_split *sp);

/* Is the job exact (every key, no hashing)? */
static inline int hy_job_exact(const hy_plan *pl, const hy_job *j) { return j->nk <= pl->min_len; }

/* Key blocks of a job, and the samples it draws (0 when one block holds every key). */
static inline int64_t hy_blocks(const hy_plan *pl, const hy_job *j) { return (j->nk + pl->bs - 1) / pl->bs; }
static inline int64_t hy_samples_of(const hy_plan *pl, const hy_job *j)
{
    return hy_blocks(pl, j) > 1 ? (pl->s < j->nk ? pl->s : j->nk) : 0;
}

/* R: D x r row-major, standard normal from the seed (shared by every head). */
void hy_hyperplanes(const hy_plan *pl, int64_t D, double *R);

/* Position of the r-bit word `bits` in the reflected Gray sequence
 * (adjacent codes differ in one sign bit). */
static inline uint32_t hy_gray_rank(uint32_t bits)
{
    for (uint32_t shift = 1; shift < 32; shift <<= 1)
        bits ^= bits >> shift;
    return bits;
}

/* Code of x (D values) under R: bit c set when sum_d x[d] R[d][c] > 0,
 * summed in ascending d. The fp32 kernel falls back to it when its sgemm
 * projection is too close to 0 to decide a sign, so kernel and reference
 * always agree on the codes. */
uint32_t hy_code_f64(const double *x, const double *R, int64_t D, int r);

/* The job's samples of (b, KV head hk): hy_samples_of() absolute key
 * indices in [k0, k0 + nk), ascending. Returns how many. */
int64_t hy_draw_samples(const hy_plan *pl, const hy_job *j, int64_t b, int64_t hk, int64_t H_kv, int32_t *out);

/* ln w_I of a block with nkb keys and `outside` samples outside it (-inf: none). */
double hy_sample_log_weight(const hy_job *j, int64_t nkb, int64_t outside);

/* ---- the fp32 kernel's hashing ---- */

/* The hyperplanes in double (exact fallback) and float (sgemm), and the
 * per-|x| tolerance below which an fp32 projection's sign is not trusted. */
typedef struct {
    double *Rd;           /* D x r */
    float *Rf;            /* D x r */
    double tol;
} hy_hash;

void hy_hash_tables(const hy_plan *pl, int64_t D, hy_hash *hs);

/* Codes of rows [0, n) of head (b, h) of x: fp32 sgemm projections by tiles
 * of HY_HASH_TILE rows, hy_code_f64 for a row with a projection near 0.
 * P: HY_HASH_TILE x r floats, xd: D doubles of scratch. Returns the FLOPs. */
double hy_codes_f32(const hy_plan *pl, const hy_hash *hs, const attn_tensor *x, int64_t b, int64_t h, int64_t n,
                    int32_t *code, float *P, double *xd);

/* ---- the fp32 kernel's plan (hyper.c) and workspace ---- */

/* Made in init and kept in ctx->priv: the fused split, its jobs in depth
 * order with their block counts, the flash context of the exact leaves and
 * the workspace layout. Rows of one depth belong to at most one job, so a
 * depth's jobs run in parallel and merge into their rows without races;
 * depths run one after another (the leaves first), which fixes every row's
 * merge order whatever the thread count. */
typedef struct {
    hy_plan pl;
    hy_split sp;
    int32_t *by_depth;        /* job indices, depth 0 first (n_jobs) */
    int64_t *depth_start;     /* depths + 1: jobs of depth d at by_depth[depth_start[d] ..] */
    int64_t *block_start;     /* n_jobs: blocks before by_depth[i] within its depth */
    int64_t *depth_blocks;    /* depths: blocks of the jobs of depth d */
    attn_ctx flash;           /* exact leaves: flash on a view of their rows */
    int64_t leaf_max;
    int64_t G, ldD, ldV, ldC, rows_max, cols_max;
    /* byte offsets in the workspace: the merge lse [B H N]; codes, orders
     * and ranks of queries [B H N] and keys [B H_kv N]; the samples [B H_kv N];
     * the hyperplanes; the leaves' lse [B H leaf_max]; the flash workspace;
     * then one slot per thread */
    size_t lse, qcode, qord, kcode, kord, krank, smp, rd, rf, leaf_lse, flash_ws, slots;
    size_t slot_bytes;
} hy_priv;

/* Carves n bytes at *off (64-byte aligned), returning where they start. */
static inline size_t hy_align(size_t *off, size_t bytes)
{
    size_t at = *off;
    *off += (bytes + 63) / 64 * 64;
    return at;
}

/* A thread's slot: hashing scratch (projections of a row tile, one row in
 * double, the sort counts) and a block task's tiles (G stacked query
 * blocks, the block's then the samples' keys and values, scores, outputs,
 * per-row lse and 1/l, the per-column logit offsets). */
typedef struct {
    float *P;
    double *xd;
    int32_t *count;
    float *Q, *K, *V, *S, *O, *lse, *inv, *bias;
} hy_slot;

/* Fills *s from base (when both are given); returns the slot's bytes. */
size_t hy_slot_carve(const hy_priv *p, const attn_args *a, char *base, hy_slot *s);

/* Reference and view (hyper_ref.c), forward (hyper_fwd.c). */
int hy_ref_forward(const attn_args *a, const attn_io64 *io);
int hy_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);
int hy_forward(attn_ctx *ctx, const attn_io *io);

#endif
