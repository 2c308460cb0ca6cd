/* Mask predicates, tile classification, exact pair counts and binding to a
 * sequence length (docs/masks.md); the spec grammar is in
 * mask_spec.c. */
#include "mask.h"

#include "common/attn_error.h"
#include "common/rng.h"

#include <stdlib.h>
#include <string.h>

/* ---- small integer helpers (positions may be negative: q_off < 0) ---- */

static int64_t fdiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t fmodp(int64_t a, int64_t b) { return a - fdiv(a, b) * b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* |[a, b) ∩ [c, d)| */
static int64_t overlap(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t lo = max64(a, c), hi = min64(b, d);
    return hi > lo ? hi - lo : 0;
}

/* Number of multiples of s (s >= 1) in [lo, hi]. */
static int64_t multiples_in(int64_t lo, int64_t hi, int64_t s)
{
    return hi < lo ? 0 : fdiv(hi, s) - fdiv(lo - 1, s);
}

static int is_causal(const attn_mask *m) { return m->causal || m->kind == ATTN_MASK_CAUSAL; }

/* Dilation of head h (DILATED: one value, or a list cycled over the heads). */
static int64_t dil_of(const attn_mask *m, int64_t h) { return m->n_dil ? m->dils[h % m->n_dil] : m->dil; }

/* Stateless hash of (seed, tag, a, b, c) through chained SplitMix64 finalisers. */
static uint64_t hash4(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = attn_splitmix64(seed ^ tag);
    x = attn_splitmix64(x ^ a);
    x = attn_splitmix64(x ^ b);
    return attn_splitmix64(x ^ c);
}

/* hash < thr keeps with probability p (p >= 1: always). */
static int keep_hash(uint64_t hash, double p)
{
    if (p >= 1)
        return 1;
    if (p <= 0)
        return 0;
    return hash < (uint64_t)(p * 18446744073709551616.0);
}

/* Span holding position p (DOCUMENT, SHARED_QUESTION), -1 outside the bound range. */
static int64_t span_of(const attn_mask *m, int64_t p)
{
    if (m->n_spans <= 0 || p < m->cu[0] || p >= m->cu[m->n_spans])
        return -1;
    int64_t lo = 0, hi = m->n_spans - 1; /* largest s with cu[s] <= p */
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (m->cu[mid] <= p)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static int is_global(const attn_mask *m, int64_t p)
{
    if (m->n_global_list == 0)
        return p >= 0 && p < m->n_global;
    for (int64_t i = 0; i < m->n_global_list; i++)
        if (m->global[i] == p)
            return 1;
    return 0;
}

/* Strided/fixed component of (h): 1 = first (local) part only, 2 = second only, 3 = both. */
static int strided_parts(const attn_mask *m, int64_t h)
{
    return m->split_heads ? (h % 2 == 0 ? 1 : 2) : 3;
}

/* ---- block layouts: BLOCK_SPARSE bits and BigBird random blocks ---- */

#define BB_MAX_RAND ATTN_MASK_MAX_RAND_BLOCKS

static int64_t bb_nblocks(const attn_mask *m) { return m->bound_n > 0 ? (m->bound_n + m->bq - 1) / m->bq : 1; }

static int bb_fixed_block(const attn_mask *m, int64_t I, int64_t J, int64_t nb)
{
    int64_t hw = m->win_blocks / 2, d = I - J;
    if (d >= -hw && d <= hw)
        return 1;
    if (m->n_global >= 1 && (I == 0 || J == 0))
        return 1;
    if (m->n_global >= 2 && (I == nb - 1 || J == nb - 1))
        return 1;
    return 0;
}

/* BigBird random key blocks of query block I of head h: up to r distinct
 * blocks in [0, nb) outside the window and global blocks, drawn by hashing
 * (seed, h, I, attempt) with rejection; all candidates when there are at most r. */
static int64_t bb_random_blocks(const attn_mask *m, int64_t h, int64_t I, int64_t *out)
{
    int64_t nb = bb_nblocks(m), r = m->n_rand_blocks, n = 0;
    if (r <= 0 || I < 0 || I >= nb)
        return 0;
    int64_t cand = 0;
    for (int64_t J = 0; J < nb && cand <= r; J++)
        cand += !bb_fixed_block(m, I, J, nb);
    if (cand <= r) {
        for (int64_t J = 0; J < nb; J++)
            if (!bb_fixed_block(m, I, J, nb))
                out[n++] = J;
        return n;
    }
    for (uint64_t t = 0; n < r; t++) {
        int64_t J = (int64_t)(hash4(m->seed, 0xb16b12d, (uint64_t)h, (uint64_t)I, t) % (uint64_t)nb);
        int dup = bb_fixed_block(m, I, J, nb);
        for (int64_t k = 0; k < n && !dup; k++)
            dup = out[k] == J;
        if (!dup)
            out[n++] = J;
    }
    return n;
}

static int block_kept(const attn_mask *m, int64_t h, int64_t I, int64_t J)
{
    if (m->keep_diag && I == J)
        return 1;
    uint64_t hh = m->per_head ? (uint64_t)h : 0;
    return keep_hash(hash4(m->seed, 0xb10c5ba5 ^ (hh << 32), hh, (uint64_t)I, (uint64_t)J), m->p_keep);
}

/* Block (I, J) allowed before the causal cut; rnd holds the random blocks of I (BigBird). */
static int block_allowed(const attn_mask *m, int64_t h, int64_t I, int64_t J, const int64_t *rnd, int64_t nr)
{
    if (m->kind == ATTN_MASK_BLOCK_SPARSE)
        return block_kept(m, h, I, J);
    if (bb_fixed_block(m, I, J, bb_nblocks(m)))
        return 1;
    for (int64_t k = 0; k < nr; k++)
        if (rnd[k] == J)
            return 1;
    return 0;
}

/* ---- the element predicate ---- */

static uint64_t random_row_key(const attn_mask *m, int64_t b, int64_t h, int64_t pi)
{
    return hash4(m->seed, 0x7a4d0c, (uint64_t)b, (uint64_t)h, (uint64_t)pi);
}

int attn_mask_allowed(const attn_mask *m, int64_t b, int64_t h, int64_t pi, int64_t pj)
{
    int64_t delta = pi - pj;
    if (is_causal(m) && delta < 0)
        return 0;
    switch (m->kind) {
    case ATTN_MASK_FULL:
    case ATTN_MASK_CAUSAL:
    case ATTN_MASK__COUNT:
        return 1;
    case ATTN_MASK_WINDOW:
        return delta >= -m->wr && delta <= m->wl;
    case ATTN_MASK_DILATED:
    {
        int64_t dil = dil_of(m, h);
        return delta >= -m->wr * dil && delta <= m->wl * dil && fmodp(delta, dil) == 0;
    }
    case ATTN_MASK_STRIDED: {
        int parts = strided_parts(m, h);
        int64_t l = m->stride; /* a length past 2^31 is valid: not truncated to int */
        int a = m->fixed ? fdiv(pi, l) == fdiv(pj, l) : delta < l;
        int c = m->fixed ? fmodp(pj, l) >= l - m->summ : delta % l == 0;
        return ((parts & 1) && a) || ((parts & 2) && c);
    }
    case ATTN_MASK_BLOCK_SPARSE:
        return block_kept(m, h, fdiv(pi, m->bq), fdiv(pj, m->bk));
    case ATTN_MASK_GLOBAL_LOCAL:
        return (delta >= -m->wr && delta <= m->wl) || is_global(m, pi) || is_global(m, pj);
    case ATTN_MASK_BIGBIRD: {
        int64_t rnd[BB_MAX_RAND], I = fdiv(pi, m->bq);
        int64_t nr = bb_random_blocks(m, h, I, rnd);
        return block_allowed(m, h, I, fdiv(pj, m->bk), rnd, nr);
    }
    case ATTN_MASK_DOCUMENT: {
        int64_t s = span_of(m, pi);
        return s >= 0 && s == span_of(m, pj);
    }
    case ATTN_MASK_PREFIX_LM:
        return pj < m->prefix || delta >= 0;
    case ATTN_MASK_SHARED_QUESTION: {
        if (pj >= 0 && pj < m->qlen)
            return 1;
        int64_t s = span_of(m, pi);
        return s > 0 && s == span_of(m, pj);
    }
    case ATTN_MASK_SINK_WINDOW:
        return (pj >= 0 && pj < m->n_sink) || delta <= m->wl;
    case ATTN_MASK_RANDOM:
        return (m->keep_diag && delta == 0) || keep_hash(attn_splitmix64(random_row_key(m, b, h, pi) ^ (uint64_t)pj), m->p_keep);
    }
    return 0;
}

static int row_fill(const attn_mask *m, int64_t h, int64_t pi, int64_t pj0, int64_t n, unsigned char *out);

void attn_mask_row(const attn_mask *m, int64_t b, int64_t h, int64_t pi, int64_t pj0, int64_t n,
                   unsigned char *out)
{
    if (m->kind == ATTN_MASK_BLOCK_SPARSE || m->kind == ATTN_MASK_BIGBIRD) {
        int64_t rnd[BB_MAX_RAND], I = fdiv(pi, m->bq), nr = 0;
        if (m->kind == ATTN_MASK_BIGBIRD)
            nr = bb_random_blocks(m, h, I, rnd);
        for (int64_t j = 0; j < n;) {
            int64_t J = fdiv(pj0 + j, m->bk), end = min64(n, (J + 1) * m->bk - pj0);
            unsigned char v = (unsigned char)block_allowed(m, h, I, J, rnd, nr);
            for (; j < end; j++)
                out[j] = v && (!is_causal(m) || pj0 + j <= pi);
        }
        return;
    }
    if (m->kind == ATTN_MASK_RANDOM) {
        uint64_t key = random_row_key(m, b, h, pi);
        for (int64_t j = 0; j < n; j++) {
            int64_t pj = pj0 + j;
            out[j] = (!is_causal(m) || pj <= pi) &&
                     ((m->keep_diag && pj == pi) || keep_hash(attn_splitmix64(key ^ (uint64_t)pj), m->p_keep));
        }
        return;
    }
    if (row_fill(m, h, pi, pj0, n, out))
        return;
    for (int64_t j = 0; j < n; j++)
        out[j] = (unsigned char)attn_mask_allowed(m, b, h, pi, pj0 + j);
}

/* ---- rows as unions of intervals ---- */

int attn_mask_is_interval(const attn_mask *m)
{
    switch (m->kind) {
    case ATTN_MASK_FULL:
    case ATTN_MASK_CAUSAL:
    case ATTN_MASK_WINDOW:
    case ATTN_MASK_DOCUMENT:
    case ATTN_MASK_PREFIX_LM:
        return 1;
    default:
        return 0;
    }
}

/* Allowed deltas of FULL/CAUSAL/WINDOW as a closed interval [*dlo, *dhi]
 * (INT64 bounds stand for unbounded), the causal cut included. */
static void delta_interval(const attn_mask *m, int64_t h, int64_t *dlo, int64_t *dhi)
{
    *dlo = INT64_MIN / 4;
    *dhi = INT64_MAX / 4;
    if (m->kind == ATTN_MASK_WINDOW || m->kind == ATTN_MASK_GLOBAL_LOCAL) {
        *dlo = -m->wr;
        *dhi = m->wl;
    }
    if (m->kind == ATTN_MASK_DILATED) {
        *dlo = -m->wr * dil_of(m, h);
        *dhi = m->wl * dil_of(m, h);
    }
    if (is_causal(m) && *dlo < 0)
        *dlo = 0;
}

void attn_mask_row_range(const attn_mask *m, int64_t pi, int64_t pj0, int64_t pj1, int64_t *lo,
                         int64_t *hi)
{
    int64_t a = pj0, b = pj1;
    if (m->kind == ATTN_MASK_FULL || m->kind == ATTN_MASK_CAUSAL || m->kind == ATTN_MASK_WINDOW) {
        int64_t dlo, dhi;
        delta_interval(m, 0, &dlo, &dhi);
        /* dlo <= pi - pj <= dhi  <=>  pi - dhi <= pj <= pi - dlo */
        a = pi - dhi, b = pi - dlo + 1;
    } else if (m->kind == ATTN_MASK_PREFIX_LM) {
        b = is_causal(m) ? pi + 1 : max64(m->prefix, pi + 1);
    } else if (m->kind == ATTN_MASK_DOCUMENT) {
        int64_t s = span_of(m, pi);
        a = s < 0 ? pj0 : m->cu[s];
        b = s < 0 ? pj0 : m->cu[s + 1];
        if (is_causal(m))
            b = min64(b, pi + 1);
    }
    *lo = max64(a, pj0);
    *hi = min64(b, pj1);
    if (*hi < *lo)
        *hi = *lo;
}

/* Up to two intervals [a0,b0) ∪ [a1,b1) making up the allowed keys of row pi
 * for the kinds that are such unions (causal cut included); returns 0 for
 * the kinds that are not. */
static int row_intervals(const attn_mask *m, int64_t pi, int64_t iv[4])
{
    int64_t cut = is_causal(m) ? pi + 1 : INT64_MAX / 4;
    iv[2] = iv[3] = 0;
    if (attn_mask_is_interval(m)) {
        attn_mask_row_range(m, pi, INT64_MIN / 4, INT64_MAX / 4, &iv[0], &iv[1]);
        return 1;
    }
    switch (m->kind) {
    case ATTN_MASK_SINK_WINDOW:
        iv[0] = 0, iv[1] = min64(m->n_sink, cut);
        iv[2] = pi - m->wl, iv[3] = cut;
        return 1;
    case ATTN_MASK_SHARED_QUESTION: {
        int64_t s = span_of(m, pi);
        iv[0] = 0, iv[1] = min64(m->qlen, cut);
        if (s > 0)
            iv[2] = m->cu[s], iv[3] = min64(m->cu[s + 1], cut);
        return 1;
    }
    case ATTN_MASK_GLOBAL_LOCAL:
        if (is_global(m, pi)) {
            iv[0] = INT64_MIN / 4, iv[1] = cut;
            return 1;
        }
        iv[0] = pi - m->wl, iv[1] = min64(pi + m->wr + 1, cut);
        if (m->n_global_list == 0)
            iv[2] = 0, iv[3] = min64(m->n_global, cut);
        return 1; /* listed global keys come on top (see row_count) */
    default:
        break;
    }
    return 0;
}

/* Listed global keys in [pj0, pj1) that are not in [w0, w1) (GLOBAL_LOCAL with at=). */
static int64_t listed_outside(const attn_mask *m, int64_t pj0, int64_t pj1, int64_t w0, int64_t w1)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->n_global_list; i++) {
        int64_t p = m->global[i];
        n += p >= pj0 && p < pj1 && !(p >= w0 && p < w1);
    }
    return n;
}

