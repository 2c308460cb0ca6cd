/* `tcnca`: dilated depthwise TCN on Q and K, then softmax attention inside
 * chunks (Terzic et al. 2023, arXiv 2312.05605; docs/kernels/tcnca.md). Math
 * and weight layout in tcnca.h.
 *
 * Forward per task (b, h): the TCN over the whole sequence for Q and for K
 * (two ping-pong buffers each, layer by layer), then per chunk the score tile
 * S = sc Q'_c K'_c^T (sgemm nc x nc x D), the causal mask inside the chunk,
 * row softmax with its logsumexp, O_c = P V_c (sgemm). Only the block-
 * diagonal tiles of a chunk mask are formed, as a tiled kernel skips the
 * empty ones; a chunk's c x c tile is small enough to keep whole (c = 128:
 * 64 KiB), so there is no online softmax across key tiles. Tasks are
 * independent: bitwise identical for any thread count. */
#include "tcnca.h"

#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "common/rng.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static const opt_def tcnca_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = 128, .lo = 1, .hi = 1 << 16,
     .help = "tokens per attention chunk (c)"},
    {.name = "taps", .type = OPT_INT, .def = 3, .lo = 1, .hi = 64, .help = "taps per TCN layer (K)"},
    {.name = "base", .type = OPT_INT, .def = 2, .lo = 1, .hi = 16,
     .help = "dilation base f: layer l has dilation f^l"},
    {.name = "layers", .type = OPT_INT, .def = 8, .lo = 0, .hi = 24, .help = "TCN layers (D_t; 0: no TCN)"},
    {0},
};

/* Most tokens a stack may reach (its receptive field), so that dilations
 * and shifts stay far from int64 overflow. */
#define TCNCA_MAX_FIELD ((int64_t)1 << 40)

int64_t attn_tcnca_dilation(const tcnca_plan *pl, int64_t l)
{
    int64_t d = 1;
    for (int64_t i = 0; i < l; i++)
        d *= pl->base;
    return d;
}

int64_t attn_tcnca_shift(const tcnca_plan *pl, int64_t l)
{
    return pl->full ? pl->taps / 2 * attn_tcnca_dilation(pl, l) : 0;
}

int64_t attn_tcnca_receptive_field(const tcnca_plan *pl)
{
    int64_t r = 1;
    for (int64_t l = 0; l < pl->layers; l++)
        r += (pl->taps - 1) * attn_tcnca_dilation(pl, l);
    return r;
}

int attn_tcnca_plan(tcnca_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "tcnca", tcnca_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->c = attn_param_int(a, tcnca_params, "chunk", &rc);
    pl->taps = attn_param_int(a, tcnca_params, "taps", &rc);
    pl->base = attn_param_int(a, tcnca_params, "base", &rc);
    pl->layers = attn_param_int(a, tcnca_params, "layers", &rc);
    if (rc)
        return rc;
    double field = 1;
    for (int64_t l = 0; l < pl->layers; l++)
        field += (double)(pl->taps - 1) * pow((double)pl->base, (double)l);
    if (field > (double)TCNCA_MAX_FIELD)
        return attn_fail(ATTN_EINVAL, "tcnca: expected a receptive field of at most 2^40 tokens, found %.3g "
                                      "(taps=%lld base=%lld layers=%lld)", field, (long long)pl->taps,
                         (long long)pl->base, (long long)pl->layers);
    pl->full = !attn_mask_is_causal(&a->mask);
    pl->sc = attn_scale(a);
    pl->W = pl->layers * pl->taps * a->D;
    return 0;
}

/* ---- workspace: [per-thread scratch][backward dw partials per (b, h)] ---- */

size_t attn_tcnca_thread_floats(const attn_args *a, const tcnca_plan *pl)
{
    size_t nd = TCNCA_ROUND16((size_t)(a->Nq * a->D)), cc = TCNCA_ROUND16((size_t)(pl->c * pl->c));
    size_t lse = TCNCA_ROUND16((size_t)pl->c);
    size_t fwd = 4 * nd + cc + lse; /* ping-pong buffers of Q and K, one score tile */
    /* every layer's input of Q and K, ping-pong gradients of both, P and dP */
    size_t bwd = 2 * (size_t)(pl->layers + 1) * nd + 4 * nd + 2 * cc + lse;
    return a->backward && bwd > fwd ? bwd : fwd;
}

float *attn_tcnca_scratch(const attn_ctx *ctx, const tcnca_plan *pl, int thread)
{
    return (float *)ctx->workspace + (size_t)thread * attn_tcnca_thread_floats(&ctx->args, pl);
}

float *attn_tcnca_dw_partial(const attn_ctx *ctx, const tcnca_plan *pl, int64_t b, int64_t h)
{
    return attn_dw_partial(&ctx->args, attn_tcnca_scratch(ctx, pl, ctx->args.threads), attn_dw_stride(pl->W), b, h);
}

