/* The flash family's private header, shared by the `flash` forward (flash.c),
 * backward (flash_bwd.c) and microkernel (flash_microkernel.c), and by the
 * kernels built on the same inner loop (decode, lean, sigmoid): the
 * register-blocked product, the tile plan, the workspace layout and the
 * lane-parallel softmax helpers.
 *
 * Layout choice: every score tile is stored with the axis that carries the
 * per-row statistics in the vector lanes. Forward and the dQ pass keep S^T
 * ([key j][query row r], r in lanes), so the running max m, sum l, rescale
 * alpha, lse and Di of 16 query rows sit in one register and the online
 * softmax needs no horizontal reductions; the dK/dV pass keeps S
 * ([query row][key j], j in lanes), where its accumulators dK^T, dV^T live.
 * Products then all take the form of attn_mk_gemm with the user's Q/K/V/dO
 * read in place as the broadcast operand. */
#ifndef ATTN_FLASH_INTERNAL_H
#define ATTN_FLASH_INTERNAL_H

#include "kernels/core/attn.h"
#include "kernels/core/counters.h"
#include "kernels/core/vexp.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* ---- the register-blocked product (flash_microkernel.c) ---- */

/* The one small-matrix product the `flash` kernels are built from:
 *
 *     C[i][n] = (mode) + sum_p A(i,p) * B[p][n]
 *
 * B and C are packed tiles whose n extent is a multiple of 16 (one AVX-512
 * vector, two AVX2 ones); A is addressed with arbitrary strides, A(i,p) =
 * A[i*sam + p*sak], and only ever broadcast, so it can be a tile of the
 * caller's strided Q, K, V or dO read in place, in either orientation.
 * Every product of the forward and backward pass is of this form once the
 * other operand is packed with the softmax axis in the vector lanes (see
 * flash_internal.h). */


typedef enum {
    ATTN_MK_SET = 0,      /* C = A B */
    ATTN_MK_ADD,          /* C += A B */
    ATTN_MK_SCALE_ADD,    /* C = C * diag(cscale) + A B  (online-softmax rescale) */
} attn_mk_mode;

/* i < m, n < nn (nn % 16 == 0), p < k. B and C 64-byte aligned with ldb and
 * ldc multiples of 16; cscale (SCALE_ADD only) holds nn floats. With cmax
 * non-NULL also cmax[n] = max(cmax[n], max_i C[i][n]) on the result, which
 * saves the online softmax a pass over the tile. Returns the FLOPs executed,
 * 2*m*nn*k. */
double attn_mk_gemm(int64_t m, int64_t nn, int64_t k, const float *A, int64_t sam, int64_t sak,
                    const float *B, int64_t ldb, float *C, int64_t ldc, attn_mk_mode mode,
                    const float *cscale, float *cmax);

/* Tile plan: derived from the args and the br/bc params, identically in
 * init (to size the workspace) and in forward/backward. Nothing depends on
 * the thread count except the number of per-thread slots. */
typedef struct {
    int64_t br, bc;        /* query rows (per head) and keys per tile */
    int64_t G;             /* query heads per KV head, packed into one forward tile */
    int64_t nqt, nkt;      /* number of query / key tiles */
    int64_t rows;          /* forward lanes per tile: G*br rounded up to 16 */
    int64_t brp, bcp;      /* br and bc rounded up to 16 */
    size_t thread_floats;  /* per-thread slot (multiple of 16 floats) */
    size_t di_floats;      /* backward: Di for every query row, shared by all threads */
    int64_t stripes;       /* backward: key-tile stripes of the one-pass backward, each with its own dQ
                            * partial (flash_bwd.c); 0: the two-pass backward (memory-budget mode) */
    int64_t dqld;          /* floats per row of a dQ partial: D rounded up to 16 */
    size_t dq_floats;      /* backward: the dQ partials, stripes x B x H x Nq x dqld, shared */
    int64_t mask_ld;       /* masks that are not one key range per row: bytes per row of the
                            * tile's mask bytes (flash_pred_rows); 0 for interval masks */
    int gather;            /* the `gather` parameter (FLASH_GATHER_*) */
    int64_t gbr, glanes;   /* gathered path (flash_gather.h): query rows per block and lanes,
                            * G*gbr rounded up to 16; 0 when the path cannot run */
    int split;             /* the forward takes the split path (flash_split.h) */
    int per_row;           /* the per-row path (flash_rows.h) may run: its slot is reserved */
} flash_plan;

