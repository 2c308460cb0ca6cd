/* Mask description shared by every kernel, the oracle and the harness
 * (KERNELS.md 1.2). Positions are absolute: pi = q_off + i, pj = k_off + j,
 * delta = pi - pj. Bottom-right alignment (q_off = Nk - Nq) is the default so
 * that the last query sees the last key, as KV-cache decode needs.
 *
 * This file implements FULL, CAUSAL and WINDOW. New kinds extend the enum,
 * attn_mask_allowed, attn_mask_tile and the parser table in mask.c. */
#ifndef ATTN_MASK_H
#define ATTN_MASK_H

#include <stdint.h>

typedef enum {
    ATTN_MASK_FULL = 0,
    ATTN_MASK_CAUSAL,
    ATTN_MASK_WINDOW,
    ATTN_MASK__COUNT
} attn_mask_kind;

#define ATTN_MASK_BIT(kind) (1u << (kind))

typedef struct {
    attn_mask_kind kind;
    int causal;       /* AND-ed with every kind: also requires delta >= 0 */
    int64_t wl, wr;   /* WINDOW: -wr <= delta <= wl (wl excludes the query itself) */
} attn_mask;

typedef enum { ATTN_TILE_EMPTY = 0, ATTN_TILE_PARTIAL, ATTN_TILE_FULL } attn_tile;

/* 1 if query position pi may attend key position pj. */
static inline int attn_mask_allowed(const attn_mask *m, int64_t pi, int64_t pj)
{
    int64_t delta = pi - pj;
    if ((m->causal || m->kind == ATTN_MASK_CAUSAL) && delta < 0)
        return 0;
    if (m->kind == ATTN_MASK_WINDOW)
        return delta >= -m->wr && delta <= m->wl;
    return 1;
}

/* Classifies the tile of query positions [pi0,pi1) x key positions [pj0,pj1).
 * Sound: EMPTY only if no pair is allowed, FULL only if every pair is. */
attn_tile attn_mask_tile(const attn_mask *m, int64_t pi0, int64_t pi1, int64_t pj0, int64_t pj1);

/* Allowed keys for query position pi among key positions [pj0, pj1):
 * the allowed set of every kind here is one contiguous range [*lo, *hi). */
void attn_mask_row_range(const attn_mask *m, int64_t pi, int64_t pj0, int64_t pj1,
                         int64_t *lo, int64_t *hi);

/* Number of allowed (i, j) pairs for Nq queries at q_off and Nk keys at k_off. */
double attn_mask_pairs(const attn_mask *m, int64_t Nq, int64_t Nk, int64_t q_off, int64_t k_off);

/* Parses "full", "causal", "window:wl=128,wr=0", "window:w=64", "window:wl=8,causal=1".
 * On error records a message naming the spec and what was expected. */
int attn_mask_parse(const char *spec, attn_mask *out);

/* Canonical spec string (round-trips through attn_mask_parse). */
void attn_mask_format(const attn_mask *m, char *buf, int len);

/* Name of the kind ("full", "causal", "window"); NULL when out of range. */
const char *attn_mask_kind_name(attn_mask_kind kind);

/* One-line description of each kind for `attnbench list masks`. */
const char *attn_mask_kind_help(attn_mask_kind kind);

#endif