/* out[pj - pj0] = 1 for pj in [a, b) ∩ [pj0, pj0 + n). */
static void fill_range(unsigned char *out, int64_t pj0, int64_t n, int64_t a, int64_t b)
{
    int64_t lo = max64(a, pj0), hi = min64(b, pj0 + n);
    if (hi > lo)
        memset(out + (lo - pj0), 1, (size_t)(hi - lo));
}

/* The same for the keys pj = r (mod s) in [a, b). */
static void fill_every(unsigned char *out, int64_t pj0, int64_t n, int64_t a, int64_t b, int64_t s, int64_t r)
{
    int64_t lo = max64(a, pj0), hi = min64(b, pj0 + n);
    for (int64_t p = lo + fmodp(r - lo, s); p < hi; p += s)
        out[p - pj0] = 1;
}

/* attn_mask_row by ranges for the kinds whose rows are unions of intervals
 * or arithmetic progressions; 0 for the others. */
static int row_fill(const attn_mask *m, int64_t h, int64_t pi, int64_t pj0, int64_t n, unsigned char *out)
{
    int64_t iv[4], cut = is_causal(m) ? pi + 1 : INT64_MAX / 4;
    if (m->kind == ATTN_MASK_BLOCK_SPARSE || m->kind == ATTN_MASK_BIGBIRD || m->kind == ATTN_MASK_RANDOM)
        return 0;
    memset(out, 0, (size_t)n);
    if (row_intervals(m, pi, iv)) {
        fill_range(out, pj0, n, iv[0], iv[1]);
        fill_range(out, pj0, n, iv[2], iv[3]);
        for (int64_t i = 0; m->kind == ATTN_MASK_GLOBAL_LOCAL && i < m->n_global_list && !is_global(m, pi); i++)
            if (m->global[i] < cut)
                fill_range(out, pj0, n, m->global[i], m->global[i] + 1);
        return 1;
    }
    if (m->kind == ATTN_MASK_DILATED) {
        int64_t dlo, dhi;
        delta_interval(m, h, &dlo, &dhi);
        fill_every(out, pj0, n, pi - dhi, pi - dlo + 1, dil_of(m, h), pi);
        return 1;
    }
    if (m->kind == ATTN_MASK_STRIDED) {
        int parts = strided_parts(m, h);
        int64_t l = m->stride;
        if (!m->fixed) {
            if (parts & 1)
                fill_range(out, pj0, n, pi - l + 1, cut);
            if (parts & 2)
                fill_every(out, pj0, n, pj0, cut, l, pi);
            return 1;
        }
        int64_t bs = fdiv(pi, l) * l, c = m->summ < l ? m->summ : l;
        if (parts & 1)
            fill_range(out, pj0, n, bs, min64(bs + l, cut));
        for (int64_t blk = fdiv(pj0, l); (parts & 2) && blk * l < min64(cut, pj0 + n); blk++)
            fill_range(out, pj0, n, blk * l + l - c, min64(blk * l + l, cut));
        return 1;
    }
    return 0;
}

