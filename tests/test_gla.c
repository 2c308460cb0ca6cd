/* Properties of retnet, gla and lightning: chunked
 * = recurrent double reference for chunk sizes 1/16/64, odd lengths, Dv != D,
 * GQA and documents; recurrent = parallel form in double; constant GLA gates =
 * retention / lightning; log-gates of -30 stay finite; gradients (incl. the
 * log-gates) against central differences of the reference; state size; decay
 * schedules; cost model; parameter validation. Causal leakage, thread
 * determinism and strided views: test_properties.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/gla/gla.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static attn_args make_args(int64_t B, int64_t H, int64_t Hkv, int64_t N, int64_t D, int64_t Dv, const char *mask,
                           int64_t chunk)
{
    attn_args a = fx_args(B, H, Hkv, N, N, D, mask, 1);
    a.Dv = Dv;
    if (chunk > 0) {
        char kv[32];
        snprintf(kv, sizeof kv, "chunk=%lld", (long long)chunk);
        fx_add_params(&a, kv);
    }
    return a;
}

static int all_finite(const attn_tensor *t)
{
    for (int64_t i = 0; t->data && i < t->B * t->sb; i++)
        if (!isfinite(t->data[i]))
            return 0;
    return 1;
}

/* chunked fp32 forward vs the recurrent double reference, 5e-5 of max|O_ref| */
static void check_chunked_all(const attn_kernel *k)
{
    static const int64_t chunks[] = {1, 16, 64}, Ns[] = {1, 7, 130}, Ds[] = {16, 32};
    for (int c = 0; c < 3; c++)
        for (int n = 0; n < 3; n++)
            for (int d = 0; d < 2; d++)
                for (int doc = 0; doc < 2 - (Ns[n] == 1); doc++) {
                    int64_t D = Ds[d], Dv = D == 16 ? 24 : D, Hkv = D == 16 ? 1 : 2, B = 1 + doc;
                    attn_args a = make_args(B, 2, Hkv, Ns[n], D, Dv, doc ? "document:n=3,seed=5,causal=1" : "causal",
                                            chunks[c]);
                    fx_problem p;
                    fx_make_for(&p, k, &a, 11 + (uint64_t)(c * 7 + n * 3 + d));
                    cr_assert_eq(fx_run(k, &p, 0), 0, "%s", attn_last_error());
                    double e = fx_err_o(&p);
                    cr_assert(e <= 5e-5, "%s chunk %lld N %lld D %lld Dv %lld doc %d: err_O %.3g", k->name,
                              (long long)chunks[c], (long long)Ns[n], (long long)D, (long long)Dv, doc, e);
                    fx_free(&p);
                }
}

/* Parallel form in double: o_i = sum_{j<=i, same document} sc (sum_d q_i[d] k_j[d]
 * e^{sum_{u=j+1..i} ln alpha_u[d]}) v_j, i.e. (Q K^T * D_gamma) V for constant decay. */
static void parallel_form(const attn_kernel *k, const fx_problem *p, attn_tensor_f64 *o)
{
    const attn_args *a = &p->a;
    int64_t G = a->H / a->H_kv, Dk = a->D, Dv = attn_dv(a), seg[GLA_MAX_SEGS + 1];
    int64_t nseg = attn_gla_segments(a, seg);
    double sc = attn_scale(a);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            int64_t hk = h / G;
            double w = 0;
            if (k != &attn_kernel_gla)
                cr_assert_eq(attn_gla_log_decay(attn_gla_preset_of(k), a, hk, &w), 0);
            for (int64_t sg = 0; sg < nseg; sg++)
                for (int64_t i = seg[sg]; i < seg[sg + 1]; i++) {
                    double *oi = attn_at64(o, b, h, i);
                    memset(oi, 0, sizeof(double) * (size_t)Dv);
                    for (int64_t j = seg[sg]; j <= i; j++) {
                        double s = 0;
                        for (int64_t d = 0; d < Dk; d++) {
                            double lg = (double)(i - j) * w;
                            for (int64_t u = j + 1; k == &attn_kernel_gla && u <= i; u++)
                                lg += attn_at64(&p->gate64, b, hk, u)[d];
                            s += attn_at64(&p->q64, b, h, i)[d] * attn_at64(&p->k64, b, hk, j)[d] * exp(lg);
                        }
                        for (int64_t e = 0; e < Dv; e++)
                            oi[e] += sc * s * attn_at64(&p->v64, b, hk, j)[e];
                    }
                }
        }
}

