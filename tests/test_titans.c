/* Properties of `titans` (the neural long-term memory):
 * the chunked fp32 forward equals the token-by-token double reference for
 * every chunk size, both read orders, lengths not a multiple of the chunk,
 * head sizes 16..128, Dv != D, GQA and document resets; with no momentum and
 * no forgetting, per token, it is DeltaNet fed normalised queries; a chunk's
 * gradients are taken at its initial memory; momentum keeps moving the memory
 * after a single surprise; a shut forgetting gate erases the past; gradients
 * against central differences of the reference; state size, cost model and
 * parameter validation. Causal leakage, thread determinism and strided views
 * run for it with every kernel in test_properties.c and `attnbench check`. */
#include "memory_kernel_checks.h"
#include "kernels/deltanet/deltanet.h"
#include "kernels/titans/titans.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define K (&attn_kernel_titans)

Test(titans, chunked_equals_token_by_token_reference, .timeout = 120)
{
    static const memory_shape cases[] = {
        {1, 2, 2, 1, 16, 16, "causal"},
        {2, 4, 2, 7, 32, 24, "causal"},
        {1, 4, 2, 130, 16, 40, "causal"},
        {1, 4, 1, 130, 64, 64, "causal"},
        {1, 2, 2, 257, 80, 80, "causal"},
        {1, 2, 1, 70, 128, 128, "causal"},
        {1, 4, 2, 130, 32, 32, "document:lens=50+1+79,causal=1"},
        {1, 2, 2, 130, 32, 16, "document:n=4,seed=3"}, /* causality is intrinsic: same resets */
    };
    static const char *const params[] = {"chunk=1", "chunk=16", "chunk=64", "chunk=16 read=before",
                                         "chunk=1 read=before"};
    memory_chunked_matches_reference(K, cases, sizeof cases / sizeof *cases, params, sizeof params / sizeof *params, 10,
                                     NULL);
}

/* eta = 0, a = 1 (alpha = 0), per token: W_t = W_{t-1} - beta (W_{t-1} k^ - v) k^^T,
 * the delta rule with write strength beta (= 2 theta). DeltaNet scales q and
 * does not normalise it: it is fed q^ with scale 1. */
Test(titans, no_momentum_no_forgetting_per_token_is_deltanet_on_normalised_queries, .timeout = 30)
{
    attn_args a = memory_args(1, 4, 2, 70, 16, 24, "document:lens=30+40,causal=1", "chunk=1");
    attn_args ad = memory_args(1, 4, 2, 70, 16, 24, "document:lens=30+40,causal=1", "scale=1");
    fx_problem p, d;
    fx_make_for(&p, K, &a, 4);
    fx_make_for(&d, &attn_kernel_deltanet, &ad, 4);
    memory_fill(&p.router, SHUT_LOGIT);
    memory_fill(&p.gate, 0.0f);
    memcpy(p.k.data, d.k.data, sizeof(float) * (size_t)(p.k.B * p.k.sb));
    memcpy(p.v.data, d.v.data, sizeof(float) * (size_t)(p.v.B * p.v.sb));
    memcpy(p.beta.data, d.beta.data, sizeof(float) * (size_t)(p.beta.B * p.beta.sb));
    memcpy(p.q.data, d.q.data, sizeof(float) * (size_t)(p.q.B * p.q.sb));
    for (int64_t b = 0; b < a.B; b++)
        for (int64_t h = 0; h < a.H; h++)
            for (int64_t t = 0; t < a.Nk; t++) {
                float *q = attn_at(&d.q, b, h, t), n = 0;
                for (int64_t i = 0; i < a.D; i++)
                    n += q[i] * q[i];
                for (int64_t i = 0; i < a.D; i++)
                    q[i] /= sqrtf(n + 1e-12f);
            }
    fx_ref_forward(&p);
    fx_ref_forward(&d);
    memory_run_checked(K, &p, "titans");
    cr_assert_eq(fx_run(&attn_kernel_deltanet, &d, 0), 0, "%s", attn_last_error());
    double e = 0, m = 0, e64 = 0;
    for (int64_t i = 0; i < p.o.B * p.o.sb; i++) {
        e = fmax(e, fabs((double)p.o.data[i] - d.o.data[i]));
        e64 = fmax(e64, fabs(p.o64.data[i] - d.o64.data[i]));
        m = fmax(m, fabs(d.o64.data[i]));
    }
    cr_assert(m > 0.01, "degenerate: DeltaNet output max %.3g", m);
    cr_assert(e <= 5e-5 * m, "fp32 kernels differ by %.3g (max|O| %.3g)", e, m);
    /* DeltaNet's q^ was rounded to fp32 before its reference widened it: ~1e-7 relative */
    cr_assert(e64 <= 1e-6 * m, "double references differ by %.3g (max|O| %.3g)", e64, m);
    fx_free(&p);
    fx_free(&d);
}

