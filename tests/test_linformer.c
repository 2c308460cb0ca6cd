/* Properties of the `linformer` kernel (Linformer: learned length
 * projections E, F): the fp32 kernel equals its double reference (shapes,
 * k, share_ef, tiles, GQA, padded batches) and its gradients, dE and dF
 * included, equal central differences of it; with k = Nk and E = F = I it is
 * softmax attention (the oracle); share_ef=1 is share_ef=0 with F = E and its
 * gradient is dE + dF; the error against the oracle of untrained (random)
 * projections falls as k grows; k above Nk is clamped; fewer keys than the
 * n the projections cover act as zero-padded keys; weights made for
 * another Nk are refused, in the kernel and in the model's block; the init
 * draws N(0, 1/k); the cost model; a small encoder with it matches its double
 * model's gradients. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/core/oracle.h"
#include "kernels/linformer/linformer.h"
#include "common/rng.h"
#include "model_check.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_linformer;

static attn_args lf_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, "full", threads, params);
}

static lf_plan plan_of(const attn_args *a)
{
    lf_plan pl;
    cr_assert_eq(attn_linformer_plan(&pl, a), 0, "%s", attn_last_error());
    return pl;
}

Test(linformer, forward_matches_double_reference, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N, D;
        const char *params;
    } cases[] = {
        {2, 2, 2, 40, 16, "k=8"},          {1, 3, 3, 64, 32, "k=16 share_ef=1 tile=7"},
        {2, 4, 2, 33, 16, "k=5 tile=4"},   {1, 2, 1, 130, 64, "k=256"},
        {1, 1, 1, 1, 16, ""},              {2, 2, 2, 50, 80, "k=50 share_ef=1 tile=64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[96];
        snprintf(what, sizeof what, "B%ld H%ld/%ld N%ld D%ld %s", (long)cases[i].B, (long)cases[i].H,
                 (long)cases[i].H_kv, (long)cases[i].N, (long)cases[i].D, cases[i].params);
        attn_args a = lf_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, cases[i].params, 2);
        own_ref_check(K, &a, 10 + i, what);
    }
}

Test(linformer, padded_forward_matches_double_reference, .timeout = 60)
{
    int64_t lens[3] = {45, 17, 0};
    attn_args a = lf_args(3, 2, 1, 45, 16, "k=12 tile=8", 2);
    a.seq_len = lens;
    own_ref_check(K, &a, 7, "padded 45+17+0");
}

Test(linformer, backward_matches_reference_gradients_including_dw, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N;
        const char *params;
    } cases[] = {{1, 2, 2, 9, "k=4"}, {2, 2, 1, 8, "k=3 share_ef=1 tile=3"}, {1, 3, 3, 6, "k=6 tile=4"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = lf_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, 8, cases[i].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        for (int g = 0; g < ATTN_CHECK_GRADS; g++)
            if (g < 3 || g == 6)
                cr_assert(e[g] <= 1e-4, "case %zu (%s): %s err %.3g", i, cases[i].params, check_grad_names[g], e[g]);
    }
}

/* theta[p] = f(mat, r, j) through the layout (E is mat 0, F mat 1). */
static void set_theta(const attn_args *a, const attn_tensor *w, double (*f)(int mat, int64_t r, int64_t j))
{
    lf_plan pl = plan_of(a);
    for (int64_t p = 0; p < pl.W * a->H; p++)
        *lf_theta_at(&pl, w, p) = 0.0f;
    for (int mat = 0; mat < pl.nmat; mat++)
        for (int64_t r = 0; r < pl.k; r++)
            for (int64_t j = 0; j < pl.n; j++)
                *lf_theta_at(&pl, w, (mat * pl.k + r) * pl.n + j) = (float)f(mat, r, j);
}

static double identity(int mat, int64_t r, int64_t j)
{
    (void)mat;
    return r == j;
}

