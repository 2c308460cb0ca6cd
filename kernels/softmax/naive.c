/* `naive`: fp32 softmax attention with plain loops, materialising the full
 * Nq x Nk score matrix of one head row by row (Vaswani et al. 2017).
 * It is the obviously-correct fp32 twin of the fast kernels and the memory
 * baseline that grows as N^2. */
#include "kernels/core/counters.h"
#include "softmax.h"
#include "kernels/core/softmax_rows.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static int naive_init(attn_ctx *ctx, const attn_args *a)
{
    return attn_score_matrix_init(ctx, a, 1);
}

/* S = sc * q k^T on allowed pairs (-inf elsewhere); returns the allowed count. */
static int64_t naive_scores(const attn_args *a, const attn_io *io, int64_t b, int64_t h, float *S)
{
    int64_t G = a->H / a->H_kv, nnz = 0;
    float sc = (float)attn_scale(a);
    for (int64_t i = 0; i < a->Nq; i++) {
        const float *qi = attn_at(&io->q, b, h, i);
        float *s = S + i * a->Nk;
        for (int64_t j = 0; j < a->Nk; j++) {
            if (!attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j)) {
                s[j] = -INFINITY;
                continue;
            }
            s[j] = sc * attn_dot(qi, attn_at(&io->k, b, h / G, j), a->D);
            nnz++;
        }
    }
    return nnz;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse is (B,H,Nq)
static int naive_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv, D = a->D, tasks = a->B * a->H;
    long long nnz_total = 0;
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : nnz_total)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / a->H, h = t % a->H;
        float *S = attn_score_matrix(ctx, omp_get_thread_num(), 0, 1);
        nnz_total += naive_scores(a, io, b, h, S);
        for (int64_t i = 0; i < a->Nq; i++) {
            float *p = S + i * a->Nk, *o = attn_at(&io->o, b, h, i);
            io->lse[t * a->Nq + i] = attn_softmax_row(p, a->Nk);
            memset(o, 0, sizeof(float) * (size_t)D);
            for (int64_t j = 0; j < a->Nk; j++) {
                if (!attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j))
                    continue;
                const float *v = attn_at(&io->v, b, h / G, j);
#pragma omp simd
                for (int64_t d = 0; d < D; d++)
                    o[d] += p[j] * v[d];
            }
        }
    }
    attn_counter_add(ATTN_CNT_FLOPS, 4 * D * nnz_total);
    attn_counter_add(ATTN_CNT_EXPS, (long long)(a->B * a->H * a->Nq * a->Nk));
    /* loads issued by the loops: each q row, then a k and a v row per allowed pair */
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)sizeof(float) * D * (tasks * a->Nq + 2 * nnz_total));
    return 0;
}

static void zero_rows(const attn_tensor *t, int64_t b, int64_t h)
{
    for (int64_t n = 0; n < t->N; n++)
        memset(attn_at(t, b, h, n), 0, sizeof(float) * (size_t)t->D);
}

/* Backward of one query head h (of KV group g = h / G): recompute P from the
 * saved lse, then dV += P^T dO, dP = dO V^T, dS = P*(dP - Di), dQ = sc dS K,
 * dK += sc dS^T Q, visiting allowed pairs only. */
static int64_t naive_backward_head(const attn_args *a, const attn_io *io, const attn_grads *g,
                                   int64_t b, int64_t h, float *P)
{
    int64_t G = a->H / a->H_kv, D = a->D, hk = h / G;
    float sc = (float)attn_scale(a);
    int64_t nnz = naive_scores(a, io, b, h, P);
    for (int64_t i = 0; i < a->Nq; i++)
        attn_probs_from_lse(P + i * a->Nk, a->Nk, io->lse[(b * a->H + h) * a->Nq + i]);
    for (int64_t i = 0; i < a->Nq; i++) {
        const float *qi = attn_at(&io->q, b, h, i), *doi = attn_at(&g->d_o, b, h, i);
        float *dqi = attn_at(&g->dq, b, h, i), *p = P + i * a->Nk;
        float Di = attn_dot(doi, attn_at(&io->o, b, h, i), D);
        for (int64_t j = 0; j < a->Nk; j++) {
            if (!attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j))
                continue;
            const float *kj = attn_at(&io->k, b, hk, j), *vj = attn_at(&io->v, b, hk, j);
            float *dkj = attn_at(&g->dk, b, hk, j), *dvj = attn_at(&g->dv, b, hk, j);
            float ds = sc * p[j] * (attn_dot(doi, vj, D) - Di);
#pragma omp simd
            for (int64_t d = 0; d < D; d++) {
                dqi[d] += ds * kj[d];
                dkj[d] += ds * qi[d];
                dvj[d] += p[j] * doi[d];
            }
        }
    }
    return nnz;
}

static int naive_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv, tasks = a->B * a->H_kv;
    long long nnz_total = 0;
    /* One task per (b, KV head): it owns dK/dV of that head and dQ of its G
     * query heads, so no two threads write the same gradient row. */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : nnz_total)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / a->H_kv, hk = t % a->H_kv;
        float *P = attn_score_matrix(ctx, omp_get_thread_num(), 0, 1);
        zero_rows(&g->dk, b, hk);
        zero_rows(&g->dv, b, hk);
        for (int64_t h = hk * G; h < (hk + 1) * G; h++) {
            zero_rows(&g->dq, b, h);
            nnz_total += naive_backward_head(a, io, g, b, h, P);
        }
    }
    attn_counter_add(ATTN_CNT_FLOPS, 10 * a->D * nnz_total);
    attn_counter_add(ATTN_CNT_EXPS, (long long)(a->B * a->H * a->Nq * a->Nk));
    /* per allowed pair: k, v rows for the scores, v for dP, k for dQ, dK and dV rows */
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)sizeof(float) * a->D * 6 * nnz_total);
    return 0;
}

const attn_kernel attn_kernel_naive = {
    .name = "naive",
    .family = "softmax",
    .reference = "Vaswani et al. 2017 (fp32 loops, full score matrix)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_ALL, /* every kind of mask.h */
    .params = attn_score_matrix_params,
    .init = naive_init,
    .forward = naive_forward,
    .backward = naive_backward,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
};
