/* Test helpers for kernels with their own double reference (docs/testing.md).
 * own_ref_check: the fp32 forward equals ref_forward within 5e-5 of
 * max|O_ref|, writes every output row, and the problem is not degenerate
 * (a reference of ~0 would make the relative error meaningless).
 * own_forward_prefix: the parallel forward over the first rows only, with
 * its context left open, for the stateful kernels' streaming tests.
 * own_rel_err: max|O - ref| / max|ref| against a reference the test built. */
#ifndef ATTN_TEST_OWN_REF_CHECK_H
#define ATTN_TEST_OWN_REF_CHECK_H

#include "harness/measure/fixture.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static inline double own_ref_max_abs(const fx_problem *p)
{
    double m = 0;
    for (int64_t i = 0; i < p->o64.B * p->o64.sb; i++)
        m = fmax(m, fabs(p->o64.data[i]));
    return m;
}

/* The check on a problem the caller made (and may have adjusted, e.g. its
 * learned weights, with p->o64 recomputed); frees it. */
static inline void own_ref_check_problem(const attn_kernel *k, fx_problem *p, const char *what)
{
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb)); /* NaN: unwritten rows fail */
    cr_assert_eq(fx_run(k, p, 0), 0, "%s: %s", what, attn_last_error());
    double e = fx_err_o(p);
    cr_assert(e <= 5e-5, "%s: err_O %.3g > 5e-5", what, e);
    cr_assert(own_ref_max_abs(p) > 0.05, "%s: degenerate reference", what);
    fx_free(p);
}

static inline void own_ref_check(const attn_kernel *k, const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make_for(&p, k, a, seed);
    own_ref_check_problem(k, &p, what);
}

/* max|O - ref| / max|ref| over all rows, ref in double [B,H,N,D] contiguous. */
static inline double own_rel_err(const attn_tensor *o, const double *ref)
{
    double e = 0, m = 0;
    int64_t i = 0;
    for (int64_t b = 0; b < o->B; b++)
        for (int64_t h = 0; h < o->H; h++)
            for (int64_t n = 0; n < o->N; n++)
                for (int64_t d = 0; d < o->D; d++, i++) {
                    e = fmax(e, fabs(attn_at(o, b, h, n)[d] - ref[i]));
                    m = fmax(m, fabs(ref[i]));
                }
    return m > 0 ? e / m : e;
}

/* The kernel's `seed` parameter row is OPT_RECORDED (every result row names
 * it) and the seed decides the result: problem `a` gives the same bits at 1
 * thread and at `threads`, problem `other` (the same with another seed)
 * other bits. */
static inline void own_seed_is_recorded_and_decides(const attn_kernel *k, const attn_args *a,
                                                    const attn_args *other, int threads)
{
    const opt_def *row = NULL;
    for (const opt_def *d = k->params; d && d->name; d++)
        row = strcmp(d->name, "seed") == 0 ? d : row;
    cr_assert(row && (row->flags & OPT_RECORDED), "%s: the seed row is not OPT_RECORDED", k->name);
    attn_args args[3] = {*a, *a, *other};
    args[0].threads = args[2].threads = 1, args[1].threads = threads;
    fx_problem p[3];
    for (int i = 0; i < 3; i++) {
        fx_make_for(&p[i], k, &args[i], 2);
        cr_assert_eq(fx_run(k, &p[i], 0), 0, "%s: %s", k->name, attn_last_error());
    }
    cr_assert(fx_bitwise_equal(&p[0].o, &p[1].o), "%s: same seed, different outputs", k->name);
    cr_assert(!fx_bitwise_equal(&p[0].o, &p[2].o), "%s: another seed, same outputs", k->name);
    for (int i = 0; i < 3; i++)
        fx_free(&p[i]);
}

/* Forward of kernel k on rows [0, n) of p; *ctx stays open (the caller
 * reads its kept state, then destroys it). */
static inline void own_forward_prefix(const attn_kernel *k, fx_problem *p, int64_t n, attn_ctx *ctx)
{
    attn_args a = p->a;
    a.Nq = a.Nk = n;
    attn_args_defaults(&a);
    cr_assert_eq(attn_ctx_create(k, &a, ctx), 0, "%s", attn_last_error());
    attn_io io = {.q = p->q, .k = p->k, .v = p->v, .o = p->o, .lse = p->lse, .w = p->w};
    io.q.N = io.k.N = io.v.N = io.o.N = n;
    cr_assert_eq(k->forward(ctx, &io), 0, "%s", attn_last_error());
}

#endif
