/* Checks the memory kernels trained at test time (titans, atlas) share: the
 * args of a problem with Dv != D, and the backward against central
 * differences of the kernel's double reference on a table of cases. Include
 * from a Criterion test file. */
#ifndef ATTN_MEMORY_KERNEL_CHECKS_H
#define ATTN_MEMORY_KERNEL_CHECKS_H

#include "harness/measure/check.h"
#include "harness/measure/fixture.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static attn_args memory_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, int64_t Dv, const char *mask,
                             const char *params)
{
    attn_args a = fx_args_params(B, H, H_kv, N, N, D, mask, 1, params);
    a.Dv = Dv;
    return a;
}

/* A gate logit whose logistic is exactly 0 (negative) or 1 (positive) in fp32 and double. */
#define SHUT_LOGIT (-1e4f)
#define OPEN_LOGIT (1e4f)

static inline void memory_fill(const attn_tensor *t, float x)
{
    for (int64_t i = 0; i < t->B * t->sb; i++)
        t->data[i] = x;
}

/* The fp32 forward of k on p, its outputs first set to NaN: a row it forgets stays NaN. */
static inline void memory_run_checked(const attn_kernel *k, fx_problem *p, const char *what)
{
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb));
    cr_assert_eq(fx_run(k, p, 0), 0, "%s: %s", what, attn_last_error());
}

typedef struct {
    int64_t B, H, H_kv, N, D, Dv;
    const char *mask;
} memory_shape;

/* On every shape and parameter string: the fp32 forward within 5e-5 of the
 * double reference (fx_err_o), the outputs not degenerate (beyond one token,
 * which reads the start memory under read=before). prepare (or
 * NULL) changes a problem's inputs and reruns its reference. */
