#include "check.h"

#include "fixture.h"

#include <math.h>
#include <string.h>

int check_kernel_forward(const attn_kernel *k, const attn_args *a, uint64_t seed, double *err_o,
                       double *err_lse)
{
    fx_problem p;
    fx_make_for(&p, k, a, seed);
    /* NaN-fill the output so a row the kernel forgets to write cannot pass. */
    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb));
    int rc = fx_run(k, &p, 0);
    *err_o = rc ? INFINITY : fx_err_o(&p);
    *err_lse = rc ? INFINITY : fx_err_lse(&p);
    fx_free(&p);
    return rc;
}

int check_kernel_backward(const attn_kernel *k, const attn_args *a, uint64_t seed, double err[ATTN_CHECK_GRADS])
{
    fx_problem p;
    fx_make_for(&p, k, a, seed);
    fx_ref_grads(&p);
    int rc = fx_run(k, &p, 1);
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

static void perturb_rows_from(attn_tensor *t, int64_t t0, float shift)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = t0; n < t->N; n++)
                for (int64_t d = 0; d < t->D; d++)
                    attn_at(t, b, h, n)[d] = attn_at(t, b, h, n)[d] * -1.5f + shift;
}

int check_kernel_causal_leakage(const attn_kernel *k, const attn_args *a, int64_t t, int *ok)
{
    fx_problem p;
    fx_make_for(&p, k, a, 3);
    int rc = fx_run(k, &p, 0);
    size_t row = sizeof(float) * (size_t)p.o.D;
    float *before = attn_alloc(row * (size_t)(p.o.B * p.o.H * t));
    for (int64_t bh = 0; !rc && bh < p.o.B * p.o.H; bh++)
        memcpy(before + bh * t * p.o.D, attn_at(&p.o, bh / p.o.H, bh % p.o.H, 0), row * (size_t)t);
    perturb_rows_from(&p.q, t, 0.25f);
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
    fx_free(&p);
    return rc;
}

