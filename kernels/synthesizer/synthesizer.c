/* `synthesizer`: Synthesizer attention (Tay, Bahri, Metzler, Juan, Zhao,
 * Zheng, "Synthesizer: Rethinking Self-Attention in Transformer Models",
 * ICML 2021; docs/kernels/synthesizer.md). Per head, the logits of query i
 * over key j come from learned weights instead of (or beside) q_i . k_j:
 *
 *   random      s_ij = R_ij                             R  [L x L]
 *   factorized  s_ij = sum_c R1_ic R2_cj                R1 [L x k], R2 [k x L]
 *   dense       s_i  = W2 relu(W1 x_i + b1) + b2        (first Nk of the L entries)
 *   dot=1       s_ij += sc q_i . k_j
 *   O = softmax(s + mask bias) V,  lse = ln sum_j exp(s_ij)
 *
 * L is the longest sequence the weights serve (max_len); row i and column j
 * read R at [i, j] as LRA's code slices R[:Nq, :Nk]. The dense form's x is the
 * Q input (the attention block's q projection of the token, as for `gam`).
 *
 * Forward per task (b, head, tile of T query rows): the logits tile by
 * cblas_sgemm (R1 R2, the two dense layers, q K^T), the mask, a row softmax
 * in fp32 writing lse, then P V (sgemm). Tasks are independent: bitwise
 * identical for any thread count. */
#include "synthesizer_internal.h"

#include "common/rng.h"
#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static const char *const syn_modes[] = {"random", "factorized_random", "dense", NULL};

static const opt_def syn_params[] = {
    {.name = "mode", .type = OPT_ENUM, .names = syn_modes, .def = SYN_FACTORIZED,
     .help = "synthetic logits: random R, factorized_random R1 R2, dense per-token MLP"},
    {.name = "k", .type = OPT_INT, .def = 32, .lo = 1, .hi = 1 << 16, .help = "rank of factorized_random"},
    {.name = "dot", .type = OPT_INT, .def = 1, .lo = 0, .hi = 1,
     .help = "1: add q k^T / sqrt(D) to the synthetic logits (LRA's ignore_dot_product=False)"},
    {.name = "max_len", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 20,
     .help = "longest sequence the weights serve (0: the problem's N)"},
    {.name = "tile", .type = OPT_INT, .def = 64, .lo = 1, .hi = 1 << 16, .help = "query rows per task"},
    {0},
};

void syn_layout(syn_plan *pl, int64_t D, int64_t L)
{
    pl->L = L;
    pl->off_b = pl->off_w2 = pl->off_b2 = 0;
    switch (pl->mode) {
    case SYN_RANDOM:
        pl->W = L * L;
        break;
    case SYN_FACTORIZED:
        pl->off_b = L * pl->k;
        pl->W = 2 * L * pl->k;
        break;
    case SYN_DENSE:
        pl->off_b = D * D;
        pl->off_w2 = pl->off_b + D;
        pl->off_b2 = pl->off_w2 + L * D;
        pl->W = pl->off_b2 + L;
        break;
    }
}

int syn_plan_make(syn_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "synthesizer", syn_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->mode = (syn_mode)attn_param_enum(a, syn_params, "mode", &rc);
    pl->k = attn_param_int(a, syn_params, "k", &rc);
    pl->dot = (int)attn_param_int(a, syn_params, "dot", &rc);
    pl->max_len = attn_param_int(a, syn_params, "max_len", &rc);
    pl->T = attn_param_int(a, syn_params, "tile", &rc);
    if (rc)
        return rc;
    if (!pl->dot && a->scale != 0) /* the synthetic logits are not scaled */
        return attn_fail(ATTN_EINVAL, "synthesizer: scale=%g is set but dot=0 has no q k^T to scale; expected "
                                      "dot=1 with it", a->scale);
    pl->ntiles = (a->Nq + pl->T - 1) / pl->T;
    int64_t n = a->Nq > a->Nk ? a->Nq : a->Nk;
    syn_layout(pl, a->D, pl->max_len ? pl->max_len : (n > 0 ? n : 1));
    return 0;
}

