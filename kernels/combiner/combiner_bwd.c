/* `combiner` backward: the softmax backward over the joint set of summaries
 * and direct keys, then the summaries' vector-Jacobian product down to the
 * keys, the values and w_h (docs/kernels/combiner.md). Passes, each an
 * OpenMP loop of tasks that own what they write (so the result does not
 * depend on the thread count):
 *   0  summaries again (as the forward) and delta_i = <dO_i, O_i>
 *   1  per (b, h, span R), its tiles in order: P = exp(S - lse), dS =
 *      P (dP - delta); dQ = sc (dS_sum Kbar + dS_dir K_R); the span's own keys
 *      get dK += sc dS_dir^T Q, dV += P_dir^T dO (per query head buffers)
 *      (axial: also the row's own summaries, dKbar += sc dS_sum^T Q,
 *      dVbar += P_sum^T dO: no other row reads them)
 *   2  fixed: per (b, h, block of summary columns), over every query row
 *      that sees them: dKbar = sc dS_sum^T Q, dVbar = P_sum^T dO
 *   3  per (b, h, span r) (axial: per column, combiner_axial.c):
 *      q = softmax(a), a_j = <w, k_j>, kbar = K^T q,
 *      vbar = V^T q: dK_j += q_j dkbar + da_j w, dV_j += q_j dvbar,
 *      da_j = q_j (g_j - sum q g), g_j = <dkbar, k_j> + <dvbar, v_j>,
 *      dw part = K^T da
 *   4  dK, dV = sums over the GQA group of the per-head buffers; dw = sum
 *      over the batch and spans of the parts. */
#include "combiner.h"

#include "kernels/core/counters.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    const attn_ctx *ctx;
    const cb_plan *pl;
    const attn_io *io;
    const attn_grads *g;
    cb_bwd_ws w;
} cb_bwd;

/* P <- exp(S - lse_row) over nt rows of n columns (ld), and dS = P (dP - delta) into dP. */
static void cb_dscores(const float *lse, const float *delta, int64_t nt, int64_t n, int64_t ld, float *P, float *dP)
{
    for (int64_t r = 0; r < nt; r++) {
        float *p = P + r * ld, *dp = dP + r * ld;
        for (int64_t c = 0; c < n; c++)
            p[c] -= lse[r];
        attn_vexp(p, p, n);
        for (int64_t c = 0; c < n; c++)
            dp[c] = p[c] * (dp[c] - delta[r]);
    }
}

static void cb_delta_all(const cb_bwd *x)
{
    const attn_args *a = &x->ctx->args;
    const int64_t Dv = attn_dv(a);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < a->B * a->H; bh++)
        for (int64_t i = 0; i < a->Nq; i++) {
            const float *o = attn_at(&x->io->o, bh / a->H, bh % a->H, i), *d = attn_at(&x->g->d_o, bh / a->H, bh % a->H, i);
            float acc = 0;
            for (int64_t c = 0; c < Dv; c++)
                acc += o[c] * d[c];
            x->w.delta[bh * a->Nq + i] = acc;
        }
}

