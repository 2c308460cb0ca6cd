/* Properties of the `tcnca` mixer (dilated depthwise TCN on Q and K, softmax
 * attention inside chunks): the fp32 kernel equals its double reference (N 7
 * and 130, D 16 and 64, dilation bases 1 and 2, 0 or 3 layers, causal and
 * full); gradients (dQ, dK, dV and the conv weights) against central
 * differences of the reference; no TCN layer = the oracle under the
 * chunk DOCUMENT mask; the stack's receptive field is 1 + (K-1)(f^D_t-1)/(f-1)
 * (1 + D_t (K-1) at f = 1); a chunk's rows depend on the previous chunk only
 * through the TCN; CAUSAL does not leak, FULL does; cost model, counters,
 * state and refusals. The tiny MQAR training is in test_tcnca_train.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/core/oracle.h"
#include "kernels/tcnca/tcnca.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_tcnca;

static attn_args tc_args(int64_t B, int64_t H, int64_t N, int64_t D, const char *mask, const char *params,
                         int threads)
{
    return fx_args_params(B, H, H, N, N, D, mask, threads, params);
}

static tcnca_plan plan_of(const attn_args *a)
{
    tcnca_plan pl;
    cr_assert_eq(attn_tcnca_plan(&pl, a), 0, "%s", attn_last_error());
    return pl;
}

Test(tcnca, forward_matches_double_reference_over_lengths_widths_dilations_and_masks, .timeout = 120)
{
    static const int64_t Ns[] = {7, 130}, Ds[] = {16, 64};
    static const char *const params[] = {"chunk=16 taps=3 base=1 layers=0", "chunk=16 taps=3 base=1 layers=3",
                                         "chunk=16 taps=3 base=2 layers=0", "chunk=16 taps=3 base=2 layers=3"};
    static const char *const masks[] = {"causal", "full"};
    int c = 0;
    for (int n = 0; n < 2; n++)
        for (int d = 0; d < 2; d++)
            for (int p = 0; p < 4; p++)
                for (int m = 0; m < 2; m++, c++) {
                    char what[128];
                    snprintf(what, sizeof what, "N=%ld D=%ld %s %s", (long)Ns[n], (long)Ds[d], masks[m], params[p]);
                    attn_args a = tc_args(2, 2, Ns[n], Ds[d], masks[m], params[p], 2);
                    own_ref_check(K, &a, 100 + (uint64_t)c, what);
                }
}

Test(tcnca, forward_matches_reference_on_other_taps_dv_and_chunks)
{
    static const struct {
        int64_t N, D, Dv;
        const char *mask, *params;
    } cases[] = {
        {40, 16, 8, "causal", "chunk=7 taps=2 base=3 layers=2"},
        {40, 16, 24, "full", "chunk=9 taps=4 base=2 layers=2"},
        {1, 16, 0, "causal", "chunk=16 layers=4"},
        {50, 32, 0, "full", "chunk=64 taps=5 base=1 layers=3"},
        {33, 16, 0, "causal", "chunk=1 layers=2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "N=%ld D=%ld Dv=%ld %s %s", (long)cases[i].N, (long)cases[i].D,
                 (long)cases[i].Dv, cases[i].mask, cases[i].params);
        attn_args a = tc_args(1, 2, cases[i].N, cases[i].D, cases[i].mask, cases[i].params, 2);
        a.Dv = cases[i].Dv;
        own_ref_check(K, &a, 140 + i, what);
    }
}

Test(tcnca, backward_matches_reference_gradients_including_the_conv_weights, .timeout = 120)
{
    static const struct {
        int64_t B, H, N, D, Dv;
        const char *mask, *params;
    } cases[] = {
        {1, 2, 9, 4, 0, "causal", "chunk=4 taps=3 base=2 layers=2"},
        {1, 2, 9, 4, 0, "full", "chunk=4 taps=3 base=2 layers=2"},
        {2, 1, 10, 4, 3, "causal", "chunk=3 taps=2 base=1 layers=3"},
        {2, 1, 8, 5, 0, "full", "chunk=8 taps=4 base=2 layers=1"},
        {1, 1, 7, 4, 0, "causal", "chunk=4 layers=0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = tc_args(cases[i].B, cases[i].H, cases[i].N, cases[i].D, cases[i].mask, cases[i].params, 2);
        a.Dv = cases[i].Dv;
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 160 + i, e), 0, "%s", attn_last_error());
        const char *what = cases[i].params;
        cr_assert(e[0] <= 1e-4 && e[1] <= 1e-4 && e[2] <= 1e-4, "case %zu (%s %s): dQ %.3g dK %.3g dV %.3g", i,
                  cases[i].mask, what, e[0], e[1], e[2]);
        cr_assert(strstr(what, "layers=0") || e[6] <= 1e-4, "case %zu (%s %s): dw err %.3g", i, cases[i].mask, what,
                  e[6]);
    }
}

/* The oracle on the problem's double twin under `mask`, into o [B,H,N,Dv] and lse. */
static void oracle_under(const fx_problem *p, const char *mask, double *o, double *lse)
{
    const attn_args *a = &p->a;
    attn_args oa = fx_args(a->B, a->H, a->H, a->Nq, a->Nk, a->D, mask, 1);
    oa.Dv = a->Dv;
    int64_t Dv = attn_dv(a);
    attn_tensor_f64 ot = {o, a->B, a->H, a->Nq, Dv, a->H * a->Nq * Dv, a->Nq * Dv, Dv};
    attn_oracle_forward_f64(&oa, &p->q64, &p->k64, &p->v64, &ot, lse);
}

