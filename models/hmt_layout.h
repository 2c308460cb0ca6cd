/* The window layout of the hmt variant, shared by its fp32 driver
 * (models/hmt.c) and its double-precision twin (models/hmt_ref.c) so that
 * both read the same rows. Segment s of a sequence (tokens s*L .. s*L+len-1)
 * runs through the backbone as the window
 *
 *     [ sensory v | tokens 0..jj-1 | P (recalled) | tokens jj..len-1 | T (memory token) ]
 *
 * with v = min(k, tokens of segment s-1), jj = min(j, len): the recalled row
 * comes after the j tokens its query summarised, so no position sees a row
 * computed from later tokens (docs/hmt.md). P exists when memories exist
 * (N_m > 0 and s > 0), T when N_m > 0; positions count from the window's
 * first row. The summary window is [ tokens 0..jj-1 | T ]. */
#ifndef NN_HMT_LAYOUT_H
#define NN_HMT_LAYOUT_H

#include "model.h"

#include <string.h>

typedef struct {
    int64_t len, v, jj, has_p, has_t, rows, p_row, t_row;
} hmt_seg;

static inline int64_t hmt_min(int64_t a, int64_t b) { return a < b ? a : b; }

static inline int64_t hmt_segments(const nn_model_cfg *c, int64_t N) { return (N + c->hmt_segment - 1) / c->hmt_segment; }

/* Memories segment s's recall searches: those of the segments before it, at most N_m. */
static inline int64_t hmt_cached(const nn_model_cfg *c, int64_t s) { return hmt_min(s, c->hmt_memories); }

static inline hmt_seg hmt_layout(const nn_model_cfg *c, int64_t N, int64_t s)
{
    int64_t L = c->hmt_segment;
    hmt_seg g = {.len = hmt_min(L, N - s * L), .v = s ? hmt_min(c->hmt_sensory, L) : 0};
    g.jj = hmt_min(c->hmt_summary, g.len);
    g.has_p = hmt_cached(c, s) > 0, g.has_t = c->hmt_memories > 0;
    g.p_row = g.has_p ? g.v + g.jj : -1;
    g.t_row = g.has_t ? g.v + g.has_p + g.len : -1;
    g.rows = g.v + g.has_p + g.len + g.has_t;
    return g;
}

/* The window row of the segment's token t. */
static inline int64_t hmt_token_row(const hmt_seg *g, int64_t t) { return g->v + t + (g->has_p && t >= g->jj); }

/* Segment s's augmented window (W rows, padding after g->rows) of one
 * sequence: tokens (placeholder 0 under P and T) and targets (the ignore
 * index but at the segment's tokens; tgt may be NULL, seq_tgt too). */
static inline void hmt_fill_window(const hmt_seg *g, int64_t s, int64_t L, const int32_t *seq, const int32_t *seq_tgt,
                                   int32_t *tok, int32_t *tgt, int64_t W)
{
    memset(tok, 0, sizeof *tok * (size_t)W);
    for (int64_t r = 0; tgt && r < W; r++)
        tgt[r] = NN_IGNORE_INDEX;
    for (int64_t r = 0; r < g->v; r++)
        tok[r] = seq[s * L - g->v + r];
    for (int64_t t = 0; t < g->len; t++) {
        tok[hmt_token_row(g, t)] = seq[s * L + t];
        if (tgt && seq_tgt)
            tgt[hmt_token_row(g, t)] = seq_tgt[s * L + t];
    }
}

/* Segment s's summary window (W rows): its first jj tokens, then the
 * placeholder of the prompt row T at row jj. */
static inline void hmt_fill_summary(const hmt_seg *g, int64_t s, int64_t L, const int32_t *seq, int32_t *tok, int64_t W)
{
    memset(tok, 0, sizeof *tok * (size_t)W);
    memcpy(tok, seq + s * L, sizeof *tok * (size_t)g->jj);
}

#endif
