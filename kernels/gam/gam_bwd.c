/* Backward of `gam` (docs/kernels/gam.md; forward and notation in gam.c).
 * Given dF per row, with sigma_a = sigma(a_t), sigma_c = sigma(c_t):
 *
 *   dl_t = dF (.) sigma_a            dg_t = dF (.) sigma_c
 *   da_t = dF (.) l_t (.) sigma_a (1 - sigma_a),  dc_t likewise with g_t
 *   dZ = P (.) (dG M^T - rowsum(P (.) dG M^T))          (softmax, per row)
 *   dX = sc dZ M + [da, dc] W_g + conv^T(dl)
 *   dM = sc dZ^T X + P^T dG (both uses of M); dW_g = [da, dc]^T X, db_g = sum_t [da, dc]
 *   dw_tau = sum_t dl_t (.) x_{t - tau + s},  dcb = sum_t dl_t
 *
 * Work split: per head, the (b, tile) items are cut into min(chunks, B *
 * tiles) fixed ranges; one task per (head, range) recomputes P, Gm, gates
 * and conv of each tile, writes its dX rows (the conv^T term reads dl of the
 * k-1 halo rows, recomputed from the halo's gates, so no row is written twice)
 * and accumulates its dW partial in item order. The partials of a head are
 * then summed in range order. Neither split depends on the thread count: the
 * results are bitwise identical for any number of threads. dK and dV are
 * written as zeros (K and V are not read). */
#include "gam.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

typedef struct {
    float *P, *dZ, *Gm, *L, *dG, *dGt, *Gt, *dL;
} gam_bwd_scratch;

static gam_bwd_scratch gam_bwd_carve(const gam_plan *pl, int64_t D, float *s)
{
    int64_t T = pl->T, Te = pl->T + pl->k - 1;
    gam_bwd_scratch b;
    b.P = s, s += GAM_ROUND16(T * pl->S);
    b.dZ = s, s += GAM_ROUND16(T * pl->S);
    b.Gm = s, s += GAM_ROUND16(T * D);
    b.L = s, s += GAM_ROUND16(T * D);
    b.dG = s, s += GAM_ROUND16(T * D);
    b.dGt = s, s += GAM_ROUND16(2 * T * D);
    b.Gt = s, s += GAM_ROUND16(2 * Te * D);
    b.dL = s;
    return b;
}

/* One (b, h) sequence: X, dF, dX are (N, D) with row strides. */
typedef struct {
    const float *X, *dF, *w;
    float *dX;
    int64_t ldx, ldf, lddx, N, D;
} gam_seq;

// recomputes the forward of rows [i0, i0 + nb) and the gates of rows [e0, e1);
// fills dL over [e0, e1) and dG, dGt, dZ over the tile.
static void gam_tile_local_grads(const gam_plan *pl, const gam_seq *q, int64_t i0, int64_t nb, int64_t e0,
                                 int64_t e1, const gam_bwd_scratch *s)
{
    int64_t D = q->D, S = pl->S, off = i0 - e0;
    attn_gam_global(pl, D, q->X + i0 * q->ldx, q->ldx, q->w, nb, s->P, s->Gm);
    attn_gam_gates(pl, D, q->X + e0 * q->ldx, q->ldx, q->w, e1 - e0, s->Gt);
    attn_gam_conv(pl, q->N, D, q->X, q->ldx, q->w, i0, nb, s->L);
    for (int64_t t = e0; t < e1; t++) {
        const float *gt = s->Gt + (t - e0) * 2 * D, *df = q->dF + t * q->ldf;
        float *dl = s->dL + (t - e0) * D;
        for (int64_t d = 0; d < D; d++)
            dl[d] = df[d] * attn_gam_sigmoid(gt[d]);
    }
    for (int64_t r = 0; r < nb; r++) {
        const float *gt = s->Gt + (off + r) * 2 * D, *df = q->dF + (i0 + r) * q->ldf;
        const float *l = s->L + r * D, *gm = s->Gm + r * D;
        float *dg = s->dG + r * D, *dgt = s->dGt + r * 2 * D;
        for (int64_t d = 0; d < D; d++) {
            float sa = attn_gam_sigmoid(gt[d]), sc = attn_gam_sigmoid(gt[D + d]);
            dg[d] = df[d] * sc;
            dgt[d] = df[d] * l[d] * sa * (1 - sa);
            dgt[D + d] = df[d] * gm[d] * sc * (1 - sc);
        }
    }
    // dP = dG M^T, then dZ = P (dP - sum_j P dP) in place
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)S, (int)D, 1.0f, s->dG, (int)D, q->w, (int)D,
                0.0f, s->dZ, (int)S);
    for (int64_t r = 0; r < nb; r++) {
        float *dz = s->dZ + r * S, di = 0;
        const float *p = s->P + r * S;
        for (int64_t j = 0; j < S; j++)
            di += p[j] * dz[j];
        for (int64_t j = 0; j < S; j++)
            dz[j] = p[j] * (dz[j] - di);
    }
}