Test(tcnca, no_tcn_layer_equals_the_oracle_under_the_chunk_document_mask)
{
    static const char *const masks[] = {"causal", "full"};
    static const char *const chunks[] = {"document:lens=16+16+16+2,causal=1", "document:lens=16+16+16+2"};
    for (int m = 0; m < 2; m++) {
        attn_args a = tc_args(2, 3, 50, 16, masks[m], "chunk=16 layers=0", 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 170 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double *o = malloc(sizeof(double) * 2 * 3 * 50 * 16), *lse = malloc(sizeof(double) * 2 * 3 * 50);
        oracle_under(&p, chunks[m], o, lse);
        double e = own_rel_err(&p.o, o), el = 0;
        for (int64_t i = 0; i < 2 * 3 * 50; i++)
            el = fmax(el, fabs(p.lse[i] - lse[i]) / (1 + fabs(lse[i])));
        cr_assert(e <= 5e-6, "%s: O vs chunk-masked oracle %.3g", masks[m], e);
        cr_assert(el <= 5e-6, "%s: LSE vs chunk-masked oracle %.3g", masks[m], el);
        free(o), free(lse);
        fx_free(&p);
    }
}

/* Rows of the stack's output that an impulse at row u reaches, all weights
 * positive (no cancellation): [lo, hi]. */
static void impulse_reach(const char *mask, const char *params, int64_t N, int64_t u, int64_t *lo, int64_t *hi)
{
    attn_args a = tc_args(1, 1, N, 16, mask, params, 1);
    tcnca_plan pl = plan_of(&a);
    float *w = malloc(sizeof(float) * (size_t)(pl.W + 1)), *x = calloc((size_t)(N * 16), sizeof(float));
    float *y = malloc(sizeof(float) * (size_t)(N * 16));
    for (int64_t i = 0; i < pl.W; i++)
        w[i] = 0.5f;
    x[u * 16 + 3] = 1;
    for (int64_t l = 0; l < pl.layers; l++) {
        attn_tcnca_conv(&pl, l, N, 16, x, w, y);
        memcpy(x, y, sizeof(float) * (size_t)(N * 16));
    }
    *lo = N, *hi = -1;
    for (int64_t t = 0; t < N; t++)
        if (x[t * 16 + 3] != 0) {
            *lo = t < *lo ? t : *lo;
            *hi = t;
        }
    free(w), free(x), free(y);
}

Test(tcnca, receptive_field_is_one_plus_taps_minus_one_times_the_dilation_sum)
{
    static const struct {
        const char *params;
        int64_t R;
    } cases[] = {
        {"taps=3 base=1 layers=4", 1 + 4 * 2},       /* f = 1: 1 + D_t (K - 1) */
        {"taps=3 base=2 layers=4", 1 + 2 * 15},      /* 1 + (K-1)(f^D_t - 1)/(f - 1) */
        {"taps=2 base=3 layers=3", 1 + 1 * 13},
        {"taps=3 base=2 layers=0", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = tc_args(1, 1, 8, 16, "causal", cases[i].params, 1);
        tcnca_plan pl = plan_of(&a);
        cr_assert_eq(attn_tcnca_receptive_field(&pl), cases[i].R, "%s: R %ld", cases[i].params,
                     (long)attn_tcnca_receptive_field(&pl));
        int64_t lo, hi;
        impulse_reach("causal", cases[i].params, 100, 40, &lo, &hi);
        cr_assert(lo == 40 && hi == 40 + cases[i].R - 1, "%s causal: impulse at 40 reaches [%ld, %ld], R %ld",
                  cases[i].params, (long)lo, (long)hi, (long)cases[i].R);
        impulse_reach("full", cases[i].params, 100, 40, &lo, &hi); /* centred: as far each side */
        cr_assert(40 - lo == hi - 40 || strstr(cases[i].params, "taps=2"), "%s full: reach [%ld, %ld]",
                  cases[i].params, (long)lo, (long)hi);
        cr_assert(hi - lo == cases[i].R - 1, "%s full: reach [%ld, %ld], R %ld", cases[i].params, (long)lo, (long)hi,
                  (long)cases[i].R);
    }
}

/* 1 if row `row` of O changes when Q and K rows [0, upto) are perturbed. */
static int row_reads_earlier_qk(const char *mask, const char *params, int64_t row, int64_t upto)
{
    attn_args a = tc_args(1, 1, 48, 16, mask, params, 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 180);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    float before[16];
    memcpy(before, attn_at(&p.o, 0, 0, row), sizeof before);
    for (int64_t t = 0; t < upto; t++)
        for (int64_t d = 0; d < 16; d++)
            attn_at(&p.q, 0, 0, t)[d] += 0.7f, attn_at(&p.k, 0, 0, t)[d] -= 0.9f;
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    int changed = memcmp(before, attn_at(&p.o, 0, 0, row), sizeof before) != 0;
    fx_free(&p);
    return changed;
}

/* Chunk boundaries cut attention; only the TCN carries the previous chunk
 * into this one. Under CAUSAL a chunk's first row attends itself alone
 * (O = its own V whatever the scores), so the first row that can show the
 * dependence is the second; under FULL the first row already does. */
Test(tcnca, a_chunk_depends_on_the_previous_chunk_iff_the_receptive_field_exceeds_one)
{
    cr_assert(!row_reads_earlier_qk("causal", "chunk=16 layers=0", 17, 16), "layers=0: row 17 reads chunk 0");
    cr_assert(row_reads_earlier_qk("causal", "chunk=16 layers=1 taps=2", 17, 16), "R=2: row 17 ignores chunk 0");
    cr_assert(!row_reads_earlier_qk("causal", "chunk=16 layers=3", 16, 16), "causal: row 16 is not its own V");
    cr_assert(!row_reads_earlier_qk("full", "chunk=16 layers=0", 16, 16), "layers=0 full: row 16 reads chunk 0");
    cr_assert(row_reads_earlier_qk("full", "chunk=16 layers=1 taps=3", 16, 16), "full R=3: row 16 ignores chunk 0");
    /* a receptive field of 5 reaches 4 rows back: rows 12..15 only when perturbed from row 0 upward */
    cr_assert(!row_reads_earlier_qk("causal", "chunk=16 taps=3 base=1 layers=2", 17, 12), "R=5: row 17 reads row 11");
    cr_assert(row_reads_earlier_qk("causal", "chunk=16 taps=3 base=1 layers=2", 17, 13), "R=5: row 17 ignores row 12");
}

Test(tcnca, first_row_of_a_causal_chunk_is_its_own_value_row)
{
    attn_args a = tc_args(1, 2, 40, 16, "causal", "chunk=8 layers=3", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 181);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        for (int64_t m = 0; m < 40; m += 8)
            for (int64_t d = 0; d < 16; d++)
                cr_assert_float_eq(attn_at(&p.o, 0, h, m)[d], attn_at(&p.v, 0, h, m)[d], 1e-6, "h %ld row %ld",
                                   (long)h, (long)m);
    fx_free(&p);
}

Test(tcnca, causal_does_not_leak_and_full_does)
{
    static const char *const params[] = {"chunk=16 layers=3", "chunk=64 layers=2 base=3", "chunk=5 layers=0"};
    for (int i = 0; i < 3; i++) {
        attn_args a = tc_args(2, 2, 97, 16, "causal", params[i], 2);
        for (int64_t t = 30; t <= 48; t += 9) {
            int ok = 0;
            cr_assert_eq(check_kernel_causal_leakage(K, &a, t, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: rows before %ld read row %ld or later", params[i], (long)t, (long)t);
        }
    }
    attn_args f = tc_args(1, 2, 97, 16, "full", "chunk=16 layers=2", 2);
    int ok = 1;
    cr_assert_eq(check_kernel_causal_leakage(K, &f, 40, &ok), 0, "%s", attn_last_error());
    cr_assert(!ok, "FULL (centred conv, whole chunk): row 39 should read row 40");
}

static double pairs_causal(int64_t N, int64_t c)
{
    double p = 0;
    for (int64_t m = 0; m < N; m += c) {
        double nc = (double)(N - m < c ? N - m : c);
        p += nc * (nc + 1) / 2;
    }
    return p;
}

Test(tcnca, cost_model_counters_and_state)
{
    int64_t B = 2, H = 3, N = 40, D = 16, c = 16, taps = 3, L = 2;
    attn_args a = tc_args(B, H, N, D, "causal", "chunk=16 taps=3 base=2 layers=2", 1);
    double tcn = 4.0 * N * taps * L * D, att = 4.0 * D * pairs_causal(N, c);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), B * H * (tcn + att), 1e-6);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), B * H * (2 * tcn + 2.5 * att), 1e-6);
    attn_args f = tc_args(B, H, N, D, "full", "chunk=16 taps=3 base=2 layers=2", 1);
    double att_full = 4.0 * D * (16 * 16 * 2 + 8 * 8);
    cr_assert_float_eq(K->flops(&f, ATTN_PASS_FWD), B * H * (tcn + att_full), 1e-6);
    /* state: 2 stacks x (R - 1) rows of D, and a chunk of K' and V rows */
    int64_t R = 1 + 2 * 3;
    cr_assert_eq(K->state_bytes(&a), sizeof(float) * (size_t)(B * H * (2 * (R - 1) * D + c * 2 * D)));
    cr_assert_eq(K->state_bytes(&f), 0u);
    double rows = (double)(B * H * N), w = (double)(H * L * taps * D);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4 * (rows * (4 * D + 1) + w), 1e-6);
    /* counters: FULL computes exactly the model's pairs; CAUSAL computes whole tiles */
    fx_problem p;
    fx_make_for(&p, K, &f, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq((double)attn_counter_get(ATTN_CNT_FLOPS), K->flops(&f, ATTN_PASS_FWD));
    cr_assert_eq(attn_counter_get(ATTN_CNT_TILES_COMPUTED), B * H * 3);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) >= 4 * rows * 3 * D);
    fx_free(&p);
    fx_make_for(&p, K, &a, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS), model = K->flops(&a, ATTN_PASS_FWD) +
                                                                  K->flops(&a, ATTN_PASS_BWD);
    cr_assert(got >= model, "fwd + bwd counted %.0f, model %.0f", got, model);
    fx_free(&p);
}

