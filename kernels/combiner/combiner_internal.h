/* What the `combiner` forward, backward and double reference share
 * (docs/kernels/combiner.md).
 *
 * Combiner-Fixed (Ren et al. 2021), per (b, query head h), self-attention
 * over N rows cut into spans of s keys by position: span r holds keys
 * [r s, min((r+1) s, N)). Query i lies in span R = i / s.
 *
 *   inner distribution  q_r(j) = softmax_{j in span r} <w_h, k_j>
 *                       (summary=learned: w_h is row h of io.w, D floats;
 *                        summary=mean: uniform, no weights)
 *   summary             kbar_r = sum_j q_r(j) k_j,  vbar_r = sum_j q_r(j) v_j
 *   summary score       sbar_ir = sc <q_i, kbar_r> + ln |span r|  (log_count=1; else no bias)
 *   direct keys         FULL: every key of span R; CAUSAL: keys of span R up to i
 *   summaries attended  FULL: every span r != R;  CAUSAL: every span r < R
 *   one softmax         over the direct scores sc <q_i, k_j> and the summary scores:
 *                       o_i = (sum_dir e^{s_ij} v_j + sum_r e^{sbar_ir} vbar_r) / Z_i,
 *                       lse_i = ln Z_i
 *
 * Over the original keys that is p(j | i) = p(span r | i) q_r(j) for a key of
 * a summarised span and the softmax weight for a direct key: every key is
 * reached exactly once (never directly and through a summary). With s = 1
 * every summary is its key (q_r = 1, ln 1 = 0) and with s >= N every key is
 * direct: softmax attention both times. */
#ifndef ATTN_COMBINER_INTERNAL_H
#define ATTN_COMBINER_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

#define CB_ROUND16(n) (((n) + 15) / 16 * 16)
#define CB_DEFAULT_TILE 64
#define CB_COLBLK 64 /* backward: summary columns per task of the dKbar/dVbar pass */

typedef struct {
    int64_t s;          /* span length (keys per span) */
    int64_t nsp;        /* spans: ceil(N / s) */
    int learned;        /* 1: q_r from w_h (io.w, D floats per head); 0: uniform */
    int log_count;      /* 1: summary scores carry ln |span| */
    int causal;
    int64_t T;          /* query rows per task (a tile never crosses a span) */
    int64_t tps;        /* tiles per span: ceil(s / T) */
    int64_t W;          /* io.w columns: D when learned, else 0 */
    int64_t ld;         /* leading dimension of a tile's score rows: room for nsp summaries and s keys */
    size_t head_floats; /* summaries of one (b, query head) in the workspace (cb_head) */
    size_t fwd_floats, bwd_floats; /* per-thread scratch */
} cb_plan;

/* Parses span, summary, log_count, tile and sizes the layout (0, or an error
 * with a message: another mask, q_off != k_off). */
int cb_plan_make(cb_plan *pl, const attn_args *a);

/* First key of span r and its length. */
static inline int64_t cb_span0(const cb_plan *pl, int64_t r) { return r * pl->s; }
static inline int64_t cb_span_len(const cb_plan *pl, int64_t N, int64_t r)
{
    int64_t e = (r + 1) * pl->s < N ? (r + 1) * pl->s : N;
    return e - r * pl->s;
}

/* Does query row i (in span R) attend span r through its summary? */
static inline int cb_sees_summary(const cb_plan *pl, int64_t R, int64_t r) { return pl->causal ? r < R : r != R; }

/* Fails unless io.w is present with the plan's W columns (when W > 0). */
int cb_check_w(const cb_plan *pl, const attn_tensor *w, const char *what);

/* Summaries of one (b, query head) in the workspace: kbar [nsp x D],
 * vbar [nsp x Dv], bias [nsp] (ln |span| or 0), qw [N] (q_r(j) of every key). */
typedef struct {
    float *kbar, *vbar, *bias, *qw;
} cb_head;

cb_head cb_head_at(const attn_ctx *ctx, const cb_plan *pl, int64_t bh);

/* Computes the summaries of every (b, query head) into the workspace, inside
 * the caller's parallel region (an orphaned omp for); scratch is this
 * thread's slot. Returns this thread's FLOPs. */
double cb_summaries_all(const attn_ctx *ctx, const cb_plan *pl, const attn_io *io, float *scratch);

/* Per-thread scratch of the forward (and the backward when planned). */
float *cb_thread_slot(const attn_ctx *ctx, const cb_plan *pl, int thread);

/* The backward's buffers after the summaries (cb_bwd_ws). */
typedef struct {
    float *dk, *dv;     /* per query head [B, H, N, D] / [.., Dv]: summed over the group at the end */
    float *dkbar, *dvbar; /* per (b, query head) [nsp x D] / [nsp x Dv] */
    float *dwpart;      /* per (b, query head, span) [D]: dw before the sum over b and spans */
    float *delta;       /* per (b, query head) [N]: <dO_i, O_i> */
} cb_bwd_ws;

cb_bwd_ws cb_bwd_ws_at(const attn_ctx *ctx, const cb_plan *pl);

/* Tile geometry of query rows [i0, i1) of span R: summary columns [0, nsum)
 * (span r at column r), direct keys [j0, j0 + ndir) at columns nsum.. */
typedef struct {
    int64_t R, i0, i1, nsum, j0, ndir;
} cb_tile;

/* Tile t of span R, cut at N; nt = i1 - i0 <= 0 when the span is shorter. */
cb_tile cb_tile_of(const cb_plan *pl, int64_t N, int64_t R, int64_t t);

/* S = the tile's scores (sc Q Kbar^T + bias, sc Q Kdir^T) with -inf where a
 * row may not look (its own span's summary, later keys), ld pl->ld. Returns
 * the FLOPs. */
double cb_tile_scores(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                      int64_t h, const cb_tile *t, float *S);

/* Backward (combiner_bwd.c), reference and fidelity view (combiner_ref.c). */
int cb_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int cb_ref_forward(const attn_args *a, const attn_io64 *io);
int cb_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);

#endif
