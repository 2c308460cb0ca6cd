/* `routing` attention tiles: the buffers of one thread, gathering a
 * cluster's rows, the causal mask of a tile, and what the forward and the
 * backward share around them: the setup and counters of a pass, the
 * parallel loop over heads and the walk over a head's clusters. */
#include "routing_internal.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

int rt_pass_open(const attn_ctx *ctx, const attn_io *io, rt_plan *pl, rt_layout *ly)
{
    int rc = rt_plan_make(pl, &ctx->args);
    if (!rc)
        rc = rt_check_weights(pl, io);
    if (rc)
        return rc;
    *ly = rt_layout_of(pl, &ctx->args);
    openblas_set_num_threads(1);
    return 0;
}

void rt_tally_flush(const rt_tally *t)
{
    attn_counter_add(ATTN_CNT_FLOPS, (long long)t->flops);
    attn_counter_add(ATTN_CNT_EXPS, (long long)t->exps);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t->bytes);
}

size_t rt_tile_floats(const rt_plan *pl)
{
    size_t D = (size_t)pl->D, Dv = (size_t)pl->Dv, DA = D > Dv ? D : Dv;
    return RT_BQ * D + RT_BK * D + RT_BK * Dv + 2 * RT_BQ * RT_BK + RT_BQ * Dv + RT_BQ * DA + 3 * RT_BQ + (size_t)pl->N +
           ((size_t)pl->N + 3) / 4 + 16 * 12; /* each of the 11 buffers rounds up to 16 */
}

/* Each buffer starts on a 16-float boundary (the slot is 64-byte aligned). */
static float *rt_take(float **p, size_t n)
{
    float *r = *p;
    *p += (n + 15) / 16 * 16;
    return r;
}

rt_tiles rt_tiles_at(const rt_plan *pl, float *p)
{
    size_t D = (size_t)pl->D, Dv = (size_t)pl->Dv, DA = D > Dv ? D : Dv;
    rt_tiles t;
    t.Q = rt_take(&p, RT_BQ * D), t.K = rt_take(&p, RT_BK * D), t.V = rt_take(&p, RT_BK * Dv);
    t.S = rt_take(&p, RT_BQ * RT_BK), t.dP = rt_take(&p, RT_BQ * RT_BK), t.dO = rt_take(&p, RT_BQ * Dv);
    t.A = rt_take(&p, RT_BQ * DA), t.m = rt_take(&p, RT_BQ), t.l = rt_take(&p, RT_BQ), t.Di = rt_take(&p, RT_BQ);
    t.lse = rt_take(&p, (size_t)pl->N);
    t.in_c = (unsigned char *)p;
    return t;
}

void rt_gather(const attn_tensor *t, int64_t b, int64_t h, const int32_t *idx, int64_t n, int64_t n_pad, float scale,
               float *X, int64_t ld)
{
    for (int64_t r = 0; r < n; r++) {
        const float *x = attn_at(t, b, h, idx[r]);
        for (int64_t d = 0; d < t->D; d++)
            X[r * ld + d] = x[d] * scale;
    }
    if (n_pad > n)
        memset(X + n * ld, 0, sizeof(float) * (size_t)((n_pad - n) * ld));
}

void rt_mask_tile(const rt_plan *pl, const int32_t *qidx, int64_t nq, const int32_t *kidx, int64_t m, float *S)
{
    for (int64_t r = 0; r < nq; r++)
        for (int64_t c = m; c < pl->bk; c++)
            S[r * RT_BK + c] = -INFINITY;
    if (!pl->causal || kidx[m - 1] <= qidx[0] + pl->shift) /* rows ascend: every key before the first query */
        return;
    for (int64_t r = 0; r < nq; r++) {
        int64_t last = qidx[r] + pl->shift;
        for (int64_t c = 0; c < m; c++)
            if (kidx[c] > last)
                S[r * RT_BK + c] = -INFINITY;
    }
}

void rt_walk_clusters(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *assign, rt_tiles *t,
                      int64_t bq, rt_tile_fn fn, void *arg, rt_tally *tl)
{
    rt_members m;
    tl->flops += rt_assign_head(pl, io, b, h, assign, &m);
    tl->bytes += 4.0 * (double)(2 * pl->N * pl->D + pl->kappa * pl->D);
    memset(t->in_c, 0, (size_t)pl->N);
    for (int64_t c = 0; c < pl->kappa; c++) {
        const int32_t *qi = m.qidx + m.qoff[c], *kj = m.kidx + m.koff[c];
        int64_t nq = m.qoff[c + 1] - m.qoff[c], nk = m.koff[c + 1] - m.koff[c];
        for (int64_t j = 0; j < nk; j++)
            t->in_c[kj[j]] = 1;
        for (int64_t q0 = 0; q0 < nq; q0 += bq)
            fn(pl, io, t, b, h, qi + q0, nq - q0 < bq ? nq - q0 : bq, kj, nk, arg, tl);
        for (int64_t j = 0; j < nk; j++)
            t->in_c[kj[j]] = 0;
    }
}

void rt_for_heads(const attn_ctx *ctx, const attn_io *io, const rt_plan *pl, const rt_layout *ly, rt_head_fn fn,
                  void *arg)
{
    const attn_args *a = &ctx->args;
#pragma omp parallel num_threads(a->threads)
    {
        rt_tally tl = {0};
        float *slot = rt_thread_slot(ctx, ly, omp_get_thread_num());
        rt_tiles t = rt_tiles_at(pl, slot + ly->assign_floats);
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < a->B * a->H; bh++)
            fn(pl, io, bh / a->H, bh % a->H, slot, &t, arg, &tl);
        rt_tally_flush(&tl);
    }
}