static void check_parallel_form(const attn_kernel *k)
{
    attn_args a = make_args(2, 2, 1, 37, 16, 8, "document:lens=20+9+8,causal=1", 0);
    fx_problem p;
    fx_make_for(&p, k, &a, 5);
    attn_tensor_f64 o = p.o64;
    o.data = calloc((size_t)(o.B * o.sb), sizeof(double));
    parallel_form(k, &p, &o);
    double err = 0, ref = 0;
    for (int64_t i = 0; i < o.B * o.sb; i++) {
        err = fmax(err, fabs(o.data[i] - p.o64.data[i]));
        ref = fmax(ref, fabs(p.o64.data[i]));
    }
    cr_assert(ref > 0.1 && err <= 1e-12 * ref, "%s: parallel vs recurrent %.3g (max %.3g)", k->name, err, ref);
    free(o.data);
    fx_free(&p);
}

/* gla with every log-gate = ln(alpha) of the scalar preset gives that preset's output. */
static void check_constant_gates(const attn_kernel *scalar, const char *param)
{
    attn_args a = make_args(1, 4, 2, 100, 32, 16, "document:lens=70+30,causal=1", 16);
    if (param)
        fx_add_params(&a, param);
    attn_args ag = a;
    ag.params.n = 1; /* gla takes chunk only */
    fx_problem ps, pg;
    fx_make_for(&ps, scalar, &a, 21);
    fx_make_for(&pg, &attn_kernel_gla, &ag, 21);
    for (int64_t hk = 0; hk < a.H_kv; hk++) {
        double w;
        cr_assert_eq(attn_gla_log_decay(attn_gla_preset_of(scalar), &a, hk, &w), 0);
        for (int64_t n = 0; n < a.Nk; n++)
            for (int64_t d = 0; d < a.D; d++)
                attn_at(&pg.gate, 0, hk, n)[d] = (float)w;
    }
    fx_ref_forward(&pg);
    cr_assert_eq(fx_run(scalar, &ps, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(&attn_kernel_gla, &pg, 0), 0, "%s", attn_last_error());
    double e32 = 0, e64 = 0, m = 0;
    for (int64_t i = 0; i < ps.o.B * ps.o.sb; i++) {
        e32 = fmax(e32, fabs((double)ps.o.data[i] - pg.o.data[i]));
        e64 = fmax(e64, fabs(ps.o64.data[i] - pg.o64.data[i]));
        m = fmax(m, fabs(ps.o64.data[i]));
    }
    cr_assert(e64 <= 1e-6 * m, "%s: references differ by %.3g (gate rounded to float)", scalar->name, e64);
    cr_assert(e32 <= 5e-5 * m, "%s: kernels differ by %.3g of max %.3g", scalar->name, e32, m);
    fx_free(&ps);
    fx_free(&pg);
}

static void check_gradients(const attn_kernel *k, int64_t N, int64_t D, const char *mask, int64_t chunk)
{
    attn_args a = make_args(1, 2, 1, N, D, D + 4, mask, chunk);
    double err[ATTN_CHECK_GRADS];
    cr_assert_eq(check_kernel_backward(k, &a, 77 + (uint64_t)N, err), 0, "%s", attn_last_error());
    static const char *const names[] = {"dQ", "dK", "dV", "dbeta", "dgate"};
    for (int i = 0; i < 5; i++)
        cr_assert(err[i] <= 1e-4, "%s N %lld D %lld %s chunk %lld: %s err %.3g", k->name, (long long)N,
                  (long long)D, mask, (long long)chunk, names[i], err[i]);
}

static void check_gradients_all(const attn_kernel *k)
{
    check_gradients(k, 5, 8, "causal", 0);
    check_gradients(k, 9, 16, "causal", 4);
    check_gradients(k, 9, 8, "document:lens=4+5,causal=1", 2);
    check_gradients(k, 40, 8, "causal", 0);   /* three sub-chunks: the off-diagonal products */
    check_gradients(k, 40, 8, "causal", 16);  /* several chunks */
}

static void check_state_bytes(const attn_kernel *k)
{
    attn_args a = make_args(2, 4, 2, 50, 32, 16, "causal", 0);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(k, &a, &ctx), 0, "%s", attn_last_error());
    cr_assert_eq(k->state_bytes(&ctx.args), (size_t)(2 * 2 * 32 * 16 * 4));
    cr_assert_eq(ctx.state_bytes_used, k->state_bytes(&ctx.args));
    attn_ctx_destroy(&ctx);
}

