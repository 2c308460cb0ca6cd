/* Backward of `sinkhorn` (notation in sinkhorn.h). With A the block softmax
 * and dS = A (.) (dA - rowsum(A (.) dA)), dA = dO [V_i; Vt_i]^T:
 *
 *   dq      = sc dS [K_i; Kt_i]
 *   dK_i   += sc dS_loc^T q,   dV_i += A_loc^T dO           (own block)
 *   dKt_i   = sc dS_sort^T q,  dVt_i = A_sort^T dO          (sorted block)
 *   tail    Kt_i[t] = U_i[t] / mu_i for t >= r: dU = dKt / mu_i,
 *           dmu_i = -sum_{t >= r} <dKt_i[t], Kt_i[t]> / mu_i  (and V's)
 *   mixing  U = P Kp:  dP = dU_K Kp^T + dU_V Vp^T (+ dmu_i on j < n_b - 1),
 *           dKp += P^T dU_K,  dVp += P^T dU_V
 *   sort    dR from dP through the row softmax or back through the Sinkhorn
 *           rounds (sinkhorn_sort.c); dw_j = sum_i dR_ij s_i, dbeta_j =
 *           sum_i dR_ij, ds = dR w; ds_i goes to every key of block i (causal:
 *           to its first key).
 *
 * One task per (b, KV head) runs the G query heads of the group in order,
 * accumulating dK and dV in its scratch (no two tasks write the same rows);
 * dw has a partial per (b, h), summed over b in order. Neither split depends
 * on the thread count: bitwise identical results for any number of threads. */
#include "sinkhorn_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

typedef struct {
    float *Kp, *Vp, *dKa, *dVa, *Kt, *Vt, *dUk, *dUv; /* [nb*c x D] */
    float *s, *ds;                                     /* [nb x D] */
    float *R, *P, *dP, *dR;                            /* [nb x nb] */
    float *hist;                                       /* 2 iters [nb x nb] (sinkhorn) */
    float *mu, *dmu;                                   /* [nb] */
    float *A, *dA;                                     /* [c x 2c] */
} sk_bwd_bufs;

/* Carves the buffers from base (NULL: only counts); returns the floats used. */
static size_t bwd_carve(const sk_plan *pl, float *base, sk_bwd_bufs *b)
{
    int64_t nb = pl->nb_max, c = pl->c;
    size_t big = SK_ROUND16((size_t)(nb * c * pl->D)), vec = SK_ROUND16((size_t)(nb * pl->D));
    size_t mat = SK_ROUND16((size_t)(nb * nb)), off = 0;
    float **bigs[] = {&b->Kp, &b->Vp, &b->dKa, &b->dVa, &b->Kt, &b->Vt, &b->dUk, &b->dUv};
    for (int i = 0; i < 8; i++, off += big)
        *bigs[i] = base ? base + off : NULL;
    float **vecs[] = {&b->s, &b->ds};
    for (int i = 0; i < 2; i++, off += vec)
        *vecs[i] = base ? base + off : NULL;
    float **mats[] = {&b->R, &b->P, &b->dP, &b->dR};
    for (int i = 0; i < 4; i++, off += mat)
        *mats[i] = base ? base + off : NULL;
    b->hist = base ? base + off : NULL;
    off += pl->sort == SK_SORT_SINKHORN ? (size_t)(2 * pl->iters) * mat : 0;
    b->mu = base ? base + off : NULL, off += SK_ROUND16((size_t)nb);
    b->dmu = base ? base + off : NULL, off += SK_ROUND16((size_t)nb);
    b->A = base ? base + off : NULL, off += SK_ROUND16((size_t)(2 * c * c));
    b->dA = base ? base + off : NULL, off += SK_ROUND16((size_t)(2 * c * c));
    return off;
}

size_t sk_bwd_floats(const sk_plan *pl)
{
    sk_bwd_bufs b;
    return bwd_carve(pl, NULL, &b);
}

typedef struct {
    const attn_args *a;
    const sk_plan *pl;
    const attn_io *io;
    const attn_grads *g;
    int64_t b;
    sk_geom geo;
    sk_bwd_bufs *s;
} sk_task;

static void zero_rows(const attn_tensor *t, int64_t b, int64_t h, int64_t n0)
{
    for (int64_t n = n0; n < t->N; n++)
        memset(attn_at(t, b, h, n), 0, sizeof(float) * (size_t)t->D);
}