/* The L whose row holds W floats, or 0 when none does. */
static int64_t syn_len_of_cols(const syn_plan *pl, int64_t D, int64_t W)
{
    int64_t L = 0;
    switch (pl->mode) {
    case SYN_RANDOM:
        L = (int64_t)llround(sqrt((double)W));
        return L * L == W ? L : 0;
    case SYN_FACTORIZED:
        return W % (2 * pl->k) == 0 ? W / (2 * pl->k) : 0;
    case SYN_DENSE:
        L = W - D * D - D;
        return L > 0 && L % (D + 1) == 0 ? L / (D + 1) : 0;
    }
    return 0;
}

int syn_layout_of_cols(syn_plan *pl, const attn_args *a, int64_t W)
{
    int64_t L = W > 0 ? syn_len_of_cols(pl, a->D, W) : 0;
    if (L < 1)
        return attn_fail(ATTN_EINVAL, "synthesizer: io.w: expected a weight row of mode %s for some max_len, "
                                      "found %lld floats per head", syn_modes[pl->mode], (long long)W);
    if (pl->max_len && L != pl->max_len)
        return attn_fail(ATTN_EINVAL, "synthesizer: io.w holds weights for max_len=%lld, expected max_len=%lld",
                         (long long)L, (long long)pl->max_len);
    if (a->Nq > L || a->Nk > L)
        return attn_fail(ATTN_EINVAL, "synthesizer: expected N <= max_len=%lld (the length the learned weights "
                                      "serve), found Nq=%lld Nk=%lld", (long long)L, (long long)a->Nq, (long long)a->Nk);
    syn_layout(pl, a->D, L);
    return 0;
}

/* forward: S [T x Nk], Hd [T x D]; backward (synthesizer_bwd.c): P and dS
 * [T x Nk], Hd and dHd [T x D] */
size_t syn_fwd_floats(const syn_plan *pl, const attn_args *a)
{
    return (size_t)(SYN_ROUND16(pl->T * a->Nk) + SYN_ROUND16(pl->T * a->D));
}

size_t syn_bwd_floats(const syn_plan *pl, const attn_args *a)
{
    return 2 * syn_fwd_floats(pl, a);
}

static int syn_init(attn_ctx *ctx, const attn_args *a)
{
    syn_plan pl;
    int rc = syn_plan_make(&pl, a);
    if (rc)
        return rc;
    if (pl.max_len && (a->Nq > pl.max_len || a->Nk > pl.max_len))
        return attn_fail(ATTN_EINVAL, "synthesizer: expected N <= max_len=%lld, found Nq=%lld Nk=%lld",
                         (long long)pl.max_len, (long long)a->Nq, (long long)a->Nk);
    size_t per = a->backward ? syn_bwd_floats(&pl, a) : syn_fwd_floats(&pl, a);
    ctx->workspace_bytes = sizeof(float) * per * (size_t)a->threads;
    return 0;
}

/* ---- logits ---- */

/* Columns [0, nk) of the synthetic logits of rows [i0, i0 + nb), row stride Nk. */
static void syn_synthetic(const syn_plan *pl, const attn_args *a, const syn_head *hd, int64_t i0, int64_t nb,
                          int64_t nk, float *S, float *Hd)
{
    int64_t Nk = a->Nk, D = a->D, L = pl->L, k = pl->k;
    const float *w = hd->w;
    switch (pl->mode) {
    case SYN_RANDOM:
        for (int64_t r = 0; r < nb; r++)
            memcpy(S + r * Nk, w + (i0 + r) * L, sizeof(float) * (size_t)nk);
        break;
    case SYN_FACTORIZED:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)nk, (int)k, 1.0f, w + i0 * k, (int)k,
                    w + pl->off_b, (int)L, 0.0f, S, (int)Nk);
        break;
    case SYN_DENSE:
        for (int64_t r = 0; r < nb; r++) {
            memcpy(Hd + r * D, w + pl->off_b, sizeof(float) * (size_t)D);
            memcpy(S + r * Nk, w + pl->off_b2, sizeof(float) * (size_t)nk);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)D, (int)D, 1.0f, hd->q + i0 * hd->ldq,
                    (int)hd->ldq, w, (int)D, 1.0f, Hd, (int)D);
        for (int64_t e = 0; e < nb * D; e++)
            Hd[e] = Hd[e] > 0 ? Hd[e] : 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)D, 1.0f, Hd, (int)D,
                    w + pl->off_w2, (int)D, 1.0f, S, (int)Nk);
        break;
    }
}