/* 4 N Dk Dv + 2 N C (Dk + Dv) per (b, query head); bytes: each tensor once */
static void check_cost(const attn_kernel *k)
{
    attn_args a = make_args(2, 4, 2, 1000, 64, 32, "causal", 0), b = make_args(1, 2, 2, 77, 16, 16, "causal", 16);
    double g = k == &attn_kernel_gla;
    cr_assert_float_eq(k->flops(&a, ATTN_PASS_FWD), 8.0 * (4.0 * 1000 * 64 * 32 + 2.0 * 1000 * 64 * 96), 1);
    cr_assert_float_eq(k->flops(&b, ATTN_PASS_FWD), 2.0 * (4.0 * 77 * 16 * 16 + 2.0 * 77 * 16 * 32), 1e-6);
    cr_assert_float_eq(k->flops(&b, ATTN_PASS_BWD), 2.5 * k->flops(&b, ATTN_PASS_FWD), 1e-6);
    cr_assert_float_eq(k->bytes(&a, ATTN_PASS_FWD),
                       4.0 * 2 * 1000 * (4 * 64 + 2 * (64 + 32) + 4 * 32 + g * 2 * 64), 1e-3);
    cr_assert_float_eq(k->bytes(&a, ATTN_PASS_BWD),
                       4.0 * 2 * 1000 * (2 * 4 * 64 + 2 * 2 * (64 + 32) + 4 * 32 + g * 4 * 64), 1e-3);
}

static void expect_rejected(const attn_kernel *k, attn_args a, const char *what)
{
    attn_ctx ctx;
    cr_assert_neq(attn_ctx_create(k, &a, &ctx), 0, "%s: %s accepted", k->name, what);
}

static void check_params(const attn_kernel *k)
{
    static const char *const bad[] = {"chunk=0", "chunk=513", "chunk=x", "window=3"};
    for (int i = 0; i < 4; i++) {
        attn_args a = make_args(1, 2, 2, 20, 16, 16, "causal", 0);
        fx_add_params(&a, bad[i]);
        expect_rejected(k, a, bad[i]);
    }
    expect_rejected(k, make_args(1, 2, 2, 20, 16, 16, "full", 0), "mask full");
    expect_rejected(k, make_args(1, 2, 2, 20, 16, 16, "window:wl=4,wr=0", 0), "mask window");
    attn_args a = make_args(1, 2, 2, 20, 16, 16, "causal", 0);
    a.q_off = 3;
    expect_rejected(k, a, "q_off != k_off");
    a = make_args(1, 2, 2, 20, 16, 16, "causal", 0);
    fx_add_params(&a, "decay=0.5");
    if (k != &attn_kernel_lightning) {
        expect_rejected(k, a, "decay");
        return;
    }
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(k, &a, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
    static const char *const bad_decay[] = {"decay=0", "decay=1.5", "decay=-0.1", "decay=abc"};
    for (int i = 0; i < 4; i++) {
        attn_args b = make_args(1, 2, 2, 20, 16, 16, "causal", 0);
        fx_add_params(&b, bad_decay[i]);
        expect_rejected(k, b, bad_decay[i]);
    }
}

/* A NaN in K (and the gates) of (b 0, KV head 0), unvalidated: no crash, and
 * every other (b, KV group) slice bitwise as without it. */
static void check_nan_isolated(const attn_kernel *k)
{
    attn_args a = make_args(2, 4, 2, 70, 16, 16, "causal", 16);
    fx_problem p;
    fx_make_for(&p, k, &a, 17);
    cr_assert_eq(fx_run(k, &p, 0), 0, "%s", attn_last_error());
    attn_tensor clean = p.o;
    clean.data = attn_alloc(sizeof(float) * (size_t)(p.o.B * p.o.sb));
    memcpy(clean.data, p.o.data, sizeof(float) * (size_t)(p.o.B * p.o.sb));
    attn_at(&p.k, 0, 0, 10)[3] = NAN;
    if (p.gate.data)
        attn_at(&p.gate, 0, 0, 30)[5] = NAN;
    cr_assert_eq(fx_run(k, &p, 0), 0, "%s", attn_last_error());
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 4; h++)
            if (b > 0 || h >= 2)
                cr_assert_eq(memcmp(attn_at(&p.o, b, h, 0), attn_at(&clean, b, h, 0), sizeof(float) * 70 * 16), 0,
                             "%s: NaN leaked into b %lld h %lld", k->name, (long long)b, (long long)h);
    attn_free(clean.data);
    fx_free(&p);
}

