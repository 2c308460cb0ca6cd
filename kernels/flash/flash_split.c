/* The split path of `flash` (flash_split.h). Position pi attends pj when
 * 0 <= pi - pj < l (the band) or pi - pj is a positive multiple of l; the
 * band pass runs query tiles over the band, the class pass one causal
 * attention per residue class r = pi mod l. In both, each block of 16 lanes
 * computes only the keys its own rows see (block_scores), not the whole
 * tile's. Without split heads the class pass leaves delta = 0 to the band
 * (so no key is counted twice): row t of a class sees the class keys s < t,
 * and its result is merged into the band's O and LSE. With split heads, odd
 * heads see only the class keys s <= t and even heads only the band.
 *
 * A class's Q rows are read in place (rows r, r + l, ... of Q, K, V are a
 * tensor view with l times the row stride); its K and V rows are copied
 * key tile by key tile into contiguous tiles (class_pack). Tasks are
 * independent, each in a fixed order, and the class pass starts after the
 * band pass: bitwise identical for any thread count. */
#include "flash_split.h"

#include <omp.h>
#include <stdint.h>

int flash_split_fits(const attn_args *a, const char **why)
{
    const attn_mask *m = &a->mask;
    const char *no = NULL;
    if (m->kind != ATTN_MASK_STRIDED || m->fixed)
        no = "a strided mask (not fixed)";
    else if (!m->causal)
        no = "a causal strided mask";
    else if (a->seq_len || a->kv_len)
        no = "a batch without seq_len or kv_len";
    else if (a->Nq != a->Nk || a->q_off != a->k_off)
        no = "self-attention (Nq == Nk, q_off == k_off)";
    else if (m->split_heads && a->H != a->H_kv)
        no = "split heads only with H_kv == H";
    if (why)
        *why = no;
    return no == NULL;
}

/* Per block of 16 lanes (one vector) its own run of keys: block x0/16 reads
 * rows kb[x0/16] .. kb[x0/16] + kn[x0/16] - 1 of K (row stride ksn) into
 * rows 0 .. kn - 1 of its columns of S^T (nk x lanes); its other rows of S^T
 * are left as they are, for the caller's per-lane mask to set to -inf. A
 * tile of 64 rows of a band l wide sees 64 + l - 1 keys, of which each row
 * attends l; a block of 16 sees 16 + l - 1 (at l = 128: 143 keys per row
 * computed instead of 191). */
static double block_scores(int64_t lanes, int64_t D, const float *k, int64_t ksn, const int64_t *kb,
                           const int64_t *kn, const float *qt, float *S)
{
    double flops = 0;
    for (int64_t x0 = 0; x0 < lanes; x0 += 16)
        if (kn[x0 / 16] > 0)
            flops += attn_mk_gemm(kn[x0 / 16], 16, D, k + kb[x0 / 16] * ksn, ksn, 1, qt + x0, lanes, S + x0, lanes,
                                  ATTN_MK_SET, NULL, NULL);
    return flops;
}

/* acc^T = acc^T diag(alpha) + V^T P^T per block of 16 lanes over its keys
 * (block_scores). A block without keys in this tile is left alone: its
 * lanes' maximum did not move, so alpha is 1 (or its acc is still 0). */
static double block_pv(int64_t lanes, int64_t D, const float *v, int64_t vsn, const int64_t *kb, const int64_t *kn,
                       const float *S, const float *alpha, float *acc)
{
    double flops = 0;
    for (int64_t x0 = 0; x0 < lanes; x0 += 16)
        if (kn[x0 / 16] > 0)
            flops += attn_mk_gemm(D, 16, kn[x0 / 16], v + kb[x0 / 16] * vsn, 1, vsn, S + x0, lanes, acc + x0, lanes,
                                  ATTN_MK_SCALE_ADD, alpha + x0, NULL);
    return flops;
}

/* One key tile of nk keys for every block of lanes (keys kb.. of K and V,
 * kn of them per block): S^T = K Q^T per block, each lane masked to its
 * [lo, hi), the online-softmax step, acc^T = acc^T diag(alpha) + V^T P^T. */
