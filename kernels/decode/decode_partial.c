/* The plan and the partial over one key range that `decode` and `lean`
 * share (decode_internal.h): the flash inner loop over the keys [k0, k1) of a
 * (b, KV head, query tile) group, leaving a normalised partial (O_p, lse_p)
 * for the merge. Three layouts: the group layout of decode_group.c for
 * more rows than the dot layout takes (V rows aligned), the dot layout of
 * decode_dot.c for few rows or a cache stored in another format, and lanes
 * (query rows in the vector lanes, as flash) for any other strides. */
#include "decode_internal.h"
#include "kernels/flash/flash_internal.h"

#include <string.h>

int64_t attn_dec_default_bc(const attn_args *a)
{
    return a->D <= 64 ? FLASH_DEFAULT_BC_SMALL_D : FLASH_DEFAULT_BC;
}

/* The dot layout: few rows, and vectors that tile D. */
static int dec_dot_ok(const attn_args *a, int64_t R)
{
#ifdef ATTN_VW
    return R <= DEC_DOT_MAX_ROWS && a->D % ATTN_VW == 0;
#else
    (void)a, (void)R;
    return 0;
#endif
}

void attn_dec_plan(dec_plan *pl, const attn_args *a, int64_t bc)
{
    memset(pl, 0, sizeof *pl);
    pl->bc = bc;
    pl->G = a->H / a->H_kv;
    pl->br = a->Nq < DEC_BR ? a->Nq : DEC_BR;
    pl->nqt = (a->Nq + pl->br - 1) / pl->br;
    pl->groups = a->B * a->H_kv * pl->nqt;
    pl->lanes = flash_round16(pl->G * pl->br);
    pl->part_floats = (size_t)flash_round16(pl->G * pl->br * (a->D + 1));
    /* Q, Acc (D x lanes), S (bc x lanes) and seven per-lane vectors: every
     * layout reads K and V in place */
    int64_t bcp = flash_round16(bc);
    pl->thread_floats = (size_t)((2 * a->D + bcp + 7) * pl->lanes);
    pl->per_head = attn_mask_varies(&a->mask) & 1;
    if (!attn_mask_is_interval(&a->mask)) { /* the mask bytes of one tile (flash_pred_rows) */
        pl->mask_ld = bc;
        pl->thread_floats += (size_t)flash_round16(pl->lanes * bc / 4 + 1);
    }
}

/* Mask class of the tile of keys [j0, j0 + nk) for the group's rows, `a`
 * being the view of one sequence (attn_dec_partial), so flash's tile helpers
 * apply as they are. The class is taken head by head when the mask varies by
 * head (RANDOM; GQA packs G heads): EMPTY or FULL only if so for all of them.
 * A PARTIAL tile is cut to the keys some row sees, [*jlo, *jhi) relative to
 * j0, and its predicate prepared: for interval masks each lane's key range in
 * lo/hi (relative to *jlo), for the others (M non-NULL) the mask bytes of
 * every row r = g*nb + i at M + r*mask_ld, relative to j0. EMPTY tiles are
 * counted as skipped. */
attn_tile attn_dec_tile_keys(const attn_args *a, const dec_plan *pl, int64_t b, int64_t hk, int64_t i0,
                             int64_t nb, int64_t j0, int64_t nk, int64_t lanes, int32_t *lo, int32_t *hi,
                             unsigned char *M, int64_t *jlo, int64_t *jhi, flash_tally *t)
{
    int64_t G = pl->G, pi = a->q_off + i0, pj = a->k_off + j0;
    attn_tile kind = pl->per_head ? flash_tile_kind(a, b, hk * G, G, i0, nb, j0, nk)
                                  : attn_mask_tile(&a->mask, b, hk * G, pi, pi + nb, pj, pj + nk);
    *jlo = 0, *jhi = nk;
    if (kind == ATTN_TILE_EMPTY)
        t->skipped += (double)G;
    else if (kind == ATTN_TILE_PARTIAL && !M)
        flash_partial_keys(a, i0, nb, G, j0, nk, lanes, lo, hi, jlo, jhi);
    else if (kind == ATTN_TILE_PARTIAL) {
        int64_t r0, r1;
        flash_pred_rows(a, b, hk * G, G, i0, nb, j0, nk, M, pl->mask_ld, jlo, jhi, &r0, &r1);
    }
    return kind;
}

