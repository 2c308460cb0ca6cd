/* `flash` on bf16 and fp16 operands (docs/dtypes.md). The kernel reads only
 * the 16-bit tensors (the fp32 ones are NaN while it runs); its O, LSE and
 * gradients equal, bit for bit, the fp32 kernel's on the same values widened
 * by the plain loop, rounded once to the type (forward and backward, every
 * path: tiled, gathered, GQA, cross lengths, a padded batch); they match the
 * double oracle on the rounded operands within the rounding of O; and on
 * gaussian inputs their error against the oracle (forward) and the double
 * gradients (backward) on the unrounded fp32 values stays within the
 * documented bound of each type. */
#include "harness/measure/check.h"
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/flash/flash.h"
#include "lowp_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bounds of the error against the unrounded fp32 reference (docs/dtypes.md). */
#define BOUND_FWD_BF16 1e-2
#define BOUND_FWD_FP16 1.5e-3
#define BOUND_BWD_BF16 1e-2
#define BOUND_BWD_FP16 1.5e-3

static const attn_dtype types[] = {ATTN_DT_BF16, ATTN_DT_FP16};

/* The flash cases of lowp_check.h. */
static void assert_equals_fp32_flash_on_the_widened_operands(attn_args a, attn_dtype t, const char *what)
{
    lowp_assert_equals_fp32_on_widened(&attn_kernel_flash, a, t, what);
}

Test(flash_lowp, equals_fp32_flash_on_the_widened_operands_rounded_once, .timeout = 240)
{
    static const char *const masks[] = {"full", "causal", "window:wl=50,wr=0", "dilated:w=8,dil=3",
                                        "random:p=0.3,seed=5"};
    for (int t = 0; t < 2; t++) {
        for (int m = 0; m < 5; m++)
            assert_equals_fp32_flash_on_the_widened_operands(fx_args(2, 4, 2, 200, 200, 64, masks[m], 2), types[t],
                                                             masks[m]);
        assert_equals_fp32_flash_on_the_widened_operands(fx_args(1, 2, 1, 77, 300, 32, "causal", 2), types[t],
                                                         "cross");
        assert_equals_fp32_flash_on_the_widened_operands(fx_args(1, 2, 2, 100, 100, 48, "full", 1), types[t],
                                                         "D=48");
        attn_args g = fx_args(1, 2, 2, 160, 160, 32, "dilated:w=8,dil=3", 2);
        fx_add_params(&g, "gather=on");
        assert_equals_fp32_flash_on_the_widened_operands(g, types[t], "gather=on");
    }
}

Test(flash_lowp, padded_batch_rows_stay_zero_and_real_rows_match)
{
    static const int64_t lens[2] = {70, 129};
    for (int t = 0; t < 2; t++) {
        attn_args a = fx_args(2, 2, 2, 129, 129, 32, "causal", 2);
        a.seq_len = lens;
        assert_equals_fp32_flash_on_the_widened_operands(a, types[t], "padded");
    }
}

Test(flash_lowp, missing_16_bit_tensors_are_an_error_naming_them)
{
    attn_args a = fx_args(1, 1, 1, 32, 32, 32, "full", 1);
    a.dtype = ATTN_DT_BF16;
    fx_problem p;
    fx_make(&p, &a, 2);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(&attn_kernel_flash, &a, &ctx), 0);
    attn_io io = problem_io(&p);
    io.kh.data = NULL;
    cr_assert_eq(attn_kernel_flash.forward(&ctx, &io), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "kh"), "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
    fx_free(&p);
}

/* Forward: relative Frobenius error of O against the oracle on the
 * unrounded gaussian Q, K, V (check's fidelity measure, sampled rows), the
 * worst of three seeds, B 1, H 8, N 1024, D 64 and 128. */
Test(flash_lowp, forward_error_against_the_unrounded_oracle_is_within_the_bound, .timeout = 240)
{
    static const double bound[] = {BOUND_FWD_BF16, BOUND_FWD_FP16};
    double err[2];
    for (int t = 0; t < 2; t++) {
        double worst = 0;
        for (int64_t D = 64; D <= 128; D *= 2) {
            attn_args a = fx_args(1, 8, 8, 1024, 1024, D, "causal", 2);
            a.dtype = types[t];
            worst = fmax(worst, lowp_worst_gaussian_error(&attn_kernel_flash, &a, 3));
        }
        fprintf(stderr, "flash %s forward: rel_fro_err %.3g (bound %.3g)\n", attn_dtype_names[types[t]], worst,
                bound[t]);
        cr_assert(worst <= bound[t], "%s: %.3g > %.3g", attn_dtype_names[types[t]], worst, bound[t]);
        err[t] = worst;
    }
    cr_assert(0 < err[1] && err[1] < err[0], "fp16 (11 bits) below bf16 (8 bits): %g %g", err[1], err[0]);
}

static void gaussian_problem(fx_problem *p, attn_args a, uint64_t seed)
{
    fx_make(p, &a, seed);
    attn_io io = problem_io(p);
    fid_fill(FID_GAUSSIAN, &p->a, seed, &io);
    fx_ref_forward(p); /* the 16-bit operands and the twin from the gaussian values */
}

/* Backward: the 16-bit gradients against the double oracle's gradients on
 * the unrounded gaussian inputs (the fp32 reference), relative Frobenius and
 * max-abs (relative to the largest reference gradient), worst of dQ, dK, dV
 * over two seeds; causal, B 1, H 4 on 2 KV heads, N 256, D 64. */
Test(flash_lowp, gradients_against_the_unrounded_reference_are_within_the_bound, .timeout = 240)
{
    static const double bound[] = {BOUND_BWD_BF16, BOUND_BWD_FP16};
    for (int t = 0; t < 2; t++) {
        double fro = 0, maxabs = 0;
        for (uint64_t seed = 1; seed <= 2; seed++) {
            attn_args a = fx_args(1, 4, 2, 256, 256, 64, "causal", 2);
            fx_problem ref, lo;
            gaussian_problem(&ref, a, seed);
            a.dtype = types[t];
            gaussian_problem(&lo, a, seed);
            cr_assert_eq(fx_run(&attn_kernel_flash, &lo, 1), 0, "%s", attn_last_error());
            const attn_tensor *g[3] = {&lo.dq, &lo.dk, &lo.dv};
            const attn_tensor_f64 *r[3] = {&ref.dq64, &ref.dk64, &ref.dv64};
            for (int i = 0; i < 3; i++)
                fro = fmax(fro, lowp_rel_fro(g[i], r[i])), maxabs = fmax(maxabs, fx_err_grad(g[i], r[i]));
            fx_free(&ref), fx_free(&lo);
        }
        fprintf(stderr, "flash %s backward: rel_fro_err %.3g, max_abs_err %.3g (bound %.3g)\n",
                attn_dtype_names[types[t]], fro, maxabs, bound[t]);
        cr_assert(fro <= bound[t] && maxabs <= bound[t], "%s: %.3g %.3g > %.3g", attn_dtype_names[types[t]], fro,
                  maxabs, bound[t]);
    }
}
