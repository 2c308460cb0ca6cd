/* `combiner` forward (the math is in combiner_internal.h).
 *
 * Phase 1, fixed: one task per (b, query head, span): the inner
 * distribution q_r (sgemv of the span's keys with w_h, then a softmax;
 * uniform for summary=mean) and the summaries kbar_r = K_r^T q_r,
 * vbar_r = V_r^T q_r (sgemv on the rows in place) into the workspace; axial:
 * one task per (b, query head, column), combiner_axial.c.
 * Phase 2, one task per (b, query head, tile of at most T query rows inside
 * one span R): S = [sc Q Kbar^T + bias | sc Q K_R^T] (two sgemm), -inf where a
 * row may not look, one softmax per row with its logsumexp, then
 * O = P_sum Vbar + P_dir V_R (two sgemm). Tasks write disjoint rows and run in
 * a fixed order: bitwise identical results for any thread count. */
#include "combiner.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* q_r of span r of (b, h) into qw[j0 ..], from the span's L keys. */
static void cb_inner_distribution(const cb_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t hk, int64_t j0,
                                  int64_t L, int64_t D, float *qw)
{
    if (!pl->learned) {
        for (int64_t j = 0; j < L; j++)
            qw[j] = 1.0f / (float)L;
        return;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)L, (int)D, 1.0f, attn_at(&io->k, b, hk, j0), (int)io->k.sn,
                attn_at(&io->w, 0, h, 0), 1, 0.0f, qw, 1);
    attn_softmax_row_vexp(qw, L);
}

/* Summary of span r of (b, h); returns the FLOPs. */
static double cb_summary(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                         int64_t h, int64_t r)
{
    const int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv), j0 = cb_span0(pl, r),
                  L = cb_span_len(pl, a->Nk, r);
    float *qw = hd->qw + j0;
    cb_inner_distribution(pl, io, b, h, hk, j0, L, D, qw);
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)L, (int)D, 1.0f, attn_at(&io->k, b, hk, j0), (int)io->k.sn, qw, 1,
                0.0f, hd->kbar + r * D, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)L, (int)Dv, 1.0f, attn_at(&io->v, b, hk, j0), (int)io->v.sn, qw, 1,
                0.0f, hd->vbar + r * Dv, 1);
    hd->bias[r] = pl->log_count ? logf((float)L) : 0.0f;
    return 2.0 * (double)L * (double)(D + Dv + (pl->learned ? D : 0));
}

double cb_summaries_all(const attn_ctx *ctx, const cb_plan *pl, const attn_io *io, float *scratch)
{
    const attn_args *a = &ctx->args;
    const int64_t per_head = pl->axial ? pl->s : pl->nsp; /* columns or spans */
    double flops = 0;
#pragma omp for schedule(dynamic, 4)
    for (int64_t task = 0; task < a->B * a->H * per_head; task++) {
        int64_t bh = task / per_head, x = task % per_head;
        cb_head hd = cb_head_at(ctx, pl, bh);
        flops += pl->axial ? cb_axial_summaries(a, pl, io, &hd, bh / a->H, bh % a->H, x, scratch)
                           : cb_summary(a, pl, io, &hd, bh / a->H, bh % a->H, x);
    }
    return flops;
}

cb_tile cb_tile_of(const cb_plan *pl, int64_t N, int64_t R, int64_t t)
{
    cb_tile c;
    c.R = R;
    c.j0 = cb_span0(pl, R);
    int64_t end = c.j0 + cb_span_len(pl, N, R);
    c.i0 = c.j0 + t * pl->T;
    c.i1 = c.i0 + pl->T < end ? c.i0 + pl->T : end;
    c.u0 = pl->axial ? R * pl->s : 0;
    c.nsum = pl->axial ? (pl->causal && R == 0 ? 0 : pl->s) : pl->causal ? R : pl->nsp;
    c.ndir = pl->causal ? c.i1 - c.j0 : end - c.j0;
    return c;
}