static int syn_is_causal(const attn_args *a) { return a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal; }

/* Keys rows [i0, i0 + nb) of sequence b may attend: the sequence's keys, cut
 * under the causal mask after the last row's position (j <= q_off + i - k_off). */
static int64_t syn_tile_keys(const attn_args *a, int64_t b, int64_t i0, int64_t nb)
{
    int64_t nk = attn_kv_len(a, b), last = a->q_off + i0 + nb - a->k_off;
    return !syn_is_causal(a) ? nk : last < 0 ? 0 : last < nk ? last : nk;
}

int64_t syn_logits(const syn_plan *pl, const attn_args *a, const syn_head *hd, int64_t b, int64_t i0, int64_t nb,
                   float *S, float *Hd)
{
    int64_t Nk = a->Nk, D = a->D, nk = syn_tile_keys(a, b, i0, nb);
    if (nk == 0)
        return 0;
    syn_synthetic(pl, a, hd, i0, nb, nk, S, Hd);
    if (pl->dot)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)D, (float)attn_scale(a),
                    hd->q + i0 * hd->ldq, (int)hd->ldq, hd->k, (int)hd->ldk, 1.0f, S, (int)Nk);
    for (int64_t r = 0; syn_is_causal(a) && r < nb; r++) /* the only masks are full and causal */
        for (int64_t j = a->q_off + i0 + r - a->k_off + 1; j < nk; j++)
            if (j >= 0)
                S[r * Nk + j] = -INFINITY;
    return nk;
}

/* ---- forward ---- */

/* Query rows of the tile at i0 that are real (a padded batch's later rows are not). */
static int64_t syn_real_rows(const attn_args *a, int64_t b, int64_t i0, int64_t nb)
{
    int64_t n = attn_q_len(a, b) - i0;
    return n < 0 ? 0 : n < nb ? n : nb;
}

static void syn_tile_forward(const syn_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t h,
                             int64_t i0, int64_t nb, float *scr)
{
    int64_t Nk = a->Nk, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    float *S = scr, *Hd = scr + SYN_ROUND16(pl->T * Nk);
    syn_head hd = {.q = attn_at(&io->q, b, h, 0), .k = attn_at(&io->k, b, hk, 0), .w = attn_at(&io->w, 0, h, 0),
                   .ldq = io->q.sn, .ldk = io->k.sn};
    float *lse = io->lse + (b * a->H + h) * a->Nq + i0;
    int64_t nr = syn_real_rows(a, b, i0, nb), nk = nr > 0 ? syn_logits(pl, a, &hd, b, i0, nr, S, Hd) : 0;
    if (nk == 0) /* no keys for any row of the tile */
        nr = 0;
    if (nr > 0) {
        for (int64_t r = 0; r < nr; r++)
            lse[r] = attn_softmax_row(S + r * Nk, nk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)Dv, (int)nk, 1.0f, S, (int)Nk,
                    attn_at(&io->v, b, hk, 0), (int)io->v.sn, 0.0f, attn_at(&io->o, b, h, i0), (int)io->o.sn);
    }
    for (int64_t r = nr; r < nb; r++) { /* padded rows, rows without keys */
        lse[r] = -INFINITY;
        memset(attn_at(&io->o, b, h, i0 + r), 0, sizeof(float) * (size_t)Dv);
    }
}

