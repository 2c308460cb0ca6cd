/* `ponet`: PoNet's pooling token mixer (Tan et al. 2021, arXiv 2110.02442;
 * docs/kernels/ponet.md). Math in ponet.h. Forward per (b, h): the mean of Q
 * (one pass), scores K g (sgemv N x D), softmax, gp = K^T a (sgemv), then one
 * pass per row for the segment max, the window max and the fusion: O(N D),
 * memory-bound. Under GQA the query heads of a group share K, V and the
 * projections (io.router is [B,H_kv,N,2D]). Maxima keep the first index on ties (the backward routes the
 * gradient there). One task per (b, query head) in the forward, per (b,
 * KV head) in the backward: bitwise identical for any thread count. */
#include "ponet.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static const opt_def ponet_params[] = {
    {.name = "window", .type = OPT_INT, .def = 3, .lo = 1, .hi = 1 << 20,
     .help = "local max-pooling window (odd, centred)"},
    {.name = "n_seg", .type = OPT_INT, .def = 4, .lo = 1, .hi = 1 << 20,
     .help = "segments of ceil(N/n_seg) tokens for segment max pooling"},
    {0},
};

int attn_ponet_plan(ponet_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "ponet", ponet_params);
    if (rc)
        return rc;
    int64_t window = attn_param_int(a, ponet_params, "window", &rc);
    int64_t n_seg = attn_param_int(a, ponet_params, "n_seg", &rc);
    if (rc)
        return rc;
    if (window % 2 == 0)
        return attn_fail(ATTN_EINVAL, "ponet: expected an odd window (centred on the token), found window=%lld",
                         (long long)window);
    pl->half = window / 2;
    pl->n_seg = n_seg;
    pl->sc = attn_scale(a);
    return 0;
}

void attn_ponet_segment(const ponet_plan *pl, int64_t n, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t len = (n + pl->n_seg - 1) / pl->n_seg;
    *lo = i / len * len;
    *hi = *lo + len < n ? *lo + len : n;
}

void attn_ponet_window(const ponet_plan *pl, int64_t N, int64_t i, int64_t *lo, int64_t *hi)
{
    *lo = i - pl->half < 0 ? 0 : i - pl->half;
    *hi = i + pl->half + 1 < N ? i + pl->half + 1 : N;
}

size_t attn_ponet_thread_floats(const attn_args *a)
{
    /* g, gp, dg, dgp [D]; softmax weights and their gradient [N] */
    return (size_t)(4 * PONET_ROUND16(a->D) + 2 * PONET_ROUND16(a->Nk));
}

float *attn_ponet_scratch(const attn_ctx *ctx, int thread)
{
    return (float *)ctx->workspace + (size_t)thread * attn_ponet_thread_floats(&ctx->args);
}

static int ponet_init(attn_ctx *ctx, const attn_args *a)
{
    ponet_plan pl;
    int rc = attn_ponet_plan(&pl, a);
    if (rc)
        return rc;
    if (a->Nq != a->Nk || a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "ponet: an encoder mixer of one sequence (Nq == Nk, q_off == k_off), "
                                      "found Nq=%lld Nk=%lld q_off=%lld k_off=%lld", (long long)a->Nq,
                         (long long)a->Nk, (long long)a->q_off, (long long)a->k_off);
    ctx->workspace_bytes = sizeof(float) * (size_t)a->threads * attn_ponet_thread_floats(a);
    return 0;
}

void attn_ponet_global(const ponet_plan *pl, int64_t N, int64_t D, const float *q, int64_t ldq, const float *k,
                       int64_t ldk, float *g, float *a, float *gp)
{
    memset(g, 0, sizeof(float) * (size_t)D);
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++)
            g[d] += q[i * ldq + d];
    for (int64_t d = 0; d < D; d++)
        g[d] /= (float)N;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)D, (float)pl->sc, k, (int)ldk, g, 1, 0.0f, a, 1);
    attn_softmax_row(a, N);
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)D, 1.0f, k, (int)ldk, a, 1, 0.0f, gp, 1);
}

/* Max over rows [lo, hi) of column d of x (row stride ld), first index on ties. */
static float ponet_col_max(const float *x, int64_t ld, int64_t d, int64_t lo, int64_t hi)
{
    float m = x[lo * ld + d];
    for (int64_t j = lo + 1; j < hi; j++)
        if (x[j * ld + d] > m)
            m = x[j * ld + d];
    return m;
}

