/* Properties of `atlas` (the ATLAS memory with the Omega rule):
 * the chunked fp32 forward equals the token-by-token double reference for
 * chunk sizes, windows and both feature maps, lengths not a multiple of the
 * chunk, head sizes 16..128, Dv != D, GQA and document resets; a window of
 * one token on the identity map is the Titans memory; the Omega loss is the
 * window's mean, so a window of identical tokens moves the memory as one
 * token does; gradients of every input (the four gates included) against
 * central differences of the reference; state size, cost model and
 * parameter validation. Causal leakage, thread determinism and strided views
 * run for it with every kernel in test_properties.c and `attnbench check`. */
#include "memory_kernel_checks.h"
#include "kernels/atlas/atlas.h"
#include "kernels/titans/titans.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define K (&attn_kernel_atlas)

/* b stale steps of one chunk add up: its steps are divided by b so that the
 * chunk's total step stays that of one token's (docs/kernels/atlas.md,
 * Stability) -- on a diverging memory fp32 rounding grows with the outputs.
 * The reference is rerun on the new steps. */
static void scale_steps_to_chunk(fx_problem *p)
{
    int rc = 0;
    int64_t b = attn_param_int(&p->a, K->params, "chunk", &rc);
    cr_assert_eq(rc, 0);
    for (int64_t h = 0; h < p->beta.H * p->beta.B; h++)
        for (int64_t j = 0; j < p->beta.N; j++)
            attn_at(&p->beta, h / p->beta.H, h % p->beta.H, j)[0] /= (float)b;
    fx_ref_forward(p);
}

Test(atlas, chunked_equals_token_by_token_reference, .timeout = 240)
{
    static const memory_shape cases[] = {
        {1, 2, 2, 1, 16, 16, "causal"},
        {2, 4, 2, 7, 16, 24, "causal"},
        {1, 4, 2, 130, 16, 40, "causal"},
        {1, 4, 1, 70, 32, 32, "causal"},
        {1, 2, 1, 40, 64, 64, "causal"},
        {1, 2, 2, 20, 128, 128, "causal"},
        {1, 4, 2, 130, 16, 16, "document:lens=50+1+79,causal=1"},
        {1, 2, 2, 70, 16, 8, "document:n=4,seed=3"}, /* causality is intrinsic: same resets */
    };
    static const char *const params[] = {"chunk=1 window=4", "chunk=16 window=4", "chunk=16 window=1",
                                         "chunk=4 window=16", "chunk=16 window=8 phi=identity", "chunk=7 window=64"};
    memory_chunked_matches_reference(K, cases, sizeof cases / sizeof *cases, params, sizeof params / sizeof *params, 10,
                                     scale_steps_to_chunk);
}

/* window = 1, identity features, gamma = 1 and a constant step eta: S_t =
 * theta S + 2 (W0 k^ - v) k^^T, W_t = alpha W - eta S_t is Titans with step
 * beta = 2 eta, momentum theta (its Sigma = -eta S) and the same retention,
 * per token and in chunks (both take a chunk's gradients at its start). */
Test(atlas, one_token_window_on_identity_features_is_titans, .timeout = 30)
{
    static const char *const chunks[] = {"chunk=1", "chunk=16"};
    for (int ic = 0; ic < 2; ic++) {
        char pa[64];
        snprintf(pa, sizeof pa, "%s window=1 phi=identity", chunks[ic]);
        attn_args a = memory_args(1, 4, 2, 70, 16, 24, "document:lens=30+40,causal=1", pa);
        attn_args at = memory_args(1, 4, 2, 70, 16, 24, "document:lens=30+40,causal=1", chunks[ic]);
        fx_problem p, t;
        fx_make_for(&p, K, &a, 4);
        fx_make_for(&t, &attn_kernel_titans, &at, 4);
        memcpy(p.q.data, t.q.data, sizeof(float) * (size_t)(p.q.B * p.q.sb));
        memcpy(p.k.data, t.k.data, sizeof(float) * (size_t)(p.k.B * p.k.sb));
        memcpy(p.v.data, t.v.data, sizeof(float) * (size_t)(p.v.B * p.v.sb));
        memcpy(p.gate.data, t.gate.data, sizeof(float) * (size_t)(p.gate.B * p.gate.sb));
        for (int64_t h = 0; h < a.H_kv; h++)
            for (int64_t j = 0; j < a.Nk; j++) {
                attn_at(&p.beta, 0, h, j)[0] = 0.3f;
                attn_at(&t.beta, 0, h, j)[0] = 0.6f;
                attn_at(&p.router, 0, h, j)[0] = attn_at(&t.router, 0, h, j)[0];
                attn_at(&p.router, 0, h, j)[1] = OPEN_LOGIT;
            }
        fx_ref_forward(&p);
        fx_ref_forward(&t);
        memory_run_checked(K, &p, "atlas");
        memory_run_checked(&attn_kernel_titans, &t, "titans");
        double e = 0, m = 0, e64 = 0;
        for (int64_t i = 0; i < p.o.B * p.o.sb; i++) {
            e = fmax(e, fabs((double)p.o.data[i] - t.o.data[i]));
            e64 = fmax(e64, fabs(p.o64.data[i] - t.o64.data[i]));
            m = fmax(m, fabs(t.o64.data[i]));
        }
        cr_assert(m > 0.01, "degenerate: Titans output max %.3g", m);
        cr_assert(e <= 5e-5 * m, "%s: fp32 kernels differ by %.3g (max|O| %.3g)", chunks[ic], e, m);
        cr_assert(e64 <= 1e-10 * m, "%s: double references differ by %.3g (max|O| %.3g)", chunks[ic], e64, m);
        fx_free(&p);
        fx_free(&t);
    }
}

