/* `lowrank_mha`: low-rank multi-head attention pooling (Mehta et al. 2019,
 * arXiv 1912.00835; docs/kernels/lowrank_mha.md). Math in lowrank_mha.h.
 * Forward per (b, query head): the mean c (one pass), u = U^T c (sgemv),
 * keys X V (sgemm n x r x D), queries p_i (.) u, scores Q K^T (sgemm m x n x
 * r), row softmax, E = A X (sgemm m x D x n), then the mean of E written to
 * every real row. This is softmax attention with m queries, keys V^T x_j,
 * values x_j and scale 1, done by BLAS on the whole m x n score block (m is
 * small: no tiling needed). One task per (b, head): bitwise identical for
 * any thread count. */
#include "lowrank_mha.h"

#include "common/rng.h"
#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static const opt_def lowrank_params[] = {
    {.name = "m", .type = OPT_INT, .def = 8, .lo = 1, .hi = 1024, .help = "pooling heads (rows of the head matrix)"},
    {.name = "r", .type = OPT_INT, .def = 64, .lo = 1, .hi = 4096, .help = "rank of the shared bilinear form U V^T"},
    {0},
};

int attn_lowrank_plan(lowrank_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "lowrank_mha", lowrank_params);
    if (rc)
        return rc;
    pl->m = attn_param_int(a, lowrank_params, "m", &rc);
    pl->r = attn_param_int(a, lowrank_params, "r", &rc);
    if (rc)
        return rc;
    pl->off_v = a->D * pl->r;
    pl->off_p = 2 * a->D * pl->r;
    pl->W = pl->off_p + pl->m * pl->r;
    return 0;
}

/* ---- workspace: [per-thread scratch][backward dw partials per (b, h)] ---- */

size_t attn_lowrank_thread_floats(const attn_args *a, const lowrank_plan *pl)
{
    size_t N = (size_t)a->Nk, D = (size_t)a->D, m = (size_t)pl->m, r = (size_t)pl->r;
    /* kmat, dk (N x r); att, datt (m x N); q, dq (m x r); e (m x D); c, u, du, dc */
    return 2 * LOWRANK_ROUND16(N * r) + 2 * LOWRANK_ROUND16(m * N) + 2 * LOWRANK_ROUND16(m * r) +
           LOWRANK_ROUND16(m * D) + 2 * LOWRANK_ROUND16(D) + 2 * LOWRANK_ROUND16(r);
}

lowrank_scratch attn_lowrank_scratch(const attn_ctx *ctx, const lowrank_plan *pl, int thread)
{
    const attn_args *a = &ctx->args;
    size_t N = (size_t)a->Nk, D = (size_t)a->D, m = (size_t)pl->m, r = (size_t)pl->r;
    float *p = (float *)ctx->workspace + (size_t)thread * attn_lowrank_thread_floats(a, pl);
    lowrank_scratch s;
    s.kmat = p, p += LOWRANK_ROUND16(N * r);
    s.dk = p, p += LOWRANK_ROUND16(N * r);
    s.att = p, p += LOWRANK_ROUND16(m * N);
    s.datt = p, p += LOWRANK_ROUND16(m * N);
    s.q = p, p += LOWRANK_ROUND16(m * r);
    s.dq = p, p += LOWRANK_ROUND16(m * r);
    s.e = p, p += LOWRANK_ROUND16(m * D);
    s.c = p, p += LOWRANK_ROUND16(D);
    s.dc = p, p += LOWRANK_ROUND16(D);
    s.u = p, p += LOWRANK_ROUND16(r);
    s.du = p;
    return s;
}

float *attn_lowrank_dw_partial(const attn_ctx *ctx, const lowrank_plan *pl, int64_t b, int64_t h)
{
    const attn_args *a = &ctx->args;
    float *base = (float *)ctx->workspace + (size_t)a->threads * attn_lowrank_thread_floats(a, pl);
    return attn_dw_partial(a, base, attn_dw_stride(pl->W), b, h);
}