Test(linformer, identity_projections_with_k_equal_to_nk_are_softmax_attention)
{
    static const char *const params[] = {"k=70", "k=70 share_ef=1 tile=16", "k=500 tile=9"}; /* 500: clamped to 70 */
    for (int i = 0; i < 3; i++) {
        attn_args a = lf_args(2, 4, 2, 70, 32, params[i], 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 40 + (uint64_t)i);
        set_theta(&a, &p.w, identity);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        attn_args oa = fx_args(2, 4, 2, 70, 70, 32, "full", 1);
        attn_tensor_f64 o = p.o64;
        o.data = calloc((size_t)(o.B * o.sb), sizeof(double));
        double *lse = calloc((size_t)(2 * 4 * 70), sizeof(double)), vmax = 0, e = 0, le = 0;
        attn_oracle_forward_f64(&oa, &p.q64, &p.k64, &p.v64, &o, lse);
        for (int64_t j = 0; j < p.v.B * p.v.sb; j++)
            vmax = fmax(vmax, fabs(p.v.data[j]));
        for (int64_t b = 0, n = 0; b < 2; b++)
            for (int64_t h = 0; h < 4; h++)
                for (int64_t r = 0; r < 70; r++, n++) {
                    for (int64_t d = 0; d < 32; d++)
                        e = fmax(e, fabs(attn_at(&p.o, b, h, r)[d] - attn_at64(&o, b, h, r)[d]));
                    le = fmax(le, fabs(p.lse[n] - lse[n]) / (1 + fabs(lse[n])));
                }
        cr_assert(e / vmax <= fx_tol_o(70), "%s: err_O %.3g against the oracle", params[i], e / vmax);
        cr_assert(le <= CHECK_TOL_LSE, "%s: lse err %.3g against the oracle", params[i], le);
        free(o.data), free(lse);
        fx_free(&p);
    }
}

static double rnd_theta(int mat, int64_t r, int64_t j)
{
    return sin(1.7 * (double)(r * 31 + j * 7 + 1)) / 3.0 + (mat ? 0.5 : 0.0);
}

static double rnd_theta_e(int mat, int64_t r, int64_t j)
{
    (void)mat;
    return rnd_theta(0, r, j);
}

/* share_ef=1 is share_ef=0 with F = E, and its dE is dE + dF of that. */
Test(linformer, shared_ef_equals_separate_projections_with_f_equal_to_e)
{
    attn_args a0 = lf_args(2, 2, 1, 30, 16, "k=7 tile=8", 2), a1 = lf_args(2, 2, 1, 30, 16, "k=7 share_ef=1 tile=8", 2);
    fx_problem p0, p1;
    fx_make_for(&p0, K, &a0, 5);
    fx_make_for(&p1, K, &a1, 5);
    set_theta(&a0, &p0.w, rnd_theta_e);
    set_theta(&a1, &p1.w, rnd_theta_e);
    cr_assert_eq(fx_run(K, &p0, 1), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &p1, 1), 0, "%s", attn_last_error());
    double e = 0, m = 0, g = 0, gm = 0;
    for (int64_t i = 0; i < p0.o.B * p0.o.sb; i++)
        e = fmax(e, fabs(p0.o.data[i] - p1.o.data[i])), m = fmax(m, fabs(p0.o.data[i]));
    lf_plan l0 = plan_of(&a0), l1 = plan_of(&a1);
    int64_t kn = l1.k * l1.n;
    for (int64_t i = 0; i < kn; i++) {
        double sum = *lf_theta_at(&l0, &p0.dw, i) + *lf_theta_at(&l0, &p0.dw, kn + i), de = *lf_theta_at(&l1, &p1.dw, i);
        g = fmax(g, fabs(sum - de)), gm = fmax(gm, fabs(sum));
    }
    cr_assert(e <= 1e-6 * m, "O differs: %.3g of %.3g", e, m);
    cr_assert(g <= 1e-5 * gm && gm > 0, "dE shared vs dE + dF: %.3g of %.3g", g, gm);
    fx_free(&p0), fx_free(&p1);
}

