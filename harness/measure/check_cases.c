/* The case table behind `attnbench check`: which masks and shapes every
 * kernel is checked on, and a typed result per case. */
#include "check.h"

#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const check_mask_cases[] = {"full", "causal", "window:wl=5,wr=3", "window:wl=16,wr=0",
                                        "window:w=2,causal=1", "dilated:w=3,dil=2", "dilated:w=3,dil=1+2+4",
                                        "strided:l=8", "fixed:l=8,c=2,split=1", "block:b=16,keep=0.3,seed=1,heads=1",
                                        "global:w=4,g=2", "global:w=4,at=2+60,causal=1", "bigbird:b=16,r=2,seed=1",
                                        "document:n=4,seed=3", "document:n=3,seed=5,causal=1", "prefix:p=20",
                                        "shared_question:q=4,answers=3", "sink:n=4,w=16", "random:p=0.1,seed=1",
                                        NULL};

size_t check_mask_case_count(void)
{
    return sizeof check_mask_cases / sizeof *check_mask_cases - 1;
}

const char *const check_grad_names[ATTN_CHECK_GRADS] = {"dQ", "dK", "dV", "dbeta", "dgate", "drouter", "dw"};

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

/* PADDED kernels: the last forward and backward shape again as a padded
 * batch (attn_args.seq_len) of the whole length, about 3/5 of it and 1 row. */
#define CHECK_PAD_B 3
static const shape fwd_padded = {CHECK_PAD_B, 2, 1, 130, 130, 32};
static const shape bwd_padded = {CHECK_PAD_B, 2, 1, 33, 33, 16};

double check_tol_o(const attn_kernel *k, int64_t Nk)
{
    return k && k->ref_forward ? 5e-5 * fmax(1.0, sqrt((double)Nk / 4096.0)) : fx_tol_o(Nk);
}

typedef struct {
    const attn_kernel *k;
    int threads;
    attn_kv_dtype kv_dtype; /* the KV cache format of every case */
    attn_dtype dtype;       /* the operand type of every case */
    check_sink sink;
    void *ctx;
} runner;

static check_result result_new(const runner *r, check_kind kind, const char *what)
{
    check_result c;
    memset(&c, 0, sizeof c);
    c.kernel = r->k, c.kind = kind, c.status = CHECK_PASS;
    c.err_lse = c.tol_lse = NAN;
    for (int i = 0; i < ATTN_CHECK_GRADS; i++)
        c.err_grad[i] = NAN;
    snprintf(c.what, sizeof c.what, "%s", what);
    return c;
}

/* Marks c failed when err exceeds tol (NaN fails), naming the measure. */
static void judge(check_result *c, const char *measure, double err, double tol)
{
    if (err <= tol || c->status != CHECK_PASS)
        return;
    c->status = CHECK_ABOVE_TOLERANCE;
    snprintf(c->reason, sizeof c->reason, "%s error %.3g above %.2g", measure, err, tol);
}

/* Marks c failed when an output is not finite, naming it: before the
 * tolerances, whose err would only read inf. */
static void judge_finite(check_result *c, const char *nonfinite)
{
    if (!nonfinite[0])
        return;
    c->status = CHECK_NONFINITE;
    snprintf(c->reason, sizeof c->reason, "%s", nonfinite);
}

