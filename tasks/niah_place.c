/* Where NIAH needles go (docs/tasks.md), by the rule of the RULER task a
 * variant reproduces:
 *   depth   (passkey's info line, niah s1) the needle after round(d G)
 *           haystack bytes, d the depth parameter or uniform in [0, 1], as
 *           Kamradt's NIAH whose depth axis the heatmaps sweep;
 *   grid    (the essay variants s2, s3, mk1, multivalue, multiquery) RULER's
 *           niah.py: every needle at a depth drawn without replacement from
 *           the 40 values round(linspace(0, 100, 40)) %, inserted before
 *           sentence int(S depth / 100) of the S sentences (after the last
 *           one at 100 %); with a depth parameter the queried needle at that
 *           depth, the others so; snap=0: at byte round(depth G) instead;
 *   needles (mk2, mk3) RULER's `needle` haystack: the needle inserted before
 *           haystack needle u, u uniform in [0, K) for K haystack needles
 *           (never after the last one, as RULER's list.insert), or u =
 *           round(d K) with a depth parameter;
 *   chain   (vt) RULER's variable_tracking.py: the haystack is units of one
 *           noise block (the block and its space); the 5 statements go before
 *           units at 5 sorted positions drawn without replacement from the U
 *           units, statement j before unit pos_j; when U <= 5 the units are
 *           sentences instead (RULER splits its blocks at '.'). With a depth
 *           parameter the first statement goes before unit round(d (U - 1))
 *           (at most U - 5) and the other 4 at sorted distinct units after it:
 *           RULER's rule given where the chain starts.
 * A sentence starts at byte 0 and after every sentence end. Offsets of the
 * depth rule snap back to just after a sentence end with snap=1, as
 * Kamradt's, whose depth is in bytes. */
#include "niah_gen.h"
#include "recall.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A sentence ends just before p: '.', '!' or '?' then white space or the
 * end of the filled bytes (so the dots of "www.a.com" or "3.5" do not). */
static int sentence_end(const uint8_t *hay, int64_t limit, int64_t p)
{
    uint8_t c = hay[p - 1];
    return (c == '.' || c == '!' || c == '?') && (p >= limit || isspace(hay[p]));
}

int64_t niah_snap_back(const uint8_t *hay, int64_t limit, int64_t o)
{
    while (o > 0 && !sentence_end(hay, limit, o))
        o--;
    return o;
}

int niah_grid_depth(int i) { return (int)lround(100.0 * i / (NIAH_GRID - 1)); }