/* Sparse Transformer row pi over keys [pj0, cut) (cut <= pi + 1): the keys
 * of the first part (strided: the l - 1 predecessors and the query; fixed:
 * its block), of the second (strided: every l-th key back; fixed: the
 * summary keys) and of both. */
static void strided_counts(const attn_mask *m, int64_t pi, int64_t pj0, int64_t cut, int64_t *first,
                           int64_t *second, int64_t *both)
{
    int64_t l = m->stride;
    *first = *second = *both = 0;
    if (cut <= pj0)
        return;
    if (!m->fixed) {
        *first = overlap(pi - l + 1, pi + 1, pj0, cut);
        *second = multiples_in(pi - cut + 1, pi - pj0, l); /* deltas k l in [pi - cut + 1, pi - pj0] */
        *both = pi >= pj0 && pi < cut; /* delta 0 */
        return;
    }
    int64_t bs = fdiv(pi, l) * l, c = m->summ < l ? m->summ : l;
    *first = overlap(bs, bs + l, pj0, cut);
    for (int64_t blk = fdiv(pj0, l); blk * l < cut; blk++) {
        int64_t o = overlap(blk * l + l - c, blk * l + l, pj0, cut);
        *second += o;
        *both += blk * l == bs ? o : 0;
    }
}

/* Exact number of allowed keys of row (b, h, pi) among [pj0, pj1). */
static int64_t row_count(const attn_mask *m, int64_t b, int64_t h, int64_t pi, int64_t pj0, int64_t pj1)
{
    int64_t iv[4];
    int64_t cut = is_causal(m) ? min64(pj1, pi + 1) : pj1;
    if (pj1 <= pj0)
        return 0;
    if (row_intervals(m, pi, iv)) {
        int64_t n = overlap(iv[0], iv[1], pj0, pj1) + overlap(iv[2], iv[3], pj0, pj1) -
                    overlap(max64(iv[0], iv[2]), min64(iv[1], iv[3]), pj0, pj1);
        if (m->kind == ATTN_MASK_GLOBAL_LOCAL && m->n_global_list && !is_global(m, pi))
            n += listed_outside(m, pj0, cut, iv[0], iv[1]);
        return n;
    }
    switch (m->kind) {
    case ATTN_MASK_DILATED: {
        int64_t dlo, dhi;
        delta_interval(m, h, &dlo, &dhi);
        /* deltas pi - pj for pj in [pj0, pj1): [pi - pj1 + 1, pi - pj0] */
        return multiples_in(max64(dlo, pi - pj1 + 1), min64(dhi, pi - pj0), dil_of(m, h));
    }
    case ATTN_MASK_STRIDED: {
        int parts = strided_parts(m, h);
        int64_t first, second, both;
        strided_counts(m, pi, pj0, cut, &first, &second, &both);
        return (parts & 1 ? first : 0) + (parts & 2 ? second : 0) - (parts == 3 ? both : 0);
    }
    case ATTN_MASK_BLOCK_SPARSE:
    case ATTN_MASK_BIGBIRD: {
        int64_t rnd[BB_MAX_RAND], I = fdiv(pi, m->bq), nr = 0, n = 0;
        if (m->kind == ATTN_MASK_BIGBIRD)
            nr = bb_random_blocks(m, h, I, rnd);
        for (int64_t J = fdiv(pj0, m->bk); J * m->bk < cut; J++)
            if (block_allowed(m, h, I, J, rnd, nr))
                n += overlap(J * m->bk, (J + 1) * m->bk, pj0, cut);
        return n;
    }
    case ATTN_MASK_RANDOM: { /* one hash per pair: the row key once */
        uint64_t key = random_row_key(m, b, h, pi);
        int64_t n = 0;
        for (int64_t pj = pj0; pj < cut; pj++)
            n += (m->keep_diag && pj == pi) || keep_hash(attn_splitmix64(key ^ (uint64_t)pj), m->p_keep);
        return n;
    }
    default: {
        int64_t n = 0;
        for (int64_t pj = pj0; pj < pj1; pj++)
            n += attn_mask_allowed(m, b, h, pi, pj);
        return n;
    }
    }
}

