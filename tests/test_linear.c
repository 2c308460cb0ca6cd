/* Properties of `linear` (Katharopoulos et al. 2020, elu+1): the chunked fp32 forward equals the recurrent double reference
 * for chunk sizes, ragged lengths, GQA, Dv != D, causal / non-causal and
 * document masks; the recurrent reference equals the explicit normalised
 * kernel matrix; gradients; the feature map; state size; cost model;
 * parameter validation. Causal leakage, thread determinism and strided views
 * on its chunk sizes: test_properties.c. */
#include "harness/measure/check.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "kernels/linear/linear.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_linear;

/* Masks for a length-N problem: full, causal, and documents (non-causal and causal). */
static void masks_for(int64_t N, char m[4][96])
{
    snprintf(m[0], 96, "full");
    snprintf(m[1], 96, "causal");
    if (N >= 7) {
        snprintf(m[2], 96, "document:lens=%ld+1+%ld", (long)(N / 3), (long)(N - N / 3 - 1));
        snprintf(m[3], 96, "document:lens=%ld+1+%ld,causal=1", (long)(N / 3), (long)(N - N / 3 - 1));
    } else
        m[2][0] = m[3][0] = '\0';
}

Test(linear, chunked_equals_recurrent_for_chunk_1_16_64_ragged_n_gqa_dv_and_document_masks, .timeout = 60)
{
    static const int64_t Ns[] = {1, 7, 130}, Ds[] = {16, 64}, chunks[] = {1, 16, 64};
    for (int in = 0; in < 3; in++) {
        char masks[4][96];
        masks_for(Ns[in], masks);
        for (int id = 0; id < 2; id++)
            for (int im = 0; im < 4 && masks[im][0]; im++) {
                attn_args a = fx_args(1, 4, 2, Ns[in], Ns[in], Ds[id], masks[im], 2);
                a.Dv = Ds[id] / 2 + 8; /* Dv != D */
                fx_problem p;
                fx_make_for(&p, K, &a, 10 + (uint64_t)(in * 8 + id * 4 + im));
                for (int ic = 0; ic < 3; ic++) {
                    char param[32];
                    snprintf(param, sizeof param, "chunk=%ld", (long)chunks[ic]);
                    param_bag saved = p.a.params;
                    fx_add_params(&p.a, param);
                    memset(p.o.data, 0xff, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* NaN: every row written */
                    int rc = fx_run(K, &p, 0);
                    p.a.params = saved;
                    cr_assert_eq(rc, 0, "%s: %s", param, attn_last_error());
                    double e = fx_err_o(&p);
                    cr_assert(e <= 5e-5, "N=%ld D=%ld %s %s: err_O %.3g > 5e-5", (long)Ns[in], (long)Ds[id],
                              masks[im], param, e);
                }
                fx_free(&p);
            }
    }
}

/* Kernel of linear attention in double, written out independently of the
 * feature-map code: sum_d phi(q_d) phi(k_d) with phi = elu + 1. */
static double elu1_kernel(const double *q, const double *k, int64_t D)
{
    double s = 0;
    for (int64_t d = 0; d < D; d++)
        s += (q[d] > 0 ? q[d] + 1 : exp(q[d])) * (k[d] > 0 ? k[d] + 1 : exp(k[d]));
    return s;
}

Test(linear, recurrent_reference_equals_explicit_normalised_kernel_matrix)
{
    static const int64_t Ns[] = {1, 7, 130};
    for (int in = 0; in < 3; in++) {
        char masks[4][96];
        masks_for(Ns[in], masks);
        for (int im = 0; im < 4 && masks[im][0]; im++) {
            attn_args a = fx_args(2, 4, 2, Ns[in], Ns[in], 16, masks[im], 1);
            a.Dv = 12;
            fx_problem p;
            fx_make_for(&p, K, &a, 40 + (uint64_t)(in * 4 + im)); /* o64 = ref_forward (recurrent) */
            attn_tensor_f64 rec = p.o64;
            double *o = malloc(sizeof(double) * (size_t)(rec.B * rec.sb));
            memcpy(o, rec.data, sizeof(double) * (size_t)(rec.B * rec.sb));
            attn_io64 io = {.q = p.q64, .k = p.k64, .v = p.v64, .o = p.o64};
            lin_kernel_matrix_f64(&p.a, elu1_kernel, 0, &io);
            double err = 0, mx = 0;
            for (int64_t i = 0; i < rec.B * rec.sb; i++)
                err = fmax(err, fabs(o[i] - rec.data[i])), mx = fmax(mx, fabs(o[i]));
            cr_assert(mx > 0.01 && err <= 1e-12 * mx, "N=%ld %s: |recurrent - kernel matrix| = %.3g (max %.3g)",
                      (long)Ns[in], masks[im], err, mx);
            free(o);
            fx_free(&p);
        }
    }
}

Test(linear, backward_matches_central_differences_of_the_reference, .timeout = 60)
{
    static const char *const masks[] = {"full", "causal", "document:lens=3+1+5", "document:lens=3+1+5,causal=1"};
    static const int64_t Ns[] = {5, 9};
    static const char *const params[] = {NULL, "chunk=1", "chunk=4"};
    for (int in = 0; in < 2; in++)
        for (int im = 0; im < 4; im++)
            for (int ip = 0; ip < 3; ip++) {
                if (in == 0 && im >= 2)
                    continue; /* the document lengths sum to 9 */
                attn_args a = fx_args(1, 2, 1, Ns[in], Ns[in], 16, masks[im], 1);
                a.Dv = ip == 2 ? 8 : 16;
                if (params[ip])
                    fx_add_params(&a, params[ip]);
                double e[ATTN_CHECK_GRADS];
                cr_assert_eq(check_kernel_backward(K, &a, 70 + (uint64_t)(in * 12 + im * 3 + ip), e), 0, "%s",
                             attn_last_error());
                for (int t = 0; t < 3; t++)
                    cr_assert(e[t] <= 1e-4, "N=%ld %s %s: gradient %d error %.3g > 1e-4", (long)Ns[in], masks[im],
                              params[ip] ? params[ip] : "", t, e[t]);
            }
}

Test(linear, elu_plus_one_feature_map_is_positive_with_the_right_derivative)
{
    static const float xs[] = {-1e30f, -1000.f, -104.f, -87.4f, -87.2f, -20.f, -1.f, -1e-7f, 0.f, 1e-7f, 0.5f, 3.f,
                               1e6f};
    enum { NX = sizeof xs / sizeof *xs };
    lin_fmap m;
    attn_linear_elu1_map(&m, NX);
    cr_assert_eq(m.F, NX);
    float f[NX], df[NX], dx[NX];
    m.fwd(&m, xs, NX, 1, f, NX);
    for (int i = 0; i < NX; i++) {
        cr_assert(f[i] > 0 && isfinite(f[i]), "phi(%g) = %g is not a positive finite float", xs[i], f[i]);
        double want = xs[i] > 0 ? xs[i] + 1.0 : exp(xs[i]);
        cr_assert(fabs(f[i] - want) <= 2e-7 * want + 1.3e-38, "phi(%g) = %.9g, expected %.9g", xs[i], f[i], want);
        df[i] = 1.0f;
    }
    m.bwd(&m, xs, NX, 1, df, NX, dx, NX);
    for (int i = 0; i < NX; i++) {
        double want = xs[i] > 0 ? 1.0 : exp(xs[i]);
        cr_assert(fabs(dx[i] - want) <= 2e-7 * want + 1.3e-38, "phi'(%g) = %.9g, expected %.9g", xs[i], dx[i], want);
    }
}

Test(linear, state_bytes_equal_what_init_sizes_and_the_formula)
{
    static const int64_t shapes[][6] = {{1, 4, 2, 130, 16, 24}, {2, 8, 8, 64, 64, 64}};
    for (int s = 0; s < 2; s++) {
        const int64_t *x = shapes[s];
        attn_args a = fx_args(x[0], x[1], x[2], x[3], x[3], x[4], "causal", 2);
        a.Dv = x[5];
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(K, &a, &ctx), 0, "%s", attn_last_error());
        size_t want = (size_t)(x[0] * x[2] * (x[4] * x[5] + x[4]) * 4);
        cr_assert_eq(K->state_bytes(&ctx.args), want);
        cr_assert_eq(ctx.state_bytes_used, want, "init sized %zu bytes of state, expected %zu", ctx.state_bytes_used,
                     want);
        cr_assert(ctx.workspace_bytes >= want);
        attn_ctx_destroy(&ctx);
    }
}

