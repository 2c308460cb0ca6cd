/* Mask description shared by every kernel, the oracle and the harness
 * (docs/masks.md). Positions are absolute: pi = q_off + i,
 * pj = k_off + j, delta = pi - pj. Bottom-right alignment (q_off = Nk - Nq) is
 * the default so that the last query sees the last key, as KV-cache decode
 * needs.
 *
 * A mask is a value (no pointers): the spec parameters plus, for the kinds
 * whose layout depends on the sequence length (DOCUMENT, SHARED_QUESTION,
 * BIGBIRD), the per-problem spans materialised by attn_mask_bind(). Random
 * kinds (BLOCK_SPARSE layouts, BIGBIRD random blocks, RANDOM) hash their
 * indices statelessly (SplitMix64), so oracle, kernels and any thread count
 * agree without a stored layout. */
#ifndef ATTN_MASK_H
#define ATTN_MASK_H

#include <stdint.h>

typedef enum {
    ATTN_MASK_FULL = 0,
    ATTN_MASK_CAUSAL,
    ATTN_MASK_WINDOW,
    ATTN_MASK_DILATED,
    ATTN_MASK_STRIDED,        /* Sparse Transformer, strided or fixed (`fixed` flag) */
    ATTN_MASK_BLOCK_SPARSE,
    ATTN_MASK_GLOBAL_LOCAL,   /* Longformer */
    ATTN_MASK_BIGBIRD,
    ATTN_MASK_DOCUMENT,       /* varlen packing */
    ATTN_MASK_PREFIX_LM,
    ATTN_MASK_SHARED_QUESTION,
    ATTN_MASK_SINK_WINDOW,    /* StreamingLLM */
    ATTN_MASK_RANDOM,
    ATTN_MASK__COUNT
} attn_mask_kind;

#define ATTN_MASK_BIT(kind) (1u << (kind))
#define ATTN_MASK_ALL ((1u << ATTN_MASK__COUNT) - 1u)

/* Most documents, answers and listed global positions a mask may hold, and
 * most BigBird random blocks per query block. */
#define ATTN_MASK_MAX_SPANS 64
#define ATTN_MASK_MAX_RAND_BLOCKS 64

typedef struct {
    attn_mask_kind kind;
    int causal;          /* AND-ed with every kind: also requires delta >= 0 */
    int64_t wl, wr;      /* WINDOW/GLOBAL_LOCAL: -wr <= delta <= wl (wl excludes the query);
                          * DILATED: the same in steps of dil; SINK_WINDOW: wl */
    int64_t dil;         /* DILATED: dilation (>= 1) */
    int64_t n_dil, dils[8]; /* DILATED per head: head h uses dils[h % n_dil] (when n_dil > 0) */
    int64_t stride, summ; /* STRIDED: l and c (fixed: the last c positions of each block) */
    int fixed;           /* STRIDED: 0 strided, 1 fixed */
    int split_heads;     /* STRIDED: even heads local part, odd heads the strided/summary part */
    int64_t bq, bk;      /* BLOCK_SPARSE, BIGBIRD (bq = bk): block sizes */
    int per_head;        /* BLOCK_SPARSE: one layout per head (else one for all heads) */
    int64_t n_global;    /* GLOBAL_LOCAL: positions 0..n_global-1 are global (when no list);
                          * BIGBIRD: global blocks (1 = first, 2 = first and last) */
    int64_t n_global_list, global[ATTN_MASK_MAX_SPANS]; /* GLOBAL_LOCAL: listed positions, ascending */
    int64_t win_blocks;  /* BIGBIRD: window blocks (odd; 3 = the block and one each side) */
    int64_t n_rand_blocks; /* BIGBIRD: random key blocks per query block */
    int64_t prefix;      /* PREFIX_LM */
    int64_t qlen, n_ans; /* SHARED_QUESTION: question length, answers (splitting the rest) */
    int64_t n_sink;      /* SINK_WINDOW */
    double p_keep;       /* RANDOM: keep probability; BLOCK_SPARSE: kept block fraction */
    uint64_t seed;       /* RANDOM, BLOCK_SPARSE, BIGBIRD, DOCUMENT (generated lengths) */
    int keep_diag;       /* RANDOM: pi == pj always kept; BLOCK_SPARSE: diagonal blocks kept */
    int64_t n_docs;      /* DOCUMENT: number of documents (lengths generated when n_lens == 0) */
    int64_t n_lens, lens[ATTN_MASK_MAX_SPANS]; /* DOCUMENT: explicit lengths (must sum to the length) */

    /* Set by attn_mask_bind for one sequence length; read by the predicates. */
    int64_t bound_n;     /* positions [0, bound_n) are bound; 0 = not bound */
    int64_t n_spans;     /* DOCUMENT: documents; SHARED_QUESTION: 1 + answers */
    int64_t cu[ATTN_MASK_MAX_SPANS + 1]; /* span s covers positions [cu[s], cu[s+1]) */
} attn_mask;

