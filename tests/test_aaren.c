/* Properties of the `aaren` kernel: each step equals the softmax oracle of
 * the one query over the prefix; the parallel chunked scan equals the
 * sequential double scan for every chunk size; document restarts; gradients
 * by central differences; state size, cost model, counters and parameters.
 * Causal leakage, thread determinism and strided views on its chunk sizes:
 * test_properties.c. */
#include "kernels/aaren/aaren.h"
#include "harness/measure/check.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_aaren;

static attn_args aaren_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                            const char *chunk)
{
    attn_args a = fx_args(B, H, H_kv, 1, N, D, mask, 2);
    if (chunk)
        fx_add_params(&a, chunk);
    return a;
}

/* max|O - O_ref| / max|O_ref| of the kernel's forward against its reference (NaN-filled O first). */
static double run_err(const attn_args *a, uint64_t seed)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb));
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double e = fx_err_o(&p);
    fx_free(&p);
    return e;
}

/* Step t of aaren = the softmax oracle of its one query over keys 0..t: the
 * oracle run on the first t+1 keys (views of K and V), one query, FULL mask. */
Test(aaren, every_step_equals_the_softmax_oracle_over_its_prefix, .timeout = 60)
{
    static const int64_t Ns[] = {1, 7, 300};
    static const char *const chunks[] = {"chunk=1", "chunk=16", "chunk=256"};
    for (int iN = 0; iN < 3; iN++)
        for (int ic = 0; ic < 3; ic++) {
            int64_t N = Ns[iN];
            attn_args a = aaren_args(1, 4, 2, N, 16, "causal", chunks[ic]);
            fx_problem p;
            fx_make_for(&p, K, &a, 10 + (uint64_t)(3 * iN + ic));
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            double err = 0, vmax = 0;
            for (int64_t i = 0; i < p.v64.B * p.v64.sb; i++)
                vmax = fmax(vmax, fabs(p.v64.data[i]));
            for (int64_t t = 0; t < N; t++) {
                attn_args o = fx_args(1, 4, 2, 1, t + 1, 16, "full", 1);
                attn_tensor_f64 k = p.k64, v = p.v64;
                k.N = v.N = t + 1;
                double row[4 * 16], lse[4];
                attn_tensor_f64 out = {row, 1, 4, 1, 16, 4 * 16, 16, 16};
                attn_oracle_forward_f64(&o, &p.q64, &k, &v, &out, lse);
                for (int64_t h = 0; h < 4; h++)
                    for (int64_t d = 0; d < 16; d++)
                        err = fmax(err, fabs(attn_at(&p.o, 0, h, t)[d] - attn_at64(&out, 0, h, 0)[d]));
            }
            cr_assert(err / vmax <= 2e-5, "N=%ld %s: err %.3g", (long)N, chunks[ic], err / vmax);
            fx_free(&p);
        }
}

Test(aaren, chunked_scan_equals_sequential_double_scan)
{
    static const char *const chunks[] = {"chunk=1", "chunk=16", "chunk=256", "chunk=7"};
    static const int64_t Ns[] = {1, 7, 130, 300}, Ds[] = {16, 32, 64, 80};
    for (int ic = 0; ic < 4; ic++)
        for (int iN = 0; iN < 4; iN++) {
            attn_args a = aaren_args(2, 2, 1, Ns[iN], Ds[(ic + iN) % 4], "causal", chunks[ic]);
            double e = run_err(&a, 20 + (uint64_t)(4 * ic + iN));
            cr_assert(e <= 5e-5, "N=%ld %s: err %.3g", (long)Ns[iN], chunks[ic], e);
        }
}

Test(aaren, dv_and_gqa_match_the_reference)
{
    attn_args a = aaren_args(1, 4, 1, 130, 32, "causal", "chunk=16");
    a.Dv = 24;
    double e = run_err(&a, 30);
    cr_assert(e <= 5e-5, "Dv=24 GQA 4/1: err %.3g", e);
}

/* Documents restart the scan: the reference (which restarts where step t may
 * not see step t-1) matches for every chunk size, and the first step of each
 * document outputs exactly its own value row. */
Test(aaren, document_mask_restarts_the_scan)
{
    static const char *const dm[] = {"document:lens=5+40+1+84", "document:n=4,seed=3", "document:n=3,seed=5,causal=1"};
    static const char *const chunks[] = {"chunk=1", "chunk=16", "chunk=256"};
    for (int m = 0; m < 3; m++)
        for (int ic = 0; ic < 3; ic++) {
            attn_args a = aaren_args(1, 2, 2, 130, 16, dm[m], chunks[ic]);
            double e = run_err(&a, 40 + (uint64_t)(3 * m + ic));
            cr_assert(e <= 5e-5, "%s %s: err %.3g", dm[m], chunks[ic], e);
        }
    attn_args a = aaren_args(1, 1, 1, 130, 16, dm[0], "chunk=16");
    fx_problem p;
    fx_make_for(&p, K, &a, 49);
    cr_assert_eq(fx_run(K, &p, 0), 0);
    static const int64_t starts[] = {0, 5, 45, 46};
    for (int s = 0; s < 4; s++)
        for (int64_t d = 0; d < 16; d++)
            cr_assert_eq(attn_at(&p.o, 0, 0, starts[s])[d], attn_at(&p.v, 0, 0, starts[s])[d],
                         "step %ld starts a document", (long)starts[s]);
    fx_free(&p);
}

