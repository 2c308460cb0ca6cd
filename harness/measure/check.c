#include "check.h"

#include "fidelity.h"
#include "fixture.h"
#include "nonfinite.h"

#include <math.h>
#include <string.h>

int check_kernel_forward_named(const attn_kernel *k, const attn_args *a, uint64_t seed, double *err_o,
                               double *err_lse, char nonfinite[CHECK_WHY])
{
    fx_problem p;
    fx_make_for(&p, k, a, seed);
    /* NaN-fill the output so a row the kernel forgets to write cannot pass. */
    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb));
    int rc = fx_run(k, &p, 0);
    *err_o = rc ? INFINITY : fx_err_o(&p);
    *err_lse = rc ? INFINITY : fx_err_lse(&p);
    attn_io io = problem_io(&p);
    if (rc || !nonfinite_outputs(&io, &p.a, nonfinite, CHECK_WHY))
        nonfinite[0] = '\0';
    fx_free(&p);
    return rc;
}

int check_kernel_forward(const attn_kernel *k, const attn_args *a, uint64_t seed, double *err_o,
                       double *err_lse)
{
    char unused[CHECK_WHY];
    return check_kernel_forward_named(k, a, seed, err_o, err_lse, unused);
}

int check_kernel_backward(const attn_kernel *k, const attn_args *a, uint64_t seed, double err[ATTN_CHECK_GRADS])
{
    char unused[CHECK_WHY];
    return check_kernel_backward_named(k, a, seed, err, unused);
}

int check_kernel_backward_named(const attn_kernel *k, const attn_args *a, uint64_t seed,
                                double err[ATTN_CHECK_GRADS], char nonfinite[CHECK_WHY])
{
    fx_problem p;
    fx_make_for(&p, k, a, seed);
    fx_ref_grads(&p);
    int rc = fx_run(k, &p, 1);
    attn_grads g = problem_grads(&p);
    if (rc || !nonfinite_grads(&g, nonfinite, CHECK_WHY))
        nonfinite[0] = '\0';
    err[0] = rc ? INFINITY : fx_err_grad(&p.dq, &p.dq64);
    err[1] = rc ? INFINITY : fx_err_grad(&p.dk, &p.dk64);
    err[2] = rc ? INFINITY : fx_err_grad(&p.dv, &p.dv64);
    err[3] = rc ? INFINITY : p.dbeta.data ? fx_err_grad(&p.dbeta, &p.dbeta64) : 0;
    err[4] = rc ? INFINITY : p.dgate.data ? fx_err_grad(&p.dgate, &p.dgate64) : 0;
    err[5] = rc ? INFINITY : p.drouter.data ? fx_err_grad(&p.drouter, &p.drouter64) : 0;
    err[6] = rc ? INFINITY : p.dw.data ? fx_err_grad(&p.dw, &p.dw64) : 0;
    fx_free(&p);
    return rc;
}

int check_kernel_fidelity(const attn_kernel *k, const attn_args *a, fid_inputs f, uint64_t seed, fid_metrics *m)
{
    problem p;
    int rc = problem_make(&p, k, a, seed, 0);
    if (rc)
        return rc;
    attn_io io = problem_io(&p);
    fid_fill(f, &p.a, seed, &io);
    problem_store_kv(&p); /* a stored KV cache holds the family's K and V; the oracle reads them unrounded */
    problem_store_operands(&p); /* so do 16-bit operands */
    if ((rc = fx_run(k, &p, 0)) == 0)
        rc = fid_measure(k, &p.a, &io, m);
    problem_free(&p);
    return rc;
}

static void perturb_rows_from(attn_tensor *t, int64_t t0, float shift)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = t0; n < t->N; n++)
                for (int64_t d = 0; d < t->D; d++)
                    attn_at(t, b, h, n)[d] = attn_at(t, b, h, n)[d] * -1.5f + shift;
}

/* Leakage and determinism compare the kernel with itself: no reference, so
 * no double twin (the oracle or a kernel's own reference would cost more
 * than the kernel runs). */
