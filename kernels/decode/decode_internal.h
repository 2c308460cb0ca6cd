/* Shared by the split-KV decode kernels `decode` (split-K, decode.c) and
 * `lean` (stream-K, lean.c), docs/kernels/decode.md: both compute exact partial
 * attention over disjoint key ranges with the flash inner loop, then merge
 * the partials by their logsumexp:
 *
 *     M = max_p lse_p,  w_p = exp(lse_p - M),  L = sum_p w_p,
 *     O = sum_p (w_p / L) O_p,  lse = M + ln L       (p ascending)
 *
 * They differ only in how the key ranges are cut and handed to threads.
 *
 * A "group" is (b, KV head hk, query tile qt): the G query heads of hk times
 * up to DEC_BR query rows, packed as lanes r = g*nb + i like flash's GQA
 * packing, so each K/V row is read once for all of them. A partial of a group
 * is stored as O_p [G*nb][D] (normalised) followed by lse_p [G*nb]. */
#ifndef ATTN_DECODE_INTERNAL_H
#define ATTN_DECODE_INTERNAL_H

#include "kernels/flash/flash_internal.h"

#define DEC_BR 16   /* query rows per head in a group: decode has Nq <= 16 */

typedef struct {
    int64_t bc;           /* keys per tile of the flash inner loop */
    int64_t G, br, nqt;   /* heads per KV head, query rows per group, query tiles */
    int64_t groups;       /* B * H_kv * nqt */
    int64_t lanes;        /* G*br rounded up to 16 */
    size_t part_floats;   /* one partial, rounded up to 16 floats (64-byte aligned) */
    size_t thread_floats; /* per-thread scratch of the inner loop */
    int per_head;         /* the mask differs between heads: tiles are classified head by head */
    int64_t mask_ld;      /* masks that are not one key range per row (SINK_WINDOW, RANDOM, ...):
                           * bytes per row of a tile's mask bytes (flash_pred_rows); 0 otherwise */
} dec_plan;

/* Fills the plan for keys-per-tile bc (shared sizing of decode and lean). */
void attn_dec_plan(dec_plan *pl, const attn_args *a, int64_t bc);

/* Default keys per tile: flash's (256 for D <= 64, else 128). */
int64_t attn_dec_default_bc(const attn_args *a);
/* Its parameter row, shared by decode and lean. */
#define DECODE_BC_PARAM                                                                                         \
    {.name = "bc", .type = OPT_INT, .def_str = "256 (D<=64) or 128", .lo = 1, .hi = 4096, .help = "keys per tile"}

/* Group index -> (b, hk, qt). */
static inline void dec_group(const attn_args *a, const dec_plan *pl, int64_t grp, int64_t *b, int64_t *hk,
                             int64_t *qt)
{
    *qt = grp % pl->nqt;
    *hk = grp / pl->nqt % a->H_kv;
    *b = grp / pl->nqt / a->H_kv;
}

/* Keys [k0, k1) of group grp. */
typedef struct {
    int64_t grp, k0, k1;
} dec_range;

/* Exact attention of group grp over its sequence's keys [k0, k1) (tiles of
 * bc from k0), masked at the sequence's absolute positions (a ragged batch
 * shifts its queries, attn_q_off_of): writes the normalised partial to
 * `part`. An empty or fully masked range gives O_p = 0, lse_p = -inf, which
 * the merge ignores. `next` (may be NULL) is the range the calling thread
 * expects to run next: its first tile is prefetched during the last tile of
 * this one. */
void attn_dec_partial(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t grp, int64_t k0,
                      int64_t k1, const dec_range *next, float *scratch, float *part, flash_tally *t);

/* Tile helpers of the partial (decode_partial.c), shared by its layouts. */
/* Mask class of the tile of keys [j0, j0 + nk) for the group's rows; a
 * PARTIAL tile is cut to [*jlo, *jhi) and its predicate prepared (lane key
 * ranges in lo/hi, or mask bytes in M when pl->mask_ld). */
attn_tile attn_dec_tile_keys(const attn_args *a, const dec_plan *pl, int64_t b, int64_t hk, int64_t i0,
                             int64_t nb, int64_t j0, int64_t nk, int64_t lanes, int32_t *lo, int32_t *hi,
                             unsigned char *M, int64_t *jlo, int64_t *jhi, flash_tally *t);
/* S[r*rs + j*js] = -inf where the tile's mask bytes M are 0. */
void attn_dec_mask_bytes(const dec_plan *pl, const unsigned char *M, int64_t nr, int64_t nk, float *S, int64_t rs,
                         int64_t js);
/* The normalised partial O_p = Acc / l, lse_p = m + ln l; Acc(r, d) = acc[r*rs + d*ds]. */
void attn_dec_write_partial(const dec_plan *pl, int64_t D, int64_t R, const float *acc, int64_t rs, int64_t ds,
                            const float *m, const float *l, float *part);
