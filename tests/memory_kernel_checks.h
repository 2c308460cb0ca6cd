/* Checks the memory kernels trained at test time (titans, atlas) share: the
 * args of a problem with Dv != D, and the backward against central
 * differences of the kernel's double reference on a table of cases. Include
 * from a Criterion test file. */
#ifndef ATTN_MEMORY_KERNEL_CHECKS_H
#define ATTN_MEMORY_KERNEL_CHECKS_H

#include "harness/measure/check.h"
#include "harness/measure/fixture.h"

#include <criterion/criterion.h>

static attn_args memory_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, int64_t Dv, const char *mask,
                             const char *params)
{
    attn_args a = fx_args_params(B, H, H_kv, N, N, D, mask, 1, params);
    a.Dv = Dv;
    return a;
}

typedef struct {
    int64_t H, H_kv, N, D, Dv;
    const char *mask, *params;
} memory_grad_case;

/* Every gradient the kernel writes (q, k, v and its three gate inputs) within
 * 1e-4 of the reference's largest, on every case. */
static void memory_backward_matches_reference(const attn_kernel *k, const memory_grad_case *cases, size_t n)
{
    static const char *const names[] = {"dq", "dk", "dv", "dbeta", "dgate", "drouter"};
    for (size_t c = 0; c < n; c++) {
        attn_args a = memory_args(1, cases[c].H, cases[c].H_kv, cases[c].N, cases[c].D, cases[c].Dv, cases[c].mask,
                                  cases[c].params);
        double err[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(k, &a, 20 + c, err), 0, "%s", attn_last_error());
        for (int i = 0; i < 6; i++)
            cr_assert(err[i] <= 1e-4, "%s N=%lld D=%lld Dv=%lld %s %s: %s err %.3g > 1e-4", k->name,
                      (long long)cases[c].N, (long long)cases[c].D, (long long)cases[c].Dv, cases[c].mask,
                      cases[c].params, names[i], err[i]);
    }
}

#endif
