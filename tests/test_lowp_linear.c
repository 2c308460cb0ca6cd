/* The linear family (`linear`, `gla`, `deltanet`) on bf16 and fp16 operands
 * with fp32 state (docs/dtypes.md): bit for bit their fp32 pass on the
 * widened operands rounded once (forward and backward, causal and document
 * masks, GQA, Dv != D), within the rounding of O of their own double
 * reference on the rounded operands, and on gaussian inputs within the
 * documented bound of their own reference on the unrounded fp32 values,
 * forward (O) and backward (dQ, dK, dV against central differences of that
 * reference). */
#include "harness/measure/fidelity.h"
#include "harness/measure/fixture.h"
#include "kernels/core/registry.h"
#include "lowp_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#define BOUND_BF16 1e-2
#define BOUND_FP16 1.5e-3

static const char *const family[] = {"linear", "gla", "deltanet"};
static const attn_dtype types[] = {ATTN_DT_BF16, ATTN_DT_FP16};
static const double bound[] = {BOUND_BF16, BOUND_FP16};

static const attn_kernel *kernel(int i)
{
    const attn_kernel *k = attn_find_kernel(family[i]);
    cr_assert(k && (k->dtypes & ATTN_DT_BIT(ATTN_DT_BF16)) && (k->dtypes & ATTN_DT_BIT(ATTN_DT_FP16)), "%s",
              family[i]);
    return k;
}

Test(lowp_linear, equals_the_fp32_pass_on_the_widened_operands_rounded_once, .timeout = 240)
{
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < 2; t++) {
            const attn_kernel *k = kernel(i);
            lowp_assert_equals_fp32_on_widened(k, fx_args(2, 4, 2, 100, 100, 32, "causal", 2), types[t], "causal");
            attn_args a = fx_args(1, 2, 1, 90, 90, 16, "document:n=3,seed=2,causal=1", 1);
            a.Dv = 24;
            lowp_assert_equals_fp32_on_widened(k, a, types[t], "document Dv=24");
        }
}

/* p with gaussian Q, K, V (the fidelity family) and its reference answers. */
static void gaussian_problem(fx_problem *p, const attn_kernel *k, attn_args a, uint64_t seed)
{
    fx_make_for(p, k, &a, seed);
    attn_io io = problem_io(p);
    fid_fill(FID_GAUSSIAN, &p->a, seed, &io);
    fx_ref_forward(p);
}

Test(lowp_linear, forward_error_against_the_unrounded_reference_is_within_the_bound, .timeout = 240)
{
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < 2; t++) {
            const attn_kernel *k = kernel(i);
            double worst = 0;
            for (uint64_t seed = 1; seed <= 3; seed++) {
                attn_args a = fx_args(1, 4, 2, 512, 512, 64, "causal", 2);
                fx_problem ref, lo;
                gaussian_problem(&ref, k, a, seed);
                a.dtype = types[t];
                gaussian_problem(&lo, k, a, seed);
                cr_assert_eq(fx_run(k, &lo, 0), 0, "%s", attn_last_error());
                worst = fmax(worst, lowp_rel_fro(&lo.o, &ref.o64));
                fx_free(&ref), fx_free(&lo);
            }
            fprintf(stderr, "%s %s forward: rel_fro_err %.3g (bound %.3g)\n", k->name, attn_dtype_names[types[t]],
                    worst, bound[t]);
            cr_assert(worst <= bound[t], "%s %s: %.3g > %.3g", k->name, attn_dtype_names[types[t]], worst, bound[t]);
        }
}

Test(lowp_linear, gradients_against_the_unrounded_reference_are_within_the_bound, .timeout = 240)
{
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < 2; t++) {
            const attn_kernel *k = kernel(i);
            attn_args a = fx_args(1, 2, 1, 48, 48, 16, "causal", 1);
            fx_problem ref, lo;
            gaussian_problem(&ref, k, a, 5);
            fx_ref_grads(&ref); /* central differences of the reference on the unrounded inputs */
            a.dtype = types[t];
            gaussian_problem(&lo, k, a, 5);
            cr_assert_eq(fx_run(k, &lo, 1), 0, "%s", attn_last_error());
            const attn_tensor *g[3] = {&lo.dq, &lo.dk, &lo.dv};
            const attn_tensor_f64 *r[3] = {&ref.dq64, &ref.dk64, &ref.dv64};
            double fro = 0;
            for (int j = 0; j < 3; j++)
                fro = fmax(fro, lowp_rel_fro(g[j], r[j]));
            fprintf(stderr, "%s %s backward: rel_fro_err %.3g (bound %.3g)\n", k->name, attn_dtype_names[types[t]], fro,
                    bound[t]);
            cr_assert(fro <= bound[t], "%s %s: %.3g > %.3g", k->name, attn_dtype_names[types[t]], fro, bound[t]);
            fx_free(&ref), fx_free(&lo);
        }
}