/* The element predicate of a PARTIAL tile of a non-interval mask: the
 * score of (row r < nr, key j < nk) at S[r*rs + j*js] becomes -inf where the
 * mask bytes of attn_dec_tile_keys are 0 (M offset to the tile's first computed
 * key). Out of line, so the loops of the interval masks keep their code. */
__attribute__((noinline)) void attn_dec_mask_bytes(const dec_plan *pl, const unsigned char *M, int64_t nr,
                                                   int64_t nk, float *S, int64_t rs, int64_t js)
{
    flash_pred_apply(M, pl->mask_ld, nr, nk, S, rs, js, -INFINITY);
}

// part: O_p (R, D) row-major = Acc / l, then lse_p (R) at G*br*D; Acc(r, d) = acc[r*rs + d*ds].
// Rows without a key (l = 0) get O_p = 0, lse_p = -inf.
void attn_dec_write_partial(const dec_plan *pl, int64_t D, int64_t R, const float *acc, int64_t rs, int64_t ds,
                            const float *m, const float *l, float *part)
{
    float *plse = part + pl->G * pl->br * D;
    for (int64_t r = 0; r < R; r++) {
        for (int64_t d = 0; d < D; d++)
            part[r * D + d] = l[r] > 0 ? acc[r * rs + d * ds] / l[r] : 0.0f;
        plse[r] = l[r] > 0 ? m[r] + logf(l[r]) : -INFINITY;
    }
}

/* Online-softmax state before the first tile: Acc = 0, m = -inf, l = 0. */
void attn_dec_reset(float *acc, int64_t n, float *m, float *l, int64_t rows)
{
    memset(acc, 0, sizeof(float) * (size_t)n);
    for (int64_t r = 0; r < rows; r++)
        m[r] = -INFINITY, l[r] = 0;
}

void attn_dec_lanes_softmax(const dec_plan *pl, const flash_lane_state *st, const unsigned char *M, attn_tile kind,
                            int64_t jlo, int64_t rows, int64_t nk, int64_t lanes, float *S)
{
    if (kind == ATTN_TILE_PARTIAL) {
        if (M)
            attn_dec_mask_bytes(pl, M + jlo, rows, nk, S, 1, lanes);
        else
            flash_mask_lanes(S, nk, lanes, st->lo, st->hi);
        flash_lanes_max(S, nk, lanes, st->tmax);
    }
    flash_lanes_online_softmax(S, nk, lanes, st->tmax, st->m, st->l, st->alpha, st->shift);
}