static int lowrank_init(attn_ctx *ctx, const attn_args *a)
{
    lowrank_plan pl;
    int rc = attn_lowrank_plan(&pl, a);
    if (rc)
        return rc;
    if (a->Nq != a->Nk || a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "lowrank_mha: an encoder pooling of one sequence (Nq == Nk, q_off == k_off), "
                                      "found Nq=%lld Nk=%lld q_off=%lld k_off=%lld", (long long)a->Nq,
                         (long long)a->Nk, (long long)a->q_off, (long long)a->k_off);
    size_t n = (size_t)a->threads * attn_lowrank_thread_floats(a, &pl);
    if (a->backward)
        n += attn_dw_partials_floats(a, attn_dw_stride(pl.W));
    ctx->workspace_bytes = sizeof(float) * n;
    return 0;
}

void attn_lowrank_pool(const lowrank_plan *pl, int64_t n, int64_t D, const float *x, int64_t ldx, const float *w,
                       const lowrank_scratch *s)
{
    int64_t m = pl->m, r = pl->r;
    memset(s->c, 0, sizeof(float) * (size_t)D);
    for (int64_t j = 0; j < n; j++)
        for (int64_t d = 0; d < D; d++)
            s->c[d] += x[j * ldx + d];
    for (int64_t d = 0; d < D; d++)
        s->c[d] /= (float)n;
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)D, (int)r, 1.0f, w, (int)r, s->c, 1, 0.0f, s->u, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)r, (int)D, 1.0f, x, (int)ldx, w + pl->off_v,
                (int)r, 0.0f, s->kmat, (int)r);
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < r; k++)
            s->q[i * r + k] = w[pl->off_p + i * r + k] * s->u[k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)r, 1.0f, s->q, (int)r, s->kmat, (int)r,
                0.0f, s->att, (int)n);
    for (int64_t i = 0; i < m; i++)
        attn_softmax_row(s->att + i * n, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)D, (int)n, 1.0f, s->att, (int)n, x, (int)ldx,
                0.0f, s->e, (int)D);
}

// Row 0 gets the mean of the head vectors, the other real rows a copy, padding 0.
static void lowrank_head_forward(const lowrank_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t h,
                                 const lowrank_scratch *s)
{
    int64_t D = a->D, n = attn_q_len(a, b);
    float *o0 = attn_at(&io->o, b, h, 0);
    memset(o0, 0, sizeof(float) * (size_t)D);
    if (n > 0) {
        attn_lowrank_pool(pl, n, D, attn_at(&io->q, b, h, 0), io->q.sn, attn_at(&io->w, 0, h, 0), s);
        for (int64_t i = 0; i < pl->m; i++)
            for (int64_t d = 0; d < D; d++)
                o0[d] += s->e[i * D + d];
        for (int64_t d = 0; d < D; d++)
            o0[d] /= (float)pl->m;
    }
    for (int64_t t = 1; t < a->Nq; t++)
        if (t < n)
            memcpy(attn_at(&io->o, b, h, t), o0, sizeof(float) * (size_t)D);
        else
            memset(attn_at(&io->o, b, h, t), 0, sizeof(float) * (size_t)D);
}

static int lowrank_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    lowrank_plan pl;
    int rc = attn_lowrank_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->w.data || io->w.D < pl.W)
        return attn_fail(ATTN_EINVAL, "lowrank_mha: expected io.w with %lld weights per head, found %lld",
                         (long long)pl.W, io->w.data ? (long long)io->w.D : 0LL);
    int64_t tasks = a->B * a->H;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        lowrank_scratch s = attn_lowrank_scratch(ctx, &pl, omp_get_thread_num());
        lowrank_head_forward(&pl, a, io, t / a->H, t % a->H, &s);
    }
    double rows = attn_batch_rows(a), D = (double)a->D, m = (double)pl.m, r = (double)pl.r;
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(a->H * rows * (2 * D * r + 2 * m * (r + D))));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(a->H * rows * m));
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(sizeof(float) * ((double)a->H * (2 * rows * D + (double)(a->B * pl.W)))));
    return 0;
}

