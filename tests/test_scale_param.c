/* `scale=X` is the one kernel parameter no table declares: every kernel whose
 * math has a score scale takes it as attn_args.scale, answers as its
 * reference does at that scale, and answers differently than at the default;
 * a kernel without one (ATTN_NO_SCALE) refuses it by name. */
#include "harness/measure/fixture.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static attn_args scale_args(const attn_kernel *k, const char *scale)
{
    const char *mask = k->masks & ATTN_MASK_BIT(ATTN_MASK_CAUSAL) ? "causal"
                       : k->masks & ATTN_MASK_BIT(ATTN_MASK_FULL) ? "full"
                                                                  : "sink:n=2,w=8"; /* streaming's only mask */
    attn_args a = fx_args_params(1, 2, 2, k->flags & ATTN_ONE_QUERY ? 1 : 40, 40, 16, mask, 1, k->check_params);
    fx_add_params(&a, scale);
    attn_args_defaults(&a); /* the `scale` parameter into a.scale, as every caller's context does */
    return a;
}

static double max_abs_diff(const attn_kernel *k, const fx_problem *x, const fx_problem *y)
{
    double d = 0;
    for (int64_t h = 0; h < x->a.H; h++)
        for (int64_t i = 0; i < attn_o_rows(k, &x->a); i++)
            for (int64_t c = 0; c < attn_dv(&x->a); c++)
                d = fmax(d, fabs((double)attn_at(&x->o, 0, h, i)[c] - (double)attn_at(&y->o, 0, h, i)[c]));
    return d;
}

Test(scale_param, a_kernel_with_a_score_scale_takes_it_and_matches_its_reference_there)
{
    int tested = 0;
    for (const attn_kernel *const *kp = attn_registry(); *kp; kp++) {
        const attn_kernel *k = *kp;
        if (k->flags & ATTN_NO_SCALE)
            continue;
        attn_args a0 = scale_args(k, NULL), a1 = scale_args(k, "scale=0.9");
        cr_assert_eq(a1.scale, 0.9, "%s: scale=0.9 did not reach attn_args.scale", k->name);
        fx_problem p0, p1;
        fx_make_for(&p0, k, &a0, 5);
        fx_make_for(&p1, k, &a1, 5);
        cr_assert_eq(fx_run(k, &p0, 0), 0, "%s: %s", k->name, attn_last_error());
        int rc = fx_run(k, &p1, 0);
        if (rc && strstr(attn_last_error(), "scale=")) { /* a mode without a scale says so (gam scaled=0) */
            cr_log_info("%s: %s", k->name, attn_last_error());
            fx_free(&p0), fx_free(&p1);
            continue;
        }
        cr_assert_eq(rc, 0, "%s: %s", k->name, attn_last_error());
        double tol = fmax(10 * fx_err_o(&p0), fx_tol_o(a0.Nk));
        cr_assert_leq(fx_err_o(&p1), tol, "%s: at scale 0.9 the output is off its reference by %g", k->name,
                      fx_err_o(&p1));
        cr_assert_gt(max_abs_diff(k, &p0, &p1), 1e-4, "%s: scale 0.9 left the output as at 1/sqrt(D)", k->name);
        fx_free(&p0), fx_free(&p1);
        tested++;
    }
    cr_assert_geq(tested, 25, "only %d kernels took a scale", tested);
}

Test(scale_param, a_kernel_without_a_score_scale_refuses_it_by_name)
{
    int refused = 0;
    for (const attn_kernel *const *kp = attn_registry(); *kp; kp++) {
        const attn_kernel *k = *kp;
        if (!(k->flags & ATTN_NO_SCALE))
            continue;
        attn_args a = scale_args(k, "scale=0.9");
        attn_ctx ctx;
        cr_assert_neq(attn_ctx_create(k, &a, &ctx), 0, "%s accepted a scale it has no use for", k->name);
        cr_assert(strstr(attn_last_error(), "no score scale") && strstr(attn_last_error(), k->name), "%s: '%s'",
                  k->name, attn_last_error());
        refused++;
    }
    cr_assert_geq(refused, 2, "linear and based have no scale");
}

Test(scale_param, a_scale_that_is_not_a_positive_number_is_refused)
{
    const attn_kernel *k = attn_find_kernel("flash");
    const char *bad[] = {"scale=0", "scale=-1", "scale=abc", "scale=nan", "scale=inf"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        attn_args a = scale_args(k, bad[i]);
        attn_ctx ctx;
        cr_assert_neq(attn_ctx_create(k, &a, &ctx), 0, "%s accepted", bad[i]);
        cr_assert(strstr(attn_last_error(), "param scale: expected a number > 0"), "%s: '%s'", bad[i],
                  attn_last_error());
    }
}
