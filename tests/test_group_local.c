/* ATTN_GROUP_LOCAL is a claim the bench gate relies on: it runs such a
 * kernel's own reference on the sampled head's GQA group alone. For every
 * kernel that makes the claim, that one-group run (through the gate's own
 * head view) must give the head's rows of the whole-problem reference. */
#include "harness/measure/fixture.h"
#include "harness/measure/head_view.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static double group_run_err(const attn_kernel *k, fx_problem *p, int64_t h)
{
    const attn_args *a = &p->a;
    attn_args one = *a;
    int64_t G = a->H / a->H_kv, Dv = attn_dv(a);
    one.H = G, one.H_kv = 1;
    attn_io io = {.q = p->q, .k = p->k, .v = p->v, .o = p->o, .lse = p->lse};
    attn_io64 x;
    head_io64(&one, &io, 0, h, a->Nq, &x);
    cr_assert_eq(k->ref_forward(&one, &x), 0, "%s: %s", k->name, attn_last_error());
    double err = 0;
    for (int64_t n = 0; n < a->Nq; n++)
        for (int64_t d = 0; d < Dv; d++)
            err = fmax(err, fabs(x.o.data[((h % G) * a->Nq + n) * Dv + d] - attn_at64(&p->o64, 0, h, n)[d]));
    head_io64_free(&x);
    return err;
}

/* Budgets small enough at 48 rows that the approximation is not the exact
 * limit (a selection that keeps every key would pass whatever its heads read). */
static const char *small_budget(const char *kernel)
{
    static const struct {
        const char *kernel, *params;
    } t[] = {{"retrieval", "n_sink=2 w=8 r=4 min_index=8"}, {"hip", "k=4 bk=2 bq=8 refresh=5"},
             {"recycled", "S=4 K=8"}, {"cca", "g=3 n_loc=1"}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].kernel, kernel))
            return t[i].params;
    return NULL;
}

Test(group_local, a_group_local_reference_on_one_gqa_group_gives_the_whole_problems_rows)
{
    int claimed = 0;
    for (const attn_kernel *const *kp = attn_registry(); *kp; kp++) {
        const attn_kernel *k = *kp;
        if (!(k->flags & ATTN_GROUP_LOCAL))
            continue;
        cr_assert(k->ref_forward, "%s: group-local is a claim about its own reference", k->name);
        cr_assert_eq(k->inputs & ATTN_IN_WEIGHTS, 0u, "%s: per-head weights are not group-local", k->name);
        int gqa = (k->flags & ATTN_GQA) != 0;
        const char *mask = k->masks & ATTN_MASK_BIT(ATTN_MASK_FULL) ? "full" : "causal";
        attn_args a = fx_args_params(1, 4, gqa ? 2 : 4, 48, 48, 16, mask, 1, small_budget(k->name) ? small_budget(k->name) : k->check_params);
        fx_problem p;
        fx_make_for(&p, k, &a, 7);
        for (int64_t h = 0; h < a.H; h++)
            cr_assert_lt(group_run_err(k, &p, h), 1e-12, "%s head %lld", k->name, (long long)h);
        fx_free(&p);
        claimed++;
    }
    cr_assert_geq(claimed, 1, "sigmoid at least makes the claim");
}
