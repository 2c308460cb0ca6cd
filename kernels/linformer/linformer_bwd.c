/* `linformer` backward (linformer.h). Three phases, each a parallel loop of
 * tasks that run in a fixed order and write their own outputs, so the
 * gradients are bitwise identical for any thread count:
 *
 * 1. per (b, head, E or F): K~ and V~ recomputed as in the forward (the
 *    backward reads the attn_io tensors only, so a weight-shared model may
 *    call it after other forwards);
 * 2. per (b, KV head), over its G query heads and their tiles in order: P = softmax(sc Q K~^T),
 *    dP = dO V~^T, dS = P (.) (dP - rowsum(P (.) dP)), dQ = sc dS K~, and
 *    dK~ += sc dS^T Q, dV~ += P^T dO kept per head; then dK = E^T dK~ and
 *    dV = F^T dV~ (every product a cblas_sgemm);
 * 3. per (E or F, block of key columns): dE = sum over (b, KV head) in
 *    order of dK~ K^T and dF of dV~ V^T (both into E when F = E), written in
 *    place into g.dw through the layout (not accumulated). */
#include "linformer.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    double flops, exps;
} lf_btally;

/* One query tile of (b, h): rows [i0, i0 + nb). P and dP are nb x k (ld). */
static void lf_tile_backward(const attn_args *a, const lf_plan *pl, const attn_io *io, const attn_grads *g,
                             const float *kt, const float *vt, float *dkt, float *dvt, int64_t b, int64_t h,
                             int64_t i0, int64_t nb, float *P, float *dP)
{
    int64_t D = a->D, k = pl->k, ld = LF_ROUND16(k);
    float sc = (float)attn_scale(a);
    const float *q = attn_at(&io->q, b, h, i0), *d_o = attn_at(&g->d_o, b, h, i0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)D, sc, q, (int)io->q.sn, kt, (int)D,
                0.0f, P, (int)ld);
    for (int64_t r = 0; r < nb; r++)
        attn_softmax_row(P + r * ld, k);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)D, 1.0f, d_o, (int)g->d_o.sn, vt,
                (int)D, 0.0f, dP, (int)ld);
    for (int64_t r = 0; r < nb; r++) { /* dS in place of dP */
        float *p = P + r * ld, *dp = dP + r * ld, di = attn_dot(p, dp, k);
        for (int64_t j = 0; j < k; j++)
            dp[j] = p[j] * (dp[j] - di);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)k, sc, dP, (int)ld, kt, (int)D, 0.0f,
                attn_at(&g->dq, b, h, i0), (int)g->dq.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)D, (int)nb, sc, dP, (int)ld, q, (int)io->q.sn,
                1.0f, dkt, (int)D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)D, (int)nb, 1.0f, P, (int)ld, d_o,
                (int)g->d_o.sn, 1.0f, dvt, (int)D);
}

static void lf_zero_tail(const attn_tensor *t, int64_t b, int64_t h, int64_t n0)
{
    for (int64_t n = n0; n < t->N; n++)
        memset(attn_at(t, b, h, n), 0, sizeof(float) * (size_t)t->D);
}

/* dX[:L] = M[:, :L]^T dX~ for X = K (mat 0) or V (mat 1), summed over the
 * runs of M's rows in one row of io.w; padding rows 0. */
static double lf_unproject(const attn_args *a, const lf_plan *pl, const attn_io *io, const float *dxt,
                           const attn_tensor *dx, int64_t b, int64_t h, int mat)
{
    int64_t L = attn_kv_len(a, b), D = a->D;
    lf_zero_tail(dx, b, h, L);
    if (L == 0)
        return 0;
    for (int64_t r = 0, r1; r < pl->k; r = r1) {
        r1 = lf_run_end(pl, mat, r, pl->k);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)L, (int)D, (int)(r1 - r), 1.0f,
                    lf_row(pl, &io->w, lf_row0(pl, mat) + r), (int)pl->n, dxt + r * D, (int)D, r == 0 ? 0.0f : 1.0f,
                    attn_at(dx, b, h, 0), (int)dx->sn);
    }
    return 2.0 * (double)(L * pl->k * D);
}

