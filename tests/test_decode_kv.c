/* `decode` and `lean` reading a KV cache stored in bf16, fp16, q8_0 or q4_0
 * (docs/kv-formats.md): against the double oracle on the same stored cache
 * (its values dequantized by the plain loop) at the fp32 kernels'
 * tolerance, on decode shapes, GQA groups past the dot layout's 8 rows,
 * the masks and a ragged batch; kernels that read no such cache refuse it as
 * unsupported, a missing cache is an error; the error against the oracle on
 * the unrounded gaussian inputs stays within the documented bound of each
 * format; the cost model counts the stored bytes. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/decode/decode.h"
#include "kernels/flash/flash.h"

#include "lowp_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bounds of the relative error against the unrounded oracle (docs/kv-formats.md). */
#define KV_BOUND_BF16 5e-3
#define KV_BOUND_FP16 1e-3
#define KV_BOUND_Q8_0 1.5e-2
#define KV_BOUND_Q4_0 0.15

static const attn_kv_dtype stored[] = {ATTN_KV_BF16, ATTN_KV_FP16, ATTN_KV_Q8_0, ATTN_KV_Q4_0};
#define N_STORED 4

/* decode (with dparams) and lean (with lparams) on problem a in format t
 * against the oracle on the dequantized cache: fx_make's twin holds the
 * values the kernels read. */
static void assert_matches_stored_reference(attn_args a, attn_kv_dtype t, const char *dparams, const char *lparams,
                                            uint64_t seed, const char *what)
{
    a.kv_dtype = t;
    fx_problem p;
    fx_make(&p, &a, seed);
    const attn_kernel *ks[2] = {&attn_kernel_decode, &attn_kernel_lean};
    const char *params[2] = {dparams, lparams};
    for (int i = 0; i < 2; i++) {
        p.a = a;
        fx_add_params(&p.a, params[i]);
        memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: rows must be written */
        int rc = fx_run(ks[i], &p, 0);
        cr_assert_eq(rc, 0, "%s %s %s: %s", ks[i]->name, attn_kv_dtype_names[t], what, attn_last_error());
        double eo = fx_err_o(&p), el = fx_err_lse(&p);
        cr_assert(eo <= fx_tol_o(a.Nk), "%s %s %s %s: err_O %.3g > %.3g", ks[i]->name, attn_kv_dtype_names[t],
                  params[i], what, eo, fx_tol_o(a.Nk));
        cr_assert(el <= 1e-5, "%s %s %s: err_lse %.3g", ks[i]->name, attn_kv_dtype_names[t], what, el);
    }
    p.a = a;
    fx_free(&p);
}

Test(decode_kv, decode_and_lean_match_the_oracle_on_the_stored_cache, .timeout = 120)
{
    /* (H, H_kv, Nq, D): 4:1 GQA of one query (4 rows), 4 queries (16 rows:
     * past the fp32 dot layout's 8), one KV head at D = 32 */
    static const int64_t shapes[][4] = {{32, 8, 1, 128}, {8, 2, 4, 64}, {4, 1, 2, 32}};
    static const int64_t Nks[] = {1, 1000, 2049};
    static const char *const masks[] = {"full", "causal", "window:wl=300,wr=0", "sink:n=4,w=200", "random:p=0.3,seed=5"};
    for (int s = 0; s < 3; s++)
        for (int n = 0; n < 3; n++)
            for (int m = 0; m < 5; m++) {
                attn_args a = fx_args(2, shapes[s][0], shapes[s][1], shapes[s][2], Nks[n], shapes[s][3], masks[m], 2);
                char what[128];
                snprintf(what, sizeof what, "H=%ld/%ld Nq=%ld Nk=%ld D=%ld %s", (long)shapes[s][0],
                         (long)shapes[s][1], (long)shapes[s][2], (long)Nks[n], (long)shapes[s][3], masks[m]);
                for (int t = 0; t < N_STORED; t++)
                    assert_matches_stored_reference(a, stored[t], "ls=512", "workers=3",
                                                    100 + (uint64_t)(s * 100 + n * 10 + m), what);
            }
}