/* the `gather` parameter; ROWS forces the per-row path */
enum { FLASH_GATHER_AUTO = 0, FLASH_GATHER_ON, FLASH_GATHER_OFF, FLASH_GATHER_ROWS };

#define FLASH_DEFAULT_BR 64
#define FLASH_DEFAULT_BC_SMALL_D 256   /* D <= 64 */
#define FLASH_DEFAULT_BC 128

/* The tile rows of flash's parameter table, shared by the kernels that tile
 * as flash does (sigmoid, streaming's prefill). */
#define FLASH_TILE_PARAMS                                                                                      \
    {.name = "br", .type = OPT_INT, .def = FLASH_DEFAULT_BR, .lo = 1, .hi = 1024, .help = "query rows per head"},   \
    {.name = "bc", .type = OPT_INT, .def_str = "256 (D<=64) or 128", .lo = 1, .hi = 4096, .help = "keys per tile"}

static inline int64_t flash_round16(int64_t n) { return (n + 15) / 16 * 16; }

/* Tasks the one-pass backward aims for at least: its tasks are (batch entry,
 * KV head, stripe of key tiles), so fewer than this many KV heads get their
 * key tiles cut into stripes, each with its own dQ partial. */
#define FLASH_BWD_MIN_TASKS 8

/* Stripes of the one-pass backward: from the problem alone, never the thread
 * count, so dQ is summed in the same order for any number of threads. */
static inline int64_t flash_bwd_stripes(const attn_args *a, int64_t nkt)
{
    int64_t heads = a->B * a->H_kv, s = (FLASH_BWD_MIN_TASKS + heads - 1) / heads;
    return s < 1 ? 1 : s > nkt ? (nkt < 1 ? 1 : nkt) : s;
}

/* Fills *pl from args and the br/bc params; fails with a message on unknown
 * keys or out-of-range values. */
int attn_flash_plan(flash_plan *pl, const attn_args *a);

/* Thread t's slot in the workspace (64-byte aligned). */
static inline float *flash_slot(const attn_ctx *ctx, const flash_plan *pl, int t)
{
    return (float *)ctx->workspace + (size_t)t * pl->thread_floats;
}

/* Carves n floats (rounded up to 16, so every buffer stays 64-byte aligned). */
static inline float *flash_take(float **cursor, int64_t n)
{
    float *p = *cursor;
    *cursor += flash_round16(n);
    return p;
}

/* The online-softmax state of a query tile in the lane layout: per lane the
 * running max m and sum l, the tile step's alpha, shift and tmax, and the
 * key range [lo, hi) of each lane in a partially masked tile. */
typedef struct {
    float *m, *l, *alpha, *shift, *tmax;
    int32_t *lo, *hi;
} flash_lane_state;

/* Carves the state for `lanes` lanes from *cursor: m = -inf, l = 0. */
static inline void flash_lane_state_take(float **cursor, int64_t lanes, flash_lane_state *s)
{
    s->m = flash_take(cursor, lanes), s->l = flash_take(cursor, lanes);
    s->alpha = flash_take(cursor, lanes), s->shift = flash_take(cursor, lanes);
    s->lo = (int32_t *)flash_take(cursor, lanes), s->hi = (int32_t *)flash_take(cursor, lanes);
    s->tmax = flash_take(cursor, lanes);
    for (int64_t x = 0; x < lanes; x++)
        s->m[x] = -INFINITY, s->l[x] = 0;
}

