/* The oracle itself: its backward against central differences of
 * L = sum(O * R) in double (docs/testing.md), and the N = 1 edge. */
#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"
#include "exact_check.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

/* Central difference on `n` random coordinates of x vs the analytic grad. */
static double worst_rel_err(fx_problem *p, attn_tensor_f64 *x, const attn_tensor_f64 *grad, attn_rng *r)
{
    double worst = 0;
    int64_t total = x->B * x->sb;
    for (int c = 0; c < 20; c++) {
        int64_t i = (int64_t)(attn_rng_uniform(r) * (double)total);
        double x0 = x->data[i], h = 1e-6 * fmax(1.0, fabs(x0));
        x->data[i] = x0 + h;
        double lp = exact_oracle_loss(p);
        x->data[i] = x0 - h;
        double lm = exact_oracle_loss(p);
        x->data[i] = x0;
        double fd = (lp - lm) / (2 * h), an = grad->data[i];
        double err = fabs(fd - an) / fmax(1e-3, fmax(fabs(fd), fabs(an)));
        worst = fmax(worst, err);
    }
    return worst;
}

Test(oracle, backward_matches_central_differences)
{
    static const char *const masks[] = {"full", "causal", "window:wl=2,wr=1"};
    for (int m = 0; m < 3; m++)
        for (int64_t N = 5; N <= 9; N += 4) {
            attn_args a = fx_args(1, 2, 1, N, N, 16, masks[m], 1);
            fx_problem p;
            fx_make(&p, &a, 1234);
            attn_rng r;
            attn_rng_seed(&r, 99);
            double e[3] = {worst_rel_err(&p, &p.q64, &p.dq64, &r), worst_rel_err(&p, &p.k64, &p.dk64, &r),
                           worst_rel_err(&p, &p.v64, &p.dv64, &r)};
            for (int t = 0; t < 3; t++)
                cr_assert(e[t] <= 1e-6, "%s N=%ld: d%c relative error %.3g", masks[m], N, "QKV"[t], e[t]);
            fx_free(&p);
        }
}

Test(oracle, single_key_returns_that_value_and_its_score)
{
    attn_args a = fx_args(1, 1, 1, 1, 1, 8, "full", 1);
    fx_problem p;
    fx_make(&p, &a, 2);
    double s = 0;
    for (int d = 0; d < 8; d++) {
        cr_assert_float_eq(p.o64.data[d], p.v64.data[d], 1e-15);
        s += p.q64.data[d] * p.k64.data[d];
    }
    cr_assert_float_eq(p.lse64[0], s / sqrt(8.0), 1e-14);
    fx_free(&p);
}