static void emit_property(const runner *r, check_kind kind, const char *what, int holds, const char *broken)
{
    check_result c = result_new(r, kind, what);
    if (!holds) {
        c.status = CHECK_PROPERTY_BROKEN;
        snprintf(c.reason, sizeof c.reason, "%s", broken);
    }
    r->sink(&c, r->ctx);
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

static void describe(char *buf, size_t n, const shape *s, const char *mask)
{
    snprintf(buf, n, "%s B%ld H%ld/%ld N%ld/%ld D%ld", mask, (long)s->B, (long)s->H, (long)s->H_kv,
             (long)s->Nq, (long)s->Nk, (long)s->D);
}

/* Args for case `sh` under `mask`, with the padded batch's lengths in len
 * when `padded`; 0 when the kernel takes the case. */
static int case_args(const runner *r, const shape *sh, const char *mask, int padded, int64_t len[CHECK_PAD_B],
                     attn_args *a, char *what, size_t n)
{
    if (shape_args(r->k, sh, mask, r->threads, a))
        return -1;
    a->kv_dtype = r->kv_dtype;
    a->dtype = r->dtype;
    describe(what, n, sh, mask);
    if (r->kv_dtype != ATTN_KV_FP32)
        snprintf(what + strlen(what), n - strlen(what), " kv=%s", attn_kv_dtype_names[r->kv_dtype]);
    if (r->dtype != ATTN_DT_FP32)
        snprintf(what + strlen(what), n - strlen(what), " dtype=%s", attn_dtype_names[r->dtype]);
    if (padded) {
        len[0] = sh->Nq, len[1] = sh->Nq * 3 / 5, len[2] = 1;
        a->seq_len = len;
        snprintf(what + strlen(what), n - strlen(what), " pad %ld+%ld+%ld", (long)len[0], (long)len[1], (long)len[2]);
    }
    return 0;
}

static int forward_cases(const runner *r, const char *mask)
{
    const attn_kernel *k = r->k;
    size_t n_fwd = sizeof fwd_shapes / sizeof *fwd_shapes;
    for (size_t s = 0; s < n_fwd + 1; s++) {
        int padded = s == n_fwd;
        if (padded && !(k->flags & ATTN_PADDED))
            break;
        char what[128];
        int64_t len[CHECK_PAD_B];
        attn_args a;
        if (case_args(r, padded ? &fwd_padded : &fwd_shapes[s], mask, padded, len, &a, what, sizeof what) ||
            attn_args_validate(k, &a))
            continue;
        check_result c = result_new(r, CHECK_FORWARD, what);
        char nonfinite[CHECK_WHY];
        int rc = check_kernel_forward_named(k, &a, 100 + s, &c.err_o, &c.err_lse, nonfinite);
        if (rc)
            return rc;
        judge_finite(&c, nonfinite);
        /* 16-bit operands: O is rounded once when written, |O| <= max|V| */
        c.tol_o = check_tol_o(k, a.Nk) + (r->dtype != ATTN_DT_FP32 ? attn_dtype_unit_roundoff(r->dtype) : 0);
        if (k->ref_forward)
            c.err_lse = NAN;
        else
            c.tol_lse = CHECK_TOL_LSE;
        judge(&c, "O", c.err_o, c.tol_o);
        if (!k->ref_forward)
            judge(&c, "lse", c.err_lse, c.tol_lse);
        r->sink(&c, r->ctx);
    }
    return 0;
}

/* Gradients the kernel has, by its extra inputs (dQ, dK, dV always). */
static int has_grad(const attn_kernel *k, int i)
{
    static const unsigned input_of[ATTN_CHECK_GRADS] = {0, 0, 0, ATTN_IN_BETA, ATTN_IN_GATE | ATTN_IN_GATE_VEC,
                                                        ATTN_IN_ROUTER, ATTN_IN_WEIGHTS};
    return i < 3 || (k->inputs & input_of[i]);
}

static int backward_cases(const runner *r, const char *mask)
{
    const attn_kernel *k = r->k;
    const shape *bs = k->ref_forward ? bwd_shapes_ref : bwd_shapes;
    for (size_t s = 0; k->backward && s < 3; s++) {
        int padded = s == 2;
        if (padded && !(k->flags & ATTN_PADDED))
            break;
        char what[128];
        int64_t len[CHECK_PAD_B];
        attn_args a;
        if (case_args(r, padded ? &bwd_padded : &bs[s], mask, padded, len, &a, what, sizeof what))
            continue;
        /* the kernel's small-size parameters for gradient shapes (attn_kernel.check_params) */
        if ((k->check_params && param_bag_add_list(&a.params, k->check_params)) || attn_args_validate(k, &a))
            continue;
        if (k->check_params)
            snprintf(what + strlen(what), sizeof what - strlen(what), " %s", k->check_params);
        check_result c = result_new(r, CHECK_BACKWARD, what);
        double e[ATTN_CHECK_GRADS];
        char nonfinite[CHECK_WHY];
        int rc = check_kernel_backward_named(k, &a, 77 + s, e, nonfinite);
        if (rc)
            return rc;
        judge_finite(&c, nonfinite);
        c.tol_grad = CHECK_TOL_GRAD + (r->dtype != ATTN_DT_FP32 ? CHECK_GRAD_ROUNDOFFS * attn_dtype_unit_roundoff(r->dtype) : 0);
        for (int i = 0; i < ATTN_CHECK_GRADS; i++)
            if (has_grad(k, i)) {
                c.err_grad[i] = e[i];
                judge(&c, check_grad_names[i], e[i], c.tol_grad);
            }
        r->sink(&c, r->ctx);
    }
    return 0;
}

static int mask_cases(const runner *r, const char *mask)
{
    int rc = forward_cases(r, mask);
    return rc ? rc : backward_cases(r, mask);
}

/* Leakage, fully masked rows (softmax kernels: without a normaliser there is
 * no masked-row convention) and thread determinism (DET kernels). */
static int property_cases(const runner *r)
{
    const attn_kernel *k = r->k;
    int rc, ok;
    attn_args a;
    const shape leak = {1, 2, 2, 97, 97, 32};
    if (shape_args(k, &leak, "causal", r->threads, &a) == 0 && attn_args_validate(k, &a) == 0) {
        if ((rc = check_kernel_causal_leakage(k, &a, 40, &ok)) != 0)
            return rc;
        emit_property(r, CHECK_CAUSAL_LEAK, "causal B1 H2 N97, rows >= 40 perturbed", ok,
                      "outputs of rows < 40 changed when rows >= 40 did");
        if (!k->ref_forward) {
            if ((rc = check_kernel_masked_rows(k, r->threads, &ok)) != 0)
                return rc;
            emit_property(r, CHECK_MASKED_ROWS, "causal, 5 queries before every key", ok,
                          "rows without keys are not O = 0, lse = -inf");
        }
    }
    const shape det = {2, 4, 2, 130, 130, 64};
    if ((k->flags & ATTN_DETERMINISTIC) && shape_args(k, &det, "causal", r->threads, &a) == 0 &&
        attn_args_validate(k, &a) == 0) {
        if ((rc = check_kernel_thread_determinism(k, &a, r->threads > 1 ? r->threads : 2, &ok)) != 0)
            return rc;
        emit_property(r, CHECK_THREADS, "causal B2 H4/2 N130 D64, 1 vs T threads", ok,
                      "outputs or gradients differ between 1 and T threads");
    }
    return 0;
}

int check_kernel_cases(const attn_kernel *k, const char *mask_filter, int threads, check_sink sink, void *ctx)
{
    return check_kernel_cases_kv(k, mask_filter, threads, ATTN_KV_FP32, sink, ctx);
}

int check_kernel_cases_kv(const attn_kernel *k, const char *mask_filter, int threads, attn_kv_dtype kv_dtype,
                          check_sink sink, void *ctx)
{
    return check_kernel_cases_typed(k, mask_filter, threads, kv_dtype, ATTN_DT_FP32, sink, ctx);
}

int check_kernel_cases_typed(const attn_kernel *k, const char *mask_filter, int threads, attn_kv_dtype kv_dtype,
                             attn_dtype dtype, check_sink sink, void *ctx)
{
    runner r = {k, threads, kv_dtype, dtype, sink, ctx};
    int rc;
    attn_args probe;
    if ((rc = shape_args(k, &fwd_shapes[2], mask_filter ? mask_filter : "full", threads, &probe)) != 0)
        return rc;
    probe.kv_dtype = kv_dtype;
    probe.dtype = dtype;
    if ((mask_filter || kv_dtype != ATTN_KV_FP32 || dtype != ATTN_DT_FP32) && (rc = attn_args_validate(k, &probe)) != 0)
        return rc; /* a mask, KV format or operand type the kernel does not take: said once, not per case */
    if (kv_dtype != ATTN_KV_FP32) { /* forward only: decode kernels read a stored cache, forward */
        if (mask_filter)
            return forward_cases(&r, mask_filter);
        for (const char *const *m = check_mask_cases; *m; m++)
            if ((rc = forward_cases(&r, *m)) != 0)
                return rc;
        return 0;
    }
    if (mask_filter)
        return mask_cases(&r, mask_filter);
    for (const char *const *m = check_mask_cases; *m; m++)
        if ((rc = mask_cases(&r, *m)) != 0)
            return rc;
    /* the properties are the fp32 pass's: 16-bit operands run it unchanged on widened copies */
    return dtype == ATTN_DT_FP32 ? property_cases(&r) : 0;
}