static void block_tile_step(int64_t lanes, int64_t D, int64_t nk, const float *k, int64_t ksn, const float *v,
                            int64_t vsn, const int64_t *kb, const int64_t *kn, const float *qt, float *S, float *acc,
                            const flash_lane_state *st, flash_tally *t)
{
    memcpy(st->tmax, st->m, sizeof(float) * (size_t)lanes);
    t->flops += block_scores(lanes, D, k, ksn, kb, kn, qt, S);
    flash_mask_lanes(S, nk, lanes, st->lo, st->hi);
    flash_lanes_max(S, nk, lanes, st->tmax);
    flash_lanes_online_softmax(S, nk, lanes, st->tmax, st->m, st->l, st->alpha, st->shift);
    t->flops += block_pv(lanes, D, v, vsn, kb, kn, S, st->alpha, acc);
    t->exps += (double)((nk + 1) * lanes);
    t->bytes += 8.0 * (double)(nk * D);
}

/* The keys of query row n's band: [n - l + 1, n], clipped at 0. */
static int64_t band_lo(int64_t n, int64_t l)
{
    return n - l + 1 > 0 ? n - l + 1 : 0;
}

/* Per lane block of the band tile i0 .. i0+nb-1 (lane g*nb + i is row i0 + i)
 * the union of its rows' bands: keys [start[k], start[k] + len[k]). */
static void band_blocks(int64_t i0, int64_t nb, int64_t G, int64_t lanes, int64_t l, int64_t *start, int64_t *len)
{
    for (int64_t x0 = 0; x0 < lanes; x0 += 16) {
        int64_t lo = INT64_MAX, hi = 0;
        for (int64_t x = x0; x < x0 + 16 && x < G * nb; x++) {
            int64_t n = i0 + x % nb, a = band_lo(n, l);
            lo = a < lo ? a : lo, hi = n + 1 > hi ? n + 1 : hi;
        }
        start[x0 / 16] = hi > 0 ? lo : 0, len[x0 / 16] = hi > 0 ? hi - lo : 0;
    }
}

/* The band of query rows [i0, i0 + nb) of heads hk*G .. hk*G + G - 1: row n
 * attends keys n - l + 1 .. n. Each block of 16 lanes runs over its own keys
 * in steps of bc (block_scores), every lane masked to its own row's band. */
static void band_tile_forward(const attn_args *a, const flash_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                              int64_t i0, float *ws, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, l = a->mask.stride, nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
    int64_t lanes = flash_round16(G * nb), blocks = lanes / 16;
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes);
    float *acc = flash_take(&ws, D * lanes);
    flash_lane_state st;
    flash_lane_state_take(&ws, lanes, &st);
    int64_t *start = (int64_t *)flash_take(&ws, 2 * blocks), *len = (int64_t *)flash_take(&ws, 2 * blocks);
    int64_t *kb = (int64_t *)flash_take(&ws, 2 * blocks), *kn = (int64_t *)flash_take(&ws, 2 * blocks);

    flash_lanes_pack_q(&io->q, b, hk * G, G, i0, nb, lanes, (float)attn_scale(a), qt);
    memset(acc, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 4.0 * (double)(G * nb * D);
    band_blocks(i0, nb, G, lanes, l, start, len);
    int64_t most = 0;
    for (int64_t k = 0; k < blocks; k++)
        most = len[k] > most ? len[k] : most;

    for (int64_t c0 = 0; c0 < most; c0 += pl->bc) {
        int64_t nk = most - c0 < pl->bc ? most - c0 : pl->bc;
        for (int64_t k = 0; k < blocks; k++) {
            kb[k] = start[k] + c0;
            kn[k] = len[k] - c0 < 0 ? 0 : len[k] - c0 > nk ? nk : len[k] - c0;
        }
        for (int64_t x = 0; x < lanes; x++) { /* row n's band in its block's keys; padding lanes see none */
            int64_t n = i0 + x % nb, j = kb[x / 16];
            int64_t u = x < G * nb ? band_lo(n, l) - j : 0, w = x < G * nb ? n + 1 - j : 0;
            st.lo[x] = (int32_t)(u < 0 ? 0 : u > nk ? nk : u), st.hi[x] = (int32_t)(w < 0 ? 0 : w > nk ? nk : w);
        }
        const float *k = attn_at(&io->k, b, hk, 0), *v = attn_at(&io->v, b, hk, 0);
        block_tile_step(lanes, D, nk, k, io->k.sn, v, io->v.sn, kb, kn, qt, S, acc, &st, t);
        t->computed += (double)G;
    }
    flash_lanes_store_o(a, io, b, hk * G, G, i0, NULL, nb, lanes, acc, st.m, st.l);
}