/* Pass 1 for span R of (b, h). Returns the FLOPs. */
static double cb_span_backward(const cb_bwd *x, int64_t bh, int64_t R, float *P, float *dP)
{
    const attn_args *a = &x->ctx->args;
    const cb_plan *pl = x->pl;
    const int64_t b = bh / a->H, h = bh % a->H, hk = h / (a->H / a->H_kv), D = a->D, Dv = attn_dv(a), ld = pl->ld,
                  N = a->Nk, j0 = cb_span0(pl, R);
    const float sc = (float)attn_scale(a);
    cb_head hd = cb_head_at(x->ctx, pl, bh);
    float *dKh = x->w.dk + (bh * N + j0) * D, *dVh = x->w.dv + (bh * N + j0) * Dv;
    /* axial: the row's own summaries, read by this span's queries only */
    float *dKb = x->w.dkbar + (bh * pl->nu + R * pl->s) * D, *dVb = x->w.dvbar + (bh * pl->nu + R * pl->s) * Dv;
    memset(dKh, 0, sizeof(float) * (size_t)(cb_span_len(pl, N, R) * D));
    memset(dVh, 0, sizeof(float) * (size_t)(cb_span_len(pl, N, R) * Dv));
    if (pl->axial) {
        memset(dKb, 0, sizeof(float) * (size_t)(pl->s * D));
        memset(dVb, 0, sizeof(float) * (size_t)(pl->s * Dv));
    }
    double flops = 0;
    for (int64_t tt = 0; tt < pl->tps; tt++) {
        cb_tile t = cb_tile_of(pl, N, R, tt);
        int64_t nt = t.i1 - t.i0, n = t.nsum + t.ndir;
        if (nt <= 0)
            break;
        const float *Q = attn_at(&x->io->q, b, h, t.i0), *dO = attn_at(&x->g->d_o, b, h, t.i0);
        const float *Kd = attn_at(&x->io->k, b, hk, j0), *Vd = attn_at(&x->io->v, b, hk, j0);
        int qs = (int)x->io->q.sn, ds = (int)x->g->d_o.sn;
        float *dQ = attn_at(&x->g->dq, b, h, t.i0);
        flops += cb_tile_scores(a, pl, x->io, &hd, b, h, &t, P);
        if (t.nsum > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)t.nsum, (int)Dv, 1.0f, dO, ds,
                        hd.vbar + t.u0 * Dv, (int)Dv, 0.0f, dP, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)t.ndir, (int)Dv, 1.0f, dO, ds, Vd,
                    (int)x->io->v.sn, 0.0f, dP + t.nsum, (int)ld);
        cb_dscores(x->io->lse + bh * a->Nq + t.i0, x->w.delta + bh * a->Nq + t.i0, nt, n, ld, P, dP);
        if (t.nsum > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)D, (int)t.nsum, sc, dP, (int)ld,
                        hd.kbar + t.u0 * D, (int)D, 0.0f, dQ, (int)x->g->dq.sn);
        if (pl->axial && t.nsum > 0) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t.nsum, (int)D, (int)nt, sc, dP, (int)ld, Q, qs,
                        1.0f, dKb, (int)D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t.nsum, (int)Dv, (int)nt, 1.0f, P, (int)ld, dO,
                        ds, 1.0f, dVb, (int)Dv);
            flops += 2.0 * (double)(nt * t.nsum) * (double)(D + Dv);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)D, (int)t.ndir, sc, dP + t.nsum, (int)ld,
                    Kd, (int)x->io->k.sn, t.nsum > 0 ? 1.0f : 0.0f, dQ, (int)x->g->dq.sn);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t.ndir, (int)D, (int)nt, sc, dP + t.nsum, (int)ld, Q,
                    qs, 1.0f, dKh, (int)D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t.ndir, (int)Dv, (int)nt, 1.0f, P + t.nsum, (int)ld,
                    dO, ds, 1.0f, dVh, (int)Dv);
        flops += 2.0 * (double)(nt * n) * (double)(Dv + D) + 2.0 * (double)(nt * t.ndir) * (double)(D + Dv);
    }
    return flops;
}

