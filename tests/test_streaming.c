/* Properties of the `streaming` kernel (StreamingLLM):
 * the rolling-cache decode equals the flash prefill and both equal the
 * softmax oracle under the same sink mask over 3 (n_sink + wl) tokens (GQA,
 * cross lengths); the cache never grows with the sequence and is what
 * state_bytes says; evicted keys never reach an output; gradients; parameter
 * and mask validation; counters. Causal leakage, thread determinism and
 * strided views in both modes: test_properties.c. */
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "harness/measure/check.h"
#include "kernels/streaming/streaming.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_streaming;

static attn_args stream_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D,
                             const char *mask, const char *mode, int threads)
{
    attn_args a = fx_args(B, H, H_kv, Nq, Nk, D, mask, threads);
    char kv[64];
    snprintf(kv, sizeof kv, "mode=%s", mode);
    cr_assert_eq(param_bag_add(&a.params, kv), 0, "%s", attn_last_error());
    return a;
}

/* Runs `mode` on a fresh problem (seed), asserts err_O and err_lse against
 * the oracle under the same mask, and leaves O in *out (allocated copy). */
static void run_mode(const attn_args *shape, const char *mode, uint64_t seed, float **out, const char *what)
{
    attn_args a = *shape;
    char kv[64];
    snprintf(kv, sizeof kv, "mode=%s", mode);
    cr_assert_eq(param_bag_add(&a.params, kv), 0);
    fx_problem p;
    fx_make(&p, &a, seed);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s %s: %s", what, mode, attn_last_error());
    double eo = fx_err_o(&p), el = fx_err_lse(&p);
    cr_assert(eo <= fx_tol_o(p.a.Nk), "%s %s: err_O %.3g > %.3g", what, mode, eo, fx_tol_o(p.a.Nk));
    cr_assert(el <= 1e-5, "%s %s: err_lse %.3g", what, mode, el);
    size_t n = sizeof(float) * (size_t)(p.o.B * p.o.sb);
    *out = malloc(n);
    memcpy(*out, p.o.data, n);
    fx_free(&p);
}

/* decode == prefill (to rounding) == oracle, for one shape. */
static void check_modes(const attn_args *a, uint64_t seed, const char *what)
{
    float *od, *op;
    run_mode(a, "decode", seed, &od, what);
    run_mode(a, "prefill", seed, &op, what);
    int64_t n = a->B * a->H * a->Nq * a->D;
    double diff = 0;
    for (int64_t i = 0; i < n; i++)
        diff = fmax(diff, fabs((double)od[i] - op[i]));
    cr_assert(diff <= 1e-5, "%s: decode differs from prefill by %.3g", what, diff);
    free(od);
    free(op);
}

/* 3 (n_sink + wl) = 60 tokens and a longer 130, sinks 4, window 16 (cache 21). */
Test(streaming, rolling_decode_equals_prefill_equals_oracle_under_the_sink_mask, .timeout = 60)
{
    static const int64_t Ns[] = {60, 130};
    for (int i = 0; i < 2; i++) {
        char what[96];
        snprintf(what, sizeof what, "B=2 H=4/2 N=%ld D=32 sink:n=4,w=16", (long)Ns[i]);
        attn_args a = fx_args(2, 4, 2, Ns[i], Ns[i], 32, "sink:n=4,w=16", 2);
        check_modes(&a, 100 + (uint64_t)i, what);
    }
    attn_args z = fx_args(1, 2, 1, 45, 45, 16, "sink:n=0,w=7", 2); /* no sinks: a pure ring */
    check_modes(&z, 7, "no sinks");
    attn_args w = fx_args(1, 2, 2, 40, 40, 16, "sink:n=4,w=200", 1); /* window longer than the sequence */
    check_modes(&w, 8, "window > N");
}

/* Decode steps: few queries at the end of a long stream (bottom-right), and
 * more queries than keys (queries before every key: O = 0, lse = -inf). */
Test(streaming, decode_matches_oracle_on_cross_lengths, .timeout = 60)
{
    attn_args one = fx_args(2, 4, 1, 1, 130, 32, "sink:n=4,w=16", 2);
    check_modes(&one, 11, "Nq=1 Nk=130");
    attn_args four = fx_args(1, 2, 2, 4, 97, 16, "sink:n=2,w=9", 2);
    check_modes(&four, 12, "Nq=4 Nk=97");
    attn_args more = fx_args(1, 2, 1, 50, 30, 16, "sink:n=4,w=16", 2);
    check_modes(&more, 13, "Nq=50 Nk=30");
}

/* The cache is sized by the mask, not the sequence: the decode workspace is
 * the same for 60 and 600 tokens, and the state is exactly the K/V of
 * n_sink + wl + 1 positions per (b, KV head). */