/* Relative Frobenius error of the kernel with its initial (random) E, F
 * against the oracle: N(0,1) inputs, Q scaled by 3 (non-uniform attention). */
static double rel_fro_err(int64_t N, int64_t k, int share_ef, uint64_t seed)
{
    char params[48];
    snprintf(params, sizeof params, "k=%ld share_ef=%d", (long)k, share_ef);
    attn_args a = lf_args(1, 2, 2, N, 32, params, 2);
    fx_problem p;
    fx_make_for(&p, K, &a, seed); /* p.w: the init's N(0, 1/k) draw from seed */
    attn_rng r;
    attn_rng_seed(&r, seed * 7919 + 1);
    const attn_tensor *in[] = {&p.q, &p.k, &p.v};
    for (int t = 0; t < 3; t++)
        for (int64_t i = 0; i < in[t]->B * in[t]->sb; i++)
            in[t]->data[i] = (float)(attn_rng_normal(&r) * (t == 0 ? 3.0 : 1.0));
    problem_widen_inputs(&p);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    attn_args oa = fx_args(1, 2, 2, N, N, 32, "full", 1);
    attn_tensor_f64 o = p.o64;
    o.data = calloc((size_t)(o.B * o.sb), sizeof(double));
    double *lse = calloc((size_t)(2 * N), sizeof(double)), num = 0, den = 0;
    attn_oracle_forward_f64(&oa, &p.q64, &p.k64, &p.v64, &o, lse);
    for (int64_t i = 0; i < o.B * o.sb; i++) {
        double d = p.o.data[i] - o.data[i];
        num += d * d, den += o.data[i] * o.data[i];
    }
    free(o.data), free(lse);
    fx_free(&p);
    return sqrt(num / den);
}

/* Untrained, E and F are i.i.d. N(0, 1/k) draws (the init): K~ and V~ are
 * random mixtures of sqrt(Nk/k) times the keys' size, so the output is far
 * from softmax attention at small k and its error falls as k grows; even at
 * k = Nk a random projection is another attention (the error stays near 1):
 * only learned (or identity) projections approximate softmax. */
Test(linformer, error_of_random_projections_falls_as_k_grows_but_not_to_zero, .timeout = 60)
{
    static const int64_t ks[] = {8, 32, 128, 512};
    for (int share = 0; share < 2; share++) {
        double prev = INFINITY, mean = 0;
        for (int i = 0; i < 4; i++, prev = mean) {
            mean = 0;
            for (uint64_t s = 0; s < 3; s++)
                mean += rel_fro_err(512, ks[i], share, 100 + s) / 3;
            cr_log_info("share_ef=%d k=%ld: mean rel_fro_err %.3f", share, (long)ks[i], mean);
            cr_assert(mean < 0.75 * prev, "share_ef=%d k=%ld: mean error %.3f, at k/4 %.3f", share, (long)ks[i], mean,
                      prev);
        }
        cr_assert(mean > 0.5, "share_ef=%d: random projections at k = Nk gave error %.3f", share, mean);
    }
}

Test(linformer, k_above_nk_is_clamped_to_nk)
{
    attn_args big = lf_args(1, 2, 2, 10, 16, "k=256", 1), exact = lf_args(1, 2, 2, 10, 16, "k=10", 1);
    cr_assert_eq(plan_of(&big).k, 10);
    cr_assert_eq(K->input_cols(&big, ATTN_IN_WEIGHTS), K->input_cols(&exact, ATTN_IN_WEIGHTS));
    cr_assert_eq(K->flops(&big, ATTN_PASS_FWD), K->flops(&exact, ATTN_PASS_FWD));
    fx_problem p, q;
    fx_make_for(&p, K, &big, 3);
    fx_make_for(&q, K, &exact, 3);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &q, 0), 0, "%s", attn_last_error());
    cr_assert(fx_bitwise_equal(&p.o, &q.o), "k=256 and k=10 differ at Nk=10");
    fx_free(&p), fx_free(&q);
}

