/* `linformer`: Linformer attention (Wang, Li, Khabsa, Fang, Ma 2020,
 * "Linformer: Self-Attention with Linear Complexity", arXiv 2006.04768;
 * docs/kernels/linformer.md). Per (b, head), with n = Nk keys:
 *
 *   K~ = E K,  V~ = F V                     E, F in R^{k x n}: length projections
 *   O  = softmax(sc Q K~^T) V~              attention over k projected keys
 *
 * E and F are learned weights (ATTN_IN_WEIGHTS), one pair per layer shared by
 * all heads (the paper's headwise sharing; LRA's code keeps one length kernel
 * per layer), and F = E with share_ef=1 (key-value sharing; what LRA's code
 * does). Their size depends on n, the positions they cover: Nk unless the n
 * parameter says more, when a problem with fewer keys uses their first Nk
 * columns (as LRA's code cuts its kernel to the input length: the missing
 * keys act as zero rows). Weights made for another n are refused (io.w has
 * the wrong width).
 *
 * Weight layout: theta is nmat k rows of n floats, E's k rows and then F's
 * unless shared (P = nmat k n floats). Being shared by the heads, its rows are
 * dealt to the H rows of io.w [1,H,1,W] in runs of R = ceil(nmat k / H):
 * theta row t is at io.w row t / R, offset (t % R) n, and W = R n (slots past
 * the last theta row are unused, their gradient 0). Whole rows, so every run
 * of E's or F's rows is a matrix with leading dimension n in place, whatever
 * the strides of io.w.
 *
 * Under GQA the G query heads of a KV head attend the same K~, V~.
 *
 * A right-padded batch (attn_args.seq_len): sequence b of length L uses the
 * first L columns of E and F, i.e. its padding keys act as zero rows of K and
 * V (never read); its padding queries get O = 0, LSE = -inf. */
#ifndef ATTN_LINFORMER_H
#define ATTN_LINFORMER_H

#include "kernels/core/attn.h"

#include <stdint.h>

extern const attn_kernel attn_kernel_linformer;

#define LF_ROUND16(n) (((n) + 15) / 16 * 16)

typedef struct {
    int64_t k;          /* projected keys: the k parameter, clamped to n */
    int64_t n;          /* positions E and F cover: the n parameter, or Nk */
    int share_ef;       /* 1: F = E */
    int64_t nmat;       /* matrices stored: 2, or 1 when shared */
    int64_t P, W;       /* theta floats; floats per io.w row */
    int64_t R;          /* theta rows per io.w row */
    int64_t T, nqt;     /* query rows per task, tiles per sequence */
    int64_t colblk;     /* backward: dE/dF columns per task */
    size_t thread_floats; /* per-thread scratch */
} lf_plan;

/* Parses k, n, share_ef, tile and sizes the layout (0, or an error with a message). */
int attn_linformer_plan(lf_plan *pl, const attn_args *a);

/* Row t of theta inside io.w, and theta[p] (row p / n, column p % n), in fp32 and double. */
static inline float *lf_row(const lf_plan *pl, const attn_tensor *w, int64_t t)
{
    return attn_at(w, 0, t / pl->R, 0) + t % pl->R * pl->n;
}

static inline float *lf_theta_at(const lf_plan *pl, const attn_tensor *w, int64_t p)
{
    return lf_row(pl, w, p / pl->n) + p % pl->n;
}

static inline double *lf_theta_at64(const lf_plan *pl, const attn_tensor_f64 *w, int64_t p)
{
    return attn_at64(w, 0, p / pl->n / pl->R, 0) + p / pl->n % pl->R * pl->n + p % pl->n;
}

/* The theta row of row 0 of E (mat 0) or F (mat 1). */
static inline int64_t lf_row0(const lf_plan *pl, int mat) { return (pl->share_ef ? 0 : mat) * pl->k; }

/* End (exclusive, at most r1) of the run of rows from row r of E or F that
 * lie in one row of io.w: one matrix with leading dimension n. */
static inline int64_t lf_run_end(const lf_plan *pl, int mat, int64_t r, int64_t r1)
{
    int64_t t0 = lf_row0(pl, mat), end = ((t0 + r) / pl->R + 1) * pl->R - t0;
    return end < r1 ? end : r1;
}

/* Fails unless io.w is present and as wide as this problem's layout. */
int attn_linformer_check_w(const lf_plan *pl, const attn_tensor *w, const char *what);

/* Workspace: [K~,V~ per (b, KV head)][dK~,dV~ per (b, KV head) (backward)][per-thread scratch]. */
typedef struct {
    float *kv, *dkv;
} lf_ws;
lf_ws attn_linformer_ws(const attn_ctx *ctx, const lf_plan *pl);
float *attn_linformer_scratch(const attn_ctx *ctx, const lf_plan *pl, int thread);

/* Phase 1 of the forward and the backward, called inside their parallel
 * region (an orphaned omp for over (b, KV head, E or F)): K~ = E[:, :L] K
 * and V~ = F[:, :L] V of every (b, KV head) from its L keys (Nk, or the
 * sequence's length) into the kv block (lf_kv). Returns this thread's FLOPs. */
double attn_linformer_project_all(const attn_args *a, const lf_plan *pl, const attn_io *io, float *kv);

/* K~ / V~ of (b, KV head hk) inside the kv block. */
static inline float *lf_kv(const attn_args *a, const lf_plan *pl, float *kv, int64_t b, int64_t hk, int mat)
{
    return kv + ((b * a->H_kv + hk) * 2 + mat) * pl->k * a->D;
}

/* Plain double reference of the formulas above (linformer_ref.c; writes io->o, and io->lse if given). */
int attn_linformer_ref_forward(const attn_args *a, const attn_io64 *io);

/* Backward (linformer_bwd.c): softmax backward over the k projected keys,
 * dK = E^T dK~, dV = F^T dV~, dE = sum dK~ K^T, dF = sum dV~ V^T over the
 * batch and heads (summed into E when shared). */
int attn_linformer_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

#endif
