/* `sigmoid` forward and its double reference (Ramapuram et al. 2024;
 * docs/kernels/sigmoid.md). The loop is the flash forward (flash.c) without the
 * online softmax: one task is a query tile of br rows for the G query heads
 * of a KV head, walking the key tiles in ascending order; each visited tile
 * computes S^T = K (sc Q)^T, P^T = sigma(S^T + b) and Acc^T += V^T P^T. With
 * no running max or normaliser nothing is rescaled and the output is Acc.
 * Tiles the mask classifies EMPTY are skipped, FULL ones run without
 * predicates, PARTIAL ones get -inf scores (sigma(-inf) = 0) off the mask,
 * from the row ranges of interval masks or the element predicate otherwise.
 *
 * Tasks are independent and each runs in a fixed order, so results are
 * bitwise identical for any thread count. lse is not written: sigmoid
 * attention has no normaliser (sigmoid.h). */
#include "sigmoid_internal.h"

#include "kernels/flash/flash_internal.h"

#include <errno.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* bias=<float> or bias=row; default -ln Nk (constant even when causal, as in
 * the paper's recommended b = -ln n for sequence length n), on a padded batch
 * -ln of each sequence's own length, so that it equals its run alone. */
static int sig_parse_bias(const attn_args *a, sig_plan *pl)
{
    pl->row_bias = 0;
    pl->bias = -logf((float)a->Nk);
    pl->seq_bias = a->seq_len != NULL;
    for (int p = 0; p < a->params.n; p++) {
        if (strcmp(a->params.key[p], "bias") != 0)
            continue;
        const char *s = a->params.val[p];
        pl->seq_bias = 0;
        if (strcmp(s, "row") == 0) {
            pl->row_bias = 1;
            continue;
        }
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (*s == '\0' || *end != '\0' || errno || !isfinite(v) || fabs(v) > 1e30)
            return attn_fail(ATTN_EINVAL, "param bias: expected a finite number or 'row', found '%s'", s);
        pl->row_bias = 0;
        pl->bias = (float)v;
    }
    return 0;
}

static const opt_def sig_params[] = {
    FLASH_TILE_PARAMS,
    {.name = "bias", .type = OPT_STRING, .size = 64, .def_str = "-ln(Nk)",
     .help = "a number, or 'row' for -ln(#keys the row attends); on a padded batch the default is -ln of each "
             "sequence's length"},
    {0},
};

int attn_sigmoid_plan(sig_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "sigmoid", sig_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    if ((rc = sig_parse_bias(a, pl)) != 0)
        return rc;
    attn_args tiles = *a; /* flash's plan reads br and bc only: the same params without bias */
    tiles.params.n = 0;
    for (int p = 0; p < a->params.n; p++)
        if (strcmp(a->params.key[p], "bias") != 0) {
            memcpy(tiles.params.key[tiles.params.n], a->params.key[p], sizeof a->params.key[p]);
            memcpy(tiles.params.val[tiles.params.n++], a->params.val[p], sizeof a->params.val[p]);
        }
    if ((rc = attn_flash_plan(&pl->fp, &tiles)) != 0)
        return rc;
    const flash_plan *f = &pl->fp;
    int64_t D = a->D;
    /* forward: Q^T, S^T, Acc^T, bias lanes, lane mask */
    int64_t fwd = 2 * D * f->rows + f->bc * f->rows + f->rows + sig_lane_mask_floats(a, f->rows, f->bc) + 64;
    int64_t slot = fwd;
    if (a->backward) {
        /* dQ pass: Q^T, dO^T, dQ^T, P^T, dS^T, bias lanes, lane mask */
        int64_t bwd_q = 3 * D * f->brp + 2 * f->bc * f->brp + f->brp + sig_lane_mask_floats(a, f->brp, f->bc) + 64;
        /* dK/dV pass: K^T, V^T, dK^T, dV^T, P, dS, mask bytes of br rows */
        int64_t bwd_kv = 4 * D * f->bcp + 2 * f->br * f->bcp + flash_round16(f->br * f->bc / 4 + 1) + 64;
        slot = bwd_q > slot ? bwd_q : slot;
        slot = bwd_kv > slot ? bwd_kv : slot;
    }
    pl->thread_floats = (size_t)flash_round16(slot);
    pl->bias_floats = pl->row_bias ? (size_t)flash_round16(a->B * a->H * a->Nq) : 0;
    return 0;
}