/* ---- tile classification ---- */

static attn_tile delta_tile(int64_t dlo, int64_t dhi, int64_t pi0, int64_t pi1, int64_t pj0, int64_t pj1)
{
    int64_t tmin = pi0 - (pj1 - 1), tmax = (pi1 - 1) - pj0;
    if (dlo > dhi || tmax < dlo || tmin > dhi)
        return ATTN_TILE_EMPTY;
    if (tmin >= dlo && tmax <= dhi)
        return ATTN_TILE_FULL;
    return ATTN_TILE_PARTIAL;
}

/* Block-structured kinds: every (row block, key block) piece of the tile is
 * either off (EMPTY) or on, where only the causal cut remains. */
static attn_tile block_tile(const attn_mask *m, int64_t h, int64_t pi0, int64_t pi1, int64_t pj0, int64_t pj1)
{
    int any = 0, all = 1;
    int64_t dlo = is_causal(m) ? 0 : INT64_MIN / 4;
    for (int64_t I = fdiv(pi0, m->bq); I * m->bq < pi1; I++) {
        int64_t rnd[BB_MAX_RAND], nr = 0;
        if (m->kind == ATTN_MASK_BIGBIRD)
            nr = bb_random_blocks(m, h, I, rnd);
        int64_t r0 = max64(pi0, I * m->bq), r1 = min64(pi1, (I + 1) * m->bq);
        for (int64_t J = fdiv(pj0, m->bk); J * m->bk < pj1; J++) {
            int64_t c0 = max64(pj0, J * m->bk), c1 = min64(pj1, (J + 1) * m->bk);
            attn_tile t = block_allowed(m, h, I, J, rnd, nr)
                              ? delta_tile(dlo, INT64_MAX / 4, r0, r1, c0, c1)
                              : ATTN_TILE_EMPTY;
            any |= t != ATTN_TILE_EMPTY;
            all &= t == ATTN_TILE_FULL;
        }
    }
    return !any ? ATTN_TILE_EMPTY : all ? ATTN_TILE_FULL : ATTN_TILE_PARTIAL;
}