/* Rows [n0, n1) of head h of sequence b that a padded batch (attn_args.seq_len)
 * leaves out: zeroed in t (O, dQ, dK or dV) and, with lse, given LSE = -inf. */
static inline void flash_empty_rows(const attn_args *a, const attn_tensor *t, float *lse, int64_t b, int64_t h,
                                    int64_t n0, int64_t n1)
{
    for (int64_t n = n0; n < n1; n++) {
        float *row = attn_at(t, b, h, n);
        for (int64_t d = 0; d < t->D; d++)
            row[d] = 0.0f;
        if (lse)
            lse[(b * a->H + h) * a->Nq + n] = -INFINITY;
    }
}

/* A query tile [i0, i0 + *nb) of heads h0 .. h0+G-1 cut at the real rows of
 * a padded batch: the rows past them are emptied in t (and lse, if given)
 * and *nb becomes the real count. Returns 0 when no real row is left. */
static inline int flash_padded_query_tile(const attn_args *a, const attn_tensor *t, float *lse, int64_t b,
                                          int64_t h0, int64_t G, int64_t i0, int64_t *nb)
{
    int64_t nq = attn_q_len(a, b);
    if (i0 + *nb <= nq)
        return 1;
    for (int64_t g = 0; g < G; g++)
        flash_empty_rows(a, t, lse, b, h0 + g, i0 > nq ? i0 : nq, i0 + *nb);
    *nb = nq > i0 ? nq - i0 : 0;
    return *nb > 0;
}

/* The same for the key tile [j0, j0 + *nk) of KV head hk in the dK/dV pass:
 * padding keys get no gradient. */
static inline int flash_padded_key_tile(const attn_args *a, const attn_grads *g, int64_t b, int64_t hk, int64_t j0,
                                        int64_t *nk)
{
    int64_t len = attn_kv_len(a, b);
    if (j0 + *nk <= len)
        return 1;
    flash_empty_rows(a, &g->dk, NULL, b, hk, j0 > len ? j0 : len, j0 + *nk);
    flash_empty_rows(a, &g->dv, NULL, b, hk, j0 > len ? j0 : len, j0 + *nk);
    *nk = len > j0 ? len - j0 : 0;
    return *nk > 0;
}

/* Work done by one thread, added to the SDE counters once per thread. */
typedef struct {
    double flops, bytes, exps, computed, skipped;
} flash_tally;

static inline void flash_tally_flush(const flash_tally *t)
{
    attn_counter_add(ATTN_CNT_FLOPS, (long long)t->flops);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t->bytes);
    attn_counter_add(ATTN_CNT_EXPS, (long long)t->exps);
    attn_counter_add(ATTN_CNT_TILES_COMPUTED, (long long)t->computed);
    attn_counter_add(ATTN_CNT_TILES_SKIPPED, (long long)t->skipped);
}

/* Mask class of query rows [i0, i0+nr) x keys [j0, j0+nk) of batch b for the
 * nh query heads h0.. packed in one tile: EMPTY or FULL only if it is so for
 * every head (masks that vary by head are classified head by head). */
static inline attn_tile flash_tile_kind(const attn_args *a, int64_t b, int64_t h0, int64_t nh, int64_t i0,
                                        int64_t nr, int64_t j0, int64_t nk)
{
    int64_t pi0 = a->q_off + i0, pi1 = pi0 + nr, pj0 = a->k_off + j0, pj1 = pj0 + nk;
    attn_tile t = attn_mask_tile(&a->mask, b, h0, pi0, pi1, pj0, pj1);
    if (!(attn_mask_varies(&a->mask) & 1))
        return t;
    for (int64_t h = h0 + 1; h < h0 + nh && t != ATTN_TILE_PARTIAL; h++)
        if (attn_mask_tile(&a->mask, b, h, pi0, pi1, pj0, pj1) != t)
            t = ATTN_TILE_PARTIAL;
    return t;
}

