/* Properties of the `ponet` pooling mixer: the fp32 kernel equals its double
 * reference (N 64 and 130, D 16 and 32, window 3, n_seg 4, and other windows,
 * segment counts, GQA); gradients of Q, K, V and both projections against
 * central differences of the reference; the global aggregation is the softmax
 * oracle of the single query mean(Q) with V = K; one segment is the global
 * max; window 1 passes L through; max-pool ties route the gradient to the
 * first index; CAUSAL, even windows and cross shapes are refused; cost model.
 * (Thread determinism and strided views: test_properties.c; padded batches:
 * test_padded.c.) */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"
#include "kernels/ponet/ponet.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_ponet;

static attn_args ponet_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *params)
{
    return fx_args_params(B, H, H_kv, N, N, D, "full", 2, params);
}

static void fill(const attn_tensor *t, int64_t c0, int64_t c1, float v)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++)
                for (int64_t c = c0; c < c1; c++)
                    attn_at(t, b, h, n)[c] = v;
}

Test(ponet, forward_matches_double_reference_over_lengths_and_widths, .timeout = 60)
{
    static const int64_t Ns[] = {64, 130}, Ds[] = {16, 32};
    for (int n = 0; n < 2; n++)
        for (int d = 0; d < 2; d++) {
            char what[64];
            snprintf(what, sizeof what, "N=%ld D=%ld window=3 n_seg=4", (long)Ns[n], (long)Ds[d]);
            attn_args a = ponet_args(2, 2, 2, Ns[n], Ds[d], "window=3 n_seg=4");
            own_ref_check(K, &a, 10 + (uint64_t)(2 * n + d), what);
        }
}

Test(ponet, forward_matches_reference_on_other_windows_segments_and_gqa, .timeout = 60)
{
    static const struct {
        int64_t H, H_kv, N;
        const char *params;
    } cases[] = {
        {2, 2, 1, ""},          {2, 2, 7, "window=1 n_seg=1"}, {2, 2, 33, "window=5 n_seg=33"},
        {4, 2, 40, "n_seg=3"}, {4, 1, 9, "window=99 n_seg=2"}, {2, 2, 50, "n_seg=7 scale=0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "H=%ld/%ld N=%ld %s", (long)cases[i].H, (long)cases[i].H_kv, (long)cases[i].N,
                 cases[i].params);
        attn_args a = ponet_args(1, cases[i].H, cases[i].H_kv, cases[i].N, 16, cases[i].params);
        own_ref_check(K, &a, 30 + i, what);
    }
}

Test(ponet, backward_matches_central_differences_for_every_input, .timeout = 120)
{
    static const struct {
        int64_t H, H_kv, N, D;
        const char *params;
    } cases[] = {
        {2, 2, 7, 4, ""}, {2, 1, 9, 4, "window=5 n_seg=2"}, {1, 1, 12, 5, "window=1 n_seg=5"}, {2, 2, 16, 3, "n_seg=1"},
    };
    static const int grads[] = {0, 1, 2, 5}; /* dQ, dK, dV, drouter (dSg, dL) */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = ponet_args(2, cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, cases[i].params);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        for (size_t g = 0; g < sizeof grads / sizeof grads[0]; g++)
            cr_assert(e[grads[g]] <= 1e-4, "case %zu (%s): %s err %.3g", i, cases[i].params,
                      check_grad_names[grads[g]], e[grads[g]]);
    }
}

/* With V = 1 and both projections 0 every row is gp: compare with the oracle
 * of one query mean(Q) over keys K with values K. */
Test(ponet, global_aggregation_equals_the_one_query_oracle)
{
    int64_t B = 2, H = 4, Hk = 2, N = 37, D = 16;
    attn_args a = ponet_args(B, H, Hk, N, D, "");
    fx_problem p;
    fx_make_for(&p, K, &a, 21);
    fill(&p.v, 0, D, 1.0f), fill(&p.router, 0, 2 * D, 0.0f);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    attn_args oa = fx_args(B, H, Hk, 1, N, D, "full", 1);
    attn_tensor_f64 q = {calloc((size_t)(B * H * D), 8), B, H, 1, D, H * D, D, D};
    attn_tensor_f64 o = q;
    o.data = calloc((size_t)(B * H * D), 8);
    double *lse = calloc((size_t)(B * H), 8);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < N; i++)
                for (int64_t d = 0; d < D; d++)
                    attn_at64(&q, b, h, 0)[d] += attn_at(&p.q, b, h, i)[d] / (double)N;
    attn_oracle_forward_f64(&oa, &q, &p.k64, &p.k64, &o, lse);
    double e = 0, m = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < N; i++)
                for (int64_t d = 0; d < D; d++) {
                    double r = attn_at64(&o, b, h, 0)[d];
                    e = fmax(e, fabs(attn_at(&p.o, b, h, i)[d] - r)), m = fmax(m, fabs(r));
                }
    cr_assert(m > 0.01 && e / m <= 5e-5, "global aggregation vs oracle err %.3g (max %.3g)", e / m, m);
    free(q.data), free(o.data), free(lse);
    fx_free(&p);
}

/* Column c of the projections, max over rows [lo, hi) of (b, h). */
static float col_max(const fx_problem *p, int64_t b, int64_t h, int64_t c, int64_t lo, int64_t hi)
{
    float m = -INFINITY;
    for (int64_t j = lo; j < hi; j++)
        m = fmaxf(m, attn_at(&p->router, b, h, j)[c]);
    return m;
}