double cb_tile_scores(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                      int64_t h, const cb_tile *t, float *S)
{
    const int64_t D = a->D, hk = h / (a->H / a->H_kv), nt = t->i1 - t->i0, ld = pl->ld;
    const float sc = (float)attn_scale(a);
    const float *Q = attn_at(&io->q, b, h, t->i0);
    if (t->nsum > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)t->nsum, (int)D, sc, Q, (int)io->q.sn,
                    hd->kbar + t->u0 * D, (int)D, 0.0f, S, (int)ld);
        for (int64_t r = 0; r < nt; r++) {
            float *row = S + r * ld;
            for (int64_t c = 0; c < t->nsum; c++) /* an empty axial summary: bias -inf */
                row[c] += hd->bias[t->u0 + c];
            if (!pl->causal && !pl->axial) /* the own span is direct, never its summary */
                row[t->R] = -INFINITY;
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)t->ndir, (int)D, sc, Q, (int)io->q.sn,
                attn_at(&io->k, b, hk, t->j0), (int)io->k.sn, 0.0f, S + t->nsum, (int)ld);
    if (pl->causal) /* row i sees direct keys j <= i */
        for (int64_t r = 0; r < nt; r++)
            for (int64_t c = t->i0 + r - t->j0 + 1; c < t->ndir; c++)
                S[r * ld + t->nsum + c] = -INFINITY;
    return 2.0 * (double)(nt * (t->nsum + t->ndir) * D);
}


typedef struct {
    double flops, exps, bytes;
} cb_tally;

static void cb_tile_forward(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                            int64_t h, const cb_tile *t, float *S, cb_tally *y)
{
    const int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv), nt = t->i1 - t->i0, ld = pl->ld,
                  n = t->nsum + t->ndir;
    y->flops += cb_tile_scores(a, pl, io, hd, b, h, t, S);
    for (int64_t r = 0; r < nt; r++) {
        float lse = attn_softmax_row_vexp(S + r * ld, n);
        if (io->lse)
            io->lse[(b * a->H + h) * a->Nq + t->i0 + r] = lse;
    }
    float *O = attn_at(&io->o, b, h, t->i0);
    if (t->nsum > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)Dv, (int)t->nsum, 1.0f, S, (int)ld,
                    hd->vbar + t->u0 * Dv, (int)Dv, 0.0f, O, (int)io->o.sn);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)Dv, (int)t->ndir, 1.0f, S + t->nsum, (int)ld,
                attn_at(&io->v, b, hk, t->j0), (int)io->v.sn, t->nsum > 0 ? 1.0f : 0.0f, O, (int)io->o.sn);
    y->flops += 2.0 * (double)(nt * n * Dv);
    y->exps += (double)(nt * n);
    y->bytes += 4.0 * (double)(nt * (D + Dv + 1) + n * (D + Dv));
}

int cb_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    cb_plan pl;
    int rc = cb_plan_make(&pl, a);
    if (rc || (rc = cb_check_w(&pl, &io->w, "forward")))
        return rc;
    const int64_t per_head = pl.nsp * pl.tps, tasks = a->B * a->H * per_head;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
#pragma omp parallel num_threads(a->threads)
    {
        cb_tally y = {0};
        float *S = cb_thread_slot(ctx, &pl, omp_get_thread_num());
        y.flops += cb_summaries_all(ctx, &pl, io, S);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bh = task / per_head, R = task % per_head / pl.tps;
            cb_tile t = cb_tile_of(&pl, a->Nk, R, task % pl.tps);
            if (t.i1 <= t.i0)
                continue;
            cb_head hd = cb_head_at(ctx, &pl, bh);
            cb_tile_forward(a, &pl, io, &hd, bh / a->H, bh % a->H, &t, S, &y);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)y.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)y.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)y.bytes);
    }
    /* the summaries read every key and value once per query head */
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * (double)(a->B * a->H * a->Nk) * (double)(a->D + attn_dv(a))));
    return 0;
}
