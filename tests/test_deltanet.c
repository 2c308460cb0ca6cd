/* Properties of `deltanet` and `gated_deltanet`:
 * the chunked fp32 forward equals the recurrent double reference for every
 * chunk size, length, head size, Dv != D, GQA and document resets; beta = 1
 * with orthonormal keys recalls v_i exactly; zero log gates equal the
 * ungated kernel and log gates of -30 stay finite; gradients against
 * central differences of the reference; state size, cost model and parameter
 * validation. Causal leakage, thread determinism and strided views on their
 * chunk sizes: test_properties.c. */
#include "harness/measure/check.h"
#include "kernels/deltanet/deltanet.h"
#include "harness/measure/fixture.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const KS[] = {&attn_kernel_deltanet, &attn_kernel_gated_deltanet};

/* fx_args with Dv columns of V and O and, when chunk > 0, --param chunk. */
static attn_args delta_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, int64_t Dv,
                            const char *mask, int64_t chunk, int threads)
{
    attn_args a = fx_args(B, H, H_kv, N, N, D, mask, threads);
    a.Dv = Dv;
    if (chunk > 0) {
        char kv[32];
        snprintf(kv, sizeof kv, "chunk=%lld", (long long)chunk);
        cr_assert_eq(param_bag_add(&a.params, kv), 0, "%s", attn_last_error());
    }
    return a;
}

/* Runs k's forward (and backward) on p with O NaN-filled first, so a row the kernel forgets fails. */
static void run_checked(const attn_kernel *k, fx_problem *p, int bwd, const char *what)
{
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb));
    cr_assert_eq(fx_run(k, p, bwd), 0, "%s %s: %s", k->name, what, attn_last_error());
}

static double max_abs_f(const attn_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < t->B * t->sb; i++)
        m = fmax(m, fabs(t->data[i]));
    return m;
}

/* max|x - y| / max|y| over two fp32 tensors of one shape. */
static double rel_diff(const attn_tensor *x, const attn_tensor *y)
{
    double e = 0;
    for (int64_t i = 0; i < x->B * x->sb; i++) {
        double d = fabs((double)x->data[i] - y->data[i]);
        e = d <= e ? e : d;
    }
    double m = max_abs_f(y);
    return m > 0 ? e / m : e;
}

static int all_finite(const attn_tensor *t)
{
    for (int64_t i = 0; t->data && i < t->B * t->sb; i++)
        if (!isfinite(t->data[i]))
            return 0;
    return 1;
}

Test(deltanet, chunked_equals_recurrent_reference, .timeout = 60)
{
    /* B, H, H_kv, N, D, Dv, mask: pairwise over the 4.2 row (N in {1,7,130}, D in {16,32}) */
    static const struct {
        int64_t B, H, H_kv, N, D, Dv;
        const char *mask;
    } cases[] = {
        {1, 2, 2, 1, 16, 16, "causal"},
        {2, 4, 2, 7, 32, 24, "causal"},
        {1, 4, 2, 130, 16, 40, "causal"},
        {1, 4, 2, 130, 32, 32, "document:lens=50+1+79,causal=1"},
        {2, 2, 1, 7, 16, 16, "document:lens=3+4,causal=1"},
        {1, 2, 2, 130, 32, 16, "document:n=4,seed=3"}, /* causality is intrinsic: same resets */
    };
    static const int64_t chunks[] = {1, 16, 64};
    for (int ik = 0; ik < 2; ik++)
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
            for (int ic = 0; ic < 3; ic++) {
                attn_args a = delta_args(cases[c].B, cases[c].H, cases[c].H_kv, cases[c].N, cases[c].D,
                                         cases[c].Dv, cases[c].mask, chunks[ic], 1);
                char what[160];
                snprintf(what, sizeof what, "B%lld H%lld/%lld N%lld D%lld Dv%lld %s chunk=%lld",
                         (long long)a.B, (long long)a.H, (long long)a.H_kv, (long long)a.Nk, (long long)a.D,
                         (long long)a.Dv, cases[c].mask, (long long)chunks[ic]);
                fx_problem p;
                fx_make_for(&p, KS[ik], &a, 10 + c);
                run_checked(KS[ik], &p, 0, what);
                double e = fx_err_o(&p);
                cr_assert(e <= 5e-5, "%s %s: err_O %.3g > 5e-5", KS[ik]->name, what, e);
                fx_free(&p);
            }
}

