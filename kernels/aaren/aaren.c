/* `aaren` forward and its double reference (Feng et al. 2024, "Attention as
 * an RNN"; docs/kernels/aaren.md). The output at step t is softmax attention of the
 * head's one query over the keys 0..t, i.e. the inclusive prefix scan of
 * the elements (s_t, 1, v_t) under the (m, u, w) monoid (aaren_internal.h),
 * o_t = w_t / u_t. The parallel form of the paper's prefix scan (Sec. 3), over
 * fixed chunks of C steps (param `chunk`):
 *
 *   1. per (b, KV head, chunk), in parallel: the scores of the G query
 *      heads (sgemv) and each head's chunk summary;
 *   2. per (b, head): the exclusive scan of the chunk summaries (the carry
 *      into each chunk; the last one is the recurrent state);
 *   3. per (b, KV head, chunk), in parallel: fold the carry in and scan the
 *      chunk step by step, writing o_t.
 *
 * DOCUMENT masks restart the scan at each document start: a chunk holding a
 * start summarises only the steps from its last start and does not pass the
 * carry on. The split depends on N and C only, so results are bitwise
 * identical for any thread count. */
#include "aaren_internal.h"

#include "kernels/core/counters.h"
#include "kernels/flash/flash_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static const opt_def aaren_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = AAREN_DEFAULT_CHUNK, .lo = 1, .hi = 1 << 20,
     .help = "steps per chunk of the parallel scan"},
    {0},
};

int attn_aaren_plan(aaren_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "aaren", aaren_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->C = attn_param_int(a, aaren_params, "chunk", &rc);
    if (rc)
        return rc;
    pl->nch = (a->Nk + pl->C - 1) / pl->C;
    pl->G = a->H / a->H_kv;
    pl->Dv = attn_dv(a);
    pl->rec = pl->Dv + 3;
    pl->scores = (size_t)flash_round16(a->B * a->H * a->Nk);
    pl->recs = (size_t)flash_round16(a->B * a->H * pl->nch * pl->rec);
    pl->state = (size_t)flash_round16(a->B * a->H * (pl->Dv + 2));
    /* forward: one record; backward: scores, -lse and dscore of one head, and a state */
    int64_t fwd = flash_round16(pl->rec), bwd = 3 * flash_round16(a->Nk) + flash_round16(pl->Dv + 2);
    pl->slot = (size_t)(a->backward && bwd > fwd ? bwd : fwd);
    return 0;
}

static int aaren_init(attn_ctx *ctx, const attn_args *a)
{
    aaren_plan pl;
    int rc = attn_aaren_plan(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = sizeof(float) * (pl.scores + pl.recs + pl.state + pl.slot * (size_t)a->threads);
    ctx->state_bytes_used = sizeof(float) * (size_t)(a->B * a->H * (pl.Dv + 2));
    return 0;
}

/* Phase 1 for chunk c of (b, KV head hk): scores[b][hk][t][g] for the chunk's
 * steps and each head's summary record [reset, m, u, w]. */
static void aaren_summarise(const attn_args *a, const aaren_plan *pl, const attn_io *io, float *scores, float *recs,
                            int64_t b, int64_t hk, int64_t c, flash_tally *t)
{
    int64_t G = pl->G, Dv = pl->Dv, t0 = c * pl->C, n = a->Nk - t0 < pl->C ? a->Nk - t0 : pl->C;
    float *s = scores + ((b * a->H_kv + hk) * a->Nk + t0) * G;
    // s[:, g] (n) = sc K[t0 : t0+n] (n, D) @ q_g (D) for each head g of the group (the
    // chunk of K stays in cache across the G products; no packing as sgemm would)
    for (int64_t g = 0; g < G; g++)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)a->D, (float)attn_scale(a), attn_at(&io->k, b, hk, t0),
                    (int)io->k.sn, attn_at(&io->q, b, hk * G + g, 0), 1, 0.0f, s + g, (int)G);
    int64_t r = t0, reset = 0; /* the summary covers [r, t0+n): from the chunk's last start */
    for (int64_t x = aaren_next_start(a, t0); x < t0 + n; x = aaren_next_start(a, x + 1))
        r = x, reset = 1;
    for (int64_t g = 0; g < G; g++) {
        float *rec = recs + ((b * a->H + hk * G + g) * pl->nch + c) * pl->rec;
        rec[0] = (float)reset;
        aaren_identity(rec + 1, Dv);
        for (int64_t i = r; i < t0 + n; i++)
            aaren_push(rec + 1, s[(i - t0) * G + g], 1.0f, attn_at(&io->v, b, hk, i), Dv);
    }
    t->flops += 2.0 * (double)(n * G * a->D) + 2.0 * (double)((t0 + n - r) * G * Dv);
    t->exps += (double)((t0 + n - r) * G);
    t->bytes += 4.0 * (double)(n * (a->D + Dv) + G * a->D);
}