/* Pass 2 for summary columns [c0, c1) of (b, h). Returns the FLOPs. */
static double cb_summary_columns_backward(const cb_bwd *x, int64_t bh, int64_t c0, int64_t c1, float *P, float *dP)
{
    const attn_args *a = &x->ctx->args;
    const cb_plan *pl = x->pl;
    const int64_t b = bh / a->H, h = bh % a->H, D = a->D, Dv = attn_dv(a), ld = pl->ld, nc = c1 - c0;
    const float sc = (float)attn_scale(a);
    cb_head hd = cb_head_at(x->ctx, pl, bh);
    float *dKb = x->w.dkbar + (bh * pl->nu + c0) * D, *dVb = x->w.dvbar + (bh * pl->nu + c0) * Dv;
    memset(dKb, 0, sizeof(float) * (size_t)(nc * D));
    memset(dVb, 0, sizeof(float) * (size_t)(nc * Dv));
    double flops = 0;
    /* causal: the first row that sees column c0 starts span c0 + 1 */
    for (int64_t i0 = pl->causal ? (c0 + 1) * pl->s : 0; i0 < a->Nq; i0 += pl->T) {
        int64_t nt = i0 + pl->T < a->Nq ? pl->T : a->Nq - i0;
        const float *Q = attn_at(&x->io->q, b, h, i0), *dO = attn_at(&x->g->d_o, b, h, i0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)nc, (int)D, sc, Q, (int)x->io->q.sn,
                    hd.kbar + c0 * D, (int)D, 0.0f, P, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)nc, (int)Dv, 1.0f, dO, (int)x->g->d_o.sn,
                    hd.vbar + c0 * Dv, (int)Dv, 0.0f, dP, (int)ld);
        for (int64_t r = 0; r < nt; r++)
            for (int64_t c = 0; c < nc; c++)
                P[r * ld + c] = cb_sees_summary(pl, (i0 + r) / pl->s, c0 + c) ? P[r * ld + c] + hd.bias[c0 + c]
                                                                                 : -INFINITY;
        cb_dscores(x->io->lse + bh * a->Nq + i0, x->w.delta + bh * a->Nq + i0, nt, nc, ld, P, dP);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)D, (int)nt, sc, dP, (int)ld, Q,
                    (int)x->io->q.sn, 1.0f, dKb, (int)D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)Dv, (int)nt, 1.0f, P, (int)ld, dO,
                    (int)x->g->d_o.sn, 1.0f, dVb, (int)Dv);
        flops += 4.0 * (double)(nt * nc) * (double)(D + Dv);
    }
    return flops;
}

/* Pass 3 for span r of (b, h): the summary's gradient down to its keys,
 * values and w_h. Returns the FLOPs. */
static double cb_summary_backward(const cb_bwd *x, int64_t bh, int64_t r, float *scratch)
{
    const attn_args *a = &x->ctx->args;
    const cb_plan *pl = x->pl;
    const int64_t b = bh / a->H, h = bh % a->H, hk = h / (a->H / a->H_kv), D = a->D, Dv = attn_dv(a), N = a->Nk,
                  j0 = cb_span0(pl, r), L = cb_span_len(pl, N, r);
    cb_head hd = cb_head_at(x->ctx, pl, bh);
    const float *dkb = x->w.dkbar + (bh * pl->nu + r) * D, *dvb = x->w.dvbar + (bh * pl->nu + r) * Dv;
    const float *K = attn_at(&x->io->k, b, hk, j0), *V = attn_at(&x->io->v, b, hk, j0), *qw = hd.qw + j0;
    float *dKh = x->w.dk + (bh * N + j0) * D, *dVh = x->w.dv + (bh * N + j0) * Dv, *gj = scratch, *da = scratch + L;
    float *dwp = x->w.dwpart + (bh * pl->npart + r) * D;
    cblas_sger(CblasRowMajor, (int)L, (int)D, 1.0f, qw, 1, dkb, 1, dKh, (int)D);
    cblas_sger(CblasRowMajor, (int)L, (int)Dv, 1.0f, qw, 1, dvb, 1, dVh, (int)Dv);
    if (!pl->learned) /* uniform q: no gradient through it */
        return 2.0 * (double)L * (double)(D + Dv);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)L, (int)D, 1.0f, K, (int)x->io->k.sn, dkb, 1, 0.0f, gj, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)L, (int)Dv, 1.0f, V, (int)x->io->v.sn, dvb, 1, 1.0f, gj, 1);
    float gbar = 0;
    for (int64_t j = 0; j < L; j++)
        gbar += qw[j] * gj[j];
    for (int64_t j = 0; j < L; j++)
        da[j] = qw[j] * (gj[j] - gbar);
    cblas_sger(CblasRowMajor, (int)L, (int)D, 1.0f, da, 1, attn_at(&x->io->w, 0, h, 0), 1, dKh, (int)D);
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)L, (int)D, 1.0f, K, (int)x->io->k.sn, da, 1, 0.0f, dwp, 1);
    return 2.0 * (double)L * (double)(4 * D + 2 * Dv);
}

