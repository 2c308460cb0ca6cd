/* The first property of every kernel with its own double reference
 * (KERNELS.md 1.5): the fp32 forward equals ref_forward within 5e-5 of
 * max|O_ref|, writes every output row, and the problem is not degenerate
 * (a reference of ~0 would make the relative error meaningless). */
#ifndef ATTN_TEST_OWN_REF_CHECK_H
#define ATTN_TEST_OWN_REF_CHECK_H

#include "fixture.h"

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

static inline void own_ref_check(const attn_kernel *k, const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make_for(&p, k, a, seed);
    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: unwritten rows fail */
    cr_assert_eq(fx_run(k, &p, 0), 0, "%s: %s", what, attn_last_error());
    double e = fx_err_o(&p);
    cr_assert(e <= 5e-5, "%s: err_O %.3g > 5e-5", what, e);
    cr_assert(own_ref_max_abs(&p) > 0.05, "%s: degenerate reference", what);
    fx_free(&p);
}

#endif
