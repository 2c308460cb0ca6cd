/* `cca` forward (Chen et al. 2024; the math is in cca_internal.h).
 *
 * Two parallel phases over one workspace: first every (b, query head) pools
 * its complete groups into core tokens K̄, V̄ (two sgemv per group after the
 * group's scores, one sgemv), kept with their pooling weights in the shared
 * region; then every tile of CCA_TILE query rows forms its score rows
 * [core tokens | local keys] with two sgemm, masks and softmaxes them row by
 * row (one normaliser over both kinds of tokens) and multiplies by [V̄ ; V]
 * with two more sgemm. Every task runs in a fixed order and writes its own
 * rows, so the bits do not depend on the thread count. */
#include "cca_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

#define CCA_POOL_CHUNK 64 /* groups per pooling task */

void cca_pool_groups(const attn_args *a, const cca_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t c0,
                     int64_t c1, const cca_pooled *pt, cca_tally *tl)
{
    int64_t g = pl->g, D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    float sc = (float)attn_scale(a);
    for (int64_t c = c0; c < c1; c++) {
        const float *q = attn_at(&io->q, b, h, c * g + g - 1); /* the group's last query */
        const float *K = attn_at(&io->k, b, hk, c * g), *V = attn_at(&io->v, b, hk, c * g);
        float *w = pt->w + c * g;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)g, (int)D, sc, K, (int)io->k.sn, q, 1, 0.0f, w, 1);
        attn_softmax_row_vexp(w, g);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)g, (int)D, 1.0f, K, (int)io->k.sn, w, 1, 0.0f, pt->kbar + c * D, 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)g, (int)Dv, 1.0f, V, (int)io->v.sn, w, 1, 0.0f, pt->vbar + c * Dv,
                    1);
    }
    double n = (double)(c1 - c0);
    tl->flops += n * 2.0 * (double)g * (double)(2 * D + Dv);
    tl->exps += n * (double)g;
    tl->bytes += 4.0 * n * (double)(D + g * (D + Dv));
}

void cca_pool_all(const attn_ctx *ctx, const cca_plan *pl, const attn_io *io, cca_tally *tl)
{
    const attn_args *a = &ctx->args;
    int64_t chunks = (pl->n_pool + CCA_POOL_CHUNK - 1) / CCA_POOL_CHUNK, tasks = a->B * a->H * chunks;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t bh = t / chunks, c0 = t % chunks * CCA_POOL_CHUNK;
        int64_t c1 = c0 + CCA_POOL_CHUNK < pl->n_pool ? c0 + CCA_POOL_CHUNK : pl->n_pool;
        cca_pooled pt = cca_pooled_of(ctx, pl, bh / a->H, bh % a->H);
        cca_pool_groups(a, pl, io, bh / a->H, bh % a->H, c0, c1, &pt, tl);
    }
}

/* Row r of a tile (query i): -inf on the core tokens c >= cores(i) and the
 * local keys outside [local_start(i), i] (row layout: nc cores, then keys l0 ..). */
static void cca_mask_row(const cca_plan *pl, int64_t i, int64_t nc, int64_t l0, int64_t nl, float *row)
{
    int64_t c_i = cca_cores(pl, i), s_i = cca_local_start(pl, i) - l0, e_i = i - l0 + 1;
    for (int64_t c = c_i; c < nc; c++)
        row[c] = -INFINITY;
    for (int64_t j = 0; j < s_i; j++)
        row[nc + j] = -INFINITY;
    for (int64_t j = e_i; j < nl; j++)
        row[nc + j] = -INFINITY;
}

void cca_tile_probs(const attn_args *a, const cca_plan *pl, const attn_io *io, const cca_pooled *pt, int64_t b,
                    int64_t h, int64_t i0, int64_t nb, float *S, float *lse, int64_t *nc, int64_t *l0, int64_t *nl,
                    cca_tally *tl)
{
    int64_t D = a->D, hk = h / (a->H / a->H_kv), ld = pl->ld;
    float sc = (float)attn_scale(a);
    *nc = cca_cores(pl, i0 + nb - 1), *l0 = cca_local_start(pl, i0), *nl = i0 + nb - *l0;
    const float *Q = attn_at(&io->q, b, h, i0);
    if (*nc > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)*nc, (int)D, sc, Q, (int)io->q.sn, pt->kbar,
                    (int)D, 0.0f, S, (int)ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)*nl, (int)D, sc, Q, (int)io->q.sn,
                attn_at(&io->k, b, hk, *l0), (int)io->k.sn, 0.0f, S + *nc, (int)ld);
    for (int64_t r = 0; r < nb; r++) {
        float *row = S + r * ld;
        cca_mask_row(pl, i0 + r, *nc, *l0, *nl, row);
        float l = attn_softmax_row_vexp(row, *nc + *nl);
        if (lse)
            lse[r] = l;
    }
    tl->flops += 2.0 * (double)(nb * (*nc + *nl)) * (double)D;
    tl->exps += (double)(nb * (*nc + *nl));
    tl->bytes += 4.0 * (double)(nb * D + (*nc + *nl) * D);
}

// rows [i0, i0+nb) of head (b, h): P = softmax [cores | local], O = P [V̄ ; V_local]
static void cca_forward_tile(const attn_ctx *ctx, const cca_plan *pl, const attn_io *io, int64_t b, int64_t h,
                             int64_t i0, int64_t nb, float *S, cca_tally *tl)
{
    const attn_args *a = &ctx->args;
    int64_t Dv = attn_dv(a), hk = h / (a->H / a->H_kv), nc, l0, nl;
    cca_pooled pt = cca_pooled_of(ctx, pl, b, h);
    float *lse = io->lse ? io->lse + (b * a->H + h) * a->Nq + i0 : NULL;
    cca_tile_probs(a, pl, io, &pt, b, h, i0, nb, S, lse, &nc, &l0, &nl, tl);
    float *O = attn_at(&io->o, b, h, i0);
    if (nc > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)nc, 1.0f, S, (int)pl->ld,
                    pt.vbar, (int)Dv, 0.0f, O, (int)io->o.sn);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)nl, 1.0f, S + nc, (int)pl->ld,
                attn_at(&io->v, b, hk, l0), (int)io->v.sn, nc > 0 ? 1.0f : 0.0f, O, (int)io->o.sn);
    tl->flops += 2.0 * (double)(nb * (nc + nl)) * (double)Dv;
    tl->bytes += 4.0 * (double)((nc + nl) * Dv);
}

// q is (B,H,N,D), k and v are (B,H_kv,N,D); o is (B,H,N,Dv), lse (B,H,N)
int cca_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    cca_plan pl;
    int rc = cca_plan_make(&pl, a);
    if (rc)
        return rc;
    int64_t tasks = a->B * a->H * pl.nqt;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops below */
#pragma omp parallel num_threads(a->threads)
    {
        cca_tally tl = {0};
        float *S = cca_thread_scratch(ctx, &pl, omp_get_thread_num());
        cca_pool_all(ctx, &pl, io, &tl); /* its implicit barrier: every core token exists below */
        /* dynamic: later tiles see more core tokens; they go first */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t qt = pl.nqt - 1 - task % pl.nqt, bh = task / pl.nqt, i0 = qt * pl.T;
            int64_t nb = a->Nq - i0 < pl.T ? a->Nq - i0 : pl.T;
            cca_forward_tile(ctx, &pl, io, bh / a->H, bh % a->H, i0, nb, S, &tl);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
    }
    return 0;
}
