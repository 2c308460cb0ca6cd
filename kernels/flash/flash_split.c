/* The split path of `flash` (flash_split.h). Position pi attends pj when
 * 0 <= pi - pj < l (the band) or pi - pj is a positive multiple of l; the
 * band pass runs the tiled forward with the band as a causal window mask,
 * the class pass one causal attention per residue class r = pi mod l.
 * Without split heads the class pass leaves delta = 0 to the band (so no
 * key is counted twice): row t of a class sees the class keys s < t, and
 * its result is merged into the band's O and LSE. With split heads, odd
 * heads see only the class keys s <= t and even heads only the band.
 *
 * A class is read in place: rows r, r + l, ... of Q, K, V are a tensor view
 * with l times the row stride, which attn_mk_gemm takes as its broadcast
 * operand's stride. Tasks are independent, each in a fixed order, and the
 * class pass starts after the band pass: bitwise identical for any thread
 * count. */
#include "flash_split.h"

#include <omp.h>

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

/* Key range [0, t + e - j0) of each class row t = t0 + i within the key tile
 * from j0 of nk keys, clamped to it (lane g*nb + i); padding lanes take the
 * whole tile. */
static void class_ranges(int64_t t0, int64_t nb, int64_t G, int64_t e, int64_t j0, int64_t nk, int64_t lanes,
                         int32_t *lo, int32_t *hi)
{
    for (int64_t i = 0; i < nb; i++) {
        int64_t h = t0 + i + e - j0;
        h = h < 0 ? 0 : h > nk ? nk : h;
        for (int64_t g = 0; g < G; g++)
            lo[g * nb + i] = 0, hi[g * nb + i] = (int32_t)h;
    }
    for (int64_t x = G * nb; x < lanes; x++)
        lo[x] = 0, hi[x] = (int32_t)nk;
}

/* The causal attention of class r, KV head hk, class rows [t0, t0 + br):
 * row t sees class keys s < t + e (e = 0 leaves delta = 0 to the band). */
static void class_tile_forward(const attn_args *a, const flash_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                               int64_t r, int64_t t0, int64_t e, float *ws, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, l = a->mask.stride;
    attn_tensor q = class_view(&io->q, r, l, a->Nq), k = class_view(&io->k, r, l, a->Nk);
    attn_tensor v = class_view(&io->v, r, l, a->Nk);
    int64_t nb = q.N - t0 < pl->br ? q.N - t0 : pl->br, lanes = flash_round16(G * nb);
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes);
    float *acc = flash_take(&ws, D * lanes);
    float *m = flash_take(&ws, lanes), *sum = flash_take(&ws, lanes);
    float *alpha = flash_take(&ws, lanes), *shift = flash_take(&ws, lanes);
    int32_t *lo = (int32_t *)flash_take(&ws, lanes), *hi = (int32_t *)flash_take(&ws, lanes);
    float *tmax = flash_take(&ws, lanes);

    flash_lanes_pack_q(&q, b, hk * G, G, t0, nb, lanes, (float)attn_scale(a), qt);
    memset(acc, 0, sizeof(float) * (size_t)(D * lanes));
    for (int64_t x = 0; x < lanes; x++)
        m[x] = -INFINITY, sum[x] = 0;
    t->bytes += 4.0 * (double)(G * nb * D);

    int64_t kend = t0 + nb - 1 + e; /* the last row's keys end here */
    for (int64_t j0 = 0; j0 < kend; j0 += pl->bc) {
        int64_t nk = kend - j0 < pl->bc ? kend - j0 : pl->bc;
        int full = j0 + nk <= t0 + e; /* the first row sees the whole tile */
        // S^T (nk, lanes) = K_class[j0 : j0+nk] (nk, D) @ qt (D, lanes), tmax = max(m, max_j S^T)
        memcpy(tmax, m, sizeof(float) * (size_t)lanes);
        t->flops += attn_mk_gemm(nk, lanes, D, attn_at(&k, b, hk, j0), k.sn, 1, qt, lanes, S, lanes, ATTN_MK_SET,
                                 NULL, full ? tmax : NULL);
        if (!full) {
            class_ranges(t0, nb, G, e, j0, nk, lanes, lo, hi);
            flash_mask_lanes(S, nk, lanes, lo, hi);
            flash_lanes_max(S, nk, lanes, tmax);
        }
        flash_lanes_online_softmax(S, nk, lanes, tmax, m, sum, alpha, shift);
        // acc^T (D, lanes) = acc^T * diag(alpha) + V_class[..]^T (D, nk) @ P^T (nk, lanes)
        t->flops += attn_mk_gemm(D, lanes, nk, attn_at(&v, b, hk, j0), 1, v.sn, S, lanes, acc, lanes,
                                 ATTN_MK_SCALE_ADD, alpha, NULL);
        t->exps += (double)((nk + 1) * lanes);
        t->computed += (double)G;
        t->bytes += 8.0 * (double)(nk * D);
    }
    class_store(a, io, b, hk * G, G, r, t0, nb, lanes, acc, m, sum, e == 0);
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
    const attn_args *a = &ctx->args;
    attn_args band = *a;
    band.mask = attn_mask_default(ATTN_MASK_WINDOW);
    band.mask.wl = a->mask.stride - 1, band.mask.wr = 0, band.mask.causal = 1;
    band.mask.bound_n = a->mask.bound_n;
    flash_plan bpl = *pl;
    bpl.mask_ld = 0; /* the band is one key range per row */
    int split = a->mask.split_heads;
    flash_tiled_forward(ctx, &band, &bpl, io, 0, split ? 2 : 1);
    class_pass(ctx, pl, io, split ? 1 : 0, split ? 2 : 1, split ? 1 : 0);
}