/* Two copies of one unit pair (k, v) with beta = 1, eta = 0, a = 1, and the
 * query k: token by token the second write sees no error (W k = v), so y = v;
 * in one chunk both errors are taken at W0 = 0, so the pair is written twice, y = 2 v. */
Test(titans, a_chunks_gradients_are_taken_at_its_initial_memory, .timeout = 30)
{
    static const char *const params[] = {"chunk=1", "chunk=2"};
    for (int ip = 0; ip < 2; ip++) {
        attn_args a = memory_args(1, 1, 1, 2, 8, 8, "causal", params[ip]);
        fx_problem p;
        fx_make_for(&p, K, &a, 6);
        memory_fill(&p.router, SHUT_LOGIT);
        memory_fill(&p.gate, 0.0f);
        memory_fill(&p.beta, 1.0f);
        for (int64_t d = 0; d < 8; d++) {
            attn_at(&p.k, 0, 0, 1)[d] = attn_at(&p.k, 0, 0, 0)[d];
            attn_at(&p.q, 0, 0, 1)[d] = attn_at(&p.k, 0, 0, 0)[d];
            attn_at(&p.v, 0, 0, 1)[d] = attn_at(&p.v, 0, 0, 0)[d];
        }
        fx_ref_forward(&p);
        memory_run_checked(K, &p, params[ip]);
        for (int64_t d = 0; d < 8; d++) {
            double want = (ip + 1) * attn_at(&p.v, 0, 0, 0)[d];
            cr_assert(fabs(attn_at(&p.o, 0, 0, 1)[d] - want) <= 1e-5, "%s: y[%lld] = %.7g, expected %.7g",
                      params[ip], (long long)d, attn_at(&p.o, 0, 0, 1)[d], want);
            cr_assert(fabs(attn_at64(&p.o64, 0, 0, 1)[d] - want) <= 1e-9, "%s: reference y[%lld] = %.9g",
                      params[ip], (long long)d, attn_at64(&p.o64, 0, 0, 1)[d]);
        }
        fx_free(&p);
    }
}

/* One surprise at token 0 (beta_0 = b, later beta = 0), eta = 1, a = 1: the
 * momentum Sigma = b v k^^T is added at every step, so querying k at token t
 * returns (t + 1) b v. */
Test(titans, momentum_keeps_moving_the_memory_after_one_surprise, .timeout = 30)
{
    static const char *const params[] = {"chunk=1", "chunk=16", "chunk=16 read=before"};
    for (int ip = 0; ip < 3; ip++) {
        const int64_t N = 20, D = 8;
        attn_args a = memory_args(1, 1, 1, N, D, D, "causal", params[ip]);
        fx_problem p;
        fx_make_for(&p, K, &a, 7);
        memory_fill(&p.router, OPEN_LOGIT);
        memory_fill(&p.gate, 0.0f);
        memory_fill(&p.beta, 0.0f);
        p.beta.data[0] = 0.25f;
        for (int64_t t = 0; t < N; t++)
            memcpy(attn_at(&p.q, 0, 0, t), attn_at(&p.k, 0, 0, 0), sizeof(float) * D);
        fx_ref_forward(&p);
        memory_run_checked(K, &p, params[ip]);
        int before = ip == 2;
        for (int64_t t = 0; t < N; t++)
            for (int64_t d = 0; d < D; d++) {
                double want = 0.25 * (double)(t + 1 - before) * attn_at(&p.v, 0, 0, 0)[d];
                cr_assert(fabs(attn_at(&p.o, 0, 0, t)[d] - want) <= 1e-5 * (1 + fabs(want)),
                          "%s: y[%lld][%lld] = %.7g, expected %.7g", params[ip], (long long)t, (long long)d,
                          attn_at(&p.o, 0, 0, t)[d], want);
            }
        fx_free(&p);
    }
}

/* a_m = 0 (alpha = 1), eta_m = 0 and beta_m = 0 at token m: W_m = 0, so the
 * outputs from m on do not depend on the tokens before m (per token, and
 * with m the last token of a chunk so the next chunk starts from W = 0). */