Test(decode_kv, ragged_batch_reads_each_sequence_from_its_own_rows, .timeout = 60)
{
    static const int64_t lens[] = {4097, 1, 1000, 0, 130};
    attn_args a = fx_args(5, 8, 2, 1, 4097, 64, "causal", 2);
    a.kv_len = lens;
    for (int t = 0; t < N_STORED; t++)
        assert_matches_stored_reference(a, stored[t], "ls=64", "workers=3", 31, "ragged");
}

Test(decode_kv, kernels_without_the_format_and_rows_it_cannot_hold_are_unsupported)
{
    attn_args a = fx_args(1, 4, 2, 1, 256, 64, "full", 1);
    a.kv_dtype = ATTN_KV_Q8_0;
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(&attn_kernel_flash, &a, &ctx), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "q8_0"), "%s", attn_last_error());
    a = fx_args(1, 4, 2, 1, 256, 48, "full", 1);
    a.kv_dtype = ATTN_KV_BF16;
    cr_assert_eq(attn_ctx_create(&attn_kernel_decode, &a, &ctx), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "multiple of 32"), "%s", attn_last_error());
}

Test(decode_kv, a_forward_without_the_stored_cache_is_an_error)
{
    attn_args a = fx_args(1, 4, 2, 1, 256, 64, "full", 1);
    fx_problem p;
    fx_make(&p, &a, 3); /* fp32 problem: io.kc is empty */
    p.a.kv_dtype = ATTN_KV_FP16;
    cr_assert_eq(fx_run(&attn_kernel_decode, &p, 0), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "io.kc"), "%s", attn_last_error());
    fx_free(&p);
}

Test(decode_kv, cost_model_and_state_count_the_stored_bytes)
{
    attn_args a = fx_args(1, 32, 8, 1, 32768, 128, "full", 1);
    double fp32 = attn_kernel_decode.bytes(&a, ATTN_PASS_FWD);
    size_t state32 = attn_kernel_decode.state_bytes(&a);
    static const double kv_bytes_per_value[] = {2, 2, 34.0 / 32, 18.0 / 32};
    for (int t = 0; t < N_STORED; t++) {
        a.kv_dtype = stored[t];
        double kv32 = 2.0 * 8 * 32768 * 128 * 4, kv = kv32 / 4 * kv_bytes_per_value[t];
        cr_assert_float_eq(attn_kernel_decode.bytes(&a, ATTN_PASS_FWD), fp32 - kv32 + kv, 0.5,
                           "%s", attn_kv_dtype_names[t]);
        cr_assert_eq((double)attn_kernel_decode.state_bytes(&a), kv, "%s", attn_kv_dtype_names[t]);
        cr_assert_lt(attn_kernel_decode.state_bytes(&a), state32);
    }
}

/* Relative Frobenius error of O against the oracle on the unrounded
 * gaussian inputs (N(0,1) Q, K, V at the default scale), over the sampled
 * rows of the fidelity measure: decode shape 32:8 GQA, 4 queries, 4096
 * keys, D = 128, three seeds. The bounds are docs/kv-formats.md's. */
Test(decode_kv, error_against_the_unrounded_oracle_is_within_the_documented_bound, .timeout = 120)
{
    static const double bound[] = {KV_BOUND_BF16, KV_BOUND_FP16, KV_BOUND_Q8_0, KV_BOUND_Q4_0};
    double err[N_STORED];
    for (int t = 0; t < N_STORED; t++) {
        attn_args a = fx_args(1, 32, 8, 4, 4096, 128, "full", 2);
        a.kv_dtype = stored[t];
        double worst = lowp_worst_gaussian_error(&attn_kernel_decode, &a, 3);
        fprintf(stderr, "decode_kv %s: rel_fro_err %.3g (bound %.3g)\n", attn_kv_dtype_names[stored[t]], worst,
                bound[t]);
        cr_assert(worst <= bound[t], "%s: %.3g > %.3g", attn_kv_dtype_names[stored[t]], worst, bound[t]);
        err[t] = worst;
    }
    /* fewer bits, more error: fp16 (11 significant bits) < bf16 (8) < q8_0 < q4_0 */
    cr_assert(0 < err[1] && err[1] < err[0] && err[0] < err[2] && err[2] < err[3], "%g %g %g %g", err[0], err[1],
              err[2], err[3]);
}
