/* Shared between the sse forward (sse.c), backward (sse_bwd.c) and double
 * reference (sse_ref.c): parameters, the plan of the GLA core, per-thread
 * buffers, routing and the gathered view of one partition's bucket. */
#ifndef ATTN_SSE_INTERNAL_H
#define ATTN_SSE_INTERNAL_H

#include "kernels/gla/gla_internal.h"

#define SSE_MAX_PARTITIONS 64

/* partitions (default 4, 1..64) and topk (default 1, 1..partitions); 0 or a negative code. */
int attn_sse_params(const attn_args *a, int64_t *P, int64_t *k);

typedef struct {
    gla_plan gla;             /* the GLA core's plan (param chunk only) */
    int64_t P, k, G, Dk, Dv, N, C;
    int64_t nseg, seg[GLA_MAX_SEGS + 1]; /* the sequence's segments (documents), attn_gla_segments */
    int64_t R;                /* gathered rows at most: k N + padding (see attn_sse_bufs) */
    size_t slot_floats;       /* per-thread slot (floats, multiple of 16) */
    size_t state_floats;      /* B * H_kv * (1 + P) * Dk * Dv */
} sse_plan;

int attn_sse_plan(sse_plan *pl, const attn_args *a);

/* Workspace: the final states, then one slot per thread from this float offset. */
static inline size_t attn_sse_slot0(const sse_plan *pl) { return (pl->state_floats + 15) / 16 * 16; }

/* Inputs every pass needs: io.gate [B,H_kv,N,Dk], io.router [B,H_kv,N,P]; 0 or a negative code. */
int attn_sse_check_inputs(const sse_plan *pl, const attn_io *io);

/* Per-thread buffers carved from one slot. The buckets are concatenated in
 * partition order: bucket p is gathered rows off[p] .. off[p+1]), token idx[r]
 * for gathered row r, increasing within a bucket. The rows of each document
 * in a bucket start at start[p nseg + sg] and are padded with inert rows
 * (q = k = v = 0, log-gate 0, idx -1) to a multiple of the chunk C, so every
 * chunk the GLA core runs on a bucket has C rows: the arithmetic of a row
 * never depends on how many later tokens the router sends to its partition
 * (bitwise causality; a partial last chunk would change sgemm shapes). */
typedef struct {
    float *gla_ws;            /* the GLA core's slot */
    float *pi;                /* N x P: softmax of the router logits */
    int64_t *off, *idx;       /* P + 1 offsets; R token indices (-1: padding) */
    int64_t *cnt, *start;     /* P x nseg: tokens of document sg in bucket p, and their first gathered row */
    int64_t *sel, *pos;       /* N x k: selected partitions of token t, increasing, and their gathered rows */
    float *gq, *gk, *gv, *gg, *go;  /* gathered rows: q~ (G heads), k~, v, gates, O or dO (G heads) */
    float *gdq, *gdk, *gdv, *gdg;   /* backward: gradients of the gathered rows */
    double *dpi;              /* backward: N x P, d pi_tp of the selected pairs, 0 elsewhere */
} sse_bufs;

void attn_sse_bind(sse_bufs *w, const sse_plan *pl, float *slot, int backward);

/* pi (N x P), the selections and the buckets of (b, hk) from router logits e [B,H_kv,N,P]. */
void attn_sse_route(const sse_plan *pl, const attn_tensor *router, int64_t b, int64_t hk, sse_bufs *w);

/* One pass over the tokens of (b, hk) writing every bucket's rows: q~ = pi q,
 * k~ = pi k, v, gates, and dO when d_o != NULL (sequential reads); zero padding rows. */
void attn_sse_gather(const sse_plan *pl, const attn_io *io, const attn_tensor *d_o, int64_t b, int64_t hk,
                     const sse_bufs *w);

/* Bucket p as a problem of its own for the GLA core: io views (B = 1, H = G for
 * q/o, 1 for k/v/gate) of its gathered rows, gradient views, and its segments
 * in gathered rows (the non-empty documents of the bucket). */
typedef struct {
    attn_io io;
    attn_grads g;             /* backward: d_o = gathered dO, dq..dgate = w's gradient buffers */
    int64_t n, nseg, seg[GLA_MAX_SEGS + 1];
} sse_bucket;

void attn_sse_bucket(const sse_plan *pl, const sse_bufs *w, int64_t p, sse_bucket *bk);

int attn_sse_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int attn_sse_ref_forward(const attn_args *a, const attn_io64 *io);

#endif