/* The band of every query tile of the KV heads hk0, hk0 + hk_step, ... */
static void band_pass(const attn_ctx *ctx, const flash_plan *pl, const attn_io *io, int64_t hk0, int64_t hk_step)
{
    const attn_args *a = &ctx->args;
    int64_t n_kv = (a->H_kv - hk0 + hk_step - 1) / hk_step, tasks = a->B * n_kv * pl->nqt;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bh = task / pl->nqt;
            band_tile_forward(a, pl, io, bh / n_kv, hk0 + bh % n_kv * hk_step, task % pl->nqt * pl->br, ws, &t);
        }
        flash_tally_flush(&t);
    }
}

/* Rows r, r + l, r + 2l, ... below n of t as a tensor of its own. */
static attn_tensor class_view(const attn_tensor *t, int64_t r, int64_t l, int64_t n)
{
    attn_tensor v = *t;
    v.data += r * t->sn;
    v.sn = l * t->sn;
    v.N = (n - r + l - 1) / l;
    return v;
}

/* Row r0 + i*l's band result (O, LSE) merged with its class result (acc / l2,
 * lse2 = m2 + ln l2) by their log-sum-exp; a row without class keys keeps
 * the band's result. */
static void merge_row(float *o, float *lse, const float *acc, int64_t lanes, int64_t D, float m2, float l2)
{
    if (!(l2 > 0))
        return;
    float lse2 = m2 + logf(l2), mx = fmaxf(*lse, lse2);
    float w1 = *lse == -INFINITY ? 0.0f : expf(*lse - mx), w2 = expf(lse2 - mx), s = w1 + w2;
    float c1 = w1 / s, c2 = w2 / (s * l2);
    for (int64_t d = 0; d < D; d++)
        o[d] = c1 * o[d] + c2 * acc[d * lanes];
    *lse = mx + logf(s);
}

/* Class rows t0 .. t0+nb-1 (class r) of heads h0..h0+G-1: stored as the
 * tiled forward stores them, or merged into the band's result. */
static void class_store(const attn_args *a, const attn_io *io, int64_t b, int64_t h0, int64_t G, int64_t r,
                        int64_t t0, int64_t nb, int64_t lanes, const float *acc, const float *m, const float *l,
                        int merge)
{
    int64_t stride = a->mask.stride;
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            int64_t lane = g * nb + i, n = r + (t0 + i) * stride;
            float *o = attn_at(&io->o, b, h0 + g, n), *lse = io->lse + (b * a->H + h0 + g) * a->Nq + n;
            if (merge) {
                merge_row(o, lse, acc + lane, lanes, a->D, m[lane], l[lane]);
                continue;
            }
            for (int64_t d = 0; d < a->D; d++)
                o[d] = l[lane] > 0 ? acc[d * lanes + lane] / l[lane] : 0.0f;
            *lse = l[lane] > 0 ? m[lane] + logf(l[lane]) : -INFINITY;
        }
}

/* Class rows [j0, j0 + nk) of K and V (views with l times the row stride)
 * copied into contiguous tiles kp and vp (nk x D). In place, the rows lie
 * l * D * 4 bytes apart (32 KiB at l = 128, D = 64), a power of two whenever
 * l and D are, so a class's rows share a few cache sets; the products of
 * the blocks of 16 lanes read them once per block. */
static void class_pack(const attn_tensor *k, const attn_tensor *v, int64_t b, int64_t hk, int64_t j0, int64_t nk,
                       int64_t D, float *kp, float *vp)
{
    for (int64_t j = 0; j < nk; j++) {
        memcpy(kp + j * D, attn_at(k, b, hk, j0 + j), sizeof(float) * (size_t)D);
        memcpy(vp + j * D, attn_at(v, b, hk, j0 + j), sizeof(float) * (size_t)D);
    }
}

/* Key range [0, t + e - j0) of each class row t = t0 + i within the key tile
 * from j0 of nk keys, clamped to it (lane g*nb + i); padding lanes see no
 * key. Also per block of 16 lanes the keys its rows see (block_scores),
 * counted from the tile's first key. */
