/* `hyper` forward (docs/kernels/hyper.md; the math is in hyper_internal.h).
 *
 * 1. exact leaves: the public `flash` object on a view of each leaf's rows
 *    (causal leaves; the whole problem when it is exact), its lse kept as
 *    the rows' running lse.
 * 2. one OpenMP region:
 *    codes of every query row (b, h) and key row (b, KV head): fp32 sgemm
 *    projections on the shared hyperplanes, exact fallback near 0;
 *    per depth of the recursion: sort each job's queries and keys, draw its
 *    samples; then one task per (b, KV head, job, block I): the G query
 *    heads' sorted block I stacked against the block's keys and the
 *    samples (one sgemm for the scores, one for the outputs), sample
 *    columns in block I set to -inf and the others offset by ln w_I, one
 *    softmax per row, merged by lse into the row at its original position.
 * Rows of one depth belong to one job, so tasks never share a row; depths
 * are ordered by the loop's barrier and each task computes in a fixed order:
 * bitwise identical for any thread count. */
#include "hyper_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/counting_sort.h"
#include "kernels/core/vexp.h"
#include "kernels/flash/flash.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    double flops, bytes, exps;
} hy_tally;

size_t hy_slot_carve(const hy_priv *p, const attn_args *a, char *base, hy_slot *s)
{
    size_t off = 0, rows = (size_t)p->rows_max, cols = (size_t)p->cols_max;
    size_t P = hy_align(&off, sizeof(float) * (size_t)(HY_HASH_TILE * p->pl.r));
    size_t xd = hy_align(&off, sizeof(double) * (size_t)a->D);
    size_t count = hy_align(&off, sizeof(int32_t) * (((size_t)1 << p->pl.r) + 1));
    size_t Q = hy_align(&off, sizeof(float) * rows * (size_t)p->ldD);
    size_t K = hy_align(&off, sizeof(float) * cols * (size_t)p->ldD);
    size_t V = hy_align(&off, sizeof(float) * cols * (size_t)p->ldV);
    size_t S = hy_align(&off, sizeof(float) * rows * (size_t)p->ldC);
    size_t O = hy_align(&off, sizeof(float) * rows * (size_t)p->ldV);
    size_t lse = hy_align(&off, sizeof(float) * rows), inv = hy_align(&off, sizeof(float) * rows);
    size_t bias = hy_align(&off, sizeof(float) * cols);
    if (base && s)
        *s = (hy_slot){.P = (float *)(base + P), .xd = (double *)(base + xd), .count = (int32_t *)(base + count),
                       .Q = (float *)(base + Q), .K = (float *)(base + K), .V = (float *)(base + V),
                       .S = (float *)(base + S), .O = (float *)(base + O), .lse = (float *)(base + lse),
                       .inv = (float *)(base + inv), .bias = (float *)(base + bias)};
    return off;
}

/* The workspace at byte offset off (an array of hy_priv's layout). */
static void *hy_ws(const attn_ctx *ctx, size_t off) { return (char *)ctx->workspace + off; }

/* ---- 1. exact leaves ---- */

static attn_tensor hy_rows(const attn_tensor *t, int64_t s, int64_t n)
{
    attn_tensor v = *t;
    v.data = attn_at(t, 0, 0, s);
    v.N = n;
    return v;
}

static int hy_leaves(attn_ctx *ctx, const hy_priv *p, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    float *lse = hy_ws(ctx, p->lse), *leaf_lse = hy_ws(ctx, p->leaf_lse);
    int64_t BH = a->B * a->H, N = a->Nq;
    if (!p->sp.n_leaves) /* FULL with a job: every row starts empty */
        for (int64_t i = 0; i < BH * N; i++)
            lse[i] = -INFINITY;
    for (int64_t l = 0; l < p->sp.n_leaves; l++) {
        const hy_leaf *lf = &p->sp.leaves[l];
        attn_ctx fc = p->flash;
        fc.workspace = hy_ws(ctx, p->flash_ws);
        fc.args.Nq = fc.args.Nk = lf->n;
        attn_mask_bind(&fc.args.mask, lf->n);
        attn_io lio = {.q = hy_rows(&io->q, lf->s, lf->n), .k = hy_rows(&io->k, lf->s, lf->n),
                       .v = hy_rows(&io->v, lf->s, lf->n), .o = hy_rows(&io->o, lf->s, lf->n), .lse = leaf_lse};
        int rc = attn_kernel_flash.forward(&fc, &lio);
        if (rc)
            return rc;
        for (int64_t bh = 0; bh < BH; bh++)
            memcpy(lse + bh * N + lf->s, leaf_lse + bh * lf->n, sizeof(float) * (size_t)lf->n);
    }
    return 0;
}