/* Lane layout (flash's): S^T [key][row], Acc^T [d][row]. Any strides. */
static void dec_partial_lanes(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                              int64_t i0, int64_t nb, int64_t k0, int64_t k1, float *ws, float *part, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, lanes = flash_round16(G * nb);
    float *qt_ = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes);
    float *acc = flash_take(&ws, D * lanes);
    flash_lane_state st;
    flash_lane_state_take(&ws, lanes, &st);
    unsigned char *M = pl->mask_ld ? (unsigned char *)flash_take(&ws, lanes * pl->bc / 4 + 1) : NULL;

    flash_lanes_pack_q(&io->q, b, hk * G, G, i0, nb, lanes, (float)attn_scale(a), qt_);
    attn_dec_reset(acc, D * lanes, st.m, st.l, lanes);
    t->bytes += 4.0 * (double)(G * nb * D);

    /* the loop of flash_forward_tile over [k0, k1), tiles of bc from k0 */
    for (int64_t j0 = k0; j0 < k1; j0 += pl->bc) {
        int64_t nk = k1 - j0 < pl->bc ? k1 - j0 : pl->bc, jlo, jhi;
        attn_tile kind = attn_dec_tile_keys(a, pl, b, hk, i0, nb, j0, nk, lanes, st.lo, st.hi, M, &jlo, &jhi, t);
        if (kind == ATTN_TILE_EMPTY || jhi == jlo) /* no row sees a key of the tile */
            continue;
        nk = jhi - jlo;
        const float *k = attn_at(&io->k, b, hk, j0 + jlo), *v = attn_at(&io->v, b, hk, j0 + jlo);
        // S^T (nk, lanes) = K[j0+jlo : j0+jhi] (nk, D) @ qt (D, lanes), tmax = max(m, max_j S^T)
        memcpy(st.tmax, st.m, sizeof(float) * (size_t)lanes);
        t->flops += attn_mk_gemm(nk, lanes, D, k, io->k.sn, 1, qt_, lanes, S, lanes, ATTN_MK_SET, NULL,
                                 kind == ATTN_TILE_FULL ? st.tmax : NULL);
        attn_dec_lanes_softmax(pl, &st, M, kind, jlo, G * nb, nk, lanes, S);
        // acc^T (D, lanes) = acc^T * diag(alpha) + V[..]^T (D, nk) @ P^T (nk, lanes)
        t->flops += attn_mk_gemm(D, lanes, nk, v, 1, io->v.sn, S, lanes, acc, lanes, ATTN_MK_SCALE_ADD, st.alpha, NULL);
        t->exps += (double)((nk + 1) * lanes);
        t->computed += (double)G;
        t->bytes += 8.0 * (double)(nk * D);
    }

    attn_dec_write_partial(pl, D, G * nb, acc, 1, lanes, st.m, st.l, part);
}


/* ---- dot layout -------------------------------------------------------
 * The lane layout puts 16 query rows in the vector lanes. A decode step has
 * few rows (one query under 4:1 GQA: 4 real lanes of 16), and its K product
 * then runs 6 FMA chains of one vector each: latency-bound at ~0.7 cycles
 * per K element, far from memory speed. Groups of at most DEC_DOT_MAX_ROWS
 * rows (and every group over a stored low-precision cache) take the dot
 * layout (decode_dot.c): S [row][key] and Acc [row][d] row-major, each score
 * a dot product of a query row with a K row read in place, and Acc updated
 * V row by V row, so K and V stream through once in order. It is the
 * memory-speed form for one decode query; its scores differ from flash's in
 * rounding. Larger groups take the group layout (decode_group.c). */

/* Dot layout of the tile step after the product: mask, row max, rescale,
 * P = exp(S - shift) in place and l += sum_j P (j ascending, as flash_exp_lanes). */