Test(linear, cost_model_matches_the_formulas)
{
    attn_args a = fx_args(2, 4, 2, 100, 100, 16, "causal", 1);
    a.Dv = 24;
    fx_add_params(&a, "chunk=32");
    double N = 100, F = 16, Dv = 24, C = 32, fwd = 2 * 4 * (4 * N * F * Dv + 2 * N * C * (F + Dv));
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-6 * fwd);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * fwd, 1e-6 * fwd);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4.0 * 2 * N * (4 * 16 + 2 * (16 + 24) + 4 * 24), 1e-3);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_BWD), 4.0 * 2 * N * (2 * 4 * 16 + 2 * 2 * (16 + 24) + 4 * 24), 1e-3);
    attn_args f = fx_args(1, 2, 2, 50, 50, 16, "full", 1);
    cr_assert_float_eq(K->flops(&f, ATTN_PASS_FWD), 2 * 4.0 * 50 * 16 * 16, 1e-6);
    attn_args s = fx_args(1, 2, 2, 10, 10, 16, "causal", 1); /* chunk capped at N */
    cr_assert_float_eq(K->flops(&s, ATTN_PASS_FWD), 2 * (4.0 * 10 * 16 * 16 + 2.0 * 10 * 10 * 32), 1e-6);
}

Test(linear, invalid_params_are_rejected_with_a_message_naming_them)
{
    static const char *const bad[] = {"chunk=0", "chunk=1025", "chunk=abc", "window=4"};
    static const char *const named[] = {"chunk", "chunk", "chunk", "window"};
    for (int i = 0; i < 4; i++) {
        attn_args a = fx_args_params(1, 2, 2, 16, 16, 16, "causal", 1, bad[i]);
        attn_ctx ctx;
        attn_clear_error();
        cr_assert_neq(attn_ctx_create(K, &a, &ctx), 0, "%s accepted", bad[i]);
        cr_assert(strstr(attn_last_error(), named[i]), "%s: message '%s' does not name the param", bad[i],
                  attn_last_error());
    }
    attn_args w = fx_args(1, 2, 2, 16, 16, 16, "window:wl=4,wr=0", 1);
    attn_ctx ctx;
    cr_assert_neq(attn_ctx_create(K, &w, &ctx), 0, "a window mask was accepted");
}

