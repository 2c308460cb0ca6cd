/* sse backward (docs/kernels/sse.md): the GLA core's chunked backward
 * (gla_internal.h, gla_bwd.c) for the shared pass over all tokens, then per
 * bucket on the gathered rows q~ = pi q, k~ = pi k, v, g, dO. Scattered back:
 *   dq_t += pi_tp dq~_t,  dk_t += pi_tp dk~_t,  dv_t += dv~_t,  dg_t += dg~_t
 *   d pi_tp = sum_h <dq~_h,t, q_h,t> + <dk~_t, k_t>     (p in K_t; 0 otherwise)
 *   de_tj = pi_tj (d pi_tj - sum_l pi_tl d pi_tl)      (softmax backward)
 * top-k selection itself has no gradient. The gates' gradient of a bucket is
 * that of its gathered sequence: gate g_t decays S^p only from p's previous
 * token (varlen semantics). One task per (batch, KV head), partitions in order:
 * bitwise independent of the thread count. */
#include "sse.h"
#include "sse_internal.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* sum_d x[d] y[d] in double */
static double dot(const float *x, const float *y, int64_t n)
{
    double s = 0;
    for (int64_t d = 0; d < n; d++)
        s += (double)x[d] * y[d];
    return s;
}

/* y[d] += c x[d] */
static void axpy(float *y, float c, const float *x, int64_t n)
{
    for (int64_t d = 0; d < n; d++)
        y[d] += c * x[d];
}

/* Adds every bucket's gathered gradients into dq, dk, dv, dgate (one pass over
 * the tokens, partitions in increasing order) and records d pi. */
static void scatter_grads(const sse_plan *pl, const attn_io *io, const attn_grads *g, int64_t b, int64_t hk,
                          sse_bufs *w)
{
    int64_t G = pl->G, Dk = pl->Dk, Dv = pl->Dv, P = pl->P, k = pl->k, R = pl->R;
    memset(w->dpi, 0, sizeof(double) * (size_t)(pl->N * P));
    for (int64_t t = 0; t < pl->N; t++)
        for (int64_t j = 0; j < k; j++) {
            int64_t r = w->pos[t * k + j], p = w->sel[t * k + j];
            float pi = w->pi[t * P + p];
            const float *gdk = w->gdk + r * Dk;
            double dpi = dot(gdk, attn_at(&io->k, b, hk, t), Dk);
            axpy(attn_at(&g->dk, b, hk, t), pi, gdk, Dk);
            axpy(attn_at(&g->dv, b, hk, t), 1.0f, w->gdv + r * Dv, Dv);
            axpy(attn_at(&g->dgate, b, hk, t), 1.0f, w->gdg + r * Dk, Dk);
            for (int64_t h = 0; h < G; h++) {
                const float *gdq = w->gdq + (h * R + r) * Dk;
                dpi += dot(gdq, attn_at(&io->q, b, hk * G + h, t), Dk);
                axpy(attn_at(&g->dq, b, hk * G + h, t), pi, gdq, Dk);
            }
            w->dpi[t * P + p] = dpi;
        }
}

// router is (B,H_kv,N,P), drouter the same: softmax backward of every token's logits
static void router_grads(const sse_plan *pl, const attn_grads *g, int64_t b, int64_t hk, const sse_bufs *w)
{
    int64_t P = pl->P;
    for (int64_t t = 0; t < pl->N; t++) {
        const float *pi = w->pi + t * P;
        const double *dpi = w->dpi + t * P;
        double s = 0;
        for (int64_t p = 0; p < P; p++)
            s += pi[p] * dpi[p];
        float *de = attn_at(&g->drouter, b, hk, t);
        for (int64_t p = 0; p < P; p++)
            de[p] = (float)(pi[p] * (dpi[p] - s));
    }
}

/* The backward of KV head hk of batch b. Returns the executed matrix-product FLOPs. */
static double backward_task(const attn_args *a, const sse_plan *pl, const attn_io *io, const attn_grads *g, int64_t b,
                            int64_t hk, sse_bufs *w)
{
    float sc = (float)attn_scale(a);
    attn_sse_route(pl, &io->router, b, hk, w);
    double flops = attn_gla_backward_slice(&pl->gla, io, g, b, hk, pl->seg, pl->nseg, 0, sc, w->gla_ws);
    attn_sse_gather(pl, io, &g->d_o, b, hk, w);
    for (int64_t p = 0; p < pl->P; p++) {
        sse_bucket bk;
        attn_sse_bucket(pl, w, p, &bk);
        if (bk.n > 0)
            flops += attn_gla_backward_slice(&pl->gla, &bk.io, &bk.g, 0, 0, bk.seg, bk.nseg, 0, sc, w->gla_ws);
    }
    scatter_grads(pl, io, g, b, hk, w);
    router_grads(pl, g, b, hk, w);
    return flops;
}

// d_o is (B,H,N,Dv); dq is (B,H,N,Dk), dk is (B,H_kv,N,Dk), dv is (B,H_kv,N,Dv), dgate is (B,H_kv,N,Dk),
// drouter is (B,H_kv,N,P)
int attn_sse_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "kernel 'sse': backward called on a context created without "
                         "args.backward = 1 (workspace too small)");
    sse_plan pl;
    int rc = attn_sse_plan(&pl, a);
    if (rc || (rc = attn_sse_check_inputs(&pl, io)) != 0)
        return rc;
    if (!g->dgate.data || !g->drouter.data)
        return attn_fail(ATTN_EINVAL, "kernel 'sse': grads.dgate and grads.drouter shaped as io.gate and "
                         "io.router expected, found %s missing", !g->dgate.data ? "dgate" : "drouter");
    float *slots = (float *)ctx->workspace + attn_sse_slot0(&pl);
    int64_t tasks = a->B * a->H_kv;
    double flops = 0;
    openblas_set_num_threads(1);
    /* one task per (b, KV head): it owns dK, dV, dgate, drouter of that head and dQ of its G query heads */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t t = 0; t < tasks; t++) {
        sse_bufs w;
        attn_sse_bind(&w, &pl, slots + (size_t)omp_get_thread_num() * pl.slot_floats, 1);
        flops += backward_task(a, &pl, io, g, t / a->H_kv, t % a->H_kv, &w);
    }
    attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    /* the GLA backward's reads (two sweeps and the gate pass, see gla_bwd.c) for the
     * shared pass and k gathered passes, plus the gathers and scatters */
    double Dk = (double)pl.Dk, Dv = (double)pl.Dv, H = (double)a->H, Hkv = (double)a->H_kv, k = (double)pl.k;
    double gla_row = 2 * (Hkv * (Dk + Dv) + H * Dv) + H * Dk + 2 * Hkv * Dk + 2 * (H + Hkv) * Dk;
    double per_row = (1 + k) * gla_row + k * (2 * H * Dk + 3 * Hkv * Dk + Hkv * (2 * Dk + 2 * Dv) + H * Dv) +
                     2 * Hkv * (double)pl.P;
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * (double)(a->B * a->Nk) * per_row));
    return 0;
}
