/* Shared core of the kernelised linear-attention kernels `linear` (elu+1)
 * and `based` (Taylor map), docs/kernels/linear.md: a feature map phi given
 * as functions, the chunked causal / non-causal forward and backward, the
 * plain double recurrent reference and the explicit kernel-matrix reference.
 *
 * Per (batch b, query head h, KV head hk = h / G), with F features:
 *   o_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps),
 *   S_i = sum_{j in keys(i)} phi(k_j) v_j^T (F x Dv),  z_i = sum_{j in keys(i)} phi(k_j),
 * keys(i) = j <= i of the same segment (causal) or the whole segment
 * (non-causal). A segment is the sequence (FULL, CAUSAL) or one document
 * (DOCUMENT: the state resets at each document start).
 *
 * State layout: z rides as an extra column of S (S_ext = [S | z], F x (Dv+1))
 * and V gets a column of ones (V_ext = [V | 1]), so numerator and
 * denominator come out of the same sgemm.
 *
 * Lag (based window, `mix=shared_denominator`): with W > 0 the linear part
 * only covers keys j <= i - W and the W most recent keys (query included)
 * take exact exp(<q,k>/sqrt(D)) weights in the same normalised sum. */
#ifndef ATTN_LINEAR_CHUNK_H
#define ATTN_LINEAR_CHUNK_H

#include "kernels/core/attn.h"

#define LIN_EPS 1e-6 /* Katharopoulos et al. 2020 eq. 6 denominator guard */

typedef struct lin_fmap lin_fmap;
struct lin_fmap {
    int64_t D, F;     /* input and feature dimensions */
    double c1, c2d, c2o; /* Taylor map constants (based); unused by elu+1 */
    int full;         /* Taylor map: all D*D quadratic terms instead of the unique ones */
    // x is (n, D) row stride ldx; f is (n, F) row stride ldf: f = phi(x)
    void (*fwd)(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf);
    // df is (n, F); dx is (n, D) row stride lddx: dx = J_phi(x)^T df (overwritten)
    void (*bwd)(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                float *dx, int64_t lddx);
    // x is (D); f is (F): the double twin of fwd, for the reference
    void (*fwd64)(const lin_fmap *m, const double *x, double *f);
    const void *data; /* what a map reads beyond the constants above (performer: its random features) */
};

/* One run's configuration: the map, the chunk, the based window. */
typedef struct {
    lin_fmap fm;      /* the map of keys, and of queries unless qm is set */
    lin_fmap qm;      /* a different map for queries (performer's stabiliser); qm.fwd NULL: fm */
    double eps;       /* denominator guard: LIN_EPS for elu+1 and Taylor features */
    int64_t C;        /* rows per chunk */
    int64_t W;        /* based window (keys, query included); 0 = pure linear attention */
    int causal;       /* CAUSAL kind or mask.causal */
} lin_cfg;

/* The map applied to queries. */
static inline const lin_fmap *lin_qmap(const lin_cfg *cfg) { return cfg->qm.fwd ? &cfg->qm : &cfg->fm; }

/* Checks what the family supports beyond attn_args_validate (positions of
 * queries and keys must coincide when the mask depends on them, window only
 * with a causal mask) and fills cfg->causal. `kernel` names the caller. */
int lin_cfg_check(lin_cfg *cfg, const attn_args *a, const char *kernel);

/* Sizes ctx->workspace_bytes and ctx->state_bytes_used for cfg. */
void lin_init(attn_ctx *ctx, const lin_cfg *cfg);

/* Recurrent-state bytes for the whole batch: B*H_kv*(F*(Dv+1) + W*(D+Dv))*4. */
size_t lin_state_bytes(const attn_args *a, int64_t F, int64_t W);

/* Analytic cost (docs/kernels/linear.md), see linear_chunk.c. */
double lin_flops(const attn_args *a, attn_pass pass, int64_t F, int64_t C, int64_t W);
double lin_bytes(const attn_args *a, attn_pass pass);

// q is (B,H,N,D), k is (B,H_kv,N,D), v is (B,H_kv,N,Dv); o is (B,H,N,Dv). lse untouched.
int lin_forward(attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io);
// gradients shaped like q, k, v; dk, dv summed over each GQA group
int lin_backward(attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g);

/* Builds a kernel's cfg from its args (params parsed and checked). */
typedef int (*lin_cfg_fn)(lin_cfg *cfg, const attn_args *a);

/* The attn_kernel callbacks of a family member, given its cfg builder. */
int lin_k_init(attn_ctx *ctx, const attn_args *a, lin_cfg_fn make);
int lin_k_forward(attn_ctx *ctx, const attn_io *io, lin_cfg_fn make);
int lin_k_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g, lin_cfg_fn make);
double lin_k_flops(const attn_args *a, attn_pass pass, lin_cfg_fn make);
size_t lin_k_state_bytes(const attn_args *a, lin_cfg_fn make);
int lin_k_ref_forward(const attn_args *a, const attn_io64 *io, lin_cfg_fn make);

/* The recurrent form in double (S_i, z_i updated one key at a time). */
int lin_ref_forward64(const attn_args *a, const lin_cfg *cfg, const attn_io64 *io);

/* Second, independent double reference: the explicit normalised kernel matrix
 * o_i = sum_j A_ij k(q_i,k_j) v_j / (sum_j A_ij k(q_i,k_j) + eps), with the mask
 * predicate attn_mask_allowed for A and the kernel function `kern` (window: the
 * pairs of the last W allowed keys use exp(<q,k>/sqrt(D)) instead). */
