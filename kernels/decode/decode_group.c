/* The group layout of the decode partial (decode_internal.h), for groups of
 * more query rows than the dot layout takes (8 or more rows per KV head:
 * GQA 16:1 at one query, 4:1 and up at four queries). There the two
 * products of a tile are small matrix products: 2 R flops per 4-byte cache
 * value each, so at 16 rows they balance the memory stream against the FMA
 * units and at 64 rows the FMA side bounds them. Both matter:
 *
 * - Scores with the rows in the vector lanes, S^T [key][row] = K Q^T, as
 *   flash computes them: K rows are read in place (one broadcast per
 *   element and block of keys), so no per-tile transpose of K, and with
 *   16-64 rows every lane is real. The column max of FULL tiles is folded
 *   into the product.
 * - P V with the rows as matrix rows, Acc [row][d] += P V: V rows are the
 *   vector operand, read in place; P is S^T read with swapped strides.
 * - The next tile's K and V (this range's next tile, or the first of the
 *   range the thread runs next) are prefetched into L2 a share at a time
 *   between the blocks of the two products, so the cache streams in while
 *   the FMA units work instead of in bursts in front of them.
 *
 * Every score is flash's (its lane layout, the same product) and every
 * output element is alpha * Acc followed by one FMA per key, ascending, as
 * in flash's lane layout (the products commute): one partition equals
 * `flash` bitwise, as the lane layout does (and the row layout with K
 * transposed per tile, which this layout replaced, did). */
#include "decode_internal.h"
#include "kernels/flash/flash_internal.h"

#include <string.h>

/* Keys per block of the score product and (rows, columns) per block of
 * P V: the points where a share of the next tile's prefetch is issued
 * (small shares: a burst of a few hundred prefetches fills the miss queue
 * and the loads behind it wait). The column block keeps a panel of V
 * (nk x 64 floats, 32 KiB at 128 keys) in L1 across the row blocks. */
#define DEC_GRP_KEYS 12
#define DEC_GRP_ROWS 12
#define DEC_GRP_COLS 64

/* The lines of a tile to prefetch, K rows then V rows, D / 16 lines each,
 * walked by a cursor (p: the current row; row, line): a division per line
 * cost more than the prefetches themselves. */
typedef struct {
    const float *k, *v, *p;
    int64_t ksn, vsn, lpr, rows; /* rows of K (and of V) */
    int64_t row, line, per;      /* cursor over 2 * rows rows; lines per share */
} dec_grp_pf;

static inline void dec_grp_pf_one(dec_grp_pf *pf)
{
    if (pf->row >= 2 * pf->rows)
        return;
    dec_prefetch_line(0, pf->p + pf->line * 16);
    if (++pf->line == pf->lpr) {
        pf->line = 0, pf->row++;
        pf->p = pf->row < pf->rows ? pf->k + pf->row * pf->ksn : pf->v + (pf->row - pf->rows) * pf->vsn;
    }
}

static void dec_grp_pf_issue(dec_grp_pf *pf)
{
    for (int64_t n = 0; n < pf->per; n++)
        dec_grp_pf_one(pf);
}

#if defined(ATTN_VW) && ATTN_VW == 16
/* The score product at one vector of lanes (up to 16 rows, AVX-512), which
 * attn_mk_gemm runs in blocks of 6 keys: 6 FMA chains, short of the 8 that
 * cover the FMA latency on two ports. Blocks of 12 keys (then 8, 4, 1)
 * here; every score is still 0 plus one FMA per d, ascending. Two lines of
 * the next tile are prefetched per step of d: at 12 keys per block that
 * covers the next tile's K and V during the scores, one prefetch per six
 * FMAs instead of bursts between blocks. */
static inline __attribute__((always_inline)) void dec_grp_block16(const int mr, int64_t D, const float *k, int64_t sn,
                                                                  const float *qt, float *S, float *cmax,
                                                                  dec_grp_pf *pf)
{
    __m512 acc[12];
    /* rows 3g + t at kb[g] + t*sn: four base pointers and the stride, where
     * twelve row pointers spilled to registers of the vector file */
    const float *kb[4];
    for (int g = 0; g < 4; g++)
        kb[g] = k + 3 * g * sn;
    for (int i = 0; i < mr; i++)
        acc[i] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d++) {
        __m512 q = _mm512_load_ps(qt + d * 16);
        dec_grp_pf_one(pf);
        dec_grp_pf_one(pf);
        for (int i = 0; i < mr; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(kb[i / 3][i % 3 * sn + d]), q, acc[i]);
    }
    for (int i = 0; i < mr; i++)
        _mm512_store_ps(S + i * 16, acc[i]);
    if (cmax) {
        __m512 mx = _mm512_load_ps(cmax);
        for (int i = 0; i < mr; i++)
            mx = _mm512_max_ps(mx, acc[i]);
        _mm512_store_ps(cmax, mx);
    }
}

// S^T (n, 16) = K (n, D; row stride sn) @ qt (D, 16), cmax = max(cmax, max_j S^T) if cmax
static double dec_grp_scores16(int64_t n, int64_t D, const float *k, int64_t sn, const float *qt, float *S,
                               float *cmax, dec_grp_pf *pf)
{
    int64_t j = 0;
    for (; n - j >= 12; j += 12)
        dec_grp_block16(12, D, k + j * sn, sn, qt, S + j * 16, cmax, pf);
    if (n - j >= 8)
        dec_grp_block16(8, D, k + j * sn, sn, qt, S + j * 16, cmax, pf), j += 8;
    if (n - j >= 4)
        dec_grp_block16(4, D, k + j * sn, sn, qt, S + j * 16, cmax, pf), j += 4;
    for (; j < n; j++)
        dec_grp_block16(1, D, k + j * sn, sn, qt, S + j * 16, cmax, pf);
    return 2.0 * (double)n * 16.0 * (double)D;
}
#endif