Test(titans, shut_forgetting_gate_without_momentum_erases_the_past, .timeout = 30)
{
    static const char *const params[] = {"chunk=1", "chunk=16"};
    const int64_t N = 40, D = 16, m = 15;
    for (int ip = 0; ip < 2; ip++) {
        attn_args a = memory_args(1, 2, 1, N, D, D, "causal", params[ip]);
        fx_problem p, r;
        fx_make_for(&p, K, &a, 9);
        fx_make_for(&r, K, &a, 9);
        attn_tensor *gates[] = {&r.beta, &r.gate, &r.router};
        for (int i = 0; i < 3; i++)
            for (int64_t j = 0; j < N; j++)
                attn_at(gates[i], 0, 0, j)[0] = attn_at(i == 0 ? &p.beta : i == 1 ? &p.gate : &p.router, 0, 0, j)[0];
        attn_at(&p.gate, 0, 0, m)[0] = attn_at(&r.gate, 0, 0, m)[0] = -INFINITY;
        attn_at(&p.router, 0, 0, m)[0] = attn_at(&r.router, 0, 0, m)[0] = SHUT_LOGIT;
        attn_at(&p.beta, 0, 0, m)[0] = attn_at(&r.beta, 0, 0, m)[0] = 0.0f;
        for (int64_t t = 0; t < m; t++) /* another past */
            for (int64_t d = 0; d < D; d++) {
                attn_at(&r.k, 0, 0, t)[d] = -0.5f * attn_at(&p.k, 0, 0, t)[d] + 0.1f;
                attn_at(&r.v, 0, 0, t)[d] = 2.0f * attn_at(&p.v, 0, 0, t)[d];
            }
        memory_run_checked(K, &p, params[ip]);
        memory_run_checked(K, &r, params[ip]);
        double diff_before = 0, diff_after = 0;
        for (int64_t h = 0; h < 2; h++)
            for (int64_t t = 0; t < N; t++)
                for (int64_t d = 0; d < D; d++) {
                    double e = fabs(attn_at(&p.o, 0, h, t)[d] - attn_at(&r.o, 0, h, t)[d]);
                    if (t < m)
                        diff_before = fmax(diff_before, e);
                    else
                        diff_after = fmax(diff_after, e);
                }
        cr_assert(diff_before > 1e-3, "%s: the two pasts give the same outputs (%.3g)", params[ip], diff_before);
        cr_assert(diff_after <= 1e-6, "%s: outputs after the shut gate differ by %.3g", params[ip], diff_after);
        fx_free(&p);
        fx_free(&r);
    }
}

Test(titans, backward_matches_central_differences_of_reference, .timeout = 120)
{
    /* N = 70 spans two backward blocks (64 keys); 130 with documents cuts chunks and blocks */
    static const memory_grad_case cases[] = {
        {2, 1, 5, 8, 8, "causal", "chunk=1"},
        {2, 1, 9, 16, 8, "causal", "chunk=4"},
        {2, 1, 9, 8, 12, "causal", "chunk=4 read=before"},
        {4, 2, 9, 8, 8, "document:lens=4+5,causal=1", "chunk=3"},
        {2, 1, 70, 4, 4, "causal", "chunk=16"},
        {2, 1, 70, 4, 4, "causal", "chunk=1 read=before"},
        {2, 1, 130, 4, 4, "document:lens=70+60,causal=1", "chunk=16"},
        {1, 1, 100, 4, 4, "causal", "chunk=100"}, /* one chunk longer than a block */
    };
    memory_backward_matches_reference(K, cases, sizeof cases / sizeof *cases);
}

/* State 2 Dk Dv per (b, KV head); forward FLOPs N (10 Dk Dv + 2 C (Dk + Dv)) per (b, query head),
 * C = min(chunk, N); bytes each tensor once with three gates per token. */
static double linear_state(const memory_cost_case *c) { return 2.0 * (double)(c->D * c->Dv); }

static double linear_flops(const memory_cost_case *c)
{
    return 10.0 * (double)(c->D * c->Dv) + 2 * c->C * (double)(c->D + c->Dv);
}

Test(titans, state_size_and_cost_model, .timeout = 30)
{
    static const memory_cost_case shapes[] = {
        {1, 2, 2, 128, 16, 32, NULL, 16, 0, 0}, {2, 4, 2, 100, 32, 16, "chunk=64", 64, 0, 0}, {1, 2, 1, 30, 8, 8, "chunk=64", 30, 0, 0}};
    memory_state_and_cost_match(K, shapes, sizeof shapes / sizeof *shapes, 3, linear_state, linear_flops);
}

Test(titans, rejects_bad_params_masks_offsets_and_a_scale, .timeout = 30)
{
    static const char *const bad[] = {"chunk=0", "chunk=257", "chunk=x", "read=later", "lr=1"};
    static const char *const named[] = {"chunk", "chunk", "chunk", "read", "lr"};
    memory_rejects_bad_inputs(K, bad, named, 5, "chunk=256");
}