static int tcnca_init(attn_ctx *ctx, const attn_args *a)
{
    tcnca_plan pl;
    int rc = attn_tcnca_plan(&pl, a);
    if (rc)
        return rc;
    if (a->Nq != a->Nk || a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "tcnca: the TCN aligns query t with key t (Nq == Nk, q_off == k_off), "
                                      "found Nq=%lld Nk=%lld q_off=%lld k_off=%lld", (long long)a->Nq,
                         (long long)a->Nk, (long long)a->q_off, (long long)a->k_off);
    size_t n = (size_t)a->threads * attn_tcnca_thread_floats(a, &pl);
    if (a->backward)
        n += attn_dw_partials_floats(a, attn_dw_stride(pl.W));
    ctx->workspace_bytes = sizeof(float) * n;
    return 0;
}

/* ---- shared with the backward ---- */

void attn_tcnca_conv(const tcnca_plan *pl, int64_t l, int64_t N, int64_t D, const float *x, const float *w, float *y)
{
    int64_t dil = attn_tcnca_dilation(pl, l), s = attn_tcnca_shift(pl, l);
    const float *wl = w + l * pl->taps * D;
    memset(y, 0, sizeof(float) * (size_t)(N * D));
    for (int64_t tau = 0; tau < pl->taps; tau++) {
        const float *wt = wl + tau * D;
        int64_t off = s - tau * dil; /* y_t reads x_{t + off} */
        int64_t t0 = off < 0 ? -off : 0, t1 = N - (off > 0 ? off : 0);
        for (int64_t t = t0; t < t1; t++) {
            const float *xs = x + (t + off) * D;
            float *yt = y + t * D;
            for (int64_t d = 0; d < D; d++)
                yt[d] += wt[d] * xs[d];
        }
    }
}

void attn_tcnca_chunk_probs(const tcnca_plan *pl, int64_t nc, int64_t D, const float *q, const float *k, float *s,
                            float *lse)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nc, (int)nc, (int)D, (float)pl->sc, q, (int)D, k,
                (int)D, 0.0f, s, (int)nc);
    for (int64_t i = 0; i < nc; i++) {
        if (!pl->full)
            for (int64_t j = i + 1; j < nc; j++)
                s[i * nc + j] = -INFINITY;
        lse[i] = attn_softmax_row(s + i * nc, nc);
    }
}

/* ---- forward ---- */

// Runs the TCN on the N x D rows of t (b, h) into one of the ping-pong
// buffers a, b; returns the buffer holding the last layer's output.
static float *tcnca_stack(const tcnca_plan *pl, const attn_tensor *t, int64_t b, int64_t h, const float *w,
                          float *x, float *y)
{
    int64_t N = t->N, D = t->D;
    for (int64_t i = 0; i < N; i++)
        memcpy(x + i * D, attn_at(t, b, h, i), sizeof(float) * (size_t)D);
    for (int64_t l = 0; l < pl->layers; l++) {
        attn_tcnca_conv(pl, l, N, D, x, w, y);
        float *tmp = x;
        x = y, y = tmp;
    }
    return x;
}

static void tcnca_head_forward(const tcnca_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t h,
                               float *scr)
{
    int64_t N = a->Nq, D = a->D, Dv = attn_dv(a);
    size_t nd = TCNCA_ROUND16((size_t)(N * D));
    float *s = scr + 4 * nd, *lse = s + TCNCA_ROUND16((size_t)(pl->c * pl->c));
    const float *w = io->w.data ? attn_at(&io->w, 0, h, 0) : NULL; /* layers=0 reads none */
    const float *Qp = tcnca_stack(pl, &io->q, b, h, w, scr, scr + nd);
    const float *Kp = tcnca_stack(pl, &io->k, b, h, w, scr + 2 * nd, scr + 3 * nd);
    for (int64_t m = 0; m < N; m += pl->c) {
        int64_t nc = N - m < pl->c ? N - m : pl->c;
        attn_tcnca_chunk_probs(pl, nc, D, Qp + m * D, Kp + m * D, s, lse);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nc, (int)Dv, (int)nc, 1.0f, s, (int)nc,
                    attn_at(&io->v, b, h, m), (int)io->v.sn, 0.0f, attn_at(&io->o, b, h, m), (int)io->o.sn);
        if (io->lse)
            memcpy(io->lse + (b * a->H + h) * N + m, lse, sizeof(float) * (size_t)nc);
    }
}

double attn_tcnca_pairs(const tcnca_plan *pl, int64_t N, int whole_tiles)
{
    double p = 0;
    for (int64_t m = 0; m < N; m += pl->c) {
        double nc = (double)(N - m < pl->c ? N - m : pl->c);
        p += pl->full || whole_tiles ? nc * nc : nc * (nc + 1) / 2;
    }
    return p;
}

