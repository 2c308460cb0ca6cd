/* Logits of +-1e4 do not overflow: every registered kernel that is not
 * approximate (exact softmax kernels and the exact non-softmax forms:
 * sigmoid, aaren, gam) is run on every mask case of `attnbench check` it
 * claims with Q scaled so that the largest |score| (q.k times the softmax
 * scale) is 1e4, and its outputs are finite and equal to the double
 * reference (the oracle, or the kernel's own) within a tolerance that
 * grows with the scores' rounding. A kernel that exponentiates a score
 * without subtracting the row maximum returns inf or NaN here. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "harness/measure/nonfinite.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#define LOGIT_MAX 1e4

/* Largest |q.k| * scale over every (b, h, i, j) of the problem. */
static double max_abs_score(const problem *p)
{
    double scale = attn_scale(&p->a), m = 0;
    int64_t group = p->a.H / p->a.H_kv;
    for (int64_t b = 0; b < p->q.B; b++)
        for (int64_t h = 0; h < p->q.H; h++)
            for (int64_t i = 0; i < p->q.N; i++)
                for (int64_t j = 0; j < p->k.N; j++) {
                    const float *q = attn_at(&p->q, b, h, i), *k = attn_at(&p->k, b, h / group, j);
                    double s = 0;
                    for (int64_t d = 0; d < p->a.D; d++)
                        s += (double)q[d] * k[d];
                    m = fmax(m, fabs(s * scale));
                }
    return m;
}

static void scale_q(problem *p, double c)
{
    for (int64_t b = 0; b < p->q.B; b++)
        for (int64_t h = 0; h < p->q.H; h++)
            for (int64_t i = 0; i < p->q.N; i++)
                for (int64_t d = 0; d < p->q.D; d++)
                    attn_at(&p->q, b, h, i)[d] = (float)(attn_at(&p->q, b, h, i)[d] * c);
}

/* Rounding the scores to fp32 moves each by about |s| * 2^-24 per operation;
 * an output moves by at most half the spread of V (2 max|V|) times the change
 * of a score difference, so the bound grows by LOGIT_MAX * FLT_EPSILON (1.2e-3)
 * times a few operations over the usual 2e-5 (exact kernels measured at most
 * 5.6e-4 here, under a causal document mask). */
static double tol_o(const attn_kernel *k, int64_t Nk) { return check_tol_o(k, Nk) + 4 * LOGIT_MAX * FLT_EPSILON; }

typedef struct {
    int64_t Nq, Nk;
} lengths;

/* Runs k on mask m at logits up to LOGIT_MAX; 1 when the kernel takes the case. */
static int large_logit_case(const attn_kernel *k, const char *m, lengths n)
{
    attn_args a = fx_args(1, 2, 2, (k->flags & ATTN_ONE_QUERY) ? 1 : n.Nq, n.Nk, 64, m, 2);
    if (attn_args_validate(k, &a) != 0)
        return 0;
    fx_problem p;
    fx_make_for(&p, k, &a, 11);
    scale_q(&p, LOGIT_MAX / max_abs_score(&p));
    fx_ref_forward(&p);
    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* unwritten rows read NaN */
    cr_assert_eq(fx_run(k, &p, 0), 0, "%s %s: %s", k->name, m, attn_last_error());
    attn_io io = problem_io(&p);
    char why[160];
    cr_assert(!nonfinite_outputs(&io, &p.a, why, sizeof why), "%s %s Nq=%ld Nk=%ld: %s", k->name, m,
              (long)a.Nq, (long)a.Nk, why);
    double eo = fx_err_o(&p), tol = tol_o(k, a.Nk);
    cr_assert(eo <= tol, "%s %s Nq=%ld Nk=%ld: err_O %.3g > %.3g", k->name, m, (long)a.Nq, (long)a.Nk, eo, tol);
    if (!k->ref_forward) {
        double el = fx_err_lse(&p);
        cr_assert(el <= CHECK_TOL_LSE, "%s %s: err_lse %.3g", k->name, m, el);
    }
    fx_free(&p);
    return 1;
}

Test(large_logits, scores_of_1e4_stay_finite_and_match_the_double_reference_in_every_non_approximate_kernel,
     .timeout = 300)
{
    static const lengths shapes[] = {{129, 129}, {3, 300}};
    int kernels = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if ((*k)->flags & ATTN_APPROX)
            continue;
        int cases = 0;
        for (size_t m = 0; check_mask_cases[m]; m++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                cases += large_logit_case(*k, check_mask_cases[m], shapes[s]);
        cr_assert_gt(cases, 0, "%s took none of the mask cases", (*k)->name);
        kernels++;
    }
    cr_assert_geq(kernels, 2);
}