/* ---- 2. hashing and sorting ---- */

static void hy_hash_task(const attn_ctx *ctx, const hy_priv *p, const hy_hash *hs, const attn_io *io, int64_t task,
                         const hy_slot *sl, hy_tally *tl)
{
    const attn_args *a = &ctx->args;
    int64_t N = a->Nq, BH = a->B * a->H;
    int keys = task >= BH;
    int64_t bh = keys ? task - BH : task, heads = keys ? a->H_kv : a->H;
    int32_t *code = (int32_t *)hy_ws(ctx, keys ? p->kcode : p->qcode) + bh * N;
    tl->flops += hy_codes_f32(&p->pl, hs, keys ? &io->k : &io->q, bh / heads, bh % heads, N, code, sl->P, sl->xd);
    tl->bytes += 4.0 * (double)(N * a->D);
}

/* Job by_depth[at]: its queries of query head task (task < B H), or its keys
 * and samples of KV head task - B H. */
static void hy_prepare_task(const attn_ctx *ctx, const hy_priv *p, int64_t at, int64_t task, const hy_slot *sl)
{
    const attn_args *a = &ctx->args;
    const hy_job *j = &p->sp.jobs[p->by_depth[at]];
    int64_t N = a->Nq, BH = a->B * a->H, ncodes = (int64_t)1 << p->pl.r;
    if (task < BH) {
        const int32_t *code = (const int32_t *)hy_ws(ctx, p->qcode) + task * N;
        attn_counting_sort(code + j->q0, j->nq, ncodes, j->q0, (int32_t *)hy_ws(ctx, p->qord) + task * N + j->q0,
                           NULL, sl->count);
        return;
    }
    int64_t bk = task - BH, off = bk * N + j->k0;
    attn_counting_sort((const int32_t *)hy_ws(ctx, p->kcode) + off, j->nk, ncodes, j->k0,
                       (int32_t *)hy_ws(ctx, p->kord) + off, (int32_t *)hy_ws(ctx, p->krank) + off, sl->count);
    hy_draw_samples(&p->pl, j, bk / a->H_kv, bk % a->H_kv, a->H_kv, (int32_t *)hy_ws(ctx, p->smp) + off);
}

/* ---- 2. block tasks ---- */

/* Gathers rows idx[0..n) of head (b, h) of t into X (ld floats per row). */
static void hy_gather(const attn_tensor *t, int64_t b, int64_t h, const int32_t *idx, int64_t n, float *X, int64_t ld)
{
    for (int64_t c = 0; c < n; c++)
        memcpy(X + c * ld, attn_at(t, b, h, idx[c]), sizeof(float) * (size_t)t->D);
}

/* o, *lse <- the lse merge of (o, *lse) and (inv op, lp). */
static void hy_merge_row(float *o, float *lse, const float *op, float inv, float lp, int64_t Dv)
{
    if (lp == -INFINITY)
        return;
    if (*lse == -INFINITY) {
        for (int64_t d = 0; d < Dv; d++)
            o[d] = op[d] * inv;
        *lse = lp;
        return;
    }
    float m = fmaxf(*lse, lp), wa = attn_expf(*lse - m), wp = attn_expf(lp - m), z = wa + wp;
    for (int64_t d = 0; d < Dv; d++)
        o[d] = (wa * o[d] + wp * inv * op[d]) / z;
    *lse = m + logf(z);
}