// block i of head h: dq rows, the own block's dK, dV into dKa, dVa, the sorted block's into dUk, dUv.
static double block_backward(const sk_task *k, int64_t h, int64_t i)
{
    const sk_plan *pl = k->pl;
    const sk_bwd_bufs *s = k->s;
    int64_t c = pl->c, D = pl->D, n = sk_rows(pl, &k->geo, i), bo = i * c * D;
    float sc = (float)attn_scale(k->a);
    const float *q = attn_at(&k->io->q, k->b, h, i * c), *dO = attn_at(&k->g->d_o, k->b, h, i * c);
    int ldq = (int)k->io->q.sn, ldo = (int)k->g->d_o.sn, l2 = (int)(2 * c);
    double flops = sk_block_probs(pl, &k->geo, i, sc, q, ldq, s->Kp + bo, s->Kt + bo, s->mu[i], s->A, NULL);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)c, (int)D, 1.0f, dO, ldo, s->Vp + bo, (int)D,
                0.0f, s->dA, l2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)c, (int)D, 1.0f, dO, ldo, s->Vt + bo, (int)D,
                0.0f, s->dA + c, l2);
    for (int64_t t = 0; t < n; t++) { /* dS in place of dA */
        float *da = s->dA + t * 2 * c;
        const float *p = s->A + t * 2 * c;
        float di = attn_dot(p, da, 2 * c);
        for (int64_t u = 0; u < 2 * c; u++)
            da[u] = p[u] * (da[u] - di);
    }
    float *dq = attn_at(&k->g->dq, k->b, h, i * c);
    int lddq = (int)k->g->dq.sn;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)c, sc, s->dA, l2, s->Kp + bo, (int)D,
                0.0f, dq, lddq);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)c, sc, s->dA + c, l2, s->Kt + bo,
                (int)D, 1.0f, dq, lddq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)D, (int)n, sc, s->dA, l2, q, ldq, 1.0f,
                s->dKa + bo, (int)D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)D, (int)n, 1.0f, s->A, l2, dO, ldo, 1.0f,
                s->dVa + bo, (int)D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)D, (int)n, sc, s->dA + c, l2, q, ldq, 0.0f,
                s->dUk + bo, (int)D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)D, (int)n, 1.0f, s->A + c, l2, dO, ldo, 0.0f,
                s->dUv + bo, (int)D);
    return flops + 16.0 * (double)(n * c * D);
}

// the renormalised tail slots: dU = dKt / mu, dmu from both K and V.
static void tail_backward(const sk_task *k)
{
    const sk_plan *pl = k->pl;
    const sk_bwd_bufs *s = k->s;
    int64_t c = pl->c, D = pl->D, r = k->geo.r;
    for (int64_t i = 0; i < k->geo.nb; i++) {
        s->dmu[i] = 0;
        if (r == c || !(s->mu[i] > SK_MIN_MASS))
            continue; /* no tail, or a masked one (its slots got no gradient) */
        size_t off = (size_t)((i * c + r) * D), len = (size_t)((c - r) * D);
        float inv = 1.0f / s->mu[i];
        float dm = -(attn_dot(s->dUk + off, s->Kt + off, (int64_t)len) + attn_dot(s->dUv + off, s->Vt + off, (int64_t)len));
        s->dmu[i] = dm * inv;
        for (size_t e = 0; e < len; e++)
            s->dUk[off + e] *= inv, s->dUv[off + e] *= inv;
    }
}

// the mixing and the sort net of head h: dKa, dVa += their parts; dw partial rows.
static double sort_backward(const sk_task *k, int64_t h, float *dwp)
{
    const sk_plan *pl = k->pl;
    const sk_bwd_bufs *s = k->s;
    int64_t c = pl->c, D = pl->D, nb = k->geo.nb, cD = c * D;
    const float *w = attn_at(&k->io->w, 0, h, 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nb, (int)cD, 1.0f, s->dUk, (int)cD, s->Kp,
                (int)cD, 0.0f, s->dP, (int)nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nb, (int)cD, 1.0f, s->dUv, (int)cD, s->Vp,
                (int)cD, 1.0f, s->dP, (int)nb);
    for (int64_t i = 0; i < nb; i++)
        for (int64_t j = 0; j < nb - 1; j++)
            s->dP[i * nb + j] += s->dmu[i];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nb, (int)cD, (int)nb, 1.0f, s->P, (int)nb, s->dUk,
                (int)cD, 1.0f, s->dKa, (int)cD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nb, (int)cD, (int)nb, 1.0f, s->P, (int)nb, s->dUv,
                (int)cD, 1.0f, s->dVa, (int)cD);
    sk_permute_backward(pl, nb, s->P, s->hist, s->dP, s->dR);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nb, (int)D, (int)nb, 1.0f, s->dR, (int)nb, s->s, (int)D,
                0.0f, dwp, (int)pl->ldw);
    for (int64_t j = 0; j < nb; j++) {
        float db = 0;
        for (int64_t i = 0; i < nb; i++)
            db += s->dR[i * nb + j];
        dwp[j * pl->ldw + D] = db;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)nb, 1.0f, s->dR, (int)nb, w,
                (int)pl->ldw, 0.0f, s->ds, (int)D);
    for (int64_t i = 0; i < nb; i++) /* the summaries: block sums, or the first key (causal) */
        for (int64_t t = 0; t < (pl->causal ? 1 : sk_rows(pl, &k->geo, i)); t++) {
            float *dk = s->dKa + (i * c + t) * D;
            for (int64_t d = 0; d < D; d++)
                dk[d] += s->ds[i * D + d];
        }
    return 8.0 * (double)(nb * nb * cD) + 6.0 * (double)(nb * nb * D);
}