/* Phase 2 for (b, h) = bh: each record becomes the carry into its chunk
 * (the exclusive scan); the state after the last chunk goes to `state`. */
static void aaren_carry(const aaren_plan *pl, float *recs, float *state, float *tmp, int64_t bh)
{
    int64_t n = pl->Dv + 2;
    aaren_identity(state, pl->Dv);
    for (int64_t c = 0; c < pl->nch; c++) {
        float *rec = recs + (bh * pl->nch + c) * pl->rec;
        memcpy(tmp, rec, sizeof(float) * (size_t)pl->rec);
        memcpy(rec + 1, state, sizeof(float) * (size_t)n);
        if (tmp[0] != 0.0f)
            memcpy(state, tmp + 1, sizeof(float) * (size_t)n);
        else
            aaren_combine(state, tmp + 1, pl->Dv);
    }
}

/* Phase 3 for chunk c of (b, hk): o_t = w_t / u_t from the carry, step by step. */
static void aaren_fold(const attn_args *a, const aaren_plan *pl, const attn_io *io, const float *scores,
                       const float *recs, int64_t b, int64_t hk, int64_t c, float *st, flash_tally *t)
{
    int64_t G = pl->G, Dv = pl->Dv, t0 = c * pl->C, n = a->Nk - t0 < pl->C ? a->Nk - t0 : pl->C;
    const float *s = scores + ((b * a->H_kv + hk) * a->Nk + t0) * G;
    for (int64_t g = 0; g < G; g++) {
        int64_t h = hk * G + g;
        memcpy(st, recs + ((b * a->H + h) * pl->nch + c) * pl->rec + 1, sizeof(float) * (size_t)(Dv + 2));
        int64_t next = aaren_next_start(a, t0);
        for (int64_t i = t0; i < t0 + n; i++) {
            if (i == next) {
                aaren_identity(st, Dv);
                next = aaren_next_start(a, i + 1);
            }
            aaren_push(st, s[(i - t0) * G + g], 1.0f, attn_at(&io->v, b, hk, i), Dv);
            float *o = attn_at(&io->o, b, h, i);
            for (int64_t d = 0; d < Dv; d++)
                o[d] = st[2 + d] / st[1];
        }
    }
    t->flops += 2.0 * (double)(n * G * Dv);
    t->exps += (double)(n * G);
    t->bytes += 4.0 * (double)(n * Dv);
}

// q is (B,H,1,D), k is (B,H_kv,Nk,D), v is (B,H_kv,Nk,Dv); o is (B,H,Nk,Dv); lse is not written
static int aaren_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    aaren_plan pl;
    int rc = attn_aaren_plan(&pl, a);
    if (rc)
        return rc;
    float *scores = (float *)ctx->workspace, *recs = scores + pl.scores, *state = recs + pl.recs;
    float *slots = state + pl.state;
    int64_t tasks = a->B * a->H_kv * pl.nch;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops below */
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *tmp = slots + (size_t)omp_get_thread_num() * pl.slot;
#pragma omp for schedule(static)
        for (int64_t task = 0; task < tasks; task++)
            aaren_summarise(a, &pl, io, scores, recs, task / pl.nch / a->H_kv, task / pl.nch % a->H_kv,
                            task % pl.nch, &t);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < a->B * a->H; bh++)
            aaren_carry(&pl, recs, state + bh * (pl.Dv + 2), tmp, bh);
