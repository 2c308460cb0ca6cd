/* Row-wise helpers shared by the kernels that materialise the score matrix
 * (`naive`, `blas`): masking a score row and softmax with logsumexp. */
#ifndef ATTN_SOFTMAX_ROWS_H
#define ATTN_SOFTMAX_ROWS_H

#include "attn.h"

/* Sets s[j] = -inf for every key j in [0, Nk) that query i of (b, h) may not attend. */
void attn_mask_score_row(const attn_args *a, int64_t b, int64_t h, int64_t i, float *s);

/* In place: s[j] <- exp(s[j] - m) / l over the row, returns lse = m + ln l.
 * A fully masked row (all -inf) becomes zeros and returns -inf. */
float attn_softmax_row(float *s, int64_t n);

/* The same with the vector exp (kernels/core/vexp.h): what the tiled
 * approximate kernels use on their score rows. */
float attn_softmax_row_vexp(float *s, int64_t n);

/* In place: p[j] <- exp(s[j] - lse) (probabilities recomputed from the saved
 * logsumexp, as the backward pass needs); zeros when lse = -inf. */
void attn_probs_from_lse(float *s, int64_t n, float lse);

/* Di = <dO_i, O_i> (the row term of the softmax backward). */
float attn_dot(const float *x, const float *y, int64_t n);

/* init() helper of the score-matrix kernels: `matrices` fp32 Nq x Nk buffers
 * per thread, refused above the max_ws_mib parameter (default 1024 MiB) with
 * a message, since their memory grows quadratically in N. */
int attn_score_matrix_init(attn_ctx *ctx, const attn_args *a, int matrices);
/* Their parameter table (max_ws_mib). */
extern const opt_def attn_score_matrix_params[];

/* Thread t's i-th score matrix inside ctx->workspace. */
float *attn_score_matrix(const attn_ctx *ctx, int thread, int i, int matrices);
#endif