Test(linformer, weights_made_for_another_nk_are_refused)
{
    attn_args a = lf_args(1, 2, 2, 24, 16, "k=4", 1), other = lf_args(1, 2, 2, 32, 16, "k=4", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &p.a, &ctx), 0, "%s", attn_last_error());
    attn_io io = problem_io(&p);
    io.w.D = K->input_cols(&other, ATTN_IN_WEIGHTS); /* a row as wide as Nk=32 needs */
    cr_assert_eq(K->forward(&ctx, &io), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "n=24") && strstr(attn_last_error(), "another Nk"), "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
    fx_free(&p);
    /* the model's block: weights sized for its N, planned at another */
    nn_attn_cfg cfg = {.C = 16, .H = 2, .H_kv = 2, .kernel = K, .max_len = 12};
    cr_assert_eq(param_bag_add(&cfg.params, "k=4"), 0);
    nn_attn l;
    nn_blob cnt = {0};
    cr_assert_eq(nn_attn_bind(&l, &cfg, &cnt), 0, "%s", attn_last_error());
    cr_assert_eq(l.w_cols * 2, 2 * 4 * 12, "E, F [4 x 12] once for both heads: %ld per head", (long)l.w_cols);
    cr_assert_eq(nn_attn_plan(&l, 2, 14, 1), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "N=12") && strstr(attn_last_error(), "N=14"), "%s", attn_last_error());
}

Test(linformer, init_draws_n_0_1_over_k_shared_by_the_heads)
{
    attn_args a = lf_args(1, 3, 3, 200, 16, "k=50", 1);
    lf_plan pl = plan_of(&a);
    int64_t W = K->input_cols(&a, ATTN_IN_WEIGHTS);
    cr_assert_eq(W, 34 * 200, "100 rows of E and F dealt to 3 heads in runs of 34");
    float *buf = malloc(sizeof(float) * (size_t)(3 * W));
    attn_tensor w = {.data = buf, .B = 1, .H = 3, .N = 1, .D = W, .sb = 3 * W, .sh = W, .sn = W};
    memset(buf, 0xff, sizeof(float) * (size_t)(3 * W));
    K->init_weights(&a, &w, 9);
    double s1 = 0, s2 = 0;
    for (int64_t p = 0; p < pl.P; p++)
        s1 += *lf_theta_at(&pl, &w, p), s2 += (double)*lf_theta_at(&pl, &w, p) * *lf_theta_at(&pl, &w, p);
    double mean = s1 / (double)pl.P, var = s2 / (double)pl.P - mean * mean;
    cr_assert(fabs(mean) < 0.01 && fabs(var * 50 - 1) < 0.05, "mean %.4f, var*k %.4f", mean, var * 50);
    for (int64_t p = pl.P; p < 3 * W; p++)
        cr_assert(*lf_theta_at(&pl, &w, p) == 0.0f, "unused tail %ld not zeroed", (long)p);
    free(buf);
}

Test(linformer, cost_model_and_counters)
{
    attn_args a = lf_args(2, 4, 2, 300, 32, "k=64 tile=50", 2);
    double f = K->flops(&a, ATTN_PASS_FWD), per = 2.0 * 300 * 64 * 32;
    cr_assert_eq(f, (4 * 2 + 4 * 4) * per, "forward: E K, F V per KV head, scores and P V~ per query head");
    cr_assert_eq(K->flops(&a, ATTN_PASS_BWD), (8 * 2 + 10 * 4) * per);
    cr_assert_eq(K->state_bytes(&a), sizeof(float) * 2 * 2 * 2 * 64 * 32);
    fx_problem p;
    fx_make_for(&p, K, &a, 4);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq((double)attn_counter_get(ATTN_CNT_FLOPS), f, "the forward executes exactly the useful products");
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 2 * 4 * 300 * 64);
    fx_free(&p);
}