/* Acc = 0 (n floats), m = -inf, l = 0 (rows). */
void attn_dec_reset(float *acc, int64_t n, float *m, float *l, int64_t rows);

/* The tile step of the layouts that score with the query rows in the vector
 * lanes (the lane and group layouts), after the scores S^T (nk, lanes) of
 * keys jlo.. (st->tmax already holds max(m, scores) on a FULL tile, m
 * elsewhere): a PARTIAL tile masked by its lane key ranges, or by the mask
 * bytes M when pl->mask_ld (rows real rows), and its maxima taken; then the
 * online-softmax update. */
void attn_dec_lanes_softmax(const dec_plan *pl, const flash_lane_state *st, const unsigned char *M, attn_tile kind,
                            int64_t jlo, int64_t rows, int64_t nk, int64_t lanes, float *S);

/* The group layout (decode_group.c) for groups of more rows than the dot
 * layout takes: scores with the rows in the vector lanes (K read in place),
 * P V with the rows as matrix rows (V read in place), the next tile's K and
 * V prefetched while this one computes. Needs V rows 64-byte aligned and
 * D % 16 == 0 (dec_rows_ok). */
void attn_dec_partial_group(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                            int64_t i0, int64_t nb, int64_t k0, int64_t k1, const dec_range *next, float *ws,
                            float *part, flash_tally *t);

/* Prefetch of the line at p into L1 (near) or L2. GCC (12, -O3) deletes a
 * loop whose body is only __builtin_prefetch calls, as a loop without side
 * effects; the asm statements are volatile and stay. */
static inline void dec_prefetch_line(int near, const float *p)
{
#if defined(__x86_64__) || defined(__i386__)
    if (near)
        __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
    else
        __asm__ volatile("prefetcht1 %0" : : "m"(*(const char *)p));
#else
    if (near)
        __builtin_prefetch(p, 0, 3);
    else
        __builtin_prefetch(p, 0, 2);
#endif
}

/* The dot layout (decode_dot.c), for groups of few rows when the build has
 * a vector width (ATTN_VW) dividing D, and always for a KV cache stored in a
 * low-precision format (attn_args.kv_dtype): tile rows are byte rows, of
 * io.k and io.v (fp32) or of io.kc and io.vc, widened to fp32 in registers
 * ATTN_VW values at a time;
 *   scores: S[r*ld + j] = qs[r*D ..] . K row j of cur, r < R, j < cur->n;
 *   pv:     acc[r*D ..] += sum_j P[r*ld + j] V row j of cur.
 * Both read cur's rows once, in order, prefetching ahead along K of cur,
 * V of cur, K of nx (nx->k = NULL: nothing after cur). */
#define DEC_DOT_MAX_ROWS 8
typedef struct {
    const unsigned char *k, *v;
    int64_t ksn, vsn, n;  /* row strides in bytes, keys */
    size_t row_bytes;
} dec_kv_rows;
/* Rows [j, j + n) of (b, hk) in format t (fp32: io.k and io.v; else io.kc
 * and io.vc); n = 0 or no such tensor: no tile (k = NULL). */
dec_kv_rows attn_dec_kv_tile(const attn_io *io, attn_kv_dtype t, int64_t b, int64_t hk, int64_t j, int64_t n);
void attn_dec_dot_scores(attn_kv_dtype t, const float *qs, int64_t R, int64_t D, const dec_kv_rows *cur,
                         const dec_kv_rows *nx, float *S, int64_t ld);
void attn_dec_dot_pv(attn_kv_dtype t, const float *P, int64_t ld, int64_t R, int64_t D, const dec_kv_rows *cur,
                     const dec_kv_rows *nx, float *acc);
/* One stored row widened to D floats by the layout's vector loads (the
 * portable build: attn_kv_dequantize_row), for the tests. */
void attn_dec_kv_widen(attn_kv_dtype t, const unsigned char *row, int64_t D, float *out);

/* A stored cache in io that matches args (kv_dtype, shape); fp32 needs none. */
int attn_dec_kv_check(const attn_args *a, const attn_io *io, const char *kernel);

/* The KV formats decode and lean read (attn_kernel.kv_dtypes). */
#define DEC_KV_DTYPES                                                                                           \
    (ATTN_KV_BIT(ATTN_KV_BF16) | ATTN_KV_BIT(ATTN_KV_FP16) | ATTN_KV_BIT(ATTN_KV_Q8_0) | ATTN_KV_BIT(ATTN_KV_Q4_0))

/* Merges the np partials of group grp at part0 + p*part_floats (p ascending)
 * into O and LSE. np = 0 (no keys) gives O = 0, lse = -inf. */
void attn_dec_merge(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t grp,
                    const float *part0, int64_t np);

#endif