// query head h of the task's group.
static double head_backward(const sk_task *k, int64_t h, float *dwp)
{
    const sk_plan *pl = k->pl;
    const sk_bwd_bufs *s = k->s;
    int64_t nb = k->geo.nb;
    sk_summaries(pl, &k->geo, s->Kp, s->s);
    sk_logits(pl, &k->geo, s->s, attn_at(&k->io->w, 0, h, 0), s->R);
    sk_permute(pl, nb, s->R, s->P, s->hist);
    sk_tail_mass(&k->geo, s->P, s->mu);
    double flops = 2.0 * (double)(nb * nb * pl->D);
    flops += sk_sorted_blocks(pl, &k->geo, s->P, s->mu, s->Kp, 0, nb, s->Kt);
    flops += sk_sorted_blocks(pl, &k->geo, s->P, s->mu, s->Vp, 0, nb, s->Vt);
    for (int64_t i = 0; i < nb; i++)
        flops += block_backward(k, h, i);
    tail_backward(k);
    return flops + sort_backward(k, h, dwp);
}

static void write_kv_grad(const sk_task *k, int64_t hk, const float *src, const attn_tensor *dst)
{
    for (int64_t n = 0; n < k->geo.L; n++)
        memcpy(attn_at(dst, k->b, hk, n), src + n * k->pl->D, sizeof(float) * (size_t)k->pl->D);
    zero_rows(dst, k->b, hk, k->geo.L);
}

static double group_backward(const attn_ctx *ctx, const sk_plan *pl, const attn_io *io, const attn_grads *g,
                             int64_t b, int64_t hk, float *scr)
{
    const attn_args *a = &ctx->args;
    sk_bwd_bufs s;
    bwd_carve(pl, scr, &s);
    sk_task k = {a, pl, io, g, b, sk_geom_of(pl, attn_q_len(a, b)), &s};
    size_t big = (size_t)(k.geo.nb * pl->c * pl->D);
    sk_pack(pl, &k.geo, &io->k, b, hk, s.Kp);
    sk_pack(pl, &k.geo, &io->v, b, hk, s.Vp);
    memset(s.dKa, 0, sizeof(float) * big);
    memset(s.dVa, 0, sizeof(float) * big);
    double flops = 0;
    for (int64_t h = hk * pl->G; h < (hk + 1) * pl->G; h++) {
        float *dwp = attn_dw_partial(a, sk_dw_partials(ctx, pl), attn_dw_stride(pl->nb_max * pl->ldw), b, h);
        memset(dwp, 0, sizeof(float) * (size_t)(pl->nb_max * pl->ldw));
        if (k.geo.nb)
            flops += head_backward(&k, h, dwp);
        zero_rows(&g->dq, b, h, k.geo.L);
    }
    write_kv_grad(&k, hk, s.dKa, &g->dk);
    write_kv_grad(&k, hk, s.dVa, &g->dv);
    return flops;
}

int sk_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "kernel 'sinkhorn': backward called on a context created "
                                      "without args.backward = 1 (workspace too small)");
    sk_plan pl;
    int rc = sk_plan_make(&pl, a);
    if (rc || (rc = sk_check_weights(&pl, &io->w, "sinkhorn backward")) ||
        (rc = sk_check_weights(&pl, &g->dw, "sinkhorn backward (g.dw)")))
        return rc;
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < a->B * a->H_kv; t++) {
        double flops = group_backward(ctx, &pl, io, g, t / a->H_kv, t % a->H_kv,
                                      sk_thread_scratch(ctx, &pl, omp_get_thread_num()));
        attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    }
    int64_t used = pl.nb_max * pl.ldw;
    attn_sum_dw_partials(a, sk_dw_partials(ctx, &pl), attn_dw_stride(used), used, g->dw.D, &g->dw);
    double rows = attn_batch_rows(a), D = (double)a->D;
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * D * rows * (double)(2 * a->H + 2 * a->H_kv)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)((double)a->H * rows * 2 * (double)pl.c));
    return 0;
}