static int tcnca_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    tcnca_plan pl;
    int rc = attn_tcnca_plan(&pl, a);
    if (rc)
        return rc;
    if (pl.W > 0 && (!io->w.data || io->w.D < pl.W))
        return attn_fail(ATTN_EINVAL, "tcnca: expected io.w with %lld weights per head, found %lld",
                         (long long)pl.W, io->w.data ? (long long)io->w.D : 0LL);
    int64_t tasks = a->B * a->H;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++)
        tcnca_head_forward(&pl, a, io, t / a->H, t % a->H, attn_tcnca_scratch(ctx, &pl, omp_get_thread_num()));
    double heads = (double)tasks, N = (double)a->Nq, D = (double)a->D, Dv = (double)attn_dv(a);
    double nc_sq = attn_tcnca_pairs(&pl, a->Nq, 1); /* tiles are computed whole */
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(heads * (4 * N * (double)(pl.taps * pl.layers) * D +
                                                          2 * (D + Dv) * nc_sq)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(heads * nc_sq));
    attn_counter_add(ATTN_CNT_TILES_COMPUTED, (long long)(heads * (double)((a->Nq + pl.c - 1) / pl.c)));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * heads * (N * (2 * D + Dv) + (double)pl.W)));
    return 0;
}

/* ---- weights, cost model ---- */

static int64_t tcnca_input_cols(const attn_args *a, unsigned input)
{
    tcnca_plan pl;
    if (input != ATTN_IN_WEIGHTS || attn_tcnca_plan(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.W;
}

/* Near the identity: the current-token tap (tau = 0 causal, the centre tap
 * FULL) is 1 + U(-0.1, 0.1), the others U(-0.1, 0.1), so that a model starts
 * as chunked attention of its projections and the stack's gain stays near 1
 * however deep it is. */
static void tcnca_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    tcnca_plan pl;
    if (attn_tcnca_plan(&pl, a))
        return;
    int64_t D = a->D, centre = pl.full ? pl.taps / 2 : 0;
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, 0x7c4, (uint64_t)h);
        float *x = attn_at(w, 0, h, 0);
        attn_rng_fill_symmetric(&r, x, pl.W, 0.1f);
        for (int64_t l = 0; l < pl.layers; l++)
            for (int64_t d = 0; d < D; d++)
                x[(l * pl.taps + centre) * D + d] += 1.0f;
    }
}

/* Per (b, head): the TCN on Q and on K, 2 N taps D flops per layer each;
 * attention 2 (D + Dv) per query-key pair inside the chunks (half a tile
 * plus the diagonal under CAUSAL: 2 D N (c + 1) at D = Dv and c | N).
 * Backward: the TCN's dX and dw (2x), attention 2.5x as flash counts it. */
static double tcnca_flops(const attn_args *a, attn_pass pass)
{
    tcnca_plan pl;
    if (attn_tcnca_plan(&pl, a))
        return 0;
    double N = (double)a->Nq, D = (double)a->D, Dv = (double)attn_dv(a), heads = (double)(a->B * a->H);
    double tcn = 4 * N * (double)(pl.taps * pl.layers) * D, att = 2 * (D + Dv) * attn_tcnca_pairs(&pl, a->Nq, 0);
    return heads * (pass == ATTN_PASS_FWD ? tcn + att : 2 * tcn + 2.5 * att);
}

/* Minimum fp32 traffic: forward reads Q, K, V and the weights, writes O and
 * LSE; backward reads Q, K, V, dO and the weights, writes dQ, dK, dV and dw. */
static double tcnca_bytes(const attn_args *a, attn_pass pass)
{
    tcnca_plan pl;
    if (attn_tcnca_plan(&pl, a))
        return 0;
    double rows = (double)(a->B * a->H * a->Nq), D = (double)a->D, Dv = (double)attn_dv(a);
    double w = (double)(a->H * pl.W);
    return pass == ATTN_PASS_FWD ? 4 * (rows * (2 * D + 2 * Dv + 1) + w)
                                 : 4 * (rows * (4 * D + 3 * Dv) + 2 * w);
}

/* What a causal streaming form would keep per head: each layer's last
 * (taps - 1) dilation inputs, for the Q and for the K stack, and the current
 * chunk's K' and V rows. Nothing older than receptive field + chunk reaches an
 * output. FULL reads the future: 0. */
static size_t tcnca_state_bytes(const attn_args *a)
{
    tcnca_plan pl;
    if (attn_tcnca_plan(&pl, a) || pl.full)
        return 0;
    int64_t conv = 2 * (attn_tcnca_receptive_field(&pl) - 1) * a->D;
    return sizeof(float) * (size_t)(a->B * a->H * (conv + pl.c * (a->D + attn_dv(a))));
}

const attn_kernel attn_kernel_tcnca = {
    .name = "tcnca",
    .family = "tcnca",
    .reference = "Terzic et al. 2023, TCNCA: Temporal Convolution Network with Chunked Attention, arXiv 2312.05605",
    .flags = ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_DETERMINISTIC | ATTN_DV,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = tcnca_params,
    .notes = "the TCN (no bias, activation or residual) runs on Q and on K with shared weights; V as given; "
             "attention inside chunks of `chunk` tokens only; io.w [1,H,1,layers*taps*D]",
    .check_params = "chunk=16 layers=3",
    .init = tcnca_init,
    .forward = tcnca_forward,
    .backward = attn_tcnca_backward,
    .flops = tcnca_flops,
    .bytes = tcnca_bytes,
    .state_bytes = tcnca_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_tcnca_ref_forward,
    .input_cols = tcnca_input_cols,
    .init_weights = tcnca_init_weights,
};