/* PARTIAL tiles of a mask that is not one key range per row
 * (attn_mask_is_interval is 0) take the element predicate: the mask bytes of
 * the tile's rows (r = g*nb + i for the nb query rows from i0 of the
 * `groups` heads h0..; keys j < nk) go to M[r*ldm + j], and the GEMMs are
 * cut to what some row sees: [*jlo, *jhi) (relative to j0) is the union of
 * the allowed keys and [*r0, *r1) the rows (i) that see any key; both empty
 * when nothing is allowed (the classifier is conservative). */
static inline void flash_pred_rows(const attn_args *a, int64_t b, int64_t h0, int64_t groups, int64_t i0,
                                   int64_t nb, int64_t j0, int64_t nk, unsigned char *M, int64_t ldm,
                                   int64_t *jlo, int64_t *jhi, int64_t *r0, int64_t *r1)
{
    int64_t lo = nk, hi = 0, first = nb, last = -1;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t i = 0; i < nb; i++) {
            unsigned char *row = M + (g * nb + i) * ldm;
            attn_mask_row(&a->mask, b, h0 + g, a->q_off + i0 + i, a->k_off + j0, nk, row);
            int64_t f = 0, l = nk;
            while (f < nk && !row[f])
                f++;
            while (l > f && !row[l - 1])
                l--;
            if (f == l)
                continue;
            lo = f < lo ? f : lo, hi = l > hi ? l : hi;
            first = i < first ? i : first, last = i > last ? i : last;
        }
    if (lo >= hi)
        lo = hi = 0;
    *jlo = lo, *jhi = hi;
    *r0 = last < 0 ? 0 : first, *r1 = last + 1;
}

/* Applies the mask bytes of flash_pred_rows: element (row r < nr, key j < nk)
 * at S[r*rs + j*js] becomes `off` where M[r*ldm + j] is 0 (M already offset
 * to the first key and row of S). Branch-free, the inner loop along the
 * contiguous axis of S. */
static inline void flash_pred_apply(const unsigned char *M, int64_t ldm, int64_t nr, int64_t nk, float *S,
                                    int64_t rs, int64_t js, float off)
{
    if (js == 1) {
        for (int64_t r = 0; r < nr; r++) {
            const unsigned char *m = M + r * ldm;
            float *s = S + r * rs;
            for (int64_t j = 0; j < nk; j++)
                s[j] = m[j] ? s[j] : off;
        }
        return;
    }
    for (int64_t j = 0; j < nk; j++) {
        float *s = S + j * js;
        for (int64_t r = 0; r < nr; r++)
            s[r * rs] = M[r * ldm + j] ? s[r * rs] : off;
    }
}

/* Allowed key range [lo, hi) relative to j0 for each of the nb query rows
 * starting at i0, repeated for `groups` packed heads (lane r = g*nb + i);
 * lanes up to `lanes` past the real rows get the whole tile (their results
 * are discarded). Exact only for interval masks (attn_mask_is_interval);
 * the others take flash_pred_rows. */
static inline void flash_row_ranges(const attn_args *a, int64_t i0, int64_t nb, int64_t groups,
                                    int64_t j0, int64_t nk, int64_t lanes, int32_t *lo, int32_t *hi)
{
    for (int64_t i = 0; i < nb; i++) {
        int64_t l, h;
        attn_mask_row_range(&a->mask, a->q_off + i0 + i, a->k_off + j0, a->k_off + j0 + nk, &l, &h);
        for (int64_t g = 0; g < groups; g++)
            lo[g * nb + i] = (int32_t)(l - a->k_off - j0), hi[g * nb + i] = (int32_t)(h - a->k_off - j0);
    }
    for (int64_t r = groups * nb; r < lanes; r++)
        lo[r] = 0, hi[r] = (int32_t)nk;
}

