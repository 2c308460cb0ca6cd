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
 * Weight layout (theta, P = nmat k n floats): E row-major [k x n], then F
 * unless shared. Being shared by the heads, theta is spread over the H rows of
 * io.w [1,H,1,W], W = ceil(P / H): theta[p] is row p / W, column p % W (the
 * tail of the last row is unused, its gradient 0).
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
    int64_t T, nqt;     /* query rows per task, tiles per sequence */
    int64_t colblk;     /* backward: dE/dF columns per task */
    size_t thread_floats; /* per-thread scratch */
} lf_plan;

/* Parses k, n, share_ef, tile and sizes the layout (0, or an error with a message). */
int attn_linformer_plan(lf_plan *pl, const attn_args *a);

/* E (mat 0) or F (mat 1) inside a contiguous theta, [k x n] row-major. */
static inline const float *lf_mat(const lf_plan *pl, const float *theta, int mat)
{
    return theta + (pl->share_ef ? 0 : mat) * pl->k * pl->n;
}

/* theta[p] inside io.w (fp32 and double). */
static inline float *lf_theta_at(const lf_plan *pl, const attn_tensor *w, int64_t p)
{
    return attn_at(w, 0, p / pl->W, 0) + p % pl->W;
}

static inline double *lf_theta_at64(const lf_plan *pl, const attn_tensor_f64 *w, int64_t p)
{
    return attn_at64(w, 0, p / pl->W, 0) + p % pl->W;
}

/* Fails unless io.w is present and as wide as this problem's layout. */
int attn_linformer_check_w(const lf_plan *pl, const attn_tensor *w, const char *what);

/* The contiguous theta: io.w's own storage when its rows lie back to back,
 * else a copy gathered into buf (P floats). */
const float *attn_linformer_theta(const lf_plan *pl, const attn_tensor *w, float *buf);

/* Workspace: [theta copy P][dtheta P (backward)][K~,V~ per (b,h)][dK~,dV~
 * per (b,h) (backward)][per-thread scratch]. */
typedef struct {
    float *theta, *dtheta, *kv, *dkv;
} lf_ws;
lf_ws attn_linformer_ws(const attn_ctx *ctx, const lf_plan *pl);
float *attn_linformer_scratch(const attn_ctx *ctx, const lf_plan *pl, int thread);

/* Phase 1 of the forward and the backward, called inside their parallel
 * region (an orphaned omp for over (b, KV head, E or F)): K~ = E[:, :L] K
 * and V~ = F[:, :L] V of every (b, KV head) from its L keys (Nk, or the
 * sequence's length) into the kv block (lf_kv). Returns this thread's FLOPs. */
double attn_linformer_project_all(const attn_args *a, const lf_plan *pl, const float *theta, const attn_io *io,
                                  float *kv);

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