/* Rows 0..D-1 of `basis` (D x D, row-major): Gram-Schmidt of random vectors, in double. */
static void orthonormal_basis(double *basis, int64_t D, uint64_t seed)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t i = 0; i < D; i++) {
        double *x = basis + i * D, n = 0;
        for (int64_t d = 0; d < D; d++)
            x[d] = attn_rng_range(&r, -1, 1);
        for (int64_t j = 0; j < i; j++) {
            double dot = 0;
            for (int64_t d = 0; d < D; d++)
                dot += x[d] * basis[j * D + d];
            for (int64_t d = 0; d < D; d++)
                x[d] -= dot * basis[j * D + d];
        }
        for (int64_t d = 0; d < D; d++)
            n += x[d] * x[d];
        for (int64_t d = 0; d < D; d++)
            x[d] /= sqrt(n);
    }
}

/* Writes (k_i, v_i), i < D, with beta = 1 and orthonormal keys; then step D + i
 * rewrites the same pair (a zero delta) and queries k_i / sc: the output must
 * be v_i, since S = sum_i v_i k_i^T (Schlag et al. 2021, Sec. 4.2). */
Test(deltanet, beta_one_with_orthonormal_keys_recalls_values, .timeout = 30)
{
    const int64_t D = 16, N = 2 * D;
    double basis[16 * 16];
    orthonormal_basis(basis, D, 42);
    static const int64_t chunks[] = {1, 16, 64};
    for (int ic = 0; ic < 3; ic++) {
        attn_args a = delta_args(1, 1, 1, N, D, D, "causal", chunks[ic], 1);
        fx_problem p;
        fx_make_for(&p, &attn_kernel_deltanet, &a, 5);
        float inv_sc = (float)(1.0 / attn_scale(&p.a));
        for (int64_t t = 0; t < N; t++) {
            int64_t i = t % D;
            p.beta.data[t] = 1.0f;
            for (int64_t d = 0; d < D; d++) {
                attn_at(&p.k, 0, 0, t)[d] = (float)basis[i * D + d];
                attn_at(&p.v, 0, 0, t)[d] = attn_at(&p.v, 0, 0, i)[d];
                attn_at(&p.q, 0, 0, t)[d] = (float)basis[i * D + d] * inv_sc;
            }
        }
        fx_ref_forward(&p);
        run_checked(&attn_kernel_deltanet, &p, 0, "recall");
        for (int64_t t = D; t < N; t++)
            for (int64_t d = 0; d < D; d++) {
                double v = attn_at(&p.v, 0, 0, t - D)[d];
                cr_assert(fabs(attn_at(&p.o, 0, 0, t)[d] - v) <= 1e-5, "chunk=%lld: o[%lld][%lld] = %.7g, v = %.7g",
                          (long long)chunks[ic], (long long)t, (long long)d, attn_at(&p.o, 0, 0, t)[d], v);
                cr_assert(fabs(attn_at64(&p.o64, 0, 0, t)[d] - v) <= 1e-6, "reference does not recall");
            }
        fx_free(&p);
    }
}