void attn_dec_partial_group(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                            int64_t i0, int64_t nb, int64_t k0, int64_t k1, const dec_range *next, float *ws,
                            float *part, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, R = G * nb, lanes = flash_round16(R);
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes), *acc = flash_take(&ws, R * D);
    flash_lane_state st;
    flash_lane_state_take(&ws, lanes, &st);
    unsigned char *M = pl->mask_ld ? (unsigned char *)flash_take(&ws, lanes * pl->bc / 4 + 1) : NULL;

    flash_lanes_pack_q(&io->q, b, hk * G, G, i0, nb, lanes, (float)attn_scale(a), qt);
    attn_dec_reset(acc, R * D, st.m, st.l, lanes);
    t->bytes += 4.0 * (double)(R * D);
    int64_t kblocks, cblocks = (D + DEC_GRP_COLS - 1) / DEC_GRP_COLS, rblocks = (R + DEC_GRP_ROWS - 1) / DEC_GRP_ROWS;

    for (int64_t j0 = k0; j0 < k1; j0 += pl->bc) {
        int64_t nk = k1 - j0 < pl->bc ? k1 - j0 : pl->bc, jlo, jhi;
        attn_tile kind = attn_dec_tile_keys(a, pl, b, hk, i0, nb, j0, nk, lanes, st.lo, st.hi, M, &jlo, &jhi, t);
        if (kind == ATTN_TILE_EMPTY || jhi == jlo) /* no row sees a key of the tile */
            continue;
        nk = jhi - jlo;
        const float *k = attn_at(&io->k, b, hk, j0 + jlo), *v = attn_at(&io->v, b, hk, j0 + jlo);
        /* the next tile: of this range, or the first of the range this
         * thread will probably run next; whole (its trim is not known yet) */
        int64_t nb_ = b, nhk = hk, nj = j0 + pl->bc, nend = k1;
        if (nj >= k1 && next) {
            int64_t nqt;
            dec_group(a, pl, next->grp, &nb_, &nhk, &nqt);
            nj = next->k0, nend = next->k1;
        }
        int64_t nn = nj < nend ? (nend - nj < pl->bc ? nend - nj : pl->bc) : 0;
        kblocks = (nk + DEC_GRP_KEYS - 1) / DEC_GRP_KEYS;
        dec_grp_pf pf = {NULL, NULL, NULL, io->k.sn, io->v.sn, D / 16, 0, 0, 0, 0};
        if (nn > 0) {
            int64_t shares = kblocks + cblocks * rblocks;
            pf.k = pf.p = attn_at(&io->k, nb_, nhk, nj), pf.v = attn_at(&io->v, nb_, nhk, nj), pf.rows = nn;
            pf.per = (2 * nn * pf.lpr + shares - 1) / shares;
        }

        // S^T (nk, lanes) = K[j0+jlo : j0+jhi] (nk, D) @ qt (D, lanes), tmax = max(m, max_j S^T) on FULL tiles
        memcpy(st.tmax, st.m, sizeof(float) * (size_t)lanes);
        float *cm = kind == ATTN_TILE_FULL ? st.tmax : NULL;
#if defined(ATTN_VW) && ATTN_VW == 16
        if (lanes == 16)
            t->flops += dec_grp_scores16(nk, D, k, io->k.sn, qt, S, cm, &pf);
        else
#endif
            for (int64_t c = 0; c < nk; c += DEC_GRP_KEYS) {
                dec_grp_pf_issue(&pf);
                int64_t n = nk - c < DEC_GRP_KEYS ? nk - c : DEC_GRP_KEYS;
                t->flops += attn_mk_gemm(n, lanes, D, k + c * io->k.sn, io->k.sn, 1, qt, lanes, S + c * lanes,
                                         lanes, ATTN_MK_SET, NULL, cm);
            }
        attn_dec_lanes_softmax(pl, &st, M, kind, jlo, R, nk, lanes, S);

        // acc (R, D) = diag(alpha) acc + P (R, nk) @ V[j0+jlo : j0+jhi] (nk, D), P (r, j) = S^T[j][r]
        for (int64_t r = 0; r < R; r++)
            for (int64_t d = 0; d < D; d++)
                acc[r * D + d] *= st.alpha[r];
        for (int64_t d0 = 0; d0 < D; d0 += DEC_GRP_COLS) {
            int64_t nd = D - d0 < DEC_GRP_COLS ? D - d0 : DEC_GRP_COLS;
            for (int64_t r0 = 0; r0 < R; r0 += DEC_GRP_ROWS) {
                dec_grp_pf_issue(&pf);
                int64_t nr = R - r0 < DEC_GRP_ROWS ? R - r0 : DEC_GRP_ROWS;
                t->flops += attn_mk_gemm(nr, nd, nk, S + r0, 1, lanes, v + d0, io->v.sn, acc + r0 * D + d0, D,
                                         ATTN_MK_ADD, NULL, NULL);
            }
        }
        t->exps += (double)((nk + 1) * lanes);
        t->computed += (double)G;
        t->bytes += 8.0 * (double)(nk * D);
    }

    attn_dec_write_partial(pl, D, R, acc, D, 1, st.m, st.l, part);
}
