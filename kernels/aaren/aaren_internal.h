/* Shared by the `aaren` forward (aaren.c) and backward (aaren_bwd.c): the
 * chunk plan, the workspace layout, document starts and the scan monoid of
 * Feng et al. 2024 (Sec. 3): a state (m, u, w) with m the running max of
 * the scores, u = sum e^{s-m} and w = sum e^{s-m} v, combined by
 *
 *   (a) (+) (b) = (M, u_a e^{m_a-M} + u_b e^{m_b-M}, w_a e^{m_a-M} + w_b e^{m_b-M}),
 *   M = max(m_a, m_b), identity (-inf, 0, 0).
 *
 * A state is stored as floats [m, u, w_0 .. w_{n-1}]. */
#ifndef ATTN_AAREN_INTERNAL_H
#define ATTN_AAREN_INTERNAL_H

#include "aaren.h"
#include "kernels/core/vexp.h"

#include <math.h>
#include <stdint.h>

#define AAREN_DEFAULT_CHUNK 256

/* Chunk plan and workspace layout: shared arrays first (scores, chunk
 * records, final states), then one slot per thread. */
typedef struct {
    int64_t C, nch, G, Dv;  /* chunk length, chunks per sequence, heads per KV head, V columns */
    int64_t rec;            /* floats per chunk record: [reset, m, u, w (Dv)] (a state from +1) */
    size_t scores;          /* B*H*Nk scores, [b][hk][t][g] */
    size_t recs;            /* B*H*nch chunk records (summaries, then carries) */
    size_t state;           /* B*H final states (m, u, w): the recurrent state */
    size_t slot;            /* per-thread floats */
} aaren_plan;

/* Fills *pl from args and the chunk param; fails with a message on unknown
 * keys or bad values. */
int attn_aaren_plan(aaren_plan *pl, const attn_args *a);

/* Smallest step t' >= t at which the scan restarts (t' = 0, or the start of
 * a document of a DOCUMENT mask), INT64_MAX if none. */
static inline int64_t aaren_next_start(const attn_args *a, int64_t t)
{
    if (t <= 0)
        return 0;
    if (a->mask.kind != ATTN_MASK_DOCUMENT)
        return INT64_MAX;
    for (int64_t s = 0; s < a->mask.n_spans; s++)
        if (a->mask.cu[s] - a->k_off >= t)
            return a->mask.cu[s] - a->k_off;
    return INT64_MAX;
}

static inline void aaren_identity(float *st, int64_t n)
{
    st[0] = -INFINITY, st[1] = 0;
    for (int64_t d = 0; d < n; d++)
        st[2 + d] = 0;
}

/* st = st (+) (s, x, v): one element with score s, weight x and vector v
 * (x = 1 in the forward). One exp per element: the smaller of the two maxima
 * is rescaled, the larger one is the new m. A -inf score adds nothing, so
 * -inf - (-inf) never occurs. */
static inline void aaren_push(float *st, float s, float x, const float *v, int64_t n)
{
    float *w = st + 2;
    if (s == -INFINITY)
        return;
    if (s <= st[0]) {
        float p = attn_expf(s - st[0]);
        st[1] += p * x;
        for (int64_t d = 0; d < n; d++)
            w[d] += p * v[d];
        return;
    }
    float r = st[0] == -INFINITY ? 0.0f : attn_expf(st[0] - s);
    st[0] = s;
    st[1] = st[1] * r + x;
    for (int64_t d = 0; d < n; d++)
        w[d] = w[d] * r + v[d];
}

/* st = st (+) y (two states); the identity on either side is guarded. */
static inline void aaren_combine(float *st, const float *y, int64_t n)
{
    float M = st[0] > y[0] ? st[0] : y[0];
    if (M == -INFINITY)
        return;
    float fa = st[0] == -INFINITY ? 0.0f : attn_expf(st[0] - M);
    float fb = y[0] == -INFINITY ? 0.0f : attn_expf(y[0] - M);
    st[0] = M;
    st[1] = st[1] * fa + y[1] * fb;
    for (int64_t d = 0; d < n; d++)
        st[2 + d] = st[2 + d] * fa + y[2 + d] * fb;
}

/* Backward entry point (aaren_bwd.c). */
int attn_aaren_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

#endif