/* PARTIAL tiles are trimmed to the keys some row may attend (causal: the
 * diagonal tile stops at the last row's position), so the masked corner is
 * not computed. Returns in [*jlo, *jhi) the union of the first n rows'
 * ranges and shifts every lane's range by -*jlo. */
static inline void flash_trim_keys(int32_t *lo, int32_t *hi, int64_t n, int64_t lanes, int64_t *jlo,
                                   int64_t *jhi)
{
    int32_t a = INT32_MAX, b = 0;
    for (int64_t r = 0; r < n; r++)
        if (lo[r] < hi[r]) {
            a = lo[r] < a ? lo[r] : a;
            b = hi[r] > b ? hi[r] : b;
        }
    if (a > b)
        a = b = 0; /* no row sees a key: an empty range, nothing computed */
    for (int64_t r = 0; r < lanes; r++)
        lo[r] -= a, hi[r] -= a;
    *jlo = a, *jhi = b;
}

/* Lane-major PARTIAL tile (forward, dQ pass): the lanes' key ranges, trimmed. */
static inline void flash_partial_keys(const attn_args *a, int64_t i0, int64_t nb, int64_t groups,
                                      int64_t j0, int64_t nk, int64_t lanes, int32_t *lo, int32_t *hi,
                                      int64_t *jlo, int64_t *jhi)
{
    flash_row_ranges(a, i0, nb, groups, j0, nk, lanes, lo, hi);
    flash_trim_keys(lo, hi, groups * nb, lanes, jlo, jhi);
}

/* S[j][r] = -inf for lanes r whose row may not attend key j (j < nk rows of
 * `lanes` floats): the PARTIAL-tile predicate of the lane-major layout. */
static inline void flash_mask_lanes(float *S, int64_t nk, int64_t lanes, const int32_t *lo,
                                    const int32_t *hi)
{
#ifdef __AVX512F__
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t r = 0; r < lanes; r += 16) {
        __m512i l = _mm512_load_si512(lo + r), h = _mm512_load_si512(hi + r);
        for (int64_t j = 0; j < nk; j++) {
            __m512i jv = _mm512_set1_epi32((int32_t)j);
            __mmask16 out = _mm512_cmpgt_epi32_mask(l, jv) | _mm512_cmple_epi32_mask(h, jv);
            float *s = S + j * lanes + r;
            _mm512_store_ps(s, _mm512_mask_mov_ps(_mm512_load_ps(s), out, ninf));
        }
    }
#elif defined(__AVX2__)
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t r = 0; r < lanes; r += 8) {
        __m256i l = _mm256_load_si256((const __m256i *)(lo + r));
        __m256i h = _mm256_load_si256((const __m256i *)(hi + r));
        for (int64_t j = 0; j < nk; j++) {
            __m256i jv = _mm256_set1_epi32((int32_t)j);
            /* lo <= j < hi keeps the score */
            __m256i keep = _mm256_andnot_si256(_mm256_cmpgt_epi32(l, jv), _mm256_cmpgt_epi32(h, jv));
            float *s = S + j * lanes + r;
            _mm256_store_ps(s, _mm256_blendv_ps(ninf, _mm256_load_ps(s), _mm256_castsi256_ps(keep)));
        }
    }
#else
    for (int64_t j = 0; j < nk; j++)
        for (int64_t r = 0; r < lanes; r++)
            if (j < lo[r] || j >= hi[r])
                S[j * lanes + r] = -INFINITY;
#endif
}

/* P[j][r] = exp(S[j][r] - shift[r]) in place over nk rows of `lanes`; with
 * `sum` non-NULL also sum[r] += sum_j P[j][r] (ascending j, fixed order). */