attn_tile attn_mask_tile(const attn_mask *m, int64_t b, int64_t h, int64_t pi0, int64_t pi1,
                         int64_t pj0, int64_t pj1)
{
    if (pi1 <= pi0 || pj1 <= pj0)
        return ATTN_TILE_EMPTY;
    int64_t dlo, dhi;
    delta_interval(m, h, &dlo, &dhi);
    attn_tile causal_part = delta_tile(dlo, dhi, pi0, pi1, pj0, pj1);
    switch (m->kind) {
    case ATTN_MASK_FULL:
    case ATTN_MASK_CAUSAL:
    case ATTN_MASK_WINDOW:
        return causal_part;
    case ATTN_MASK_DILATED: {
        int64_t tmin = pi0 - (pj1 - 1), tmax = (pi1 - 1) - pj0;
        if (causal_part == ATTN_TILE_EMPTY || multiples_in(max64(dlo, tmin), min64(dhi, tmax), dil_of(m, h)) == 0)
            return ATTN_TILE_EMPTY;
        return dil_of(m, h) == 1 ? causal_part : ATTN_TILE_PARTIAL;
    }
    case ATTN_MASK_BLOCK_SPARSE:
    case ATTN_MASK_BIGBIRD:
        return block_tile(m, h, pi0, pi1, pj0, pj1);
    default:
        break;
    }
    if (is_causal(m) && (pi1 - 1) < pj0)
        return ATTN_TILE_EMPTY;
    if (m->kind == ATTN_MASK_RANDOM) {
        if (m->p_keep >= 1)
            return is_causal(m) ? causal_part : ATTN_TILE_FULL;
        int diag = m->keep_diag && pi0 <= pj1 - 1 && pj0 <= pi1 - 1;
        return m->p_keep <= 0 && !diag ? ATTN_TILE_EMPTY : ATTN_TILE_PARTIAL;
    }
    /* the rest: one row at a time (rows of a tile are few), exact counts */
    int any = 0, all = 1;
    for (int64_t pi = pi0; pi < pi1 && (all || !any); pi++) {
        int64_t n = row_count(m, b, h, pi, pj0, pj1);
        any |= n > 0;
        all &= n == pj1 - pj0;
    }
    return !any ? ATTN_TILE_EMPTY : all ? ATTN_TILE_FULL : ATTN_TILE_PARTIAL;
}