// dX rows [i0, i0 + nb) = sc dZ M + dGt W_g + conv^T(dL).
static void gam_tile_dx(const gam_plan *pl, const gam_seq *q, int64_t i0, int64_t nb, int64_t e0,
                        const gam_bwd_scratch *s)
{
    int64_t D = q->D, S = pl->S;
    float *dX = q->dX + i0 * q->lddx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)S, pl->sc, s->dZ, (int)S, q->w,
                (int)D, 0.0f, dX, (int)q->lddx);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)(2 * D), 1.0f, s->dGt,
                (int)(2 * D), q->w + pl->off_wg, (int)D, 1.0f, dX, (int)q->lddx);
    const float *taps = q->w + pl->off_taps;
    for (int64_t r = 0; r < nb; r++) {
        float *dx = dX + r * q->lddx;
        for (int64_t tau = 0; tau < pl->k; tau++) {
            int64_t v = i0 + r + tau - pl->shift; /* x_u feeds l_v with v - tau + s = u */
            if (v < 0 || v >= q->N)
                continue;
            const float *dl = s->dL + (v - e0) * D, *wt = taps + tau * D;
            for (int64_t d = 0; d < D; d++)
                dx[d] += wt[d] * dl[d];
        }
    }
}

// dw (the head's W floats) += the tile's weight gradients.
static void gam_tile_dw(const gam_plan *pl, const gam_seq *q, int64_t i0, int64_t nb, int64_t e0,
                        const gam_bwd_scratch *s, float *dw)
{
    int64_t D = q->D, S = pl->S, off = i0 - e0;
    const float *Xt = q->X + i0 * q->ldx;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)S, (int)D, (int)nb, pl->sc, s->dZ, (int)S, Xt,
                (int)q->ldx, 1.0f, dw, (int)D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)S, (int)D, (int)nb, 1.0f, s->P, (int)S, s->dG, (int)D,
                1.0f, dw, (int)D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(2 * D), (int)D, (int)nb, 1.0f, s->dGt, (int)(2 * D),
                Xt, (int)q->ldx, 1.0f, dw + pl->off_wg, (int)D);
    float *dtaps = dw + pl->off_taps, *dcb = dw + pl->off_cbias, *dbg = dw + pl->off_bg;
    for (int64_t r = 0; r < nb; r++) {
        const float *dgt = s->dGt + r * 2 * D, *dl = s->dL + (off + r) * D;
        for (int64_t d = 0; d < 2 * D; d++)
            dbg[d] += dgt[d];
        for (int64_t d = 0; d < D; d++)
            dcb[d] += dl[d];
        for (int64_t tau = 0; tau < pl->k; tau++) {
            int64_t src = i0 + r - tau + pl->shift;
            if (src < 0 || src >= q->N)
                continue;
            const float *x = q->X + src * q->ldx;
            for (int64_t d = 0; d < D; d++)
                dtaps[tau * D + d] += dl[d] * x[d];
        }
    }
}

