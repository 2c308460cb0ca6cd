/* What the forward, backward and double reference of `synthesizer` share:
 * the parameters, the layout of one head's weight row and the row of fp32
 * logits (docs/kernels/synthesizer.md). */
#ifndef ATTN_SYNTHESIZER_INTERNAL_H
#define ATTN_SYNTHESIZER_INTERNAL_H

#include "synthesizer.h"

typedef enum { SYN_RANDOM = 0, SYN_FACTORIZED = 1, SYN_DENSE = 2 } syn_mode;

/* Buffers inside the workspace start on 16-float (64-byte) boundaries. */
#define SYN_ROUND16(n) (((n) + 15) / 16 * 16)

/* One head's weight row (io.w [1,H,1,W]), L the maximum length:
 *   random      R  [L x L]                         at 0
 *   factorized  R1 [L x k] at 0, R2 [k x L]        at off_b
 *   dense       W1 [D x D] (out x in) at 0, b1 [D] at off_b1,
 *               W2 [L x D] at off_w2, b2 [L] at off_b2
 * The row length fixes L (syn_layout_of_cols), so the weights a model sized
 * at its own maximum length are read right at any shorter N. */
typedef struct {
    syn_mode mode;
    int dot;                  /* 1: add sc q k^T to the synthetic logits */
    int64_t k;                /* rank of the factorized form */
    int64_t max_len;          /* the max_len parameter, 0 when not given */
    int64_t T, ntiles;        /* query rows per forward task, tasks per (b, h) */
    int64_t L, W;             /* maximum length and floats per head */
    int64_t off_b, off_w2, off_b2; /* see above (off_b: R2 or b1) */
} syn_plan;

/* Parses the parameters; lays the weights out for L = max_len or, when it is
 * not given, the longer of Nq and Nk (0, or ATTN_EINVAL with a message). */
int syn_plan_make(syn_plan *pl, const attn_args *a);

/* Lays the weights out for maximum length L (sets L, W and the offsets). */
void syn_layout(syn_plan *pl, int64_t D, int64_t L);

/* The layout whose row holds W floats: 0, or ATTN_EINVAL when no L >= 1 gives
 * W, when max_len was given and differs, or when the problem is longer than L. */
int syn_layout_of_cols(syn_plan *pl, const attn_args *a, int64_t W);

/* fp32 logits of query rows [i0, i0 + nb) of head hd in sequence b into S
 * [nb x Nk] (row stride Nk), over the keys the tile may attend (a padded
 * batch's later keys, and under the causal mask the keys after the tile's
 * last row, are never read), masked entries -inf; returns that key count
 * (0: nothing was computed). Dense mode leaves the ReLU hidden layer in Hd
 * [nb x D] (the backward reads it). q: the Q input rows of the head (x for
 * dense mode) with row stride ldq; k: the K rows of its KV head, stride ldk. */
typedef struct {
    const float *q, *k, *w;
    int64_t ldq, ldk;
} syn_head;
int64_t syn_logits(const syn_plan *pl, const attn_args *a, const syn_head *hd, int64_t b, int64_t i0, int64_t nb,
                   float *S, float *Hd);

/* Floats of per-thread scratch for the forward and the backward. */
size_t syn_fwd_floats(const syn_plan *pl, const attn_args *a);
size_t syn_bwd_floats(const syn_plan *pl, const attn_args *a);

int attn_synthesizer_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int attn_synthesizer_ref_forward(const attn_args *a, const attn_io64 *io);
int attn_synthesizer_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                              int64_t n_rows, double *P, unsigned char *sel);

#endif