static int sig_init(attn_ctx *ctx, const attn_args *a)
{
    sig_plan pl;
    int rc = attn_sigmoid_plan(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = sizeof(float) * (pl.thread_floats * (size_t)a->threads + pl.bias_floats);
    return 0;
}

/* The default bias of sequence b of a padded batch, in double (the references'). */
static double sig_seq_bias64(const attn_args *a, int64_t b)
{
    return a->seq_len[b] > 0 ? -log((double)a->seq_len[b]) : 0.0;
}

/* -ln(#allowed keys) of query row i of (b, h); 0 when the row sees no key
 * (a padded row of a padded batch sees none). */
static double sig_row_bias_of(const attn_args *a, int64_t b, int64_t h, int64_t i)
{
    double n = i < attn_q_len(a, b) ? attn_mask_pairs(&a->mask, b, h, 1, attn_kv_len(a, b), a->q_off + i, a->k_off) : 0;
    return n > 0 ? -log(n) : 0.0;
}

// rowbias is (B, H, Nq)
float *attn_sigmoid_row_bias(const attn_ctx *ctx, const sig_plan *pl)
{
    if (!pl->row_bias)
        return NULL;
    const attn_args *a = &ctx->args;
    float *rb = (float *)ctx->workspace + pl->thread_floats * (size_t)a->threads;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t bh = 0; bh < a->B * a->H; bh++)
        for (int64_t i = 0; i < a->Nq; i++)
            rb[bh * a->Nq + i] = (float)sig_row_bias_of(a, bh / a->H, bh % a->H, i);
    return rb;
}

void attn_sigmoid_lane_bias(const attn_args *a, const sig_plan *pl, const float *rowbias, int64_t b,
                            int64_t h0, int64_t G, int64_t i0, int64_t nb, int64_t lanes, float *bias)
{
    float seq = attn_sigmoid_seq_bias(pl, a, b); /* one per sequence: out of the lane loop */
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++)
            bias[g * nb + i] = rowbias ? rowbias[(b * a->H + h0 + g) * a->Nq + i0 + i] : seq;
    for (int64_t r = G * nb; r < lanes; r++)
        bias[r] = 0;
}

/* The forward of one task: query rows [i0, i0+nb) of heads hk*G .. hk*G+G-1. */
static void sig_forward_tile(const attn_args *a, const sig_plan *pl, const attn_io *io, const float *rowbias,
                             int64_t b, int64_t hk, int64_t i0, float *ws, flash_tally *t)
{
    const flash_plan *f = &pl->fp;
    int64_t D = a->D, G = f->G, nb = a->Nq - i0 < f->br ? a->Nq - i0 : f->br;
    if (!flash_padded_query_tile(a, &io->o, NULL, b, hk * G, G, i0, &nb)) /* a padded batch ends early */
        return;
    int64_t nkeys = attn_kv_len(a, b);
    int64_t lanes = flash_round16(G * nb);
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, f->bc * lanes);
    float *acc = flash_take(&ws, D * lanes), *bias = flash_take(&ws, lanes);
    sig_lane_mask mk = sig_lane_mask_take(a, &ws, lanes, f->bc);

    flash_lanes_pack_q(&io->q, b, hk * G, G, i0, nb, lanes, (float)attn_scale(a), qt);
    attn_sigmoid_lane_bias(a, pl, rowbias, b, hk * G, G, i0, nb, lanes, bias);
    memset(acc, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 4.0 * (double)(G * nb * D);

    for (int64_t j0 = 0; j0 < nkeys; j0 += f->bc) {
        int64_t nk = nkeys - j0 < f->bc ? nkeys - j0 : f->bc;
        attn_tile kind = flash_tile_kind(a, b, hk * G, G, i0, nb, j0, nk);
        if (kind == ATTN_TILE_EMPTY) {
            t->skipped += (double)G;
            continue;
        }
        int64_t jlo = 0, jhi = nk;
        if (kind == ATTN_TILE_PARTIAL)
            sig_lanes_cut(a, &mk, b, hk * G, G, i0, nb, j0, nk, lanes, &jlo, &jhi);
        nk = jhi - jlo;
        const float *k = attn_at(&io->k, b, hk, j0 + jlo), *v = attn_at(&io->v, b, hk, j0 + jlo);
        // S^T (nk, lanes) = K[j0+jlo : j0+jhi] (nk, D) @ qt (D, lanes); P^T = sigma(S^T + b), 0 off the mask
        t->flops += attn_mk_gemm(nk, lanes, D, k, io->k.sn, 1, qt, lanes, S, lanes, ATTN_MK_SET, NULL, NULL);
        if (kind == ATTN_TILE_PARTIAL)
            sig_lanes_mask(a, &mk, S, jlo, nk, G * nb, lanes);
        sig_lanes_sigmoid(S, nk, lanes, bias);
        // acc^T (D, lanes) += V[..]^T (D, nk) @ P^T (nk, lanes)
        t->flops += attn_mk_gemm(D, lanes, nk, v, 1, io->v.sn, S, lanes, acc, lanes, ATTN_MK_ADD, NULL, NULL);
        t->exps += (double)(nk * lanes);
        t->computed += (double)G;
        t->bytes += 8.0 * (double)(nk * D);
    }
    sig_store_lanes(acc, lanes, &io->o, b, hk * G, G, i0, nb, D, 1.0f);
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D); lse is not written
static int sig_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    sig_plan pl;
    int rc = attn_sigmoid_plan(&pl, a);
    if (rc)
        return rc;
    const float *rowbias = attn_sigmoid_row_bias(ctx, &pl);
    int64_t nqt = pl.fp.nqt, tasks = a->B * a->H_kv * nqt;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = (float *)ctx->workspace + (size_t)omp_get_thread_num() * pl.thread_floats;
        /* dynamic, last query tiles first: causal tiles differ in cost */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t qt = nqt - 1 - task % nqt, bh = task / nqt;
            sig_forward_tile(a, &pl, io, rowbias, bh / a->H_kv, bh % a->H_kv, qt * pl.fp.br, ws, &t);
        }
        flash_tally_flush(&t);
    }
    return 0;
}