/* ---- pair counts ---- */

int64_t attn_mask_row_period(const attn_mask *m, int64_t h)
{
    return m->kind == ATTN_MASK_DILATED ? dil_of(m, h) : 1;
}

int attn_mask_varies(const attn_mask *m)
{
    switch (m->kind) {
    case ATTN_MASK_RANDOM:
        return 3;
    case ATTN_MASK_BIGBIRD:
        return m->n_rand_blocks > 0 ? 1 : 0;
    case ATTN_MASK_BLOCK_SPARSE:
        return m->per_head ? 1 : 0;
    case ATTN_MASK_STRIDED:
        return m->split_heads ? 1 : 0;
    case ATTN_MASK_DILATED:
        return m->n_dil > 1 ? 1 : 0;
    default:
        return 0;
    }
}

double attn_mask_pairs(const attn_mask *m, int64_t b, int64_t h, int64_t Nq, int64_t Nk, int64_t q_off,
                       int64_t k_off)
{
    /* integer counts: the sum is exact, whatever the order the threads add them in */
    double pairs = 0;
#pragma omp parallel for schedule(static) reduction(+ : pairs) if ((double)Nq * (double)Nk > 4e6)
    for (int64_t i = 0; i < Nq; i++)
        pairs += (double)row_count(m, b, h, q_off + i, k_off, k_off + Nk);
    return pairs;
}

