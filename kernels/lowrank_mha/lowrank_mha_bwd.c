/* `lowrank_mha` backward (docs/kernels/lowrank_mha.md). Per (b, h), n real
 * rows, the pooling recomputed (lowrank_mha.c), dY = dO:
 *
 *   de_i = (1/m) sum_{t<n} dY_t                  (the same for every head)
 *   dX_j = sum_i a_ij de_i                       values path
 *   da_ij = <de_i, x_j>,  df = a (.) (da - rowsum(a (.) da))
 *   dq = df K,  dk = df^T q,  dX += dk V^T,  dV = X^T dk
 *   dp_i = dq_i (.) u,  du = sum_i dq_i (.) p_i,  dU = c du^T,  dX_j += (U du) / n
 *
 * X is Q: dQ gets dX, dK and dV are zero. dw partials per (b, h) are summed
 * over b in order: deterministic. */
#include "lowrank_mha.h"

#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static void zero_rows(const attn_tensor *t, int64_t b, int64_t h, int64_t from)
{
    for (int64_t i = from; i < t->N; i++)
        memset(attn_at(t, b, h, i), 0, sizeof(float) * (size_t)t->D);
}

// The score path: from da (in s->datt, m x n) to dq, dk, then dX += dk V^T,
// dV, dp, dU and dX += U du / n.
static void lowrank_score_bwd(const lowrank_plan *pl, int64_t n, int64_t D, const float *x, int64_t ldx,
                              const float *w, const lowrank_scratch *s, float *dx, int64_t lddx, float *dw)
{
    int64_t m = pl->m, r = pl->r;
    attn_softmax_rows_bwd(s->att, n, s->datt, n, m, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)r, (int)n, 1.0f, s->datt, (int)n, s->kmat,
                (int)r, 0.0f, s->dq, (int)r);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)r, (int)m, 1.0f, s->datt, (int)n, s->q, (int)r,
                0.0f, s->dk, (int)r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)D, (int)r, 1.0f, s->dk, (int)r, w + pl->off_v,
                (int)r, 1.0f, dx, (int)lddx);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)r, (int)n, 1.0f, x, (int)ldx, s->dk, (int)r,
                0.0f, dw + pl->off_v, (int)r);
    memset(s->du, 0, sizeof(float) * (size_t)r);
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < r; k++) {
            dw[pl->off_p + i * r + k] = s->dq[i * r + k] * s->u[k];
            s->du[k] += s->dq[i * r + k] * w[pl->off_p + i * r + k];
        }
    for (int64_t d = 0; d < D; d++)
        for (int64_t k = 0; k < r; k++)
            dw[d * r + k] = s->c[d] * s->du[k];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)D, (int)r, 1.0f / (float)n, w, (int)r, s->du, 1, 0.0f, s->dc, 1);
    for (int64_t j = 0; j < n; j++)
        for (int64_t d = 0; d < D; d++)
            dx[j * lddx + d] += s->dc[d];
}

static void lowrank_head_backward(const lowrank_plan *pl, const attn_args *a, const attn_io *io, const attn_grads *g,
                                  int64_t b, int64_t h, const lowrank_scratch *s, float *dw)
{
    int64_t D = a->D, n = attn_q_len(a, b), m = pl->m;
    zero_rows(&g->dk, b, h, 0), zero_rows(&g->dv, b, h, 0), zero_rows(&g->dq, b, h, n);
    memset(dw, 0, sizeof(float) * (size_t)pl->W);
    if (n == 0)
        return;
    const float *x = attn_at(&io->q, b, h, 0), *w = attn_at(&io->w, 0, h, 0);
    float *dx = attn_at(&g->dq, b, h, 0);
    attn_lowrank_pool(pl, n, D, x, io->q.sn, w, s);
    float *de = s->e; /* the head vectors are not needed any more */
    memset(de, 0, sizeof(float) * (size_t)D);
    for (int64_t t = 0; t < n; t++)
        for (int64_t d = 0; d < D; d++)
            de[d] += attn_at(&g->d_o, b, h, t)[d];
    for (int64_t d = 0; d < D; d++)
        de[d] /= (float)m;
    /* da_ij = <de, x_j> for every head i; dX_j = (sum_i a_ij) de */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)D, 1.0f, x, (int)io->q.sn, de, 1, 0.0f, s->datt, 1);
    for (int64_t i = 1; i < m; i++)
        memcpy(s->datt + i * n, s->datt, sizeof(float) * (size_t)n);
    for (int64_t j = 0; j < n; j++) {
        float col = 0;
        for (int64_t i = 0; i < m; i++)
            col += s->att[i * n + j];
        for (int64_t d = 0; d < D; d++)
            dx[j * g->dq.sn + d] = col * de[d];
    }
    lowrank_score_bwd(pl, n, D, x, io->q.sn, w, s, dx, g->dq.sn, dw);
}

int attn_lowrank_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    lowrank_plan pl;
    int rc = attn_lowrank_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->w.data || io->w.D < pl.W || !g->dw.data)
        return attn_fail(ATTN_EINVAL, "lowrank_mha backward: expected io.w and g.dw with %lld weights per head",
                         (long long)pl.W);
    int64_t tasks = a->B * a->H;
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        lowrank_scratch s = attn_lowrank_scratch(ctx, &pl, omp_get_thread_num());
        lowrank_head_backward(&pl, a, io, g, t / a->H, t % a->H, &s, attn_lowrank_dw_partial(ctx, &pl, t / a->H,
                                                                                             t % a->H));
    }
    attn_sum_dw_partials(a, attn_lowrank_dw_partial(ctx, &pl, 0, 0), attn_dw_stride(pl.W), pl.W, pl.W, &g->dw);
    double rows = attn_batch_rows(a), D = (double)a->D, m = (double)pl.m, r = (double)pl.r;
    /* the recomputed pooling, then dq, dk, dk V^T, dV and da */
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(a->H * rows * (2 * D * r + 2 * m * (r + D) + 4 * m * r + 4 * D * r +
                                                                2 * D)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(a->H * rows * m));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * (double)a->H * (2 * rows * D + (double)pl.W)));
    return 0;
}