/* Pass 4: dK, dV of (b, KV head) = the group's per-head buffers summed in head order. */
static void cb_reduce_kv(const cb_bwd *x, int64_t b, int64_t hk)
{
    const attn_args *a = &x->ctx->args;
    const int64_t G = a->H / a->H_kv, N = a->Nk, D = a->D, Dv = attn_dv(a);
    for (int64_t j = 0; j < N; j++) {
        float *dk = attn_at(&x->g->dk, b, hk, j), *dv = attn_at(&x->g->dv, b, hk, j);
        const float *sk = x->w.dk + ((b * a->H + hk * G) * N + j) * D, *sv = x->w.dv + ((b * a->H + hk * G) * N + j) * Dv;
        memcpy(dk, sk, sizeof(float) * (size_t)D);
        memcpy(dv, sv, sizeof(float) * (size_t)Dv);
        for (int64_t g = 1; g < G; g++)
            for (int64_t d = 0; d < D || d < Dv; d++) {
                if (d < D)
                    dk[d] += sk[g * N * D + d];
                if (d < Dv)
                    dv[d] += sv[g * N * Dv + d];
            }
    }
}

static void cb_reduce_dw(const cb_bwd *x, int64_t h)
{
    const attn_args *a = &x->ctx->args;
    const int64_t D = a->D;
    float *dw = attn_at(&x->g->dw, 0, h, 0);
    memset(dw, 0, sizeof(float) * (size_t)D);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t r = 0; r < x->pl->npart; r++) {
            const float *p = x->w.dwpart + ((b * a->H + h) * x->pl->npart + r) * D;
            for (int64_t d = 0; d < D; d++)
                dw[d] += p[d];
        }
}

static void cb_backward_passes(const cb_bwd *x, float *slot, double *flops)
{
    const attn_args *a = &x->ctx->args;
    const cb_plan *pl = x->pl;
    const int64_t BH = a->B * a->H, cblk = pl->nsp < CB_COLBLK ? pl->nsp : CB_COLBLK,
                  nblk = (pl->nsp + cblk - 1) / cblk;
    float *P = slot, *dP = slot + pl->fwd_floats;
    *flops += cb_summaries_all(x->ctx, pl, x->io, slot);
    cb_delta_all(x);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < BH * pl->nsp; task++)
        *flops += cb_span_backward(x, task / pl->nsp, task % pl->nsp, P, dP);
    if (!pl->axial) { /* axial summaries got their gradients in the span tasks */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < BH * nblk; task++) {
            int64_t c0 = task % nblk * cblk, c1 = c0 + cblk < pl->nsp ? c0 + cblk : pl->nsp;
            *flops += cb_summary_columns_backward(x, task / nblk, c0, c1, P, dP);
        }
    }
#pragma omp for schedule(dynamic, 4)
    for (int64_t task = 0; task < BH * pl->npart; task++) {
        int64_t bh = task / pl->npart, part = task % pl->npart;
        if (pl->axial) {
            cb_head hd = cb_head_at(x->ctx, pl, bh);
            *flops += cb_axial_summary_backward(a, pl, x->io, &hd, &x->w, bh / a->H, bh % a->H, part, slot);
        } else
            *flops += cb_summary_backward(x, bh, part, slot);
    }
#pragma omp for schedule(static)
    for (int64_t task = 0; task < a->B * a->H_kv; task++)
        cb_reduce_kv(x, task / a->H_kv, task % a->H_kv);
    if (pl->W && x->g->dw.data) {
#pragma omp for schedule(static)
        for (int64_t h = 0; h < a->H; h++)
            cb_reduce_dw(x, h);
    }
}

int cb_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    cb_plan pl;
    int rc = cb_plan_make(&pl, a);
    if (rc || (rc = cb_check_w(&pl, &io->w, "backward")))
        return rc;
    if (!io->lse)
        return attn_fail(ATTN_EINVAL, "combiner backward: expected the forward's io.lse, found none");
    cb_bwd x = {.ctx = ctx, .pl = &pl, .io = io, .g = g, .w = cb_bwd_ws_at(ctx, &pl)};
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(a->threads)
    {
        double flops = 0;
        cb_backward_passes(&x, cb_thread_slot(ctx, &pl, omp_get_thread_num()), &flops);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    }
    return 0;
}