/* Executed FLOPs of one tile: the recomputed forward (gates over the halo
 * too) and the backward products. */
static double gam_tile_flops(const gam_plan *pl, int64_t D, int64_t nb, int64_t ne)
{
    double S = (double)pl->S, d = (double)D, k = (double)pl->k, n = (double)nb;
    return 12 * n * S * d + 4 * (double)ne * d * d + 8 * n * d * d + 6 * n * k * d;
}

static void gam_zero_rows(const attn_tensor *t)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++)
                memset(attn_at(t, b, h, n), 0, sizeof(float) * (size_t)t->D);
}

// q is (B,H,N,D) = X, w (1,H,1,W), d_o (B,H,N,D); writes dq (B,H,N,D), dw (1,H,1,W), dk = dv = 0.
int attn_gam_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    gam_plan pl;
    int rc = attn_gam_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->w.data || !g->dw.data || io->w.D < pl.W || g->dw.D < pl.W)
        return attn_fail(ATTN_EINVAL, "gam backward: expected io.w and g.dw with %lld weights per head",
                         (long long)pl.W);
    int64_t N = a->Nq, D = a->D, items = a->B * pl.ntiles;
    int64_t P = pl.chunks < items ? pl.chunks : items, tasks = a->H * P;
    size_t wpad = GAM_ROUND16((size_t)pl.W);
    float *parts = attn_gam_scratch(ctx, &pl, a->threads); /* after the last thread's scratch */
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t h = t / P, c = t % P;
        float *dw = parts + (size_t)(h * pl.chunks + c) * wpad;
        gam_bwd_scratch s = gam_bwd_carve(&pl, D, attn_gam_scratch(ctx, &pl, omp_get_thread_num()));
        memset(dw, 0, sizeof(float) * (size_t)pl.W);
        double flops = 0;
        for (int64_t it = c * items / P; it < (c + 1) * items / P; it++) {
            int64_t b = it / pl.ntiles, i0 = (it % pl.ntiles) * pl.T, nb = N - i0 < pl.T ? N - i0 : pl.T;
            int64_t e0 = i0 - pl.shift, e1 = i0 + nb + pl.k - 1 - pl.shift;
            e0 = e0 < 0 ? 0 : e0, e1 = e1 > N ? N : e1;
            gam_seq q = {attn_at(&io->q, b, h, 0), attn_at(&g->d_o, b, h, 0), attn_at(&io->w, 0, h, 0),
                         attn_at(&g->dq, b, h, 0), io->q.sn, g->d_o.sn, g->dq.sn, N, D};
            gam_tile_local_grads(&pl, &q, i0, nb, e0, e1, &s);
            gam_tile_dx(&pl, &q, i0, nb, e0, &s);
            gam_tile_dw(&pl, &q, i0, nb, e0, &s, dw);
            flops += gam_tile_flops(&pl, D, nb, e1 - e0);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    }
    /* per head, the partials in range order: element-wise, any thread count */
    int64_t W = pl.W;
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t e = 0; e < a->H * W; e++) {
        int64_t h = e / W, i = e % W;
        const float *p = parts + (size_t)h * pl.chunks * wpad + (size_t)i;
        float sum = p[0];
        for (int64_t c = 1; c < P; c++)
            sum += p[(size_t)c * wpad];
        attn_at(&g->dw, 0, h, 0)[i] = sum;
    }
    gam_zero_rows(&g->dk);
    gam_zero_rows(&g->dv);
    double rows = (double)(a->B * a->H * N), Dd = (double)D, S = (double)pl.S;
    attn_counter_add(ATTN_CNT_EXPS, (long long)(rows * (S + 4 * Dd)));
    /* X (with halo) and dO once per tile, M and W_g once per tile, partials once */
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(sizeof(float) * (2 * rows * Dd + (double)(a->H * items) *
                                                                        (2 * (double)(pl.k - 1) * Dd + S * Dd +
                                                                         2 * Dd * Dd) +
                                                  (double)(tasks * W))));
    return 0;
}