/* K = 0 makes gp the mean of zero keys (0); V = 1 and L = 0 leave s_i. */
Test(ponet, one_segment_is_the_global_max)
{
    int64_t N = 29, D = 8;
    attn_args a = ponet_args(1, 2, 2, N, D, "n_seg=1");
    fx_problem p;
    fx_make_for(&p, K, &a, 22);
    fill(&p.k, 0, D, 0.0f), fill(&p.v, 0, D, 1.0f), fill(&p.router, D, 2 * D, 0.0f);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < N; i++)
            for (int64_t d = 0; d < D; d++)
                cr_assert_eq(attn_at(&p.o, 0, h, i)[d], col_max(&p, 0, h, d, 0, N), "h %ld row %ld col %ld", (long)h,
                             (long)i, (long)d);
    fx_free(&p);
}

/* V = 0 leaves l_i: window 1 is L itself, a window over the whole sequence its column max. */
Test(ponet, window_one_passes_l_through_and_a_full_window_is_the_max)
{
    int64_t N = 17, D = 8;
    static const char *const params[] = {"window=1", "window=35"};
    for (int w = 0; w < 2; w++) {
        attn_args a = ponet_args(1, 1, 1, N, D, params[w]);
        fx_problem p;
        fx_make_for(&p, K, &a, 23);
        fill(&p.v, 0, D, 0.0f);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        for (int64_t i = 0; i < N; i++)
            for (int64_t d = 0; d < D; d++) {
                float want = w == 0 ? attn_at(&p.router, 0, 0, i)[D + d] : col_max(&p, 0, 0, D + d, 0, N);
                cr_assert_eq(attn_at(&p.o, 0, 0, i)[d], want, "%s row %ld col %ld", params[w], (long)i, (long)d);
            }
        fx_free(&p);
    }
}

/* Constant projections tie every window: dSg goes to each segment's first
 * row (the sum of V (.) dY over the segment), dL to the first row of each
 * window (row max(0, i - 1) collects dY_i for window 3). */
Test(ponet, max_pool_ties_route_the_gradient_to_the_first_index)
{
    int64_t N = 10, D = 4, seg = 3; /* n_seg 4: segments of ceil(10/4) = 3 rows */
    attn_args a = ponet_args(1, 1, 1, N, D, "window=3 n_seg=4");
    a.backward = 1;
    fx_problem p;
    fx_make_for(&p, K, &a, 24);
    fill(&p.router, 0, 2 * D, 0.5f);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    for (int64_t j = 0; j < N; j++)
        for (int64_t d = 0; d < D; d++) {
            double ws = 0, wl = 0;
            for (int64_t i = 0; i < N; i++) {
                float dy = attn_at(&p.d_o, 0, 0, i)[d];
                if (j % seg == 0 && i / seg == j / seg)
                    ws += (double)attn_at(&p.v, 0, 0, i)[d] * dy;
                if ((i - 1 < 0 ? 0 : i - 1) == j)
                    wl += dy;
            }
            const float *dr = attn_at(&p.drouter, 0, 0, j);
            cr_assert(fabs(dr[d] - ws) <= 1e-5 * (1 + fabs(ws)), "dSg row %ld col %ld: %g, expected %g", (long)j,
                      (long)d, dr[d], ws);
            cr_assert(fabs(dr[D + d] - wl) <= 1e-5 * (1 + fabs(wl)), "dL row %ld col %ld: %g, expected %g", (long)j,
                      (long)d, dr[D + d], wl);
        }
    fx_free(&p);
}

Test(ponet, refuses_causal_masks_even_windows_and_cross_shapes)
{
    attn_args c = fx_args_params(1, 2, 2, 16, 16, 8, "causal", 1, "");
    cr_assert_neq(attn_args_validate(K, &c), 0, "CAUSAL accepted");
    attn_args w = ponet_args(1, 2, 2, 16, 8, "window=4");
    ponet_plan pl;
    cr_assert_eq(attn_ponet_plan(&pl, &w), ATTN_EINVAL, "window=4 accepted");
    cr_assert(strstr(attn_last_error(), "window") != NULL, "message: %s", attn_last_error());
    attn_args x = fx_args_params(1, 2, 2, 8, 16, 8, "full", 1, "");
    attn_ctx ctx;
    cr_assert_neq(attn_ctx_create(K, &x, &ctx), 0, "Nq != Nk accepted");
}

Test(ponet, cost_model_is_four_n_d_per_head_and_segments_are_ceil_n_over_n_seg)
{
    attn_args a = ponet_args(3, 4, 2, 130, 16, "n_seg=4");
    cr_assert_eq(K->flops(&a, ATTN_PASS_FWD), 4.0 * 3 * 4 * 130 * 16);
    cr_assert_eq(K->flops(&a, ATTN_PASS_BWD), 2 * K->flops(&a, ATTN_PASS_FWD));
    cr_assert_gt(K->bytes(&a, ATTN_PASS_BWD), K->bytes(&a, ATTN_PASS_FWD));
    ponet_plan pl;
    cr_assert_eq(attn_ponet_plan(&pl, &a), 0, "%s", attn_last_error());
    int64_t lo, hi;
    attn_ponet_segment(&pl, 130, 129, &lo, &hi); /* ceil(130/4) = 33 */
    cr_assert(lo == 99 && hi == 130, "last segment of 130 [%ld, %ld)", (long)lo, (long)hi);
    attn_ponet_segment(&pl, 128, 40, &lo, &hi); /* a padded sequence of 128: ceil(128/4) = 32 */
    cr_assert(lo == 32 && hi == 64, "segment of row 40 of 128 [%ld, %ld)", (long)lo, (long)hi);
    cr_assert_eq(K->input_cols(&a, ATTN_IN_ROUTER), 32);
}
