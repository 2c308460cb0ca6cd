/* `routing` backward (docs/kernels/routing.md): the softmax backward over
 * every membership's candidates, with P = exp(s - lse) per occurrence and
 * the row's merged lse (routing_internal.h), so memberships need no
 * separate normalisers: D_i = <dO_i, O_i>, dS = P (dO V^T - D_i),
 * dQ = sc dS K, dK = sc dS^T Q, dV = P^T dO.
 * One OpenMP task per (b, h) recomputes the assignment (a pure function of
 * q, k and the centroids, so the same as the forward's), walks the clusters
 * in order and writes dQ of its rows and its own dK, dV buffers; a second
 * loop sums those over the heads of each GQA group in head order. Bitwise
 * the same for any thread count. The centroids get no gradient (dw = 0):
 * they move by the EMA of train_update. */
#include "routing_internal.h"

#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* The head's dK (N x D) and dV (N x Dv) before the GQA sum. */
typedef struct {
    float *dk, *dv;
} rt_head_grad;

/* P = exp(S - lse_r) in place (0 for rows without any key); then dP =
 * P (dP - D_r) in place: dS. */
static void rt_probs_and_ds(const rt_tiles *t, const float *lse, int64_t n, int64_t m, rt_tally *tl)
{
    for (int64_t r = 0; r < n; r++) {
        float *s = t->S + r * RT_BK, *dp = t->dP + r * RT_BK;
        if (lse[r] == -INFINITY) {
            memset(s, 0, sizeof(float) * (size_t)m);
        } else {
            for (int64_t c = 0; c < m; c++)
                s[c] -= lse[r];
            attn_vexp(s, s, m);
        }
        for (int64_t c = 0; c < m; c++)
            dp[c] = s[c] * (dp[c] - t->Di[r]);
    }
    tl->exps += (double)(n * m);
}

/* dst[idx[r]] += X[r] for the m rows of X (ld = cols). */
static void rt_scatter_add(float *dst, const int32_t *idx, int64_t m, const float *X, int64_t cols)
{
    for (int64_t r = 0; r < m; r++)
        for (int64_t d = 0; d < cols; d++)
            dst[(int64_t)idx[r] * cols + d] += X[r * cols + d];
}

/* The own key j of row r (keep_diag): its one term of every product. */
static void rt_self_grad(const rt_plan *pl, const attn_io *io, const rt_tiles *t, int64_t b, int64_t hk, int64_t r,
                         int64_t j, float lse, const rt_head_grad *hg)
{
    if (lse == -INFINITY)
        return;
    int64_t D = pl->D, Dv = pl->Dv;
    const float *k = attn_at(&io->k, b, hk, j), *v = attn_at(&io->v, b, hk, j), *q = t->Q + r * D, *dO = t->dO + r * Dv;
    float s = 0, dp = 0;
    for (int64_t d = 0; d < D; d++)
        s += q[d] * k[d];
    for (int64_t d = 0; d < Dv; d++)
        dp += dO[d] * v[d];
    float p = attn_expf(s - lse), ds = p * (dp - t->Di[r]);
    for (int64_t d = 0; d < D; d++)
        t->A[r * D + d] += ds * k[d], hg->dk[j * D + d] += ds * q[d];
    for (int64_t d = 0; d < Dv; d++)
        hg->dv[j * Dv + d] += p * dO[d];
}

/* What a backward tile writes to: the problem's gradients and the head's dK, dV. */
typedef struct {
    const attn_grads *g;
    rt_head_grad hg;
} rt_bwd_out;