static void class_ranges(int64_t t0, int64_t nb, int64_t G, int64_t e, int64_t j0, int64_t nk, int64_t lanes,
                         int32_t *lo, int32_t *hi, int64_t *kb, int64_t *kn)
{
    for (int64_t x = 0; x < lanes; x++) {
        int64_t h = x < G * nb ? t0 + x % nb + e - j0 : 0;
        lo[x] = 0, hi[x] = (int32_t)(h < 0 ? 0 : h > nk ? nk : h);
    }
    for (int64_t x0 = 0; x0 < lanes; x0 += 16) {
        int32_t most = 0;
        for (int64_t x = x0; x < x0 + 16; x++)
            most = hi[x] > most ? hi[x] : most;
        kb[x0 / 16] = 0, kn[x0 / 16] = most; /* rows of the tile's packed copy */
    }
}

/* The causal attention of class r, KV head hk, class rows [t0, t0 + br):
 * row t sees class keys s < t + e (e = 0 leaves delta = 0 to the band).
 * Each block of 16 lanes computes only the keys its rows see. */
static void class_tile_forward(const attn_args *a, const flash_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                               int64_t r, int64_t t0, int64_t e, float *ws, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, l = a->mask.stride;
    attn_tensor q = class_view(&io->q, r, l, a->Nq), k = class_view(&io->k, r, l, a->Nk);
    attn_tensor v = class_view(&io->v, r, l, a->Nk);
    int64_t nb = q.N - t0 < pl->br ? q.N - t0 : pl->br, lanes = flash_round16(G * nb), blocks = lanes / 16;
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes);
    float *acc = flash_take(&ws, D * lanes);
    flash_lane_state st;
    flash_lane_state_take(&ws, lanes, &st);
    int64_t *kb = (int64_t *)flash_take(&ws, 2 * blocks), *kn = (int64_t *)flash_take(&ws, 2 * blocks);
    float *kp = flash_take(&ws, pl->bc * D), *vp = flash_take(&ws, pl->bc * D);

    flash_lanes_pack_q(&q, b, hk * G, G, t0, nb, lanes, (float)attn_scale(a), qt);
    memset(acc, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 4.0 * (double)(G * nb * D);

    int64_t kend = t0 + nb - 1 + e; /* the last row's keys end here */
    for (int64_t j0 = 0; j0 < kend; j0 += pl->bc) {
        int64_t nk = kend - j0 < pl->bc ? kend - j0 : pl->bc;
        class_ranges(t0, nb, G, e, j0, nk, lanes, st.lo, st.hi, kb, kn);
        class_pack(&k, &v, b, hk, j0, nk, D, kp, vp);
        block_tile_step(lanes, D, nk, kp, D, vp, D, kb, kn, qt, S, acc, &st, t);
        t->computed += (double)G;
    }
    class_store(a, io, b, hk * G, G, r, t0, nb, lanes, acc, st.m, st.l, e == 0);
}

/* Every class of the KV heads hk0, hk0 + hk_step, ...; tasks run the
 * classes' query tiles, the longest (last) tiles first. */
static void class_pass(const attn_ctx *ctx, const flash_plan *pl, const attn_io *io, int64_t hk0, int64_t hk_step,
                       int64_t e)
{
    const attn_args *a = &ctx->args;
    int64_t l = a->mask.stride, classes = l < a->Nq ? l : a->Nq;
    int64_t per_class = ((a->Nq + l - 1) / l + pl->br - 1) / pl->br; /* tiles of the longest class */
    int64_t n_kv = (a->H_kv - hk0 + hk_step - 1) / hk_step, tasks = a->B * n_kv * classes * per_class;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t tile = per_class - 1 - task % per_class, rest = task / per_class;
            int64_t r = rest % classes, bh = rest / classes;
            if (tile * pl->br < (a->Nq - r + l - 1) / l) /* shorter classes have fewer tiles */
                class_tile_forward(a, pl, io, bh / n_kv, hk0 + bh % n_kv * hk_step, r, tile * pl->br, e, ws, &t);
        }
        flash_tally_flush(&t);
    }
}

void flash_split_forward(const attn_ctx *ctx, const flash_plan *pl, const attn_io *io)
{
    int split = ctx->args.mask.split_heads;
    band_pass(ctx, pl, io, 0, split ? 2 : 1);
    class_pass(ctx, pl, io, split ? 1 : 0, split ? 2 : 1, split ? 1 : 0);
}