#define GLA_COMMON_TESTS(suite, KP)                                                                      \
    Test(suite, suite##_chunked_equals_recurrent, .timeout = 60) { check_chunked_all(KP); }             \
    Test(suite, suite##_parallel_form_equals_recurrent, .timeout = 60) { check_parallel_form(KP); }     \
    Test(suite, suite##_gradients_match_reference, .timeout = 60) { check_gradients_all(KP); }          \
    Test(suite, suite##_state_bytes_match_allocation, .timeout = 60) { check_state_bytes(KP); }         \
    Test(suite, suite##_cost_model, .timeout = 60) { check_cost(KP); }                                  \
    Test(suite, suite##_rejects_bad_params_and_masks, .timeout = 60) { check_params(KP); }             \
    Test(suite, suite##_nan_stays_in_its_kv_group, .timeout = 60) { check_nan_isolated(KP); }

GLA_COMMON_TESTS(retnet, &attn_kernel_retnet)
GLA_COMMON_TESTS(gla, &attn_kernel_gla)
GLA_COMMON_TESTS(lightning, &attn_kernel_lightning)

Test(gla, gla_constant_gates_equal_retnet, .timeout = 60) { check_constant_gates(&attn_kernel_retnet, NULL); }

Test(gla, gla_constant_gates_equal_lightning, .timeout = 60)
{
    check_constant_gates(&attn_kernel_lightning, NULL);
    check_constant_gates(&attn_kernel_lightning, "decay=0.7");
}

/* Log-gates of -30 (alpha = 1e-13) mixed with mild ones: forward and gradients finite, forward exact. */
Test(gla, gla_log_gates_minus_30_stay_finite, .timeout = 60)
{
    attn_args a = make_args(1, 2, 1, 130, 16, 16, "causal", 64);
    fx_problem p;
    fx_make_for(&p, &attn_kernel_gla, &a, 3);
    for (int64_t i = 0; i < p.gate.B * p.gate.sb; i++)
        if (i % 3 != 1)
            p.gate.data[i] = -30.0f;
    fx_ref_forward(&p);
    cr_assert_eq(fx_run(&attn_kernel_gla, &p, 1), 0, "%s", attn_last_error());
    cr_assert(all_finite(&p.o) && all_finite(&p.dq) && all_finite(&p.dk) && all_finite(&p.dv) &&
              all_finite(&p.dgate), "non-finite output or gradient");
    double e = fx_err_o(&p);
    cr_assert(e <= 5e-5, "err_O %.3g", e);
    fx_free(&p);
    /* and the gradients at a size the central differences can afford */
    attn_args b = make_args(1, 2, 1, 20, 8, 8, "causal", 0);
    fx_make_for(&p, &attn_kernel_gla, &b, 4);
    for (int64_t i = 0; i < p.gate.B * p.gate.sb; i++)
        p.gate.data[i] = i % 2 ? -30.0f : p.gate.data[i];
    fx_ref_forward(&p);
    fx_ref_grads(&p);
    cr_assert_eq(fx_run(&attn_kernel_gla, &p, 1), 0, "%s", attn_last_error());
    cr_assert(fx_err_grad(&p.dq, &p.dq64) <= 1e-4 && fx_err_grad(&p.dk, &p.dk64) <= 1e-4 &&
              fx_err_grad(&p.dv, &p.dv64) <= 1e-4, "gradients at log-gates -30");
    cr_assert(all_finite(&p.dgate), "non-finite dgate");
    fx_free(&p);
}

Test(lightning, lightning_decay_near_zero_stays_finite, .timeout = 60)
{
    attn_args a = make_args(1, 2, 2, 130, 16, 16, "causal", 64);
    fx_add_params(&a, "decay=9.4e-14"); /* ln = -30 */
    fx_problem p;
    fx_make_for(&p, &attn_kernel_lightning, &a, 3);
    cr_assert_eq(fx_run(&attn_kernel_lightning, &p, 1), 0, "%s", attn_last_error());
    cr_assert(all_finite(&p.o) && all_finite(&p.dq) && all_finite(&p.dk) && all_finite(&p.dv));
    cr_assert(fx_err_o(&p) <= 5e-5, "err_O %.3g", fx_err_o(&p));
    fx_free(&p);
}

/* Lightning Attention's _build_slope_tensor: 2^{-8(h+1)/n}, n a power of two;
 * otherwise the closest power below, then every other slope of twice that. */
Test(lightning, lightning_default_decay_is_alibi_schedule, .timeout = 60)
{
    attn_args a = make_args(1, 8, 8, 4, 16, 16, "causal", 0);
    for (int64_t h = 0; h < 8; h++) {
        double w;
        cr_assert_eq(attn_gla_log_decay(GLA_LIGHTNING, &a, h, &w), 0);
        cr_assert_float_eq(w, -pow(2.0, -(double)(h + 1)), 1e-15);
    }
    attn_args b = make_args(1, 6, 6, 4, 16, 16, "causal", 0);
    static const double slopes6[] = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
    for (int64_t h = 0; h < 6; h++) {
        double w;
        cr_assert_eq(attn_gla_log_decay(GLA_LIGHTNING, &b, h, &w), 0);
        cr_assert_float_eq(w, -slopes6[h], 1e-15);
    }
}

Test(retnet, retnet_decay_is_one_minus_two_pow_minus_5_minus_h, .timeout = 60)
{
    attn_args a = make_args(1, 4, 4, 4, 16, 16, "causal", 0);
    for (int64_t h = 0; h < 4; h++) {
        double w;
        cr_assert_eq(attn_gla_log_decay(GLA_RETNET, &a, h, &w), 0);
        cr_assert_float_eq(exp(w), 1.0 - pow(2.0, -5.0 - (double)h), 1e-15);
    }
}

/* Long chunks with slow decay: the running decay products (up to 511 factors
 * near 1) and float cumulative gates still meet 5e-5. */
Test(gla, gla_long_chunk_slow_decay_matches_reference, .timeout = 60)
{
    attn_args a = make_args(1, 2, 1, 600, 16, 16, "causal", 512);
    fx_problem p;
    fx_make_for(&p, &attn_kernel_gla, &a, 13);
    for (int64_t i = 0; i < p.gate.B * p.gate.sb; i++)
        p.gate.data[i] *= 0.01f; /* log-gates in [-0.01, -1e-5): alpha in (0.99, 1) */
    fx_ref_forward(&p);
    cr_assert_eq(fx_run(&attn_kernel_gla, &p, 0), 0, "%s", attn_last_error());
    double e = fx_err_o(&p);
    cr_assert(e <= 5e-5, "err_O %.3g", e);
    fx_free(&p);
}