/* Stable logistic in double (the reference's twin of attn_sigmoidf). */
static double sig_sigmoid64(double x)
{
    double e = exp(-fabs(x));
    return (x >= 0 ? 1.0 : e) / (1.0 + e);
}

/* The plain double form: every allowed (i, j) of every (b, h) in turn,
 * o_i = sum_j sigma(sc <q_i, k_j> + b_i) v_j. */
static int sig_ref_forward(const attn_args *a, const attn_io64 *io)
{
    sig_plan pl;
    int rc = sig_parse_bias(a, &pl);
    if (rc)
        return rc;
    int64_t G = a->H / a->H_kv, D = a->D;
    double sc = attn_scale(a);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                const double *q = attn_at64(&io->q, b, h, i);
                /* a padded batch: sequence b is its first seq_len[b] rows, the rest stay 0 */
                int64_t nk = i < attn_q_len(a, b) ? attn_kv_len(a, b) : 0;
                double *o = attn_at64(&io->o, b, h, i), n = 0;
                for (int64_t j = 0; j < nk; j++)
                    n += attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j);
                double bias = pl.row_bias    ? (n > 0 ? -log(n) : 0.0)
                              : pl.seq_bias ? sig_seq_bias64(a, b)
                                            : (double)pl.bias;
                memset(o, 0, sizeof(double) * (size_t)D);
                for (int64_t j = 0; j < nk; j++) {
                    if (!attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j))
                        continue;
                    const double *k = attn_at64(&io->k, b, h / G, j), *v = attn_at64(&io->v, b, h / G, j);
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += q[d] * k[d];
                    double p = sig_sigmoid64(sc * s + bias);
                    for (int64_t d = 0; d < D; d++)
                        o[d] += p * v[d];
                }
            }
    return 0;
}

/* The default bias of the full problem, pinned for a prefix of it (gate.c). */
static void sig_ref_prefix_args(const attn_args *full, int64_t b, attn_args *prefix)
{
    sig_plan pl;
    if (sig_parse_bias(full, &pl) || pl.row_bias || prefix->params.n >= PARAM_BAG_MAX)
        return;
    for (int p = 0; p < full->params.n; p++)
        if (strcmp(full->params.key[p], "bias") == 0)
            return; /* a given number is kept as it is */
    char kv[64];
    if (pl.seq_bias) /* the double reference's own value for sequence b (%.17g round-trips a double) */
        snprintf(kv, sizeof kv, "bias=%.17g", sig_seq_bias64(full, b));
    else
        snprintf(kv, sizeof kv, "bias=%.9g", (double)pl.bias); /* %.9g round-trips a float */
    param_bag_add(&prefix->params, kv);
}

const attn_kernel attn_kernel_sigmoid = {
    .name = "sigmoid",
    .family = "sigmoid",
    .reference = "Ramapuram et al. 2024 (sigmoid self-attention)",
    .flags = ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC | ATTN_PADDED | ATTN_GROUP_LOCAL,
    .masks = ATTN_MASK_ALL, /* every kind of mask.h, tiled like flash */
    .params = sig_params,
    .notes = "tiles as flash",
    .init = sig_init,
    .forward = sig_forward,
    .backward = attn_sigmoid_backward,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
    .fini = NULL,
    .ref_forward = sig_ref_forward,
    .ref_prefix_args = sig_ref_prefix_args,
};