/* Every token the same pair (k, v): each window holds n copies of one error,
 * whose mean is that error, so any window gives the one-token outputs; with
 * distinct tokens the window changes them. */
Test(atlas, omega_loss_is_the_window_mean, .timeout = 30)
{
    static const char *const windows[] = {"chunk=4 window=1", "chunk=4 window=6"};
    const int64_t N = 20, D = 16;
    fx_problem p[2], d[2];
    for (int iw = 0; iw < 2; iw++) {
        attn_args a = memory_args(1, 1, 1, N, D, D, "causal", windows[iw]);
        fx_make_for(&p[iw], K, &a, 8);
        fx_make_for(&d[iw], K, &a, 8);
        for (int64_t j = 0; j < N; j++) {
            memcpy(attn_at(&p[iw].k, 0, 0, j), attn_at(&p[iw].k, 0, 0, 0), sizeof(float) * D);
            memcpy(attn_at(&p[iw].v, 0, 0, j), attn_at(&p[iw].v, 0, 0, 0), sizeof(float) * D);
            attn_at(&p[iw].router, 0, 0, j)[1] = attn_at(&p[iw].router, 0, 0, 0)[1];
        }
        memory_run_checked(K, &p[iw], windows[iw]);
        memory_run_checked(K, &d[iw], windows[iw]);
    }
    double same = 0, distinct = 0, m = 0;
    for (int64_t i = 0; i < p[0].o.B * p[0].o.sb; i++) {
        same = fmax(same, fabs(p[0].o.data[i] - p[1].o.data[i]));
        distinct = fmax(distinct, fabs(d[0].o.data[i] - d[1].o.data[i]));
        m = fmax(m, fabs(p[0].o.data[i]));
    }
    cr_assert(m > 0.01, "degenerate: output max %.3g", m);
    cr_assert(same <= 1e-5 * m, "identical tokens: windows 1 and 6 differ by %.3g", same);
    cr_assert(distinct > 1e-3, "distinct tokens: windows 1 and 6 agree (%.3g)", distinct);
    for (int iw = 0; iw < 2; iw++) {
        fx_free(&p[iw]);
        fx_free(&d[iw]);
    }
}

Test(atlas, backward_matches_central_differences_of_reference, .timeout = 180)
{
    /* N = 40 spans two backward blocks (32 keys); documents cut chunks, blocks and windows */
    static const memory_grad_case cases[] = {
        {2, 1, 5, 8, 8, "causal", "chunk=1 window=3"},
        {2, 1, 9, 16, 8, "causal", "chunk=4 window=4"},
        {4, 2, 9, 8, 8, "document:lens=4+5,causal=1", "chunk=3 window=2"},
        {2, 1, 40, 4, 4, "causal", "chunk=16 window=5"},
        {2, 1, 70, 4, 4, "document:lens=40+30,causal=1", "chunk=8 window=6"},
        {1, 1, 9, 8, 12, "causal", "chunk=4 window=3 phi=identity"},
        {1, 1, 40, 4, 4, "causal", "chunk=40 window=40"}, /* one chunk longer than a block */
    };
    memory_backward_matches_reference(K, cases, sizeof cases / sizeof *cases);
}

/* State 2 F Dv per (b, KV head), F = 1 + D + D(D+1)/2 (Taylor) or D;
 * forward FLOPs N (4 F Dv + 6 F Dv R / C + 2 R (F + Dv)) per (b, query head),
 * C = min(chunk, N), R = C + min(window, N) - 1; bytes each tensor once with four gate columns. */
static double omega_state(const memory_cost_case *c) { return 2 * c->F * (double)c->Dv; }

static double omega_flops(const memory_cost_case *c)
{
    double F = c->F, Dv = (double)c->Dv, R = c->C + c->w - 1;
    return 4 * F * Dv + 6 * F * Dv * R / c->C + 2 * R * (F + Dv);
}

Test(atlas, state_size_and_cost_model, .timeout = 30)
{
    static const memory_cost_case shapes[] = {{1, 2, 2, 128, 16, 32, NULL, 1, 64, 153},
                                              {2, 4, 2, 100, 8, 16, "chunk=64 window=4", 64, 4, 45},
                                              {1, 2, 1, 30, 8, 8, "chunk=64 phi=identity", 30, 30, 8}};
    memory_state_and_cost_match(K, shapes, sizeof shapes / sizeof *shapes, 4, omega_state, omega_flops);
}

Test(atlas, rejects_bad_params_masks_offsets_and_a_scale, .timeout = 30)
{
    static const char *const bad[] = {"chunk=0", "chunk=257", "window=0", "window=1025", "phi=cubic", "opt=adam", "lr=1"};
    static const char *const named[] = {"chunk", "chunk", "window", "window", "phi", "opt", "lr"};
    memory_rejects_bad_inputs(K, bad, named, 7, "chunk=256 window=1024");
}