// phase 2 for (b, KV head hk): dQ of its G query heads and dK~, dV~ over
// their tiles, then dK, dV
static void lf_head_backward(const attn_args *a, const lf_plan *pl, const attn_io *io, const attn_grads *g,
                             const lf_ws *ws, int64_t b, int64_t hk, float *scr, lf_btally *t)
{
    int64_t L = attn_q_len(a, b), k = pl->k, D = a->D, G = a->H / a->H_kv;
    float *P = scr, *dP = scr + pl->T * LF_ROUND16(k);
    const float *kt = lf_kv(a, pl, ws->kv, b, hk, 0), *vt = lf_kv(a, pl, ws->kv, b, hk, 1);
    float *dkt = lf_kv(a, pl, ws->dkv, b, hk, 0), *dvt = lf_kv(a, pl, ws->dkv, b, hk, 1);
    memset(dkt, 0, sizeof(float) * (size_t)(k * D));
    memset(dvt, 0, sizeof(float) * (size_t)(k * D));
    for (int64_t h = hk * G; h < hk * G + G; h++) {
        for (int64_t i0 = 0; i0 < L; i0 += pl->T) {
            int64_t nb = L - i0 < pl->T ? L - i0 : pl->T;
            lf_tile_backward(a, pl, io, g, kt, vt, dkt, dvt, b, h, i0, nb, P, dP);
            t->flops += 10.0 * (double)(nb * k * D);
            t->exps += (double)(nb * k);
        }
        lf_zero_tail(&g->dq, b, h, L);
    }
    t->flops += lf_unproject(a, pl, io, dkt, &g->dk, b, hk, 0);
    t->flops += lf_unproject(a, pl, io, dvt, &g->dv, b, hk, 1);
}

// phase 3: rows [r0, r1) (one run in a row of g.dw), columns [j0, j1) of dE
// (mat 0) or dF (mat 1), summed over (b, KV head) in order
static double lf_dtheta_block(const attn_args *a, const lf_plan *pl, const attn_io *io, const attn_grads *g,
                              const lf_ws *ws, int mat, int64_t r0, int64_t r1, int64_t j0, int64_t j1)
{
    int64_t n = pl->n, D = a->D, m = r1 - r0;
    float *C = lf_row(pl, &g->dw, lf_row0(pl, mat) + r0) + j0;
    double flops = 0;
    for (int64_t r = 0; r < m; r++)
        memset(C + r * n, 0, sizeof(float) * (size_t)(j1 - j0));
    for (int64_t b = 0; b < a->B; b++) {
        int64_t L = attn_kv_len(a, b), nc = (j1 < L ? j1 : L) - j0;
        for (int64_t h = 0; nc > 0 && h < a->H_kv; h++)
            for (int src = 0; src < 2; src++) {
                if (!pl->share_ef && src != mat)
                    continue; /* F = E: both products land in E */
                const attn_tensor *x = src ? &io->v : &io->k;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nc, (int)D, 1.0f,
                            lf_kv(a, pl, ws->dkv, b, h, src) + r0 * D, (int)D, attn_at(x, b, h, j0), (int)x->sn, 1.0f,
                            C, (int)n);
                flops += 2.0 * (double)(m * nc * D);
            }
    }
    return flops;
}

// phase 3 for (E or F, block of key columns): its runs of rows in turn
static double lf_dtheta_cols(const attn_args *a, const lf_plan *pl, const attn_io *io, const attn_grads *g,
                             const lf_ws *ws, int mat, int64_t j0, int64_t j1)
{
    double flops = 0;
    for (int64_t r = 0, r1; r < pl->k; r = r1) {
        r1 = lf_run_end(pl, mat, r, pl->k);
        flops += lf_dtheta_block(a, pl, io, g, ws, mat, r, r1, j0, j1);
    }
    return flops;
}

/* The slots of g.dw past theta's last row: 0. */
static void lf_zero_unused(const lf_plan *pl, const attn_tensor *dw)
{
    for (int64_t t = pl->nmat * pl->k; t < pl->R * dw->H; t++)
        memset(lf_row(pl, dw, t), 0, sizeof(float) * (size_t)pl->n);
}

int attn_linformer_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    lf_plan pl;
    int rc = attn_linformer_plan(&pl, a);
    if (rc || (rc = attn_linformer_check_w(&pl, &io->w, "backward")) ||
        (rc = attn_linformer_check_w(&pl, &g->dw, "backward (dw)")))
        return rc;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "linformer backward: expected a context made with args.backward = 1");
    lf_ws ws = attn_linformer_ws(ctx, &pl);
    int64_t heads = a->B * a->H_kv, nblk = (pl.n + pl.colblk - 1) / pl.colblk;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
#pragma omp parallel num_threads(a->threads)
    {
        lf_btally t = {0};
        float *scr = attn_linformer_scratch(ctx, &pl, omp_get_thread_num());
        t.flops += attn_linformer_project_all(a, &pl, io, ws.kv);
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < heads; bh++)
            lf_head_backward(a, &pl, io, g, &ws, bh / a->H_kv, bh % a->H_kv, scr, &t);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < pl.nmat * nblk; task++) {
            int64_t j0 = (task % nblk) * pl.colblk, j1 = j0 + pl.colblk < pl.n ? j0 + pl.colblk : pl.n;
            t.flops += lf_dtheta_cols(a, &pl, io, g, &ws, (int)(task / nblk), j0, j1);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)t.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)t.exps);
    }
    lf_zero_unused(&pl, &g->dw);
    /* Q, O-side dO per query head, K and V per KV head (twice: projections and
     * dE, dF), E and F */
    double rows = (double)attn_batch_rows(a), D = (double)a->D;
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(4.0 * (rows * D * (2.0 * (double)a->H + 4.0 * (double)a->H_kv) + (double)pl.P)));
    return 0;
}