static inline void flash_exp_lanes(float *S, int64_t nk, int64_t lanes, const float *shift, float *sum)
{
#ifdef ATTN_VW
    enum { NV = 16 / ATTN_VW }; /* vectors per 16 lanes: independent exp and sum chains */
    for (int64_t r = 0; r < lanes; r += 16) {
        attn_vf sh[NV], acc[NV];
        for (int v = 0; v < NV; v++)
            sh[v] = attn_vf_load(shift + r + v * ATTN_VW), acc[v] = attn_vf_zero();
        for (int64_t j = 0; j < nk; j++)
            for (int v = 0; v < NV; v++) {
                float *s = S + j * lanes + r + v * ATTN_VW;
                attn_vf p = attn_vf_exp(attn_vf_sub(attn_vf_load(s), sh[v]));
                attn_vf_store(s, p);
                acc[v] = attn_vf_add(acc[v], p);
            }
        for (int v = 0; sum && v < NV; v++)
            attn_vf_store(sum + r + v * ATTN_VW, attn_vf_add(attn_vf_load(sum + r + v * ATTN_VW), acc[v]));
    }
#else
    for (int64_t r = 0; r < lanes; r++) {
        float acc = 0;
        for (int64_t j = 0; j < nk; j++) {
            float *s = S + j * lanes + r;
            *s = attn_expf(*s - shift[r]);
            acc += *s;
        }
        if (sum)
            sum[r] += acc;
    }
#endif
}

// dS^T = P^T * (dP^T - di): nk rows of `lanes` floats, di per lane (in place in dP)
static inline void flash_ds_lanes(float *dP, const float *P, int64_t nk, int64_t lanes, const float *di)
{
    for (int64_t j = 0; j < nk; j++) {
        float *x = dP + j * lanes;
        const float *p = P + j * lanes;
        int64_t r = 0;
#ifdef ATTN_VW
        for (; r < lanes; r += ATTN_VW)
            attn_vf_store(x + r,
                          attn_vf_mul(attn_vf_load(p + r), attn_vf_sub(attn_vf_load(x + r), attn_vf_load(di + r))));
#endif
        for (; r < lanes; r++)
            x[r] = p[r] * (x[r] - di[r]);
    }
}

/* Backward entry point (flash_bwd.c). */
int attn_flash_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* ---- the lane-major online-softmax step ---- */

/* The lane-major online-softmax step of the flash forward (flash_internal.h
 * explains the layout: S^T is [key j][query lane r], so the per-row running
 * max m, sum l and rescale alpha of 16 rows sit in one vector). Shared by
 * every kernel that runs the flash inner loop over a key range: `flash`
 * itself, `decode` and `lean`. */



/* Query row i of a lane block: rows[i] when the block lists its rows (the
 * gathered path's blocks are not contiguous), else i0 + i. */
static inline int64_t flash_block_row(const int32_t *rows, int64_t i0, int64_t i)
{
    return rows ? rows[i] : i0 + i;
}

// qt is (D, lanes): qt[d][g*nb + i] = sc * q[b, h0 + g, row i, d] (flash_block_row); padding lanes are 0
static inline void flash_lanes_pack_rows(const attn_tensor *q, int64_t b, int64_t h0, int64_t G, int64_t i0,
                                         const int32_t *rows, int64_t nb, int64_t lanes, float sc, float *qt)
{
    int64_t D = q->D;
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            const float *row = attn_at(q, b, h0 + g, flash_block_row(rows, i0, i));
            float *col = qt + g * nb + i;
            for (int64_t d = 0; d < D; d++)
                col[d * lanes] = sc * row[d];
        }
    for (int64_t d = 0; d < D; d++)
        memset(qt + d * lanes + G * nb, 0, sizeof(float) * (size_t)(lanes - G * nb));
}

// the contiguous rows i0 .. i0+nb-1
static inline void flash_lanes_pack_q(const attn_tensor *q, int64_t b, int64_t h0, int64_t G, int64_t i0,
                                      int64_t nb, int64_t lanes, float sc, float *qt)
{
    flash_lanes_pack_rows(q, b, h0, G, i0, NULL, nb, lanes, sc, qt);
}