typedef double (*lin_kernel_fn)(const double *q, const double *k, int64_t D);
void lin_kernel_matrix_f64(const attn_args *a, lin_kernel_fn kern, int64_t W, const attn_io64 *io);

/* Row i of (b, h) of that matrix before normalising: w[j] for every key
 * (0 where masked); returns the denominator sum_j w[j] + eps. */
double lin_row_weights(const attn_args *a, const attn_io64 *io, lin_kernel_fn kern, int64_t W, int64_t b,
                       int64_t h, int64_t i, double *w);

/* The fidelity view (attn_kernel.ref_view) of a family member: its
 * normalised kernel rows, non-negative because every feature map of the
 * family gives a positive kernel. */
int lin_k_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n,
                   double *P, lin_cfg_fn make, lin_kernel_fn kern);

/* ---- internals shared by linear_chunk.c and linear_chunk_bwd.c ---- */

/* A document or the whole sequence: rows [lo, hi). */
typedef struct {
    int64_t lo, hi;
} lin_seg;

/* Segments of batch entry b (at most ATTN_MASK_MAX_SPANS + 1); returns their count. */
int64_t lin_segments(const attn_args *a, int64_t b, lin_seg *seg);

/* Zeroes the rows of (b, h) of t outside every segment (positions in no
 * document see no key: O = 0 and no gradient). */
void lin_zero_uncovered(const attn_args *a, const attn_tensor *t, int64_t b, int64_t h, const lin_seg *seg,
                        int64_t ns);

/* Per-thread scratch of one chunk, carved from the workspace. */
typedef struct {
    float *fk, *vx, *fq, *ox, *A;     /* forward (fq, A, vx: recomputed in the backward) */
    float *sv, *fa;                   /* forward: [S_ext ; V_ext] and [phi(Q) | A] stacked */
    float *gx, *B, *dfq, *dfk, *dv, *R; /* backward */
    float *win;                       /* window part (lin_window_scratch_floats) */
} lin_scratch;

/* One (b, KV head) task over its segments; returns the FLOPs executed. */
typedef double (*lin_task_fn)(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                              int64_t b, int64_t hk, const lin_seg *seg, int64_t ns, float *S, lin_scratch *w);

/* Runs `task` on every (b, KV head) under OpenMP with single-threaded sgemm,
 * and adds the counters (bytes_per_task: Q/K/V/dO bytes one task reads). */
void lin_run_tasks(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                   lin_task_fn task, double bytes_per_task);

lin_scratch lin_scratch_of(const attn_ctx *ctx, const lin_cfg *cfg, int thread);
float *lin_state_of(const attn_ctx *ctx, const lin_cfg *cfg, int64_t b, int64_t hk);
/* Backward row statistics of (b, h): 4 floats per row (linear_chunk_bwd.c). */
float *lin_rowstats_of(const attn_ctx *ctx, const lin_cfg *cfg, int64_t b, int64_t h);

/* Fk = phi(K rows [r0-lag, r0-lag+n)) and V_ext = [V | 1] rows likewise; rows
 * before `lo` (the segment start) are zero (the lagged part has no key yet). */
void lin_load_kv(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t hk, int64_t r0, int64_t n,
                 int64_t lag, int64_t lo, float *fk, float *vx);

/* Zeroes the strict upper triangle (j > i) of the n x n matrix X (leading dimension ld). */
void lin_tril(float *X, int64_t n, int64_t ld);

// fq, fk are (n, F), vx is (n, Dv+1), S is (F, Dv+1); ox is (n, Dv+1) = fq S [+ tril(fq fk^T) vx]
// (the intra-chunk term when `intra`); returns the FLOPs executed
double lin_chunk_numden(int64_t n, int64_t F, int64_t Dv1, const float *fq, const float *fk, const float *vx,
                        const float *S, int state_zero, int intra, float *A, float *ox);

/* Output rows [r0, r0+n) of head h into out (n x Dv, row stride ldo) from ox
 * (and the window part when cfg->W > 0); stats (4 floats per row, or NULL)
 * receive what the backward needs. Returns the FLOPs executed. */
double lin_chunk_finish(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t h, int64_t r0, int64_t n,
                        int64_t lo, lin_scratch *w, float *out, int64_t ldo, float *stats);

/* S += fk^T vx for a loaded chunk of n rows; returns the FLOPs. */
double lin_state_add(int64_t n, int64_t F, int64_t Dv1, const float *fk, const float *vx, float *S);

/* ---- the based window part (linear_window.c) ---- */
size_t lin_window_scratch_floats(const attn_args *a, const lin_cfg *cfg);
/* As lin_chunk_finish, for cfg->W > 0. */
double lin_window_forward(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t h, int64_t r0, int64_t n,
                          int64_t lo, lin_scratch *w, float *out, int64_t ldo, float *stats);
/* Gradients of the window weights of rows [r0, r0+n) of head h, added to dq, dk, dv. */
double lin_window_backward(const lin_cfg *cfg, const attn_io *io, const attn_grads *g, int64_t b, int64_t h,
                           int64_t r0, int64_t n, int64_t lo, lin_scratch *w, const float *stats);
/* Copies the last W key and value rows of (b, hk) after S_ext: the stream
 * state needed to continue (they have not entered S yet). */
void lin_window_keep_tail(const attn_args *a, const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t hk,
                          float *state);

#endif