/* g = 0 (a = 1) makes the gated kernel the ungated one: forward and gradients. */
Test(deltanet, zero_log_gates_equal_ungated, .timeout = 30)
{
    attn_args a = delta_args(1, 4, 2, 70, 16, 24, "document:lens=20+50,causal=1", 16, 1);
    fx_problem p, u;
    fx_make_for(&p, &attn_kernel_gated_deltanet, &a, 3);
    fx_make_for(&u, &attn_kernel_deltanet, &a, 3); /* same seed: same q, k, v, beta */
    memset(p.gate.data, 0, sizeof(float) * (size_t)(p.gate.B * p.gate.sb));
    /* dO is drawn after the kernel's inputs, so after p's gates: use u's */
    memcpy(p.d_o.data, u.d_o.data, sizeof(float) * (size_t)(u.d_o.B * u.d_o.sb));
    run_checked(&attn_kernel_gated_deltanet, &p, 1, "g=0");
    run_checked(&attn_kernel_deltanet, &u, 1, "ungated");
    const attn_tensor *x[] = {&p.o, &p.dq, &p.dk, &p.dv, &p.dbeta}, *y[] = {&u.o, &u.dq, &u.dk, &u.dv, &u.dbeta};
    static const char *const names[] = {"O", "dQ", "dK", "dV", "dbeta"};
    for (int i = 0; i < 5; i++) {
        double e = rel_diff(x[i], y[i]);
        cr_assert(e <= 1e-6, "%s: gated(g=0) vs ungated %.3g > 1e-6", names[i], e);
    }
    cr_assert(all_finite(&p.dgate), "dgate not finite");
    fx_free(&p);
    fx_free(&u);
}

/* Log gates of -30 (a = 9e-14, cumulative -1920 over a chunk): no NaN/Inf,
 * output still the reference's, gradients finite. */
Test(deltanet, log_gates_of_minus_30_stay_finite, .timeout = 30)
{
    static const int64_t chunks[] = {1, 64};
    for (int ic = 0; ic < 2; ic++) {
        attn_args a = delta_args(1, 2, 1, 130, 16, 16, "document:lens=60+70,causal=1", chunks[ic], 1);
        fx_problem p;
        fx_make_for(&p, &attn_kernel_gated_deltanet, &a, 8);
        for (int64_t i = 0; i < p.gate.B * p.gate.sb; i++)
            p.gate.data[i] = i % 3 ? -30.0f : -0.5f;
        fx_ref_forward(&p);
        run_checked(&attn_kernel_gated_deltanet, &p, 1, "g=-30");
        const attn_tensor *t[] = {&p.o, &p.dq, &p.dk, &p.dv, &p.dbeta, &p.dgate};
        for (int i = 0; i < 6; i++)
            cr_assert(all_finite(t[i]), "chunk=%lld: tensor %d has NaN/Inf", (long long)chunks[ic], i);
        double e = fx_err_o(&p);
        cr_assert(e <= 5e-5, "chunk=%lld: err_O %.3g", (long long)chunks[ic], e);
        fx_free(&p);
    }
}

Test(deltanet, backward_matches_central_differences_of_reference, .timeout = 60)
{
    /* N, D, Dv, mask; N = 70 spans two backward blocks (checkpoint at 64) */
    static const struct {
        int64_t N, D, Dv;
        const char *mask;
    } cases[] = {
        {5, 8, 8, "causal"},
        {9, 16, 8, "causal"},
        {9, 8, 12, "document:lens=4+5,causal=1"},
        {70, 4, 4, "causal"},
        {130, 4, 4, "document:lens=70+60,causal=1"}, /* backward blocks 0-63, 64-69, 70-129 */
    };
    static const char *const names[] = {"dq", "dk", "dv", "dbeta", "dgate"};
    for (int ik = 0; ik < 2; ik++)
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            attn_args a = delta_args(1, 2, 1, cases[c].N, cases[c].D, cases[c].Dv, cases[c].mask, 0, 1);
            double err[ATTN_CHECK_GRADS];
            cr_assert_eq(check_kernel_backward(KS[ik], &a, 20 + c, err), 0, "%s", attn_last_error());
            for (int i = 0; i < 5; i++)
                cr_assert(err[i] <= 1e-4, "%s N=%lld D=%lld Dv=%lld %s: %s err %.3g > 1e-4", KS[ik]->name,
                          (long long)cases[c].N, (long long)cases[c].D, (long long)cases[c].Dv, cases[c].mask,
                          names[i], err[i]);
        }
}

/* docs/kernels/deltanet.md: state Dk Dv per (b, KV head); C = N (6 Dk Dv + C (6 Dk + 4 Dv)) + N C^2/3
 * per (b, query head); bytes each tensor once. */