Test(streaming, cache_holds_n_sink_plus_window_plus_one_positions_whatever_the_length)
{
    size_t ws[2];
    static const int64_t Ns[] = {60, 600};
    for (int i = 0; i < 2; i++) {
        attn_args a = stream_args(2, 4, 2, Ns[i], Ns[i], 32, "sink:n=4,w=16", "decode", 2);
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), 0, "%s", attn_last_error());
        size_t expect = 4u * 2 * 2 * 2 * (4 + 16 + 1) * 32;
        cr_assert_eq(ctx.state_bytes_used, expect, "state used %zu, expected %zu", ctx.state_bytes_used, expect);
        cr_assert_eq(K->state_bytes(&ctx.args), expect);
        ws[i] = ctx.workspace_bytes;
        attn_ctx_destroy(&ctx);
    }
    cr_assert_eq(ws[0], ws[1], "decode workspace grows with N: %zu vs %zu", ws[0], ws[1]);
    attn_args d = stream_args(1, 8, 8, 1, 1, 64, "sink:n=4,w=1019", "decode", 1); /* the paper's 1024 */
    cr_assert_eq(K->state_bytes(&d), 4u * 2 * 8 * 1024 * 64);
}

/* Keys that left the cache (between the sinks and the last query's window)
 * cannot reach the last query's output: overwrite them with huge values and
 * the output is bitwise unchanged. */
Test(streaming, evicted_keys_never_reach_the_output)
{
    attn_args a = stream_args(1, 2, 2, 1, 80, 16, "sink:n=4,w=16", "decode", 1);
    fx_problem p;
    fx_make(&p, &a, 21);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    float before[32];
    memcpy(before, attn_at(&p.o, 0, 0, 0), sizeof(float) * 16);
    memcpy(before + 16, attn_at(&p.o, 0, 1, 0), sizeof(float) * 16);
    for (int64_t h = 0; h < 2; h++)
        for (int64_t j = 4; j < 80 - 17; j++)
            for (int64_t d = 0; d < 16; d++)
                attn_at(&p.k, 0, h, j)[d] = 50.0f, attn_at(&p.v, 0, h, j)[d] = 1e6f;
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert(memcmp(before, attn_at(&p.o, 0, 0, 0), sizeof(float) * 16) == 0);
    cr_assert(memcmp(before + 16, attn_at(&p.o, 0, 1, 0), sizeof(float) * 16) == 0);
    fx_free(&p);
}

/* Backward (flash's) vs the oracle's gradients under the sink mask, after a
 * prefill and after a decode forward (whose O and lse it then reads). */
Test(streaming, backward_matches_oracle_gradients_in_both_modes)
{
    static const char *const modes[] = {"prefill", "decode"};
    for (int m = 0; m < 2; m++) {
        attn_args a = stream_args(2, 2, 1, 60, 60, 16, "sink:n=4,w=16", modes[m], 2);
        fx_problem p;
        fx_make(&p, &a, 31);
        cr_assert_eq(fx_run(K, &p, 1), 0, "%s: %s", modes[m], attn_last_error());
        double e[3] = {fx_err_grad(&p.dq, &p.dq64), fx_err_grad(&p.dk, &p.dk64), fx_err_grad(&p.dv, &p.dv64)};
        for (int i = 0; i < 3; i++)
            cr_assert(e[i] <= 1e-4, "%s: d%c err %.3g", modes[m], "QKV"[i], e[i]);
        fx_free(&p);
    }
}

Test(streaming, refuses_other_masks_and_bad_params)
{
    attn_ctx ctx;
    attn_args c = fx_args(1, 1, 1, 8, 8, 16, "causal", 1);
    cr_assert_eq(attn_ctx_create(K, &c, &ctx), ATTN_EUNSUPPORTED);
    attn_args w = fx_args(1, 1, 1, 8, 8, 16, "window:wl=4,wr=0", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    attn_args m = stream_args(1, 1, 1, 8, 8, 16, "sink:n=2,w=4", "stream", 1);
    cr_assert_eq(attn_ctx_create(K, &m, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "param mode: expected one of prefill, decode") != NULL, "%s", attn_last_error());
    attn_args u = fx_args(1, 1, 1, 8, 8, 16, "sink:n=2,w=4", 1);
    cr_assert_eq(param_bag_add(&u.params, "sinks=4"), 0);
    cr_assert_eq(attn_ctx_create(K, &u, &ctx), ATTN_EINVAL);
}

/* Cost model: 4 D nnz (the sink mask's pairs), softmax bytes; the decode
 * counters report at least the useful FLOPs and at most a full cache per query. */
Test(streaming, cost_model_and_counters)
{
    attn_args a = stream_args(1, 2, 1, 60, 60, 16, "sink:n=4,w=16", "decode", 1);
    double nnz = 0;
    for (int64_t i = 0; i < 60; i++)
        for (int64_t j = 0; j <= i; j++)
            nnz += j < 4 || i - j <= 16;
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 4.0 * 16 * 2 * nnz, 1e-6);
    fx_problem p;
    fx_make(&p, &a, 41);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS), most = 4.0 * 16 * 2 * 60 * 21;
    cr_assert(got >= 4.0 * 16 * 2 * nnz && got <= most, "counted %.0f flops, nnz %.0f", got, nnz);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) > 0);
    fx_free(&p);
}