/* ---- weights, cost model ---- */

static int64_t lowrank_input_cols(const attn_args *a, unsigned input)
{
    lowrank_plan pl;
    if (input != ATTN_IN_WEIGHTS || attn_lowrank_plan(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.W;
}

/* U and V: U(-1/sqrt(D), 1/sqrt(D)) as a linear layer of fan-in D; p_i:
 * U(0.5, 1.5), positive and distinct per head so that the heads start apart
 * but every one scores with the sign of U^T c. */
static void lowrank_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    lowrank_plan pl;
    if (attn_lowrank_plan(&pl, a))
        return;
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, 0x10a, (uint64_t)h);
        float *x = attn_at(w, 0, h, 0);
        attn_rng_fill_symmetric(&r, x, pl.off_p, 1.0f / sqrtf((float)a->D));
        attn_rng_fill_symmetric(&r, x + pl.off_p, pl.m * pl.r, 0.5f);
        for (int64_t i = pl.off_p; i < pl.W; i++)
            x[i] += 1.0f;
    }
}

/* Per (b, head), n real rows: keys 2 n D r, scores 2 m n r, pooled values
 * 2 m n D (the mean and U^T c are O(n D + D r), not counted); backward 2x. */
static double lowrank_flops(const attn_args *a, attn_pass pass)
{
    lowrank_plan pl;
    if (attn_lowrank_plan(&pl, a))
        return 0;
    double D = (double)a->D, m = (double)pl.m, r = (double)pl.r;
    double fwd = (double)a->H * attn_batch_rows(a) * (2 * D * r + 2 * m * (r + D));
    return pass == ATTN_PASS_FWD ? fwd : 2 * fwd;
}

/* Minimum fp32 traffic: forward reads X and the weights, writes O; backward
 * reads X, dO and the weights, writes dX, dw and the zero dK, dV. Every
 * sequence reads its head's weights (a padded batch costs what its
 * sequences cost alone). */
static double lowrank_bytes(const attn_args *a, attn_pass pass)
{
    lowrank_plan pl;
    if (attn_lowrank_plan(&pl, a))
        return 0;
    double rows = attn_batch_rows(a), x = rows * (double)(a->H * a->D), w = (double)(a->B * a->H * pl.W);
    double kv = rows * (double)(a->H_kv * a->D);
    return pass == ATTN_PASS_FWD ? 4 * (2 * x + w) : 4 * (3 * x + 2 * w + 2 * kv);
}

/* None: a pooling over the whole sequence keeps nothing between calls. */
static size_t lowrank_state_bytes(const attn_args *a)
{
    (void)a;
    return 0;
}

const attn_kernel attn_kernel_lowrank_mha = {
    .name = "lowrank_mha",
    .family = "lowrank_mha",
    .reference = "Mehta, Rangwala, Ramakrishnan 2019, Low Rank Factorization for Compact Multi-Head Self-Attention, arXiv 1912.00835",
    .flags = ATTN_TRAINABLE | ATTN_DETERMINISTIC | ATTN_PADDED | ATTN_NO_SCALE,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL),
    .params = lowrank_params,
    .notes = "Q carries the block input X (K, V not read; dK = dV = 0); context c = mean of X; scores "
             "<p_i (.) U^T c, V^T x_j>, no scale; every real row gets the mean of the m head vectors; "
             "io.w [1,H,1,2Dr+mr] = U, V, p",
    .check_params = "m=3 r=5",
    .init = lowrank_init,
    .forward = lowrank_forward,
    .backward = attn_lowrank_backward,
    .flops = lowrank_flops,
    .bytes = lowrank_bytes,
    .state_bytes = lowrank_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_lowrank_ref_forward,
    .input_cols = lowrank_input_cols,
    .init_weights = lowrank_init_weights,
};