static void rt_query_tile_bwd(const rt_plan *pl, const attn_io *io, rt_tiles *t, int64_t b, int64_t h,
                              const int32_t *qi, int64_t n, const int32_t *kj, int64_t nk, void *arg, rt_tally *tl)
{
    const rt_bwd_out *out = arg;
    const attn_grads *g = out->g;
    const rt_head_grad *hg = &out->hg;
    int64_t D = pl->D, Dv = pl->Dv, hk = h / (io->q.H / io->k.H);
    const float *lse_h = io->lse + (b * io->q.H + h) * pl->N;
    float lse[RT_BQ];
    rt_gather(&io->q, b, h, qi, n, n, (float)pl->scale, t->Q, D);
    rt_gather(&g->d_o, b, h, qi, n, n, 1.0f, t->dO, Dv);
    for (int64_t r = 0; r < n; r++) {
        const float *o = attn_at(&io->o, b, h, qi[r]);
        float di = 0;
        for (int64_t d = 0; d < Dv; d++)
            di += t->dO[r * Dv + d] * o[d];
        t->Di[r] = di, lse[r] = lse_h[qi[r]];
    }
    memset(t->A, 0, sizeof(float) * (size_t)(n * D));
    for (int64_t k0 = 0; k0 < nk; k0 += pl->bk) {
        int64_t m = rt_tile_keys(pl, nk, k0), bk = pl->bk;
        if (pl->causal && kj[k0] > qi[n - 1] + pl->shift)
            break;
        rt_gather(&io->k, b, hk, kj + k0, m, bk, 1.0f, t->K, D);
        rt_gather(&io->v, b, hk, kj + k0, m, bk, 1.0f, t->V, Dv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)bk, (int)D, 1.0f, t->Q, (int)D, t->K, (int)D,
                    0.0f, t->S, RT_BK);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)bk, (int)Dv, 1.0f, t->dO, (int)Dv, t->V,
                    (int)Dv, 0.0f, t->dP, RT_BK);
        rt_mask_tile(pl, qi, n, kj + k0, m, t->S);
        rt_probs_and_ds(t, lse, n, bk, tl);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)bk, 1.0f, t->dP, RT_BK, t->K,
                    (int)D, 1.0f, t->A, (int)D);
        /* K and V are no longer read: their buffers take this tile's dK and dV */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)D, (int)n, 1.0f, t->dP, RT_BK, t->Q, (int)D,
                    0.0f, t->K, (int)D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)Dv, (int)n, 1.0f, t->S, RT_BK, t->dO,
                    (int)Dv, 0.0f, t->V, (int)Dv);
        rt_scatter_add(hg->dk, kj + k0, m, t->K, D);
        rt_scatter_add(hg->dv, kj + k0, m, t->V, Dv);
        tl->flops += 2.0 * (double)(n * bk) * (double)(2 * D + Dv) + 2.0 * (double)(n * m) * (double)(D + Dv);
        tl->bytes += 4.0 * (double)(m * (D + Dv));
    }
    for (int64_t r = 0; r < n; r++) {
        int64_t j = rt_self_key(pl, t, qi[r]);
        if (j >= 0)
            rt_self_grad(pl, io, t, b, hk, r, j, lse[r], hg), tl->exps++;
        float *dq = attn_at(&g->dq, b, h, qi[r]);
        for (int64_t d = 0; d < D; d++)
            dq[d] += (float)pl->scale * t->A[r * D + d];
    }
    tl->bytes += 4.0 * (double)(n * (D + 2 * Dv + 1));
}

static rt_head_grad rt_head_grad_of(const attn_ctx *ctx, const rt_layout *ly, const rt_plan *pl, int64_t bh)
{
    float *p = rt_head_grads(ctx, ly, bh);
    return (rt_head_grad){.dk = p, .dv = p + pl->N * pl->D};
}

/* The backward's context for rt_for_heads. */
typedef struct {
    const attn_ctx *ctx;
    const rt_layout *ly;
    const attn_grads *g;
} rt_bwd_job;

static void rt_head_backward(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *assign, rt_tiles *t,
                             void *arg, rt_tally *tl)
{
    const rt_bwd_job *jb = arg;
    rt_bwd_out out = {.g = jb->g, .hg = rt_head_grad_of(jb->ctx, jb->ly, pl, b * io->q.H + h)};
    memset(out.hg.dk, 0, sizeof(float) * (size_t)(pl->N * pl->D));
    memset(out.hg.dv, 0, sizeof(float) * (size_t)(pl->N * pl->Dv));
    for (int64_t i = 0; i < pl->N; i++)
        memset(attn_at(&jb->g->dq, b, h, i), 0, sizeof(float) * (size_t)pl->D);
    rt_walk_clusters(pl, io, b, h, assign, t, RT_BQ, rt_query_tile_bwd, &out, tl);
}

/* dK, dV of (b, hk) row j: the sum over the group's heads, in head order. */
static void rt_group_sum(const attn_ctx *ctx, const rt_layout *ly, const rt_plan *pl, const attn_grads *g, int64_t b,
                         int64_t hk, int64_t j)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv;
    float *dk = attn_at(&g->dk, b, hk, j), *dv = attn_at(&g->dv, b, hk, j);
    memset(dk, 0, sizeof(float) * (size_t)pl->D);
    memset(dv, 0, sizeof(float) * (size_t)pl->Dv);
    for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
        rt_head_grad hg = rt_head_grad_of(ctx, ly, pl, b * a->H + h);
        for (int64_t d = 0; d < pl->D; d++)
            dk[d] += hg.dk[j * pl->D + d];
        for (int64_t d = 0; d < pl->Dv; d++)
            dv[d] += hg.dv[j * pl->Dv + d];
    }
}

int rt_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    if (!io->lse)
        return attn_fail(ATTN_EINVAL, "kernel 'routing' backward: expected the forward's lse, found NULL");
    rt_plan pl;
    rt_layout ly;
    int rc = rt_pass_open(ctx, io, &pl, &ly);
    if (rc)
        return rc;
    rt_bwd_job jb = {.ctx = ctx, .ly = &ly, .g = g};
    rt_for_heads(ctx, io, &pl, &ly, rt_head_backward, &jb);
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t r = 0; r < a->B * a->H_kv * pl.N; r++)
        rt_group_sum(ctx, &ly, &pl, g, r / (a->H_kv * pl.N), r / pl.N % a->H_kv, r % pl.N);
    for (int64_t h = 0; g->dw.data && h < g->dw.H; h++) /* centroids move by EMA, not by gradient */
        memset(attn_at(&g->dw, 0, h, 0), 0, sizeof(float) * (size_t)g->dw.D);
    return 0;
}