Test(aaren, gradients_match_central_differences, .timeout = 60)
{
    static const char *const gm[] = {"causal", "causal", "document:lens=3+1+5", "document:lens=4+5,causal=1"};
    static const char *const chunks[] = {"chunk=256", "chunk=2", "chunk=4", "chunk=1"};
    for (int m = 0; m < 4; m++)
        for (int n = 0; n < 2; n++) {
            int64_t N = n ? 9 : 5;
            attn_args a = aaren_args(1, 2, 1, N, 16, N == 9 || m < 2 ? gm[m] : "causal", chunks[m]);
            if (m == 3)
                a.Dv = 8;
            double e[ATTN_CHECK_GRADS];
            cr_assert_eq(check_kernel_backward(K, &a, 60 + (uint64_t)(2 * m + n), e), 0, "%s", attn_last_error());
            for (int i = 0; i < 3; i++)
                cr_assert(e[i] <= 1e-4, "%s N=%ld: d%c err %.3g", gm[m], (long)N, "QKV"[i], e[i]);
        }
}

Test(aaren, gradients_with_long_sequence_and_large_scores)
{
    attn_args a = aaren_args(1, 1, 1, 40, 8, "causal", "chunk=16");
    a.scale = 3.0; /* peaky softmax: the running max changes often */
    double e[ATTN_CHECK_GRADS];
    cr_assert_eq(check_kernel_backward(K, &a, 70, e), 0, "%s", attn_last_error());
    for (int i = 0; i < 3; i++)
        cr_assert(e[i] <= 1e-4, "d%c err %.3g", "QKV"[i], e[i]);
}

Test(aaren, state_bytes_match_what_init_sizes)
{
    static const int64_t shapes[][5] = {{1, 2, 1, 7, 16}, {2, 8, 2, 300, 64}};
    for (int s = 0; s < 2; s++) {
        attn_args a = aaren_args(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4], "causal", NULL);
        a.Dv = s ? 48 : 0;
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), 0, "%s", attn_last_error());
        size_t want = (size_t)(a.B * a.H * (attn_dv(&a) + 2)) * sizeof(float);
        cr_assert_eq(K->state_bytes(&ctx.args), want);
        cr_assert_eq(ctx.state_bytes_used, want);
        attn_ctx_destroy(&ctx);
    }
}

Test(aaren, cost_model_follows_the_spec_and_counters_report_work)
{
    attn_args a = aaren_args(2, 4, 2, 100, 32, "causal", "chunk=16");
    attn_args_defaults(&a);
    cr_assert_eq(K->flops(&a, ATTN_PASS_FWD), 4.0 * 2 * 4 * 100 * 32); /* 4 N D per (b, h) */
    cr_assert_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * K->flops(&a, ATTN_PASS_FWD));
    cr_assert_eq(K->bytes(&a, ATTN_PASS_FWD), 4.0 * 2 * (4 * 32 + 2 * 100 * 64 + 4 * 100 * 32));
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0);
    /* scores 2 N D, then the summary and the fold pass 2 N Dv each, per (b, h) */
    cr_assert_eq((double)attn_counter_get(ATTN_CNT_FLOPS), 2.0 * 2 * 4 * 100 * (32 + 2 * 32));
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 2 * 2 * 4 * 100);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) >= (long long)K->bytes(&a, ATTN_PASS_FWD) / 2);
    fx_free(&p);
}

Test(aaren, lse_is_left_untouched_and_bad_input_is_refused)
{
    attn_args a = aaren_args(1, 2, 2, 20, 16, "causal", NULL);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    p.lse[0] = p.lse[1] = 1234.5f;
    cr_assert_eq(fx_run(K, &p, 0), 0);
    cr_assert(p.lse[0] == 1234.5f && p.lse[1] == 1234.5f);
    fx_free(&p);
    attn_ctx ctx;
    static const char *const bad[] = {"chunk=0", "chunk=x", "br=4"};
    for (int i = 0; i < 3; i++) {
        attn_args b = aaren_args(1, 1, 1, 8, 16, "causal", bad[i]);
        cr_assert_neq(attn_ctx_create(K, &b, &ctx), 0, "%s accepted", bad[i]);
    }
    attn_args q = fx_args(1, 1, 1, 8, 8, 16, "causal", 1); /* 8 queries: not one learned query */
    cr_assert_neq(attn_ctx_create(K, &q, &ctx), 0);
    attn_args w = fx_args(1, 1, 1, 1, 8, 16, "window:wl=2,wr=0", 1);
    cr_assert_neq(attn_ctx_create(K, &w, &ctx), 0);
}