typedef enum { ATTN_TILE_EMPTY = 0, ATTN_TILE_PARTIAL, ATTN_TILE_FULL } attn_tile;

/* 1 if query position pi of (batch b, query head h) may attend key position pj. */
int attn_mask_allowed(const attn_mask *m, int64_t b, int64_t h, int64_t pi, int64_t pj);

/* out[j] = attn_mask_allowed(m, b, h, pi, pj0 + j) for j < n, computed per
 * block or span where the kind allows (the partial-tile predicate of tiled kernels). */
void attn_mask_row(const attn_mask *m, int64_t b, int64_t h, int64_t pi, int64_t pj0, int64_t n,
                   unsigned char *out);

/* Classifies the tile of query positions [pi0,pi1) x key positions [pj0,pj1)
 * of (b, h). Sound for every kind: EMPTY only if no pair is allowed, FULL only
 * if every pair is (PARTIAL may be returned for either). */
attn_tile attn_mask_tile(const attn_mask *m, int64_t b, int64_t h, int64_t pi0, int64_t pi1,
                         int64_t pj0, int64_t pj1);

/* 1 if every row's allowed keys form one contiguous range, so that
 * attn_mask_row_range describes the mask exactly (FULL, CAUSAL, WINDOW,
 * DOCUMENT, PREFIX_LM); 0 otherwise. */
int attn_mask_is_interval(const attn_mask *m);

/* Allowed keys for query position pi among [pj0, pj1) as one range [*lo, *hi).
 * Exact when attn_mask_is_interval(m); otherwise a superset (the whole range). */
void attn_mask_row_range(const attn_mask *m, int64_t pi, int64_t pj0, int64_t pj1, int64_t *lo,
                         int64_t *hi);

/* Rows of head h whose positions are congruent modulo this period see keys
 * of one residue class (DILATED: its dilation); 1 for every other kind. A
 * kernel that groups query rows by the keys they share orders them by it. */
int64_t attn_mask_row_period(const attn_mask *m, int64_t h);

/* Bit 0: the mask differs between heads; bit 1: between batch entries. */
int attn_mask_varies(const attn_mask *m);

/* 1 if no query may attend a later key under any binding: the causal flag, or
 * a kind that is causal by construction (causal, Sparse Transformer, sink, a
 * window or dilated band with nothing to the right). */
int attn_mask_is_causal(const attn_mask *m);

/* Allowed (i, j) pairs of (b, h) for Nq queries at q_off and Nk keys at k_off,
 * counted exactly (closed forms per row; RANDOM hashes every pair). */
double attn_mask_pairs(const attn_mask *m, int64_t b, int64_t h, int64_t Nq, int64_t Nk, int64_t q_off,
                       int64_t k_off);

/* Sum of attn_mask_pairs over b < B, h < H (computed once when the mask does not vary). */
double attn_mask_pairs_total(const attn_mask *m, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                             int64_t q_off, int64_t k_off);

/* Materialises the spans of a length-dependent kind for positions [0, npos)
 * (npos = max(q_off + Nq, k_off + Nk)); fails with a message when explicit
 * document lengths do not sum to npos or the question is longer than npos.
 * Other kinds only record npos. Idempotent. */
int attn_mask_bind(attn_mask *m, int64_t npos);

/* Parses a spec (grammar: attn_mask_kind_help and `attnbench list masks`), e.g.
 * "full", "causal", "window:wl=128,wr=0", "dilated:w=8,dil=2", "strided:l=16",
 * "fixed:l=16,c=4", "block:b=16,keep=0.3,seed=1,heads=1", "global:w=8,g=2",
 * "bigbird:b=16,r=3,seed=1", "document:lens=100+28+1", "document:n=4,seed=3",
 * "prefix:p=32", "shared_question:q=32,answers=3", "sink:n=4,w=64",
 * "random:p=0.1,seed=1". On error records a message naming the spec and what
 * was expected. The result is not bound (attn_args_defaults binds it). */
int attn_mask_parse(const char *spec, attn_mask *out);

/* The mask of `kind` with every parameter at its default, as attn_mask_parse
 * starts from before reading the spec's parameters. Complete for the kinds
 * without required parameters; FULL and CAUSAL need nothing else. CAUSAL's
 * `causal` flag is set here, as parsing "causal" sets it. */
attn_mask attn_mask_default(attn_mask_kind kind);

/* Canonical spec string (round-trips through attn_mask_parse). */
void attn_mask_format(const attn_mask *m, char *buf, int len);

/* Name of the kind ("full", "causal", ...); NULL when out of range. */
const char *attn_mask_kind_name(attn_mask_kind kind);

/* One-line description of each kind and its parameters for `attnbench list masks`. */
const char *attn_mask_kind_help(attn_mask_kind kind);

/* An example spec of the kind (used by `attnbench list masks` for a density example). */
const char *attn_mask_kind_example(attn_mask_kind kind);

#endif