Test(deltanet, state_size_and_cost_model, .timeout = 30)
{
    static const struct {
        int64_t B, H, H_kv, N, D, Dv, chunk;
    } shapes[] = {{1, 2, 2, 128, 16, 32, 0}, {2, 4, 2, 100, 32, 16, 16}, {1, 2, 1, 30, 8, 8, 64}};
    for (int ik = 0; ik < 2; ik++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            attn_args a = delta_args(shapes[s].B, shapes[s].H, shapes[s].H_kv, shapes[s].N, shapes[s].D,
                                     shapes[s].Dv, "causal", shapes[s].chunk, 2);
            a.backward = 1;
            attn_ctx ctx;
            cr_assert_eq(attn_ctx_create(KS[ik], &a, &ctx), 0, "%s", attn_last_error());
            double B = (double)a.B, H = (double)a.H, Hkv = (double)a.H_kv, N = (double)a.Nk;
            double Dk = (double)a.D, Dv = (double)a.Dv, g = ik;
            double C = shapes[s].chunk ? (double)shapes[s].chunk : 64;
            C = C < N ? C : N;
            size_t state = (size_t)(4 * B * Hkv * Dk * Dv);
            cr_assert_eq(KS[ik]->state_bytes(&ctx.args), state);
            cr_assert_eq(ctx.state_bytes_used, state, "state_bytes_used %zu, expected %zu", ctx.state_bytes_used,
                         state);
            double f = B * H * (N * (6 * Dk * Dv + C * (6 * Dk + 4 * Dv)) + N * C * C / 3);
            cr_assert(fabs(KS[ik]->flops(&ctx.args, ATTN_PASS_FWD) - f) <= 1e-9 * f);
            cr_assert(fabs(KS[ik]->flops(&ctx.args, ATTN_PASS_BWD) - 2.5 * f) <= 1e-9 * f);
            double bf = 4 * B * N * (H * Dk + Hkv * (Dk + Dv + 1 + g) + H * Dv);
            double bb = 4 * B * N * (2 * H * Dk + 2 * Hkv * (Dk + Dv + 1 + g) + H * Dv);
            cr_assert(fabs(KS[ik]->bytes(&ctx.args, ATTN_PASS_FWD) - bf) <= 1e-9 * bf);
            cr_assert(fabs(KS[ik]->bytes(&ctx.args, ATTN_PASS_BWD) - bb) <= 1e-9 * bb);
            attn_ctx_destroy(&ctx);
        }
}

Test(deltanet, rejects_bad_params_masks_and_offsets, .timeout = 30)
{
    static const char *const bad[] = {"chunk=0", "chunk=1025", "chunk=x", "block=4"};
    for (int ik = 0; ik < 2; ik++) {
        for (int i = 0; i < 4; i++) {
            attn_args a = delta_args(1, 2, 2, 16, 8, 8, "causal", 0, 1);
            cr_assert_eq(param_bag_add(&a.params, bad[i]), 0);
            attn_ctx ctx;
            cr_assert_eq(attn_ctx_create(KS[ik], &a, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
            cr_assert(strstr(attn_last_error(), bad[i][0] == 'b' ? "block" : "chunk"), "%s", attn_last_error());
        }
        static const char *const masks[] = {"full", "window:wl=4,wr=0", "prefix:p=4"};
        for (int i = 0; i < 3; i++) {
            attn_args a = delta_args(1, 2, 2, 16, 8, 8, masks[i], 0, 1);
            attn_ctx ctx;
            cr_assert_eq(attn_ctx_create(KS[ik], &a, &ctx), ATTN_EUNSUPPORTED, "mask %s accepted", masks[i]);
        }
        attn_args a = delta_args(1, 2, 2, 16, 8, 8, "causal", 1024, 1);
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(KS[ik], &a, &ctx), 0, "chunk=1024: %s", attn_last_error());
        attn_ctx_destroy(&ctx);
        a.q_off = 3, a.k_off = 1;
        cr_assert_eq(attn_ctx_create(KS[ik], &a, &ctx), ATTN_EUNSUPPORTED, "q_off != k_off accepted");
    }
}