/* Row softmax of S (rows x cols, ld) after adding bias per column: in
 * place P = exp(S - max), lse and 1/sum per row (-inf and 0: nothing). */
static void hy_softmax_rows(float *S, int64_t rows, int64_t cols, int64_t ld, const float *bias, float *lse,
                            float *inv)
{
    for (int64_t r = 0; r < rows; r++) {
        float *s = S + r * ld, m = -INFINITY, l = 0;
        for (int64_t c = 0; c < cols; c++) {
            s[c] += bias[c];
            m = s[c] > m ? s[c] : m;
        }
        float shift = m == -INFINITY ? 0.0f : m;
        for (int64_t c = 0; c < cols; c++)
            s[c] -= shift;
        attn_vexp(s, s, cols);
        for (int64_t c = 0; c < cols; c++)
            l += s[c];
        lse[r] = l > 0 ? m + logf(l) : -INFINITY;
        inv[r] = l > 0 ? 1.0f / l : 0.0f;
    }
}

/* The block's keys then the samples into sl->K, sl->V, with the logit
 * offsets: 0 for the block, ln w_I for samples outside block I, -inf for
 * those inside. Returns the columns. */
static int64_t hy_load_keys(const attn_ctx *ctx, const hy_priv *p, const attn_io *io, int64_t b, int64_t hk,
                            const hy_job *j, int64_t blk, const hy_slot *sl)
{
    const attn_args *a = &ctx->args;
    int64_t bs = p->pl.bs, t0 = blk * bs, nkb = j->nk - t0 < bs ? j->nk - t0 : bs, ns = hy_samples_of(&p->pl, j);
    int64_t base = (b * a->H_kv + hk) * a->Nq;
    const int32_t *kord = (const int32_t *)hy_ws(ctx, p->kord) + base + j->k0 + t0;
    const int32_t *krank = (const int32_t *)hy_ws(ctx, p->krank) + base;
    const int32_t *smp = (const int32_t *)hy_ws(ctx, p->smp) + base + j->k0;
    hy_gather(&io->k, b, hk, kord, nkb, sl->K, p->ldD);
    hy_gather(&io->v, b, hk, kord, nkb, sl->V, p->ldV);
    hy_gather(&io->k, b, hk, smp, ns, sl->K + nkb * p->ldD, p->ldD);
    hy_gather(&io->v, b, hk, smp, ns, sl->V + nkb * p->ldV, p->ldV);
    int64_t outside = 0;
    for (int64_t c = 0; c < ns; c++)
        outside += krank[smp[c]] / bs != blk;
    float lnw = (float)hy_sample_log_weight(j, nkb, outside);
    for (int64_t c = 0; c < nkb; c++)
        sl->bias[c] = 0.0f;
    for (int64_t c = 0; c < ns; c++)
        sl->bias[nkb + c] = krank[smp[c]] / bs != blk ? lnw : -INFINITY;
    return nkb + ns;
}