static void dec_rows_softmax(float *S, int64_t ld, int64_t R, int64_t nk, const int32_t *lo, const int32_t *hi,
                             float *m, float *l, float *alpha, float *shift, float *tmax)
{
    for (int64_t r = 0; lo && r < R; r++)
        for (int64_t j = 0; j < nk; j++)
            if (j < lo[r] || j >= hi[r])
                S[r * ld + j] = -INFINITY;
    for (int64_t r = 0; r < R; r++) {
        const float *s = S + r * ld;
        float mx = m[r];
#ifdef __AVX512F__
        __m512 v = _mm512_set1_ps(mx);
        for (int64_t j = 0; j < nk; j += 16) {
            __mmask16 in = nk - j >= 16 ? 0xffff : (__mmask16)((1u << (nk - j)) - 1);
            v = _mm512_max_ps(v, _mm512_mask_loadu_ps(v, in, s + j));
        }
        mx = _mm512_reduce_max_ps(v);
#elif defined(__AVX2__)
        __m256 v = _mm256_set1_ps(mx);
        int64_t j = 0;
        for (; j + 8 <= nk; j += 8)
            v = _mm256_max_ps(v, _mm256_loadu_ps(s + j));
        for (; j < nk; j++) /* same operand order as max_ps: a NaN score wins */
            mx = mx > s[j] ? mx : s[j];
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        mx = mx > _mm_cvtss_f32(h) ? mx : _mm_cvtss_f32(h);
#else
        for (int64_t j = 0; j < nk; j++)
            mx = fmaxf(mx, s[j]);
#endif
        tmax[r] = mx;
    }
    flash_lanes_rescale(R, tmax, m, l, alpha, shift);
    for (int64_t r = 0; r < R; r++) {
        float *s = S + r * ld;
#ifdef ATTN_VW
        attn_vf sh = attn_vf_set1(shift[r]);
        for (int64_t j = 0; j < nk; j += ATTN_VW) /* the tail runs into the row's padding */
            attn_vf_store(s + j, attn_vf_exp(attn_vf_sub(attn_vf_load(s + j), sh)));
#else
        for (int64_t j = 0; j < nk; j++)
            s[j] = attn_expf(s[j] - shift[r]);
#endif
    }
    /* the sums run over j in order (flash's order); four rows at a time so
     * four add chains are in flight instead of one */
    for (int64_t r0 = 0; r0 < R; r0 += 4) {
        int64_t n = R - r0 < 4 ? R - r0 : 4;
        float sum[4] = {0, 0, 0, 0};
        const float *s = S + r0 * ld;
        if (n == 4)
            for (int64_t j = 0; j < nk; j++)
                sum[0] += s[j], sum[1] += s[ld + j], sum[2] += s[2 * ld + j], sum[3] += s[3 * ld + j];
        else
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < nk; j++)
                    sum[i] += s[i * ld + j];
        for (int64_t i = 0; i < n; i++)
            l[r0 + i] += sum[i];
    }
}

static void dec_partial_dot(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                            int64_t i0, int64_t nb, int64_t k0, int64_t k1, const dec_range *next, float *ws,
                            float *part, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, R = G * nb, lanes = flash_round16(R), ld = flash_round16(pl->bc);
    float *qs = flash_take(&ws, R * D), *S = flash_take(&ws, R * ld);
    float *acc = flash_take(&ws, R * D);
    float *m = flash_take(&ws, lanes), *l = flash_take(&ws, lanes);
    float *alpha = flash_take(&ws, lanes), *shift = flash_take(&ws, lanes);
    int32_t *lo = (int32_t *)flash_take(&ws, lanes), *hi = (int32_t *)flash_take(&ws, lanes);
    float *tmax = flash_take(&ws, lanes);
    unsigned char *M = pl->mask_ld ? (unsigned char *)flash_take(&ws, lanes * pl->bc / 4 + 1) : NULL;

    // qs is (R, D): qs[g*nb + i][d] = sc * q[b, hk*G + g, i0 + i, d]
    float sc = (float)attn_scale(a);
    for (int64_t r = 0; r < R; r++) {
        const float *row = attn_at(&io->q, b, hk * G + r / nb, i0 + r % nb);
        for (int64_t d = 0; d < D; d++)
            qs[r * D + d] = sc * row[d];
    }
    attn_dec_reset(acc, R * D, m, l, R);
    t->bytes += 4.0 * (double)(R * D);

    for (int64_t j0 = k0; j0 < k1; j0 += pl->bc) {
        int64_t nk = k1 - j0 < pl->bc ? k1 - j0 : pl->bc, jlo, jhi;
        attn_tile kind = attn_dec_tile_keys(a, pl, b, hk, i0, nb, j0, nk, lanes, lo, hi, M, &jlo, &jhi, t);
        if (kind == ATTN_TILE_EMPTY || jhi == jlo) /* no row sees a key of the tile */
            continue;
        nk = jhi - jlo;
        // S (R, nk) = qs (R, D) @ K[j0+jlo : j0+jhi]^T (D, nk)
        /* the next tile of this range, or the first of the range this thread
         * will probably run next; whole (its trim is not known yet) */
        int64_t nb_ = b, nhk = hk, nj = j0 + pl->bc, nend = k1;
        if (nj >= k1 && next) {
            int64_t nqt;
            dec_group(a, pl, next->grp, &nb_, &nhk, &nqt);
            nj = next->k0, nend = next->k1;
        }
        int64_t nn = nj < nend ? (nend - nj < pl->bc ? nend - nj : pl->bc) : 0;
        dec_kv_rows dcur = attn_dec_kv_tile(io, a->kv_dtype, b, hk, j0 + jlo, nk);
        dec_kv_rows dnx = attn_dec_kv_tile(io, a->kv_dtype, nb_, nhk, nj, nn);
        attn_dec_dot_scores(a->kv_dtype, qs, R, D, &dcur, &dnx, S, ld);
        t->flops += 2.0 * (double)(R * nk * D);
        if (kind == ATTN_TILE_PARTIAL && M)
            attn_dec_mask_bytes(pl, M + jlo, R, nk, S, ld, 1);
        dec_rows_softmax(S, ld, R, nk, kind == ATTN_TILE_PARTIAL && !M ? lo : NULL, hi, m, l, alpha, shift, tmax);
        // acc (R, D) = diag(alpha) acc + P (R, nk) @ V[j0+jlo : j0+jhi] (nk, D)
        for (int64_t r = 0; r < R; r++)
            for (int64_t d = 0; d < D; d++)
                acc[r * D + d] *= alpha[r];
        attn_dec_dot_pv(a->kv_dtype, S, ld, R, D, &dcur, &dnx, acc);
        t->flops += 2.0 * (double)(R * nk * D);
        t->exps += (double)((nk + 1) * R);
        t->computed += (double)G;
        t->bytes += 2.0 * (double)nk * (double)attn_kv_row_bytes(a->kv_dtype, D);
    }

    attn_dec_write_partial(pl, D, R, acc, D, 1, m, l, part);
}