// Query head h reads K, V and the projections of KV head hk (GQA: shared by
// its group); its sequence is the first N rows, the padding rows get O = 0.
static void ponet_head_forward(const ponet_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t hk, int64_t N,
                               float *scr)
{
    const attn_tensor *q = &io->q, *k = &io->k, *v = &io->v, *r = &io->router;
    int64_t D = q->D;
    float *g = scr, *gp = g + PONET_ROUND16(D), *a = gp + 3 * PONET_ROUND16(D);
    for (int64_t i = N; i < q->N; i++)
        memset(attn_at(&io->o, b, h, i), 0, sizeof(float) * (size_t)D);
    if (N == 0)
        return;
    const float *K = attn_at(k, b, hk, 0), *R = attn_at(r, b, hk, 0);
    attn_ponet_global(pl, N, D, attn_at(q, b, h, 0), q->sn, K, k->sn, g, a, gp);
    for (int64_t i = 0; i < N; i++) {
        int64_t slo, shi, llo, lhi;
        attn_ponet_segment(pl, N, i, &slo, &shi);
        attn_ponet_window(pl, N, i, &llo, &lhi);
        const float *vi = attn_at(v, b, hk, i);
        float *o = attn_at(&io->o, b, h, i);
        for (int64_t d = 0; d < D; d++) {
            float s = ponet_col_max(R, r->sn, d, slo, shi), l = ponet_col_max(R, r->sn, D + d, llo, lhi);
            o[d] = (gp[d] + s) * vi[d] + l;
        }
    }
}

static int ponet_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    ponet_plan pl;
    int rc = attn_ponet_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->router.data || io->router.D < 2 * a->D)
        return attn_fail(ATTN_EINVAL, "ponet: expected io.router with 2D = %lld columns (Sg, L), found %lld",
                         (long long)(2 * a->D), io->router.data ? (long long)io->router.D : 0LL);
    int64_t tasks = a->B * a->H;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++)
        ponet_head_forward(&pl, io, t / a->H, t % a->H, t % a->H / (a->H / a->H_kv), attn_q_len(a, t / a->H),
                           attn_ponet_scratch(ctx, omp_get_thread_num()));
    double ND = attn_batch_rows(a) * (double)(a->H * a->D);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(4 * ND));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(attn_batch_rows(a) * (double)a->H));
    /* K twice (scores, weighted sum), Q, V and both projections once; the
     * pools re-read their windows from cache */
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * 6 * ND));
    return 0;
}

/* Per (b, head): C = 4 N D (mean, scores, weighted sum and fusion, one
 * multiply-add each per element; pooling comparisons are not flops);
 * backward 2x. */
static double ponet_flops(const attn_args *a, attn_pass pass)
{
    double fwd = 4.0 * attn_batch_rows(a) * (double)(a->H * a->D); /* padded: real rows only */
    return pass == ATTN_PASS_FWD ? fwd : 2 * fwd;
}

/* Minimum fp32 traffic: forward reads Q, K, V and the 2D projections, writes
 * O; backward also reads dO and writes dQ, dK, dV and the projections'
 * gradient. */
static double ponet_bytes(const attn_args *a, attn_pass pass)
{
    double rows = attn_batch_rows(a), xq = rows * (double)(a->H * a->D), xkv = rows * (double)(a->H_kv * a->D);
    return pass == ATTN_PASS_FWD ? 4 * (2 * xq + 4 * xkv) : 4 * (3 * xq + 8 * xkv);
}

/* None: an encoder mixer over a whole sequence keeps no state between
 * calls. */
static size_t ponet_state_bytes(const attn_args *a)
{
    (void)a;
    return 0;
}

static int64_t ponet_input_cols(const attn_args *a, unsigned input)
{
    return input == ATTN_IN_ROUTER ? 2 * a->D : 0;
}

const attn_kernel attn_kernel_ponet = {
    .name = "ponet",
    .family = "ponet",
    .reference = "Tan et al. 2021, PoNet: Pooling Network for Efficient Token Mixing in Long Sequences",
    .flags = ATTN_APPROX | ATTN_TRAINABLE | ATTN_GQA | ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL),
    .params = ponet_params,
    .notes = "global aggregation values = K; V is the per-token output projection; io.router [.., 2D] "
             "carries the segment (Sg) and local (L) projections; max ties route to the first index",
    .init = ponet_init,
    .forward = ponet_forward,
    .backward = attn_ponet_backward,
    .flops = ponet_flops,
    .bytes = ponet_bytes,
    .state_bytes = ponet_state_bytes,
    .inputs = ATTN_IN_ROUTER,
    .ref_forward = attn_ponet_ref_forward,
    .input_cols = ponet_input_cols,
};