/* Executed products of nr rows against Nk keys (logits and P V). */
static double syn_tile_flops(const syn_plan *pl, const attn_args *a, double nr)
{
    double Nk = (double)a->Nk, D = (double)a->D;
    double f = 2 * nr * Nk * (double)attn_dv(a) + (pl->dot ? 2 * nr * Nk * D : 0);
    if (pl->mode == SYN_FACTORIZED)
        f += 2 * nr * Nk * (double)pl->k;
    if (pl->mode == SYN_DENSE)
        f += 2 * nr * D * D + 2 * nr * Nk * D;
    return f;
}

/* Weight floats that nq query rows against nk keys read. */
static double syn_weight_floats(const syn_plan *pl, double D, double nq, double nk)
{
    switch (pl->mode) {
    case SYN_RANDOM:
        return nq * nk;
    case SYN_FACTORIZED:
        return (nq + nk) * (double)pl->k;
    case SYN_DENSE:
        return D * D + D + nk * (D + 1);
    }
    return 0;
}

static void syn_count_forward(const syn_plan *pl, const attn_args *a)
{
    double rows = (double)a->H * attn_batch_rows(a), tiles = (double)(a->B * a->H * pl->ntiles);
    double Nk = (double)a->Nk, D = (double)a->D, Dv = (double)attn_dv(a);
    double qk = (pl->dot || pl->mode == SYN_DENSE ? rows * D : 0) + (pl->dot ? tiles * Nk * D : 0);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)syn_tile_flops(pl, a, rows));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(rows * Nk));
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(sizeof(float) * (qk + tiles * Nk * Dv + tiles * syn_weight_floats(pl, D, (double)pl->T, Nk))));
}

static int syn_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    syn_plan pl;
    int rc = syn_plan_make(&pl, a);
    if (rc || (rc = syn_layout_of_cols(&pl, a, io->w.data ? io->w.D : 0)))
        return rc;
    int64_t tasks = a->B * a->H * pl.ntiles;
    size_t per = a->backward ? syn_bwd_floats(&pl, a) : syn_fwd_floats(&pl, a);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t bh = t / pl.ntiles, i0 = (t % pl.ntiles) * pl.T;
        int64_t nb = a->Nq - i0 < pl.T ? a->Nq - i0 : pl.T;
        syn_tile_forward(&pl, a, io, bh / a->H, bh % a->H, i0, nb,
                         (float *)ctx->workspace + per * (size_t)omp_get_thread_num());
    }
    syn_count_forward(&pl, a);
    return 0;
}

/* ---- weights ---- */

static int64_t syn_input_cols(const attn_args *a, unsigned input)
{
    syn_plan pl;
    if (input != ATTN_IN_WEIGHTS || syn_plan_make(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.W;
}

/* LRA's initialisation (xavier_uniform as flax computes the fans, the head
 * axis counting as receptive field): R on [H, L, L] bound sqrt(6/(2HL)); R1
 * [H, L, k] and R2 [H, k, L] bound sqrt(6/(H(L+k))); dense W1 [D x D] bound
 * sqrt(6/(2D)), W2 [L x D] bound sqrt(6/(D+L)), biases 0 (LRA: N(0, 1e-6)).
 * Small logits: an untrained synthesizer with dot=1 is close to softmax. */
static void syn_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    syn_plan pl;
    if (syn_plan_make(&pl, a))
        return;
    float H = (float)a->H, L = (float)pl.L, D = (float)a->D, k = (float)pl.k;
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, 0x5e7, (uint64_t)h);
        float *x = attn_at(w, 0, h, 0);
        memset(x, 0, sizeof(float) * (size_t)pl.W);
        if (pl.mode == SYN_RANDOM)
            attn_rng_fill_symmetric(&r, x, pl.W, sqrtf(6.0f / (2 * H * L)));
        else if (pl.mode == SYN_FACTORIZED)
            attn_rng_fill_symmetric(&r, x, pl.W, sqrtf(6.0f / (H * (L + k))));
        else {
            attn_rng_fill_symmetric(&r, x, a->D * a->D, sqrtf(6.0f / (2 * D)));
            attn_rng_fill_symmetric(&r, x + pl.off_w2, pl.L * a->D, sqrtf(6.0f / (D + L)));
        }
    }
}

