/* What the `combiner` forward, backward and double reference share
 * (docs/kernels/combiner.md).
 *
 * Combiner (Ren et al. 2021), per (b, query head h), self-attention over N
 * rows cut by position into spans (rows) of s keys: span R holds keys
 * [R s, min((R+1) s, N)) and query i lies in span R = i / s.
 *
 *   direct keys   FULL: every key of span R; CAUSAL: keys of span R up to i
 *   summaries     partition=fixed: one per other span r (FULL: every r != R;
 *                 CAUSAL: every r < R), over the span's keys;
 *                 partition=axial: one per column c < s (key j is in column
 *                 j % s), over the column's keys in the other rows (FULL:
 *                 rows != R; CAUSAL: rows < R); an empty one is left out
 *   inner dist.   q_u(j) = softmax_{j in summary u} <w_h, k_j>
 *                 (summary=learned: w_h is row h of io.w, D floats;
 *                  summary=mean: uniform, no weights)
 *   summary       kbar_u = sum_j q_u(j) k_j,  vbar_u = sum_j q_u(j) v_j
 *   its score     sbar_iu = sc <q_i, kbar_u> + ln |u|  (log_count=1; else no bias)
 *   one softmax   over the direct scores sc <q_i, k_j> and the summary scores:
 *                 o_i = (sum_dir e^{s_ij} v_j + sum_u e^{sbar_iu} vbar_u) / Z_i,
 *                 lse_i = ln Z_i
 *
 * Over the original keys that is p(j | i) = p(u | i) q_u(j) for a key of a
 * summary and the softmax weight for a direct key: every key is reached
 * exactly once (never directly and through a summary). Fixed: with s = 1
 * every summary is its key (q = 1, ln 1 = 0) and with s >= N every key is
 * direct, softmax attention both times; axial: s >= N likewise.
 *
 * Summaries live in a table of nu entries per (b, h): fixed u = r (nu = nsp);
 * axial u = R s + c (nu = nsp s), the summaries row R's queries read. */
#ifndef ATTN_COMBINER_INTERNAL_H
#define ATTN_COMBINER_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

#define CB_ROUND16(n) (((n) + 15) / 16 * 16)
#define CB_DEFAULT_TILE 64
#define CB_COLBLK 64 /* backward: summary columns per task of the dKbar/dVbar pass */

typedef struct {
    int64_t s;          /* span length (keys per span, row length of axial) */
    int64_t nsp;        /* spans: ceil(N / s) */
    int axial;          /* partition=axial: summaries per column over the other rows */
    int64_t nsum;       /* summary columns of a tile: fixed nsp, axial s */
    int64_t nu;         /* summary entries per (b, h): fixed nsp, axial nsp s */
    int64_t npart;      /* dw parts per (b, h): fixed nsp (spans), axial s (columns) */
    int learned;        /* 1: q_r from w_h (io.w, D floats per head); 0: uniform */
    int log_count;      /* 1: summary scores carry ln |span| */
    int causal;
    int64_t T;          /* query rows per task (a tile never crosses a span) */
    int64_t tps;        /* tiles per span: ceil(s / T) */
    int64_t W;          /* io.w columns: D when learned, else 0 */
    int64_t ld;         /* leading dimension of a tile's score rows: room for nsum summaries and s keys */
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

/* Fixed: does a query of span R attend span r through its summary? */
static inline int cb_sees_summary(const cb_plan *pl, int64_t R, int64_t r) { return pl->causal ? r < R : r != R; }

/* Axial: is row r in the summaries that row R reads? */
static inline int cb_axial_row_in(const cb_plan *pl, int64_t R, int64_t r) { return pl->causal ? r < R : r != R; }

/* Fails unless io.w is present with the plan's W columns (when W > 0). */
int cb_check_w(const cb_plan *pl, const attn_tensor *w, const char *what);

/* Summaries of one (b, query head) in the workspace: kbar [nu x D],
 * vbar [nu x Dv], bias [nu] (ln |u| or 0; -inf for an empty axial summary),
 * qw [N]: fixed, q_r(j) of every key; axial, the logit a_j = <w_h, k_j> (0
 * for mean), with q_u(j) = exp(a_j - m[u]) / z[u] from m [nu], z [nu]. */
typedef struct {
    float *kbar, *vbar, *bias, *qw, *m, *z;
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
    float *dkbar, *dvbar; /* per (b, query head) [nu x D] / [nu x Dv] */
    float *dwpart;      /* per (b, query head, part) [D]: dw before the sum over b and parts */
    float *delta;       /* per (b, query head) [N]: <dO_i, O_i> */
} cb_bwd_ws;

cb_bwd_ws cb_bwd_ws_at(const attn_ctx *ctx, const cb_plan *pl);

/* Tile geometry of query rows [i0, i1) of span R: summary columns [0, nsum)
 * (summary u0 + c at column c), direct keys [j0, j0 + ndir) at columns nsum.. */
typedef struct {
    int64_t R, i0, i1, u0, nsum, j0, ndir;
} cb_tile;

/* Tile t of span R, cut at N; nt = i1 - i0 <= 0 when the span is shorter. */
cb_tile cb_tile_of(const cb_plan *pl, int64_t N, int64_t R, int64_t t);

/* S = the tile's scores (sc Q Kbar^T + bias, sc Q Kdir^T) with -inf where a
 * row may not look (its own span's summary, later keys), ld pl->ld. Returns
 * the FLOPs. */
double cb_tile_scores(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                      int64_t h, const cb_tile *t, float *S);

/* Axial summaries (combiner_axial.c): forward of column c of (b, h), and
 * the summaries' vector-Jacobian product for column c into the per-head
 * dK, dV buffers and the column's dw part. Return the FLOPs. */
double cb_axial_summaries(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                          int64_t h, int64_t c, float *scratch);
double cb_axial_summary_backward(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd,
                                 const cb_bwd_ws *w, int64_t b, int64_t h, int64_t c, float *scratch);

/* Backward (combiner_bwd.c), reference and fidelity view (combiner_ref.c). */
int cb_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int cb_ref_forward(const attn_args *a, const attn_io64 *io);
int cb_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);

#endif
