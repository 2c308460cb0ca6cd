/* Properties of `titans` with memory=mlp (the two-layer MLP memory
 * W2 silu(W1 x)): the fp32 forward equals the token-by-token double
 * reference at chunk 1 (the exact online rule) and at larger chunks (a
 * chunk's gradients at its initial memory), for both read orders, hidden
 * widths 1..3 x D, lengths not a multiple of the chunk, Dv != D, GQA and
 * document resets; two equal tokens in one chunk write the same gradient
 * twice; gradients of every input against central differences of the
 * reference (through the second-order terms of the memory's own gradient
 * step); state size and cost model. Causal leakage and thread determinism
 * run in test_properties.c. */
#include "memory_kernel_checks.h"
#include "kernels/titans/titans.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define K (&attn_kernel_titans)

Test(titans_mlp, chunked_equals_token_by_token_reference, .timeout = 120)
{
    static const memory_shape cases[] = {
        {1, 2, 2, 1, 16, 16, "causal"},
        {2, 4, 2, 7, 16, 24, "causal"},
        {1, 4, 2, 130, 16, 40, "causal"},
        {1, 2, 1, 70, 64, 64, "causal"},
        {1, 4, 2, 130, 32, 32, "document:lens=50+1+79,causal=1"},
        {1, 2, 2, 70, 16, 8, "document:n=4,seed=3"}, /* causality is intrinsic: same resets */
    };
    static const char *const params[] = {"memory=mlp chunk=1", "memory=mlp chunk=16", "memory=mlp chunk=64 expand=1",
                                         "memory=mlp chunk=7 read=before expand=3", "memory=mlp chunk=1 read=before"};
    memory_chunked_matches_reference(K, cases, sizeof cases / sizeof *cases, params, sizeof params / sizeof *params, 30,
                                     NULL);
}

/* eta = 0, a = 1 and tokens 0 and 1 the same pair (k, v): in one chunk of
 * two both gradients stand at the initial memory, theta_1 = theta_0 - 2 b
 * grad_0, which token by token is beta = (2 b, 0); the outputs at token 1
 * agree, and differ from the per-token rule with beta = (b, b). */
Test(titans_mlp, equal_tokens_in_a_chunk_write_the_same_gradient_twice, .timeout = 30)
{
    static const char *const params[] = {"memory=mlp chunk=2", "memory=mlp chunk=1", "memory=mlp chunk=1"};
    static const float beta0[] = {0.5f, 1.0f, 0.5f}, beta1[] = {0.5f, 0.0f, 0.5f};
    const int64_t D = 8;
    double y[3][8];
    for (int ip = 0; ip < 3; ip++) {
        attn_args a = memory_args(1, 1, 1, 2, D, D, "causal", params[ip]);
        fx_problem p;
        fx_make_for(&p, K, &a, 6);
        memory_fill(&p.router, SHUT_LOGIT);
        memory_fill(&p.gate, 0.0f);
        attn_at(&p.beta, 0, 0, 0)[0] = beta0[ip], attn_at(&p.beta, 0, 0, 1)[0] = beta1[ip];
        memcpy(attn_at(&p.k, 0, 0, 1), attn_at(&p.k, 0, 0, 0), sizeof(float) * D);
        memcpy(attn_at(&p.v, 0, 0, 1), attn_at(&p.v, 0, 0, 0), sizeof(float) * D);
        fx_ref_forward(&p);
        memory_run_checked(K, &p, params[ip]);
        cr_assert(fx_err_o(&p) <= 1e-5, "%s: err_O %.3g", params[ip], fx_err_o(&p));
        for (int64_t d = 0; d < D; d++)
            y[ip][d] = attn_at64(&p.o64, 0, 0, 1)[d];
        fx_free(&p);
    }
    double same = 0, other = 0;
    for (int64_t d = 0; d < D; d++) {
        same = fmax(same, fabs(y[0][d] - y[1][d]));
        other = fmax(other, fabs(y[0][d] - y[2][d]));
    }
    cr_assert(same <= 1e-12, "chunk of two vs beta (2b, 0) per token: differ by %.3g", same);
    cr_assert(other > 1e-4, "chunk of two vs beta (b, b) per token: agree (%.3g): the chunk is not at its start", other);
}

Test(titans_mlp, backward_matches_central_differences_of_reference, .timeout = 180)
{
    /* N = 70 spans two backward blocks (64 keys); documents cut chunks and blocks */
    static const memory_grad_case cases[] = {
        {2, 1, 5, 8, 8, "causal", "memory=mlp chunk=1"},
        {2, 1, 9, 8, 12, "causal", "memory=mlp chunk=4"},
        {2, 1, 9, 8, 6, "causal", "memory=mlp chunk=4 read=before expand=1"},
        {4, 2, 9, 4, 4, "document:lens=4+5,causal=1", "memory=mlp chunk=3 expand=3"},
        {2, 1, 70, 4, 4, "causal", "memory=mlp chunk=16"},
        {2, 1, 70, 4, 4, "document:lens=40+30,causal=1", "memory=mlp chunk=1 read=before"},
        {1, 1, 70, 4, 4, "causal", "memory=mlp chunk=70"}, /* one chunk longer than a block */
    };
    memory_backward_matches_reference(K, cases, sizeof cases / sizeof *cases);
}

/* State 2 P per (b, KV head), P = Hd (D + Dv), Hd = expand D (F here);
 * forward FLOPs N (9 P + 2 Hd Dv) per (b, query head); bytes as the linear memory's. */
static double mlp_state(const memory_cost_case *c) { return 2 * c->F * (double)(c->D + c->Dv); }

static double mlp_flops(const memory_cost_case *c) { return 9 * c->F * (double)(c->D + c->Dv) + 2 * c->F * (double)c->Dv; }

Test(titans_mlp, state_size_and_cost_model, .timeout = 30)
{
    static const memory_cost_case shapes[] = {{1, 2, 2, 128, 16, 32, "memory=mlp", 16, 0, 32},
                                              {2, 4, 2, 100, 32, 16, "memory=mlp chunk=64 expand=1", 64, 0, 32},
                                              {1, 2, 1, 30, 8, 8, "memory=mlp expand=4", 16, 0, 32}};
    memory_state_and_cost_match(K, shapes, sizeof shapes / sizeof *shapes, 3, mlp_state, mlp_flops);
}

Test(titans_mlp, rejects_bad_hidden_widths, .timeout = 30)
{
    static const char *const bad[] = {"memory=mlp expand=0", "memory=mlp expand=5", "memory=deep"};
    static const char *const named[] = {"expand", "expand", "memory"};
    memory_rejects_bad_inputs(K, bad, named, 3, "memory=mlp chunk=256 expand=4");
}
