#include "lowp_check.h"

#include "harness/measure/check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static void poison(attn_tensor *t)
{
    if (t->data)
        memset(t->data, 0xff, sizeof(float) * (size_t)(t->B * t->sb)); /* NaN */
}

/* Every element of x rounded to type t equals y's. */
static void assert_rounds_to(const attn_tensor *x, const attn_tensor_h *y, attn_dtype t, const char *kernel,
                             const char *what, const char *tensor)
{
    uint16_t r[1024];
    cr_assert(x->D <= 1024);
    for (int64_t b = 0; b < x->B; b++)
        for (int64_t h = 0; h < x->H; h++)
            for (int64_t n = 0; n < x->N; n++) {
                attn_narrow(t, attn_at(x, b, h, n), x->D, r);
                cr_assert(memcmp(r, attn_at_h(y, b, h, n), sizeof(uint16_t) * (size_t)x->D) == 0,
                          "%s %s %s: %s row (%lld,%lld,%lld) differs", kernel, attn_dtype_names[t], what, tensor,
                          (long long)b, (long long)h, (long long)n);
            }
}

static void copy_rows(attn_tensor *to, const attn_tensor *from)
{
    for (int64_t b = 0; b < to->B; b++)
        for (int64_t h = 0; h < to->H; h++)
            for (int64_t n = 0; n < to->N; n++)
                memcpy(attn_at(to, b, h, n), attn_at(from, b, h, n), sizeof(float) * (size_t)to->D);
}

/* The fp32 backward of k on hi, whose O holds lo's rounded O (what lo's backward read). */
static void fp32_backward_on_rounded_o(const attn_kernel *k, problem *hi, const fx_problem *lo, attn_dtype t,
                                       attn_args a32)
{
    attn_widen_plain(t, lo->oh.data, lo->oh.B * lo->oh.sb, hi->o.data);
    attn_ctx ctx;
    a32.backward = 1;
    cr_assert_eq(attn_ctx_create(k, &a32, &ctx), 0, "%s", attn_last_error());
    attn_io io = problem_io(hi);
    attn_grads g = problem_grads(hi);
    cr_assert_eq(k->backward(&ctx, &io, &g), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}

void lowp_assert_equals_fp32_on_widened(const attn_kernel *k, attn_args a, attn_dtype t, const char *what)
{
    a.dtype = t;
    fx_problem lo;
    problem hi;
    fx_make_for(&lo, k, &a, 11);
    attn_args a32 = a;
    a32.dtype = ATTN_DT_FP32;
    cr_assert_eq(problem_make(&hi, k, &a32, 11, PROBLEM_GRADS), 0);
    copy_rows(&hi.q, &lo.qr), copy_rows(&hi.k, &lo.kr), copy_rows(&hi.v, &lo.vr);
    attn_widen_plain(t, lo.d_oh.data, lo.d_oh.B * lo.d_oh.sb, hi.d_o.data);
    poison(&lo.q), poison(&lo.k), poison(&lo.v), poison(&lo.d_o);
    int bwd = k->backward != NULL;
    cr_assert_eq(fx_run(k, &lo, bwd), 0, "%s %s %s: %s", k->name, attn_dtype_names[t], what, attn_last_error());
    cr_assert_eq(fx_run(k, &hi, 0), 0, "%s", attn_last_error());
    assert_rounds_to(&hi.o, &lo.oh, t, k->name, what, "O");
    if (!k->ref_forward)
        cr_assert(memcmp(hi.lse, lo.lse, sizeof(float) * (size_t)(a.B * a.H * a.Nq)) == 0, "%s %s %s: lse", k->name,
                  attn_dtype_names[t], what);
    if (bwd) {
        fp32_backward_on_rounded_o(k, &hi, &lo, t, a32);
        assert_rounds_to(&hi.dq, &lo.dqh, t, k->name, what, "dQ");
        assert_rounds_to(&hi.dk, &lo.dkh, t, k->name, what, "dK");
        assert_rounds_to(&hi.dv, &lo.dvh, t, k->name, what, "dV");
    }
    /* the reference on the rounded operands (fx_make_for's twin): O within its rounding */
    double eo = fx_err_o(&lo), u = attn_dtype_unit_roundoff(t), tol = check_tol_o(k, a.Nk) + u;
    cr_assert(eo <= tol, "%s %s %s: err_O %.3g > %.3g", k->name, attn_dtype_names[t], what, eo, tol);
    if (!k->ref_forward) {
        double el = fx_err_lse(&lo);
        cr_assert(el <= 1e-5, "%s %s %s: err_lse %.3g", k->name, attn_dtype_names[t], what, el);
    }
    fx_free(&lo);
    problem_free(&hi);
}

double lowp_rel_fro(const attn_tensor *x, const attn_tensor_f64 *ref)
{
    double d2 = 0, r2 = 0;
    for (int64_t b = 0; b < x->B; b++)
        for (int64_t h = 0; h < x->H; h++)
            for (int64_t n = 0; n < x->N; n++)
                for (int64_t d = 0; d < x->D; d++) {
                    double r = attn_at64(ref, b, h, n)[d], e = attn_at(x, b, h, n)[d] - r;
                    d2 += e * e, r2 += r * r;
                }
    return r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
}

double lowp_worst_gaussian_error(const attn_kernel *k, const attn_args *a, int seeds)
{
    double worst = 0;
    for (uint64_t seed = 1; seed <= (uint64_t)seeds; seed++) {
        fid_metrics m;
        cr_assert_eq(check_kernel_fidelity(k, a, FID_GAUSSIAN, seed, &m), 0, "%s", attn_last_error());
        worst = fmax(worst, m.rel_fro);
    }
    return worst;
}