int check_kernel_thread_determinism(const attn_kernel *k, const attn_args *a, int threads, int *ok)
{
    attn_args a1 = *a, a2 = *a;
    a1.threads = 1;
    a2.threads = threads;
    fx_problem p1, p2;
    fx_make_for(&p1, k, &a1, 9);
    fx_make_for(&p2, k, &a2, 9);
    int bwd = k->backward != NULL;
    int rc = fx_run(k, &p1, bwd);
    if (!rc)
        rc = fx_run(k, &p2, bwd);
    size_t nl = sizeof(float) * (size_t)(a->B * a->H * a->Nq);
    *ok = !rc && fx_bitwise_equal(&p1.o, &p2.o) && memcmp(p1.lse, p2.lse, nl) == 0 &&
          (!bwd || (fx_bitwise_equal(&p1.dq, &p2.dq) && fx_bitwise_equal(&p1.dk, &p2.dk) &&
                    fx_bitwise_equal(&p1.dv, &p2.dv) &&
                    (!p1.dbeta.data || fx_bitwise_equal(&p1.dbeta, &p2.dbeta)) &&
                    (!p1.dgate.data || fx_bitwise_equal(&p1.dgate, &p2.dgate)) &&
                    (!p1.drouter.data || fx_bitwise_equal(&p1.drouter, &p2.drouter)) &&
                    (!p1.dw.data || fx_bitwise_equal(&p1.dw, &p2.dw))));
    fx_free(&p1);
    fx_free(&p2);
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

/* ---- the case table behind `attnbench check` ---- */

static const char *const check_masks[] = {"full", "causal", "window:wl=5,wr=3", "window:wl=16,wr=0",
                                          "window:w=2,causal=1", "dilated:w=3,dil=2", "dilated:w=3,dil=1+2+4", "strided:l=8",
                                          "fixed:l=8,c=2,split=1", "block:b=16,keep=0.3,seed=1,heads=1",
                                          "global:w=4,g=2", "global:w=4,at=2+60,causal=1",
                                          "bigbird:b=16,r=2,seed=1", "document:n=4,seed=3",
                                          "document:n=3,seed=5,causal=1", "prefix:p=20",
                                          "shared_question:q=4,answers=3", "sink:n=4,w=16",
                                          "random:p=0.1,seed=1"};
#define N_CHECK_MASKS (int)(sizeof check_masks / sizeof *check_masks)

typedef struct {
    int64_t B, H, H_kv, Nq, Nk, D;
} shape;

static const shape fwd_shapes[] = {
    {2, 2, 2, 1, 1, 16},     {2, 2, 2, 7, 7, 80},   {1, 3, 3, 64, 64, 64}, {2, 2, 2, 129, 129, 128},
    {1, 2, 2, 513, 513, 64}, {1, 8, 2, 130, 130, 32}, {2, 2, 1, 16, 257, 64}, {1, 2, 2, 1, 300, 16},
};
static const shape bwd_shapes[] = {{1, 2, 1, 7, 7, 16}, {1, 2, 1, 130, 130, 80}};
/* Kernels with their own reference get gradients by central differences of it
 * (two reference runs per input element): smaller problems. */
static const shape bwd_shapes_ref[] = {{1, 2, 1, 7, 7, 16}, {1, 2, 1, 33, 33, 16}};

typedef struct {
    FILE *out;
    const char *kernel;
    int failed;
} report;

static void report_line(report *r, const char *check, const char *what, double err, double tol)
{
    int pass = err <= tol;
    r->failed += !pass;
    fprintf(r->out, "%-14s %-15s %-46s err=%-10.3g tol=%-8.2g %s\n", r->kernel, check, what, err, tol,
            pass ? "PASS" : "FAIL");
}

/* A one-query kernel (ATTN_ONE_QUERY) gets Nq = 1 on every shape, so the
 * whole table (backward, leakage, threads) applies to it too. */
static int shape_args(const attn_kernel *k, const shape *s, const char *mask, int threads, attn_args *a)
{
    memset(a, 0, sizeof *a);
    a->B = s->B, a->H = s->H, a->H_kv = s->H_kv, a->Nk = s->Nk, a->D = s->D;
    a->Nq = k && (k->flags & ATTN_ONE_QUERY) ? 1 : s->Nq;
    a->threads = threads;
    int rc = attn_mask_parse(mask, &a->mask);
    attn_args_defaults(a);
    return rc;
}

/* The kernel's small-size parameters for gradient shapes (attn_kernel.check_params). */
static int add_check_params(const attn_kernel *k, attn_args *a)
{
    return k->check_params ? param_bag_add_list(&a->params, k->check_params) : 0;
}

static void describe(char *buf, size_t n, const shape *s, const char *mask)
{
    snprintf(buf, n, "%s B%ld H%ld/%ld N%ld/%ld D%ld", mask, (long)s->B, (long)s->H, (long)s->H_kv,
             (long)s->Nq, (long)s->Nk, (long)s->D);
}

/* PADDED kernels: the last forward and backward shape again as a padded
 * batch (attn_args.seq_len) of the whole length, about 3/5 of it and 1 row. */
#define CHECK_PAD_B 3
static const shape fwd_padded = {CHECK_PAD_B, 2, 1, 130, 130, 32};
static const shape bwd_padded = {CHECK_PAD_B, 2, 1, 33, 33, 16};

static void padded_lengths(const shape *s, int64_t len[CHECK_PAD_B])
{
    len[0] = s->Nq, len[1] = s->Nq * 3 / 5, len[2] = 1;
}

static void describe_padded(char *buf, size_t n, const int64_t len[CHECK_PAD_B])
{
    snprintf(buf + strlen(buf), n - strlen(buf), " pad %ld+%ld+%ld", (long)len[0], (long)len[1], (long)len[2]);
}

static int check_one_mask(const attn_kernel *k, const char *mask, int threads, report *r)
{
    char what[128];
    attn_args a;
    size_t n_fwd = sizeof fwd_shapes / sizeof *fwd_shapes;
    int64_t len[CHECK_PAD_B];
    for (size_t s = 0; s < n_fwd + 1; s++) {
        const shape *sh = s < n_fwd ? &fwd_shapes[s] : &fwd_padded;
        if (s == n_fwd && !(k->flags & ATTN_PADDED))
            break;
        if (shape_args(k, sh, mask, threads, &a))
            continue;
        describe(what, sizeof what, sh, mask);
        if (s == n_fwd) {
            padded_lengths(sh, len);
            a.seq_len = len;
            describe_padded(what, sizeof what, len);
        }
        if (attn_args_validate(k, &a))
            continue;
        double eo, el;
        int rc = check_kernel_forward(k, &a, 100 + s, &eo, &el);
        if (rc)
            return rc;
        if (k->ref_forward) { /* non-convex outputs: 5e-5 of max|O_ref| */
            report_line(r, "forward.O", what, eo, 5e-5 * fmax(1.0, sqrt((double)a.Nk / 4096.0)));
            continue;
        }
        report_line(r, "forward.O", what, eo, fx_tol_o(a.Nk));
        report_line(r, "forward.lse", what, el, 1e-5);
    }
    const shape *bs = k->ref_forward ? bwd_shapes_ref : bwd_shapes;
    for (size_t s = 0; k->backward && s < 3; s++) {
        const shape *sh = s < 2 ? &bs[s] : &bwd_padded;
        if (s == 2 && !(k->flags & ATTN_PADDED))
            break;
        if (shape_args(k, sh, mask, threads, &a) || add_check_params(k, &a))
            continue;
        describe(what, sizeof what, sh, mask);
        if (s == 2) {
            padded_lengths(sh, len);
            a.seq_len = len;
            describe_padded(what, sizeof what, len);
        }
        if (attn_args_validate(k, &a))
            continue;
        double e[ATTN_CHECK_GRADS];
        if (k->check_params)
            snprintf(what + strlen(what), sizeof what - strlen(what), " %s", k->check_params);
        int rc = check_kernel_backward(k, &a, 77 + s, e);
        if (rc)
            return rc;
        report_line(r, "backward.dQ", what, e[0], 1e-4);
        report_line(r, "backward.dK", what, e[1], 1e-4);
        report_line(r, "backward.dV", what, e[2], 1e-4);
        if (k->inputs & ATTN_IN_BETA)
            report_line(r, "backward.dbeta", what, e[3], 1e-4);
        if (k->inputs & (ATTN_IN_GATE | ATTN_IN_GATE_VEC))
            report_line(r, "backward.dgate", what, e[4], 1e-4);
        if (k->inputs & ATTN_IN_ROUTER)
            report_line(r, "backward.drouter", what, e[5], 1e-4);
        if (k->inputs & ATTN_IN_WEIGHTS)
            report_line(r, "backward.dw", what, e[6], 1e-4);
    }
    return 0;
}

int check_kernel_all(const attn_kernel *k, const char *mask_filter, int threads, FILE *out)
{
    report r = {out, k->name, 0};
    int rc, ok;
    if (mask_filter) {
        attn_args probe;
        if ((rc = shape_args(k, &fwd_shapes[2], mask_filter, threads, &probe)) != 0 ||
            (rc = attn_args_validate(k, &probe)) != 0)
            return rc;
        if ((rc = check_one_mask(k, mask_filter, threads, &r)) != 0)
            return rc;
        return r.failed;
    }
    for (int m = 0; m < N_CHECK_MASKS; m++)
        if ((rc = check_one_mask(k, check_masks[m], threads, &r)) != 0)
            return rc;
    attn_args a;
    const shape leak = {1, 2, 2, 97, 97, 32};
    if (shape_args(k, &leak, "causal", threads, &a) == 0 && attn_args_validate(k, &a) == 0) {
        if ((rc = check_kernel_causal_leakage(k, &a, 40, &ok)) != 0)
            return rc;
        report_line(&r, "causal.leak", "causal B1 H2 N97, rows >= 40 perturbed", ok ? 0 : 1, 0);
        if (!k->ref_forward) { /* without a normaliser there is no masked-row convention */
            if ((rc = check_kernel_masked_rows(k, threads, &ok)) != 0)
                return rc;
            report_line(&r, "masked.rows", "causal, 5 queries before every key", ok ? 0 : 1, 0);
        }
    }
    const shape det = {2, 4, 2, 130, 130, 64};
    if ((k->flags & ATTN_DETERMINISTIC) && shape_args(k, &det, "causal", threads, &a) == 0 &&
        attn_args_validate(k, &a) == 0) {
        if ((rc = check_kernel_thread_determinism(k, &a, threads > 1 ? threads : 2, &ok)) != 0)
            return rc;
        report_line(&r, "threads", "causal B2 H4/2 N130 D64, 1 vs T threads", ok ? 0 : 1, 0);
    }
    return r.failed;
}