Test(linformer, encoder_with_linformer_matches_the_double_model, .timeout = 60)
{
    nn_model_cfg c;
    memset(&c, 0, sizeof c);
    c.variant = NN_VARIANT_ENCODER, c.head = NN_HEAD_CLASSIFY, c.vocab = 11, c.n_classes = 3, c.max_len = 7;
    c.layers = 2, c.d_model = 16, c.heads = 2, c.mlp = 24, c.n_kernels = 1, c.loops = 1;
    c.pos = NN_POS_LEARNED, c.pool = NN_POOL_MEAN;
    snprintf(c.kernels[0], sizeof c.kernels[0], "linformer");
    cr_assert_eq(param_bag_add(&c.kparams, "k=4"), 0);
    static int32_t tok[21], lab[3] = {0, 2, 1}, len[3] = {7, 5, 2};
    for (int i = 0; i < 21; i++)
        tok[i] = 1 + (i * 5) % 10;
    nn_batch b = {.B = 3, .tokens = tok, .labels = lab, .lengths = len};
    mc_gradcheck(&c, &b, 7, 30, "encoder linformer k=4, padded batch");
}

/* With n = 40 a sequence of 23 keys uses the first 23 columns of E and F:
 * alone it gives the rows it gives in a padded batch of length 40 with the
 * same weights, and those of the 40-key problem whose last 17 keys and
 * values are zero rows. */
Test(linformer, fewer_keys_than_n_act_as_zero_padded_keys)
{
    int64_t lens[2] = {40, 23};
    attn_args pad = lf_args(2, 2, 1, 40, 16, "k=9 tile=16", 2), alone = lf_args(1, 2, 1, 23, 16, "k=9 n=40", 1);
    attn_args zero = lf_args(1, 2, 1, 40, 16, "k=9", 1);
    pad.seq_len = lens;
    fx_problem p, s, z;
    fx_make_for(&p, K, &pad, 8);
    fx_make_for(&s, K, &alone, 1);
    fx_make_for(&z, K, &zero, 1);
    cr_assert_eq(s.w.D, p.w.D, "n=40 sizes the weights as Nk=40 does");
    memcpy(s.w.data, p.w.data, sizeof(float) * (size_t)(p.w.H * p.w.D));
    memcpy(z.w.data, p.w.data, sizeof(float) * (size_t)(p.w.H * p.w.D));
    const attn_tensor *from[] = {&p.q, &p.k, &p.v}, *to_s[] = {&s.q, &s.k, &s.v}, *to_z[] = {&z.q, &z.k, &z.v};
    for (int t = 0; t < 3; t++)
        for (int64_t h = 0; h < from[t]->H; h++) {
            memcpy(attn_at(to_s[t], 0, h, 0), attn_at(from[t], 1, h, 0), sizeof(float) * 23 * 16);
            memcpy(attn_at(to_z[t], 0, h, 0), attn_at(from[t], 1, h, 0), sizeof(float) * 23 * 16);
            memset(attn_at(to_z[t], 0, h, 23), 0, sizeof(float) * 17 * 16);
        }
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &s, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &z, 0), 0, "%s", attn_last_error());
    double es = 0, ez = 0, m = 0;
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < 23; i++)
            for (int64_t d = 0; d < 16; d++) {
                double u = attn_at(&p.o, 1, h, i)[d];
                es = fmax(es, fabs(u - attn_at(&s.o, 0, h, i)[d]));
                ez = fmax(ez, fabs(u - attn_at(&z.o, 0, h, i)[d]));
                m = fmax(m, fabs(u));
            }
    cr_assert(es <= 1e-5 * m && ez <= 1e-5 * m, "alone %.3g, zero-padded %.3g (max %.3g)", es, ez, m);
    attn_args more = lf_args(1, 2, 1, 41, 16, "k=9 n=40", 1);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &more, &ctx), ATTN_EINVAL, "41 keys beyond n=40 accepted");
    fx_free(&p), fx_free(&s), fx_free(&z);
}