/* ---- cost model ---- */

/* Allowed (query, key) pairs over the batch and heads. */
static double syn_pairs(const attn_args *a)
{
    return attn_density(a) * (double)(a->B * a->H) * (double)a->Nq * (double)a->Nk;
}

/* Useful products: P V (2 Dv per pair), q k^T (2 D per pair, dot=1), R1 R2
 * (2 k per pair), dense: W1 x (2 D^2 per row) and W2 h (2 D per pair).
 * Backward 2x: every forward product has two gradient products (dP and dV;
 * dQ and dK; dR1 and dR2; dW and the input's gradient per dense layer). */
static double syn_flops(const attn_args *a, attn_pass pass)
{
    syn_plan pl;
    if (syn_plan_make(&pl, a))
        return 0;
    double pairs = syn_pairs(a), D = (double)a->D, rows = (double)a->H * attn_batch_rows(a);
    double per_pair = 2 * (double)attn_dv(a) + (pl.dot ? 2 * D : 0) + (pl.mode == SYN_FACTORIZED ? 2 * (double)pl.k : 0) +
                      (pl.mode == SYN_DENSE ? 2 * D : 0);
    double fwd = pairs * per_pair + (pl.mode == SYN_DENSE ? rows * 2 * D * D : 0);
    return pass == ATTN_PASS_FWD ? fwd : 2 * fwd;
}

/* Minimum fp32 traffic: the softmax kernel's (Q, K, V, O, lse; backward
 * also dO and the gradients) plus, per head and sequence, the weights its
 * rows and keys read (forward) or read and write (backward): R's Nq x Nk
 * block, k (Nq + Nk) of R1 and R2, the dense layers' D^2 + D + Nk (D + 1).
 * Counted per sequence, so a padded batch costs what its sequences cost alone. */
static double syn_bytes(const attn_args *a, attn_pass pass)
{
    syn_plan pl;
    if (syn_plan_make(&pl, a))
        return 0;
    double w = 0;
    for (int64_t b = 0; b < a->B; b++)
        w += (double)a->H * syn_weight_floats(&pl, (double)a->D, (double)attn_q_len(a, b), (double)attn_kv_len(a, b));
    return attn_softmax_bytes(a, pass) + 4 * (pass == ATTN_PASS_FWD ? w : 2 * w);
}

/* A decoder would keep V (and K for dot=1) of the past keys: the KV cache. */
static size_t syn_state_bytes(const attn_args *a)
{
    syn_plan pl;
    if (syn_plan_make(&pl, a))
        return 0;
    size_t kv = attn_kv_state_bytes(a);
    return pl.dot ? kv : kv / 2;
}

const attn_kernel attn_kernel_synthesizer = {
    .name = "synthesizer",
    .family = "synthesizer",
    .reference = "Tay et al. 2021, Synthesizer: Rethinking Self-Attention in Transformer Models (ICML)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = syn_params,
    .notes = "learned logits R[i,j] sliced to Nq x Nk (io.w; max_len from its size); dense: x = Q input",
    .init = syn_init,
    .forward = syn_forward,
    .backward = attn_synthesizer_backward,
    .flops = syn_flops,
    .bytes = syn_bytes,
    .state_bytes = syn_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_synthesizer_ref_forward,
    .input_cols = syn_input_cols,
    .init_weights = syn_init_weights,
    .check_params = "k=4",
    .ref_view = attn_synthesizer_ref_view,
};