/* Task (b, KV head hk, job by_depth[at], block I). */
static void hy_block_task(const attn_ctx *ctx, const hy_priv *p, const attn_io *io, int64_t b, int64_t hk, int64_t at,
                          int64_t blk, const hy_slot *sl, hy_tally *tl)
{
    const attn_args *a = &ctx->args;
    const hy_job *j = &p->sp.jobs[p->by_depth[at]];
    int64_t bs = p->pl.bs, t0 = blk * bs, nqb = j->nq - t0 < bs ? j->nq - t0 : bs, G = p->G, N = a->Nq;
    int64_t D = a->D, Dv = attn_dv(a);
    if (nqb <= 0) /* nq < nk: the last key blocks may have no queries */
        return;
    int64_t cols = hy_load_keys(ctx, p, io, b, hk, j, blk, sl), rows = G * nqb;
    const int32_t *qord = (const int32_t *)hy_ws(ctx, p->qord) + j->q0 + t0; /* + (b H + h) N: head h's block */
    for (int64_t g = 0; g < G; g++) {
        int64_t h = hk * G + g;
        hy_gather(&io->q, b, h, qord + (b * a->H + h) * N, nqb, sl->Q + g * nqb * p->ldD, p->ldD);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)D, (float)attn_scale(a), sl->Q,
                (int)p->ldD, sl->K, (int)p->ldD, 0.0f, sl->S, (int)p->ldC);
    hy_softmax_rows(sl->S, rows, cols, p->ldC, sl->bias, sl->lse, sl->inv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)Dv, (int)cols, 1.0f, sl->S, (int)p->ldC,
                sl->V, (int)p->ldV, 0.0f, sl->O, (int)p->ldV);
    float *lse = hy_ws(ctx, p->lse);
    for (int64_t g = 0; g < G; g++) {
        int64_t h = hk * G + g;
        const int32_t *qo = qord + (b * a->H + h) * N;
        for (int64_t t = 0; t < nqb; t++) {
            int64_t r = g * nqb + t, i = qo[t];
            hy_merge_row(attn_at(&io->o, b, h, i), lse + (b * a->H + h) * N + i, sl->O + r * p->ldV, sl->inv[r],
                         sl->lse[r], Dv);
        }
    }
    tl->flops += 2.0 * (double)(rows * cols) * (double)(D + Dv);
    tl->bytes += 4.0 * (double)(rows * D + cols * (D + Dv));
    tl->exps += (double)(rows * cols);
}

/* Task u of depth d's block loop: (b, KV head) and the job and block it names. */
static void hy_block_of(const hy_priv *p, int d, int64_t u, int64_t *at, int64_t *blk)
{
    int64_t lo = p->depth_start[d], hi = p->depth_start[d + 1] - 1;
    while (lo < hi) { /* the last job whose first block is <= u */
        int64_t mid = (lo + hi + 1) / 2;
        if (p->block_start[mid] <= u)
            lo = mid;
        else
            hi = mid - 1;
    }
    *at = lo, *blk = u - p->block_start[lo];
}

static void hy_jobs(const attn_ctx *ctx, const hy_priv *p, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t BH = a->B * a->H, BK = a->B * a->H_kv;
    hy_hash hs = {.Rd = hy_ws(ctx, p->rd), .Rf = hy_ws(ctx, p->rf)};
    hy_hash_tables(&p->pl, a->D, &hs);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops below */
#pragma omp parallel num_threads(a->threads)
    {
        hy_tally tl = {0};
        hy_slot sl;
        hy_slot_carve(p, a, (char *)hy_ws(ctx, p->slots) + p->slot_bytes * (size_t)omp_get_thread_num(), &sl);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < BH + BK; task++)
            hy_hash_task(ctx, p, &hs, io, task, &sl, &tl);
        for (int d = 0; d < p->sp.depths; d++) {
            int64_t nj = p->depth_start[d + 1] - p->depth_start[d], nb = p->depth_blocks[d];
#pragma omp for schedule(dynamic, 1)
            for (int64_t task = 0; task < (BH + BK) * nj; task++)
                hy_prepare_task(ctx, p, p->depth_start[d] + task / (BH + BK), task % (BH + BK), &sl);
#pragma omp for schedule(dynamic, 1)
            for (int64_t task = 0; task < BK * nb; task++) {
                int64_t bk = task / nb, at, blk;
                hy_block_of(p, d, task % nb, &at, &blk);
                hy_block_task(ctx, p, io, bk / a->H_kv, bk % a->H_kv, at, blk, &sl, &tl);
            }
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
    }
}

// q is (B,H,N,D), k and v are (B,H_kv,N,D); o is (B,H,N,Dv), lse is (B,H,N)
int hy_forward(attn_ctx *ctx, const attn_io *io)
{
    const hy_priv *p = ctx->priv;
    const attn_args *a = &ctx->args;
    int rc = hy_leaves(ctx, p, io);
    if (rc)
        return rc;
    if (p->sp.n_jobs)
        hy_jobs(ctx, p, io);
    if (io->lse)
        memcpy(io->lse, hy_ws(ctx, p->lse), sizeof(float) * (size_t)(a->B * a->H * a->Nq));
    return 0;
}