static int64_t at_depth(const niah_cfg *c, const uint8_t *hay, int64_t G, double d)
{
    int64_t o = (int64_t)llround(d * (double)G);
    return c->snap ? niah_snap_back(hay, G, o) : o;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The chain's units: sentence starts (0 and after every sentence end). */
static int64_t count_sentences(const uint8_t *hay, int64_t G)
{
    int64_t n = 1;
    for (int64_t p = 1; p < G; p++)
        n += sentence_end(hay, G, p);
    return n;
}

/* off[j] = the start of sentence pos[j] (pos sorted). */
static void sentence_offsets(const uint8_t *hay, int64_t G, const int32_t *pos, int n, int64_t *off)
{
    int64_t unit = 0;
    int j = 0;
    for (int64_t p = 0; p < G && j < n; p++) {
        if (p > 0 && sentence_end(hay, G, p))
            unit++;
        while (j < n && pos[j] == unit)
            off[j++] = p;
    }
}

/* The start of sentence k of the haystack [G], or G for k >= its sentences. */
static int64_t sentence_start(const uint8_t *hay, int64_t G, int64_t k)
{
    int32_t pos = (int32_t)k;
    int64_t off = G;
    sentence_offsets(hay, G, &pos, 1, &off);
    return off;
}

/* RULER inserts at sentence int(S depth / 100) of S sentences; snap=0
 * keeps the byte depth instead. */
static int64_t at_grid_depth(const niah_cfg *c, const uint8_t *hay, int64_t G, int64_t S, double d)
{
    return c->snap ? sentence_start(hay, G, (int64_t)((double)S * d)) : (int64_t)llround(d * (double)G);
}

/* rank [n]: each needle's depth, which orders needles that land on the same
 * sentence (RULER sorts its insertion depths, so the queried needle is not
 * always the first of such a group). */
static void place_on_grid(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G, double d,
                          double *rank)
{
    int32_t idx[NIAH_MAX_NEEDLES];
    int first = d >= 0;
    int64_t S = count_sentences(hay, G);
    if (first)
        rank[0] = d, e->off[0] = at_grid_depth(c, hay, G, S, d);
    recall_distinct(r, 0, NIAH_GRID, e->n_needles - first, idx);
    for (int j = first; j < e->n_needles; j++) {
        rank[j] = niah_grid_depth(idx[j - first]) / 100.0;
        e->off[j] = at_grid_depth(c, hay, G, S, rank[j]);
    }
}

/* n sorted distinct units of [0, U): uniform, or the first at depth d. */
static void choose_units(attn_rng *r, int64_t U, int n, double d, int32_t *pos)
{
    int first = d >= 0;
    if (first) {
        int64_t u0 = (int64_t)llround(d * (double)(U - 1));
        pos[0] = (int32_t)(u0 < U - n ? u0 : U - n);
    }
    recall_distinct(r, first ? pos[0] + 1 : 0, U, n - first, pos + first);
    qsort(pos + first, (size_t)(n - first), sizeof *pos, cmp_i32);
}

static int place_chain(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G, double d)
{
    const int64_t P = (int64_t)strlen(niah_noise_block) + 1; /* the block and its space */
    int n = e->n_needles;
    int64_t blocks = (G + P - 1) / P;
    int by_block = blocks > n;
    int64_t U = by_block ? blocks : count_sentences(hay, G);
    if (U < n)
        return attn_fail(ATTN_EINVAL, "task niah_vt: expected >= %d sentences in the haystack for the chain, found "
                                      "%lld (raise len)", n, (long long)U);
    int32_t pos[NIAH_MAX_NEEDLES];
    choose_units(r, U, n, d, pos);
    if (by_block)
        for (int j = 0; j < n; j++)
            e->off[j] = c->snap ? niah_snap_back(hay, G, pos[j] * P) : pos[j] * P;
    else
        sentence_offsets(hay, G, pos, n, e->off);
    return 0;
}

static int place_in_needles(attn_rng *r, niah_ex *e, double d, const niah_needle_hay *nh)
{
    if (nh->n < 1)
        return attn_fail(ATTN_EINVAL, "task niah: expected room for one haystack needle, found none (raise len)");
    int64_t u = d >= 0 ? (int64_t)llround(d * (double)nh->n) : (int64_t)recall_below(r, (uint64_t)nh->n);
    e->off[0] = u < nh->n ? nh->start[u] : nh->used;
    return 0;
}

static int before(const niah_ex *e, const double *rank, int a, int b)
{
    return e->off[a] < e->off[b] || (e->off[a] == e->off[b] && rank[a] < rank[b]);
}

int niah_place_needles(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G, double d,
                       const niah_needle_hay *nh)
{
    int rc = 0;
    double rank[NIAH_MAX_NEEDLES];
    for (int j = 0; j < e->n_needles; j++)
        rank[j] = j;
    if (c->hay == NIAH_HAY_NEEDLE)
        rc = place_in_needles(r, e, d, nh);
    else if (c->kind == NK_VT)
        rc = place_chain(c, r, e, hay, G, d);
    else if (c->grid)
        place_on_grid(c, r, e, hay, G, d, rank);
    else
        e->off[0] = at_depth(c, hay, G, d < 0 ? attn_rng_uniform(r) : d);
    for (int j = 0; j < e->n_needles; j++)
        e->order[j] = j;
    /* insertion sort by (offset, rank); the chain's ranks keep its order */
    for (int j = 1; j < e->n_needles; j++)
        for (int q = j; q > 0 && before(e, rank, e->order[q], e->order[q - 1]); q--) {
            int s = e->order[q];
            e->order[q] = e->order[q - 1], e->order[q - 1] = s;
        }
    return rc;
}