/* The group layout reads V rows in place as aligned vectors. */
static int dec_rows_ok(const attn_tensor *v)
{
    return v->D % 16 == 0 && (uintptr_t)v->data % 64 == 0 && v->sn % 16 == 0 && v->sh % 16 == 0 &&
           v->sb % 16 == 0;
}

void attn_dec_partial(const attn_args *a, const dec_plan *pl, const attn_io *io, int64_t grp, int64_t k0,
                      int64_t k1, const dec_range *next, float *ws, float *part, flash_tally *t)
{
    int64_t b, hk, qt;
    dec_group(a, pl, grp, &b, &hk, &qt);
    int64_t i0 = qt * pl->br, nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
    /* The inner loops read query positions from q_off (flash's tile helpers)
     * and keys from [k0, k1) only. A shorter sequence of a ragged batch gets
     * a view with its own q_off (attn_q_off_of), so the mask sees the oracle's
     * positions. The copy (a few KiB) is made only then: on a long cache
     * under a window most tasks skip every tile, and a copy per task showed
     * in their time. */
    attn_args seq;
    const attn_args *sa = a;
    if (attn_q_off_of(a, b) != a->q_off) {
        seq = *a;
        seq.q_off = attn_q_off_of(a, b);
        seq.kv_len = NULL;
        sa = &seq;
    }
    if (a->kv_dtype != ATTN_KV_FP32 || dec_dot_ok(a, pl->G * nb)) /* a stored cache: always the dot layout */
        dec_partial_dot(sa, pl, io, b, hk, i0, nb, k0, k1, next, ws, part, t);
    else if (dec_rows_ok(&io->v))
        attn_dec_partial_group(sa, pl, io, b, hk, i0, nb, k0, k1, next, ws, part, t);
    else
        dec_partial_lanes(sa, pl, io, b, hk, i0, nb, k0, k1, ws, part, t);
}