int check_kernel_causal_leakage(const attn_kernel *k, const attn_args *a, int64_t t, int *ok)
{
    problem p;
    int rc = problem_make(&p, k, a, 3, 0);
    *ok = 0;
    if (rc)
        return rc;
    rc = fx_run(k, &p, 0);
    size_t row = sizeof(float) * (size_t)p.o.D;
    float *before = attn_alloc(row * (size_t)(p.o.B * p.o.H * t));
    for (int64_t bh = 0; !rc && bh < p.o.B * p.o.H; bh++)
        memcpy(before + bh * t * p.o.D, attn_at(&p.o, bh / p.o.H, bh % p.o.H, 0), row * (size_t)t);
    if (!(k->flags & (ATTN_ROUTED | ATTN_RANKED))) /* later queries may move a routed kernel's chunk boundaries */
        perturb_rows_from(&p.q, t, 0.25f);
    if (!(k->flags & ATTN_RANKED)) /* later keys may move later rows up a ranked kernel's ranking */
        perturb_rows_from(&p.k, t, 3.0f);
    perturb_rows_from(&p.v, t, -5.0f);
    /* halving keeps beta in (0,1) and log gates negative */
    for (int64_t i = 0; p.beta.data && i < p.beta.B * p.beta.sb; i++)
        p.beta.data[i] *= (i % p.beta.sh) / p.beta.sn >= t ? 0.5f : 1.0f;
    for (int64_t i = 0; p.gate.data && i < p.gate.B * p.gate.sb; i++)
        p.gate.data[i] *= (i % p.gate.sh) / p.gate.sn >= t ? 0.5f : 1.0f;
    perturb_rows_from(&p.router, t, 1.0f);
    if (!rc)
        rc = fx_run(k, &p, 0);
    *ok = !rc;
    for (int64_t bh = 0; !rc && bh < p.o.B * p.o.H; bh++)
        if (memcmp(before + bh * t * p.o.D, attn_at(&p.o, bh / p.o.H, bh % p.o.H, 0), row * (size_t)t))
            *ok = 0;
    attn_free(before);
    problem_free(&p);
    return rc;
}

int check_kernel_thread_determinism(const attn_kernel *k, const attn_args *a, int threads, int *ok)
{
    attn_args a1 = *a, a2 = *a;
    a1.threads = 1;
    a2.threads = threads;
    int bwd = k->backward != NULL;
    problem p1, p2;
    *ok = 0;
    int rc = problem_make(&p1, k, &a1, 9, bwd ? PROBLEM_GRADS : 0);
    if (rc)
        return rc;
    if ((rc = problem_make(&p2, k, &a2, 9, bwd ? PROBLEM_GRADS : 0)) != 0) {
        problem_free(&p1);
        return rc;
    }
    rc = fx_run(k, &p1, bwd);
    if (!rc)
        rc = fx_run(k, &p2, bwd);
    size_t nl = sizeof(float) * (size_t)(a->B * a->H * a->Nq);
    const attn_tensor *x[] = {&p1.o, &p1.dq, &p1.dk, &p1.dv, &p1.dbeta, &p1.dgate, &p1.drouter, &p1.dw};
    const attn_tensor *y[] = {&p2.o, &p2.dq, &p2.dk, &p2.dv, &p2.dbeta, &p2.dgate, &p2.drouter, &p2.dw};
    *ok = !rc && memcmp(p1.lse, p2.lse, nl) == 0;
    for (int i = 0; i < 8; i++) /* the gradients exist only with a backward */
        *ok = *ok && (!x[i]->data || fx_bitwise_equal(x[i], y[i]));
    problem_free(&p1);
    problem_free(&p2);
    return rc;
}

int check_kernel_masked_rows(const attn_kernel *k, int threads, int *ok)
{
    attn_args a = fx_args(1, 2, 2, 20, 20, 16, "causal", threads);
    a.q_off = -5; /* rows 0..4 come before every key */
    fx_problem p;
    fx_make(&p, &a, 5);
    int rc = fx_run(k, &p, 0);
    *ok = !rc && fx_err_o(&p) <= fx_tol_o(20) && fx_err_lse(&p) <= 1e-5;
    for (int64_t h = 0; !rc && h < 2; h++)
        for (int64_t i = 0; i < 5; i++) {
            *ok &= isinf(p.lse[h * 20 + i]) && p.lse[h * 20 + i] < 0;
            for (int64_t d = 0; d < 16; d++)
                *ok &= attn_at(&p.o, 0, h, i)[d] == 0.0f;
        }
    fx_free(&p);
    return rc;
}