double attn_mask_pairs_total(const attn_mask *m, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                             int64_t q_off, int64_t k_off)
{
    int v = attn_mask_varies(m);
    int64_t nb = v & 2 ? B : 1, nh = v & 1 ? H : 1;
    double pairs = 0;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t h = 0; h < nh; h++)
            pairs += attn_mask_pairs(m, b, h, Nq, Nk, q_off, k_off);
    return pairs * (double)(B / nb) * (double)(H / nh);
}

/* ---- binding to a sequence length ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int attn_mask_bind(attn_mask *m, int64_t npos)
{
    char spec[512];
    m->bound_n = npos;
    m->n_spans = 0;
    if (m->kind == ATTN_MASK_DOCUMENT) {
        if (m->n_lens > 0) {
            int64_t sum = 0;
            m->cu[0] = 0;
            for (int64_t d = 0; d < m->n_lens; d++)
                m->cu[d + 1] = sum += m->lens[d];
            if (sum != npos) {
                attn_mask_format(m, spec, sizeof spec);
                m->bound_n = 0;
                return attn_fail(ATTN_EINVAL, "mask '%s': document lengths sum to %lld, expected the "
                                              "sequence length %lld", spec, (long long)sum, (long long)npos);
            }
            m->n_spans = m->n_lens;
            return 0;
        }
        /* n documents of random lengths >= 1: n - 1 distinct cut points in [1, npos) */
        int64_t n = m->n_docs < npos ? m->n_docs : npos, cuts = 0;
        attn_rng r;
        attn_rng_seed(&r, m->seed ^ 0xd0c5ull);
        m->cu[0] = 0;
        while (cuts < n - 1) {
            int64_t c = 1 + (int64_t)(attn_rng_next(&r) % (uint64_t)(npos - 1));
            int dup = 0;
            for (int64_t k = 1; k <= cuts && !dup; k++)
                dup = m->cu[k] == c;
            if (!dup)
                m->cu[++cuts] = c;
        }
        qsort(m->cu + 1, (size_t)cuts, sizeof(int64_t), cmp_i64);
        m->cu[n] = npos;
        m->n_spans = n > 0 ? n : 0;
        return 0;
    }
    if (m->kind == ATTN_MASK_SHARED_QUESTION) {
        if (m->qlen > npos) {
            attn_mask_format(m, spec, sizeof spec);
            m->bound_n = 0;
            return attn_fail(ATTN_EINVAL, "mask '%s': question length %lld exceeds the sequence length %lld",
                             spec, (long long)m->qlen, (long long)npos);
        }
        /* span 0 = question; answers split the rest, the first ones one longer */
        int64_t rest = npos - m->qlen, k = m->n_ans;
        m->cu[0] = 0;
        m->cu[1] = m->qlen;
        for (int64_t a = 0; a < k; a++)
            m->cu[a + 2] = m->cu[a + 1] + rest / k + (a < rest % k ? 1 : 0);
        m->n_spans = k + 1;
    }
    return 0;
}

int attn_mask_is_causal(const attn_mask *m)
{
    switch (m->kind) {
    case ATTN_MASK_CAUSAL:
    case ATTN_MASK_STRIDED:
    case ATTN_MASK_SINK_WINDOW:
        return 1;
    case ATTN_MASK_WINDOW:
    case ATTN_MASK_DILATED:
        return m->causal || m->wr == 0;
    default:
        return m->causal;
    }
}