static inline void memory_chunked_matches_reference(const attn_kernel *k, const memory_shape *cases, size_t nc,
                                                    const char *const *params, size_t np, uint64_t seed0,
                                                    void (*prepare)(fx_problem *))
{
    for (size_t c = 0; c < nc; c++)
        for (size_t ip = 0; ip < np; ip++) {
            attn_args a = memory_args(cases[c].B, cases[c].H, cases[c].H_kv, cases[c].N, cases[c].D, cases[c].Dv,
                                      cases[c].mask, params[ip]);
            char what[160];
            snprintf(what, sizeof what, "B%lld H%lld/%lld N%lld D%lld Dv%lld %s %s", (long long)a.B,
                     (long long)a.H, (long long)a.H_kv, (long long)a.Nk, (long long)a.D, (long long)a.Dv,
                     cases[c].mask, params[ip]);
            fx_problem p;
            fx_make_for(&p, k, &a, seed0 + c);
            if (prepare)
                prepare(&p);
            memory_run_checked(k, &p, what);
            double e = fx_err_o(&p), m = 0;
            for (int64_t i = 0; i < p.o.B * p.o.sb; i++)
                m = fmax(m, fabs(p.o64.data[i]));
            cr_assert(a.Nk == 1 || m > 1e-3, "%s: degenerate, max|O| %.3g", what, m);
            cr_assert(e <= 5e-5, "%s: err_O %.3g > 5e-5", what, e);
            fx_free(&p);
        }
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

/* A shape of the state-size and cost check; C, w, F: the kernel's own sizes
 * (chunk keys, window, features or hidden width) its formulas use. */
typedef struct {
    int64_t B, H, H_kv, N, D, Dv;
    const char *params;
    double C, w, F;
} memory_cost_case;

/* The kernel's formulas: state floats per (b, KV head), forward FLOPs per (b, query head) and token. */
typedef double (*memory_cost_fn)(const memory_cost_case *c);

/* On every case: the state (state_bytes and the context's state_bytes_used)
 * is B H_kv state_floats fp32 values; forward FLOPs B H N flops_per_token,
 * backward 2.5x; bytes each tensor once (forward Q, K, V, the `gates` gate
 * columns and O; backward all of them twice but O, dO once). */
static inline void memory_state_and_cost_match(const attn_kernel *k, const memory_cost_case *cases, size_t n, int gates,
                                        memory_cost_fn state_floats, memory_cost_fn flops_per_token)
{
    for (size_t s = 0; s < n; s++) {
        const memory_cost_case *c = &cases[s];
        attn_args a = memory_args(c->B, c->H, c->H_kv, c->N, c->D, c->Dv, "causal", c->params);
        a.backward = 1;
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(k, &a, &ctx), 0, "%s", attn_last_error());
        double B = (double)a.B, H = (double)a.H, Hkv = (double)a.H_kv, N = (double)a.Nk;
        double D = (double)a.D, Dv = (double)a.Dv;
        size_t state = (size_t)(4 * B * Hkv * state_floats(c));
        cr_assert_eq(k->state_bytes(&ctx.args), state, "%s: state_bytes %zu, expected %zu", c->params,
                     k->state_bytes(&ctx.args), state);
        cr_assert_eq(ctx.state_bytes_used, state, "state_bytes_used %zu, expected %zu", ctx.state_bytes_used, state);
        double f = B * H * N * flops_per_token(c);
        cr_assert(fabs(k->flops(&ctx.args, ATTN_PASS_FWD) - f) <= 1e-9 * f, "%s: flops %.6g, expected %.6g",
                  c->params, k->flops(&ctx.args, ATTN_PASS_FWD), f);
        cr_assert(fabs(k->flops(&ctx.args, ATTN_PASS_BWD) - 2.5 * f) <= 1e-9 * f);
        double bf = 4 * B * N * (H * D + Hkv * (D + Dv + gates) + H * Dv);
        double bb = 4 * B * N * (2 * H * D + 2 * Hkv * (D + Dv + gates) + H * Dv);
        cr_assert(fabs(k->bytes(&ctx.args, ATTN_PASS_FWD) - bf) <= 1e-9 * bf);
        cr_assert(fabs(k->bytes(&ctx.args, ATTN_PASS_BWD) - bb) <= 1e-9 * bb);
        attn_ctx_destroy(&ctx);
    }
}

/* Each of the n bad parameter strings refused (ATTN_EINVAL) with a message
 * naming named[i]; the masks other than causal and document, a scale and
 * q_off != k_off refused; `largest` (the parameters at their upper bounds) accepted. */
static inline void memory_rejects_bad_inputs(const attn_kernel *k, const char *const *bad, const char *const *named,
                                             int n, const char *largest)
{
    for (int i = 0; i < n; i++) {
        attn_args a = memory_args(1, 2, 2, 16, 8, 8, "causal", bad[i]);
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(k, &a, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
        cr_assert(strstr(attn_last_error(), named[i]), "%s: %s", bad[i], attn_last_error());
    }
    static const char *const masks[] = {"full", "window:wl=4,wr=0", "prefix:p=4"};
    for (int i = 0; i < 3; i++) {
        attn_args a = memory_args(1, 2, 2, 16, 8, 8, masks[i], NULL);
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(k, &a, &ctx), ATTN_EUNSUPPORTED, "mask %s accepted", masks[i]);
    }
    param_bag scaled = {0};
    cr_assert_eq(param_bag_add(&scaled, "scale=0.5"), 0);
    cr_assert_neq(attn_params_validate(k, &scaled, "test"), 0, "a scale was accepted by a kernel without one");
    attn_args a = memory_args(1, 2, 2, 16, 8, 8, "causal", largest);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(k, &a, &ctx), 0, "%s: %s", largest, attn_last_error());
    attn_ctx_destroy(&ctx);
    a.q_off = 3, a.k_off = 1;
    cr_assert_eq(attn_ctx_create(k, &a, &ctx), ATTN_EUNSUPPORTED, "q_off != k_off accepted");
}

#endif