Test(tcnca, init_weights_start_near_the_identity)
{
    static const char *const masks[] = {"causal", "full"};
    for (int m = 0; m < 2; m++) {
        attn_args a = tc_args(1, 2, 4, 16, masks[m], "taps=3 layers=2", 1);
        tcnca_plan pl = plan_of(&a);
        fx_problem p;
        fx_make_for(&p, K, &a, 1);
        int64_t centre = m ? 1 : 0;
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i = 0; i < pl.W; i++) {
                float x = attn_at(&p.w, 0, h, 0)[i];
                int on = i / 16 % 3 == centre;
                cr_assert(fabsf(x - (on ? 1.0f : 0.0f)) <= 0.1f, "%s h %ld weight %ld = %g", masks[m], (long)h,
                          (long)i, x);
            }
        cr_assert(memcmp(attn_at(&p.w, 0, 0, 0), attn_at(&p.w, 0, 1, 0), sizeof(float) * (size_t)pl.W) != 0,
                  "heads share weights");
        fx_free(&p);
    }
}

Test(tcnca, refuses_cross_lengths_other_masks_gqa_and_bad_params)
{
    attn_ctx ctx;
    attn_args c = fx_args_params(1, 1, 1, 8, 12, 16, "causal", 1, "chunk=4");
    cr_assert_neq(attn_ctx_create(K, &c, &ctx), 0);
    attn_args o = tc_args(1, 1, 8, 16, "causal", "chunk=4", 1);
    o.q_off = 3;
    cr_assert_eq(attn_ctx_create(K, &o, &ctx), ATTN_EINVAL);
    attn_args g = fx_args_params(1, 4, 2, 8, 8, 16, "causal", 1, "chunk=4");
    cr_assert_eq(attn_ctx_create(K, &g, &ctx), ATTN_EUNSUPPORTED);
    attn_args m = tc_args(1, 1, 8, 16, "window:wl=2,wr=0", "chunk=4", 1);
    cr_assert_eq(attn_ctx_create(K, &m, &ctx), ATTN_EUNSUPPORTED);
    static const char *const bad[] = {"chunk=0", "taps=0", "base=0", "layers=25", "taps=64 base=16 layers=24"};
    for (int i = 0; i < 5; i++) {
        attn_args b = tc_args(1, 1, 8, 16, "causal", bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &b, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
    }
}