/* The end of a lane block's online softmax: O = acc / l and lse = m + ln l
 * for lane g*nb + i (head h0 + g, row flash_block_row(rows, i0, i)); a row
 * that saw no key gets O = 0 and lse = -inf. */
static inline void flash_lanes_store_o(const attn_args *a, const attn_io *io, int64_t b, int64_t h0, int64_t G,
                                       int64_t i0, const int32_t *rows, int64_t nb, int64_t lanes,
                                       const float *acc, const float *m, const float *l)
{
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            int64_t r = g * nb + i, n = flash_block_row(rows, i0, i);
            float *o = attn_at(&io->o, b, h0 + g, n);
            for (int64_t d = 0; d < a->D; d++)
                o[d] = l[r] > 0 ? acc[d * lanes + r] / l[r] : 0.0f;
            io->lse[((b * a->H) + h0 + g) * a->Nq + n] = l[r] > 0 ? m[r] + logf(l[r]) : -INFINITY;
        }
}

/* tmax[r] = max(tmax[r], max_j S[j][r]) over nk rows of `lanes` (S is S^T):
 * the tile max when the product could not fold it in (PARTIAL tiles, masked
 * after the product). */
static inline void flash_lanes_max(const float *S, int64_t nk, int64_t lanes, float *tmax)
{
#ifdef ATTN_VW
    for (int64_t r = 0; r < lanes; r += ATTN_VW) {
        /* four independent chains, so the loop is not latency-bound */
        attn_vf m0 = attn_vf_load(tmax + r), m1 = m0, m2 = m0, m3 = m0;
        int64_t j = 0;
        for (; j + 4 <= nk; j += 4) {
            const float *s = S + j * lanes + r;
            m0 = attn_vf_max(m0, attn_vf_load(s));
            m1 = attn_vf_max(m1, attn_vf_load(s + lanes));
            m2 = attn_vf_max(m2, attn_vf_load(s + 2 * lanes));
            m3 = attn_vf_max(m3, attn_vf_load(s + 3 * lanes));
        }
        for (; j < nk; j++)
            m0 = attn_vf_max(m0, attn_vf_load(S + j * lanes + r));
        attn_vf_store(tmax + r, attn_vf_max(attn_vf_max(m0, m1), attn_vf_max(m2, m3)));
    }
#else
    for (int64_t j = 0; j < nk; j++)
        for (int64_t r = 0; r < lanes; r++)
            tmax[r] = fmaxf(tmax[r], S[j * lanes + r]);
#endif
}

/* The per-row half of the online-softmax step (any layout): shift = mx, or 0
 * while a row has seen no key; alpha = exp(m - shift); l *= alpha; m = mx. */
static inline void flash_lanes_rescale(int64_t rows, const float *tmax, float *m, float *l, float *alpha,
                                       float *shift)
{
    for (int64_t r = 0; r < rows; r++) {
        shift[r] = tmax[r] == -INFINITY ? 0.0f : tmax[r];
        alpha[r] = m[r] - shift[r];
        m[r] = tmax[r];
    }
    attn_vexp(alpha, alpha, rows);
    for (int64_t r = 0; r < rows; r++)
        l[r] *= alpha[r];
}

/* One key tile of the online softmax, given mx = max(m, max_j S) in tmax:
 * alpha = exp(m - mx); P = exp(S - mx) in place; l = alpha*l + sum_j P; m = mx.
 * A lane whose scores are all -inf so far keeps m = -inf and subtracts 0
 * instead, so -inf - (-inf) never occurs and its P and l stay 0. */
static inline void flash_lanes_online_softmax(float *S, int64_t nk, int64_t lanes, const float *tmax,
                                              float *m, float *l, float *alpha, float *shift)
{
    flash_lanes_rescale(lanes, tmax, m, l, alpha, shift);
    flash_exp_lanes(S, nk, lanes, shift, l);
}

#endif