/* ATTN_CNT_FLOPS counts the products executed: non-causal, one S_ext = phi(K)^T
 * [V|1] per KV head and one phi(Q) S_ext per query head, 2 N F (Dv+1) each. */
Test(linear, flops_counter_counts_the_executed_products)
{
    attn_args a = fx_args(2, 4, 2, 50, 50, 16, "full", 2);
    a.Dv = 12;
    fx_problem p;
    fx_make_for(&p, K, &a, 6);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    long long want = (long long)(2 * (2 + 4)) * 2 * 50 * 16 * 13;
    cr_assert_eq(attn_counter_get(ATTN_CNT_FLOPS), want, "counted %lld, expected %lld",
                 attn_counter_get(ATTN_CNT_FLOPS), want);
    cr_assert_eq(attn_counter_get(ATTN_CNT_BYTES_READ), (long long)(4 * 50 * (2 * 2) * (2 * 16 + 2 * (16 + 12))));
    fx_free(&p);
}

/* Positions before the first document (q_off = k_off = -2) belong to no
 * document: their rows see no key, so O = 0 there, in the kernel, in the
 * recurrent reference and in the mask-predicate kernel matrix; their keys get
 * no gradient. */
Test(linear, rows_outside_every_document_get_zero_output_and_no_gradient)
{
    for (int causal = 0; causal < 2; causal++) {
        attn_args a = fx_args(1, 2, 1, 12, 12, 16, causal ? "document:lens=4+6,causal=1" : "document:lens=4+6", 1);
        a.q_off = a.k_off = -2;
        attn_mask_bind(&a.mask, 10);
        fx_problem p;
        fx_make_for(&p, K, &a, 8);
        cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
        cr_assert(fx_err_o(&p) <= 5e-5, "err_O %.3g", fx_err_o(&p));
        size_t n = (size_t)(p.o64.B * p.o64.sb);
        double *rec = malloc(sizeof(double) * n);
        memcpy(rec, p.o64.data, sizeof(double) * n);
        attn_io64 io = {.q = p.q64, .k = p.k64, .v = p.v64, .o = p.o64};
        lin_kernel_matrix_f64(&p.a, elu1_kernel, 0, &io);
        for (size_t i = 0; i < n; i++)
            cr_assert(fabs(rec[i] - p.o64.data[i]) <= 1e-12, "recurrent and kernel-matrix references differ");
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i = 0; i < 2; i++)
                for (int64_t d = 0; d < 16; d++) {
                    cr_assert(attn_at(&p.o, 0, h, i)[d] == 0.0f && attn_at64(&p.o64, 0, h, i)[d] == 0.0);
                    cr_assert(attn_at(&p.dq, 0, h, i)[d] == 0.0f && attn_at(&p.dk, 0, 0, i)[d] == 0.0f);
                }
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &p.a, 12, e), 0, "%s", attn_last_error());
        cr_assert(e[0] <= 1e-4 && e[1] <= 1e-4 && e[2] <= 1e-4, "gradient errors %.3g %.3g %.3g", e[0], e[1], e[2]);
        free(rec);
        fx_free(&p);
    }
}