#pragma omp for schedule(static)
        for (int64_t task = 0; task < tasks; task++)
            aaren_fold(a, &pl, io, scores, recs, task / pl.nch / a->H_kv, task / pl.nch % a->H_kv, task % pl.nch,
                       tmp, &t);
        flash_tally_flush(&t);
    }
    return 0;
}

/* The sequential double scan: per (b, h), step by step, restarting where
 * step t may not see step t-1 (a document start). */
static int aaren_ref_forward(const attn_args *a, const attn_io64 *io)
{
    int64_t G = a->H / a->H_kv, D = a->D, Dv = attn_dv(a);
    double sc = attn_scale(a);
    double *w = malloc(sizeof(double) * (size_t)Dv);
    if (!w)
        return attn_fail(ATTN_ENOMEM, "aaren reference: cannot allocate %lld doubles", (long long)Dv);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            const double *q = attn_at64(&io->q, b, h, 0);
            double m = -INFINITY, u = 0;
            for (int64_t t = 0; t < a->Nk; t++) {
                int64_t p = a->k_off + t;
                if (t == 0 || !attn_mask_allowed(&a->mask, b, h, p, p - 1)) {
                    m = -INFINITY, u = 0;
                    memset(w, 0, sizeof(double) * (size_t)Dv);
                }
                const double *k = attn_at64(&io->k, b, h / G, t), *v = attn_at64(&io->v, b, h / G, t);
                double s = 0;
                for (int64_t d = 0; d < D; d++)
                    s += q[d] * k[d];
                s *= sc;
                double M = s > m ? s : m, fa = m == -INFINITY ? 0.0 : exp(m - M), fb = exp(s - M);
                u = u * fa + fb;
                double *o = attn_at64(&io->o, b, h, t);
                for (int64_t d = 0; d < Dv; d++) {
                    w[d] = w[d] * fa + fb * v[d];
                    o[d] = w[d] / u;
                }
                m = M;
            }
        }
    free(w);
    return 0;
}

/* 2 N (D + Dv) per (b, h): the scores and the weighted sum of V (4 N D
 * for Dv = D); backward 2.5x forward (docs/kernel-interface.md). */
static double aaren_flops(const attn_args *a, attn_pass pass)
{
    double f = 2.0 * (double)(a->B * a->H * a->Nk) * (double)(a->D + attn_dv(a));
    return pass == ATTN_PASS_FWD ? f : 2.5 * f;
}

/* Each tensor once: forward reads q, K, V and writes O; backward reads q, K,
 * V, O, dO and writes dq, dK, dV. */
static double aaren_bytes(const attn_args *a, attn_pass pass)
{
    double B = (double)a->B, H = (double)a->H, Hkv = (double)a->H_kv, N = (double)a->Nk;
    double D = (double)a->D, Dv = (double)attn_dv(a);
    double once = B * (H * D + Hkv * N * (D + Dv) + H * N * Dv);
    return 4.0 * (pass == ATTN_PASS_FWD ? once : 2.0 * once);
}

/* The recurrent state (m, u, w) of every (b, h): what a stream keeps. */
static size_t aaren_state_bytes(const attn_args *a)
{
    return sizeof(float) * (size_t)(a->B * a->H * (attn_dv(a) + 2));
}

const attn_kernel attn_kernel_aaren = {
    .name = "aaren",
    .family = "aaren",
    .reference = "Feng et al. 2024 (Attention as an RNN)",
    .flags = ATTN_ONE_QUERY | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |
             ATTN_DETERMINISTIC,
    /* causal is intrinsic; a DOCUMENT mask restarts the scan at each document */
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = aaren_params,
    .init = aaren_init,
    .forward = aaren_forward,
    .backward = attn_aaren_backward,
    .flops = aaren_flops,
    .bytes = aaren_bytes,
    .state_bytes = aaren_state_bytes,
    .fini = NULL,
    .ref_forward = aaren_ref_forward,
};
