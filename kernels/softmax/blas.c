/* `blas`: what a framework user gets from an eager implementation: the full
 * score matrix from cblas_sgemm, a row softmax, and a second sgemm for P V.
 * One (batch, head) per OpenMP task with single-threaded OpenBLAS inside, so
 * the result does not depend on the thread count. Memory grows as N^2. */
#include "kernels/core/counters.h"
#include "softmax.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <omp.h>

static int blas_init(attn_ctx *ctx, const attn_args *a)
{
    return attn_score_matrix_init(ctx, a, a->backward ? 2 : 1);
}

static int mask_is_trivial(const attn_args *a, int64_t b, int64_t h)
{
    return attn_mask_tile(&a->mask, b, h, a->q_off, a->q_off + a->Nq, a->k_off, a->k_off + a->Nk) ==
           ATTN_TILE_FULL;
}

/* S = sc Q_bh K_bg^T with masked entries set to -inf. */
static void blas_scores(const attn_args *a, const attn_io *io, int64_t b, int64_t h, float *S)
{
    int64_t G = a->H / a->H_kv;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)a->Nq, (int)a->Nk, (int)a->D,
                (float)attn_scale(a), attn_at(&io->q, b, h, 0), (int)io->q.sn,
                attn_at(&io->k, b, h / G, 0), (int)io->k.sn, 0.0f, S, (int)a->Nk);
    if (!mask_is_trivial(a, b, h))
        for (int64_t i = 0; i < a->Nq; i++)
            attn_mask_score_row(a, b, h, i, S + i * a->Nk);
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse is (B,H,Nq)
static int blas_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv, tasks = a->B * a->H;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / a->H, h = t % a->H;
        float *S = attn_score_matrix(ctx, omp_get_thread_num(), 0, 1);
        blas_scores(a, io, b, h, S);
        for (int64_t i = 0; i < a->Nq; i++)
            io->lse[t * a->Nq + i] = attn_softmax_row(S + i * a->Nk, a->Nk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a->Nq, (int)a->D, (int)a->Nk,
                    1.0f, S, (int)a->Nk, attn_at(&io->v, b, h / G, 0), (int)io->v.sn, 0.0f,
                    attn_at(&io->o, b, h, 0), (int)io->o.sn);
    }
    double dense = (double)(a->Nq * a->Nk) * (double)(a->D * tasks);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(4 * dense));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(a->Nq * a->Nk * tasks));
    /* Q, K, V once per head and the score matrix read back twice (softmax, P V);
     * sgemm's internal re-reads of its packed panels are not visible here */
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * tasks *
                                                      ((a->Nq + 2 * a->Nk) * a->D + 2 * a->Nq * a->Nk)));
    return 0;
}

/* Backward of query head h into the gradients of KV head h / G; `first`
 * overwrites dK/dV (beta = 0), later heads of the group accumulate. */
static void blas_backward_head(const attn_args *a, const attn_io *io, const attn_grads *g, int64_t b,
                               int64_t h, int first, float *P, float *dS)
{
    int64_t G = a->H / a->H_kv, hk = h / G, Nq = a->Nq, Nk = a->Nk, D = a->D;
    float sc = (float)attn_scale(a), beta = first ? 0.0f : 1.0f;
    const float *Q = attn_at(&io->q, b, h, 0), *K = attn_at(&io->k, b, hk, 0);
    const float *V = attn_at(&io->v, b, hk, 0), *dO = attn_at(&g->d_o, b, h, 0);
    int lq = (int)io->q.sn, lk = (int)io->k.sn, lv = (int)io->v.sn, ldo = (int)g->d_o.sn;

    blas_scores(a, io, b, h, P);
    for (int64_t i = 0; i < Nq; i++)
        attn_probs_from_lse(P + i * Nk, Nk, io->lse[(b * a->H + h) * Nq + i]);
    // dV += P^T dO
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Nk, (int)D, (int)Nq, 1.0f, P, (int)Nk,
                dO, ldo, beta, attn_at(&g->dv, b, hk, 0), (int)g->dv.sn);
    // dP = dO V^T, then dS = P * (dP - Di) in place
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Nq, (int)Nk, (int)D, 1.0f, dO, ldo, V,
                lv, 0.0f, dS, (int)Nk);
    for (int64_t i = 0; i < Nq; i++) {
        float Di = attn_dot(attn_at(&g->d_o, b, h, i), attn_at(&io->o, b, h, i), D);
        float *ds = dS + i * Nk, *p = P + i * Nk;
        for (int64_t j = 0; j < Nk; j++)
            ds[j] = p[j] * (ds[j] - Di);
    }
    // dQ = sc dS K, dK += sc dS^T Q
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Nq, (int)D, (int)Nk, sc, dS, (int)Nk,
                K, lk, 0.0f, attn_at(&g->dq, b, h, 0), (int)g->dq.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Nk, (int)D, (int)Nq, sc, dS, (int)Nk,
                Q, lq, beta, attn_at(&g->dk, b, hk, 0), (int)g->dk.sn);
}

static int blas_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    int64_t G = a->H / a->H_kv, tasks = a->B * a->H_kv;
    openblas_set_num_threads(1);
    /* One task per (b, KV head): it owns dK/dV of that head and dQ of its G heads. */
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / a->H_kv, hk = t % a->H_kv;
        int tid = omp_get_thread_num();
        float *P = attn_score_matrix(ctx, tid, 0, 2), *dS = attn_score_matrix(ctx, tid, 1, 2);
        for (int64_t h = hk * G; h < (hk + 1) * G; h++)
            blas_backward_head(a, io, g, b, h, h == hk * G, P, dS);
    }
    double dense = (double)(a->Nq * a->Nk) * (double)(a->D * a->B * a->H);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(10 * dense));
    /* Q, K, V, O, dO once per head; P and dS each written once and read twice */
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * a->B * a->H *
                                                      ((3 * a->Nq + 2 * a->Nk) * a->D + 4 * a->Nq * a->Nk)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(a->Nq * a->Nk * a->B * a->H));
    return 0;
}

const attn_kernel attn_kernel_blas = {
    .name = "blas",
    .family = "softmax",
    .reference = "Vaswani et al. 2017 via OpenBLAS sgemm (eager framework baseline)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_ALL, /* every kind of mask.h */
    .params = attn_score_matrix_params,
    .init = blas_init,
    .forward = blas_forward,
    .backward = blas_backward,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
};
