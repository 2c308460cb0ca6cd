/* Properties of `synthesizer` (Synthesizer attention): in every mode, with
 * and without the dot product, the fp32 kernel equals its double reference
 * and its gradients (q, k, v and the learned weights) equal central
 * differences of it; the limit cases equal the softmax oracle (random R set
 * to sc q k^T of the input; dot=1 with zero synthetic logits, every mode);
 * R1 R2 equal to R gives the random mode's output; weights sized for a longer
 * max_len serve a shorter N through their top-left block, a longer N is
 * refused; causal rows do not see later keys in any mode; with dot=1 the
 * error against the oracle falls as the synthetic logits shrink (mean over
 * seeds); the attention-row view is the softmax the output applies; cost
 * model. Registry-wide properties (strided views, GQA, padded batches,
 * determinism) are in test_properties.c and test_padded.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "own_ref_check.h"
#include "kernels/synthesizer/synthesizer.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_synthesizer;
static const char *const modes[] = {"random", "factorized_random", "dense"};

static attn_args syn_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                          const char *params)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, 2, params);
}

Test(synthesizer, forward_matches_double_reference_in_every_mode, .timeout = 60)
{
    static const char *const masks[] = {"full", "causal"};
    int c = 0;
    for (int m = 0; m < 3; m++)
        for (int dot = 0; dot < 2; dot++)
            for (int k = 0; k < 2; k++, c++) {
                char params[96], what[128];
                snprintf(params, sizeof params, "mode=%s dot=%d k=5 tile=%d", modes[m], dot, c % 2 ? 7 : 64);
                snprintf(what, sizeof what, "%s %s", params, masks[k]);
                attn_args a = syn_args(2, 4, 2, 37, 16, masks[k], params);
                own_ref_check(K, &a, 20 + (uint64_t)c, what);
            }
}

Test(synthesizer, gradients_of_inputs_and_weights_match_central_differences_in_every_mode, .timeout = 60)
{
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 3; m++)
        for (int dot = 0; dot < 2; dot++)
            for (int k = 0; k < 2; k++) {
                char params[96];
                snprintf(params, sizeof params, "mode=%s dot=%d k=3 tile=4", modes[m], dot);
                attn_args a = syn_args(2, 2, 1, 9, 8, masks[k], params);
                double e[ATTN_CHECK_GRADS];
                cr_assert_eq(check_kernel_backward(K, &a, 31, e), 0, "%s", attn_last_error());
                const int grads[] = {0, 1, 2, 6}; /* dQ, dK, dV, dw */
                for (int g = 0; g < 4; g++)
                    cr_assert(e[grads[g]] <= CHECK_TOL_GRAD, "%s %s: %s error %.3g", params, masks[k],
                              check_grad_names[grads[g]], e[grads[g]]);
            }
}

/* max|O - O_oracle| / max|V| and the lse error of a kernel run against the oracle on the same inputs. */
static void expect_oracle(fx_problem *p, const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem o;
    fx_make(&o, a, seed); /* the same q, k, v: problem_make's seeding rule */
    cr_assert_eq(fx_run(K, p, 0), 0, "%s: %s", what, attn_last_error());
    memcpy(o.o.data, p->o.data, sizeof(float) * (size_t)(p->o.B * p->o.sb));
    memcpy(o.lse, p->lse, sizeof(float) * (size_t)(a->B * a->H * a->Nq));
    double eo = fx_err_o(&o), el = fx_err_lse(&o);
    cr_assert(eo <= fx_tol_o(a->Nk), "%s: O differs from softmax by %.3g", what, eo);
    cr_assert(el <= CHECK_TOL_LSE, "%s: lse differs from softmax by %.3g", what, el);
    fx_free(&o);
}

static int64_t weight_cols(const attn_args *a) { return K->input_cols(a, ATTN_IN_WEIGHTS); }

Test(synthesizer, random_R_set_to_scaled_qk_equals_the_softmax_oracle)
{
    static const char *const masks[] = {"full", "causal"};
    for (int k = 0; k < 2; k++) {
        attn_args a = syn_args(1, 3, 3, 45, 32, masks[k], "mode=random dot=0 tile=16");
        fx_problem p;
        fx_make_for(&p, K, &a, 40 + (uint64_t)k);
        int64_t L = 45;
        cr_assert_eq(weight_cols(&a), L * L);
        double sc = 1 / sqrt(32.0);
        for (int64_t h = 0; h < 3; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t j = 0; j < L; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < 32; d++)
                        s += (double)attn_at(&p.q, 0, h, i)[d] * attn_at(&p.k, 0, h, j)[d];
                    attn_at(&p.w, 0, h, 0)[i * L + j] = (float)(sc * s);
                }
        expect_oracle(&p, &a, 40 + (uint64_t)k, masks[k]);
        fx_free(&p);
    }
}

Test(synthesizer, dot_with_zero_synthetic_logits_equals_the_softmax_oracle_in_every_mode)
{
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 3; m++)
        for (int k = 0; k < 2; k++) {
            char params[64], what[96];
            snprintf(params, sizeof params, "mode=%s dot=1 tile=10", modes[m]);
            snprintf(what, sizeof what, "%s %s", params, masks[k]);
            attn_args a = syn_args(2, 4, 2, 33, 16, masks[k], params);
            fx_problem p;
            fx_make_for(&p, K, &a, 50 + (uint64_t)m);
            memset(p.w.data, 0, sizeof(float) * (size_t)(p.w.H * p.w.sh)); /* dense: relu(0) W2 + 0 = 0 too */
            expect_oracle(&p, &a, 50 + (uint64_t)m, what);
            fx_free(&p);
        }
}

Test(synthesizer, factorized_R1_R2_equal_to_R_gives_the_random_mode_output)
{
    const int64_t N = 40, rank = 6, H = 2;
    attn_args af = syn_args(2, H, 1, N, 16, "causal", "mode=factorized_random k=6 dot=1 tile=9");
    attn_args ar = syn_args(2, H, 1, N, 16, "causal", "mode=random dot=1 tile=16");
    fx_problem f, r;
    fx_make_for(&f, K, &af, 60);
    fx_make_for(&r, K, &ar, 60); /* the same q, k, v */
    for (int64_t h = 0; h < H; h++) {
        const float *R1 = attn_at(&f.w, 0, h, 0), *R2 = R1 + N * rank;
        for (int64_t i = 0; i < N * 2 * rank; i++) /* logits of a few units: a peaked softmax */
            attn_at(&f.w, 0, h, 0)[i] *= 20.0f;
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t c = 0; c < rank; c++)
                    s += (double)R1[i * rank + c] * R2[c * N + j];
                attn_at(&r.w, 0, h, 0)[i * N + j] = (float)s;
            }
    }
    cr_assert_eq(fx_run(K, &f, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &r, 0), 0, "%s", attn_last_error());
    double e = 0, m = 0;
    for (int64_t i = 0; i < f.o.B * f.o.sb; i++)
        e = fmax(e, fabs(f.o.data[i] - r.o.data[i])), m = fmax(m, fabs(r.o.data[i]));
    cr_assert(m > 0.05 && e <= 2e-5 * m, "factorized vs random: %.3g of %.3g", e, m);
    fx_free(&f);
    fx_free(&r);
}

Test(synthesizer, weights_for_a_longer_max_len_serve_a_shorter_N_and_a_longer_N_is_refused)
{
    /* R of max_len 20 read at N = 12 is the run with R's top-left 12 x 12 block */
    attn_args a20 = syn_args(1, 2, 2, 20, 16, "full", "mode=random dot=0");
    attn_args a12 = syn_args(1, 2, 2, 12, 16, "full", "mode=random dot=0");
    fx_problem long_w, short_w;
    fx_make_for(&long_w, K, &a20, 70);
    fx_make_for(&short_w, K, &a12, 71);
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < 20 * 20; i++)
            attn_at(&long_w.w, 0, h, 0)[i] = (float)sin(0.37 * (double)i + (double)h); /* distinct logits */
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < 12; i++)
            memcpy(attn_at(&short_w.w, 0, h, 0) + i * 12, attn_at(&long_w.w, 0, h, 0) + i * 20, sizeof(float) * 12);
    fx_ref_forward(&short_w);
    attn_tensor w12 = short_w.w, w20 = long_w.w;
    short_w.w = w20; /* the L = 20 row: max_len comes from its size */
    cr_assert_eq(fx_run(K, &short_w, 0), 0, "%s", attn_last_error());
    double e = fx_err_o(&short_w);
    cr_assert(e <= 5e-5, "N=12 reading max_len=20 weights: %.3g from the 12 x 12 block's run", e);
    short_w.w = w12;
    /* N = 20 with 12 x 12 weights, or with max_len = 12 given, is refused */
    long_w.w = w12;
    cr_assert_eq(fx_run(K, &long_w, 0), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "N <= max_len=12"), "%s", attn_last_error());
    long_w.w = w20;
    attn_args bad = syn_args(1, 2, 2, 20, 16, "full", "mode=random dot=0 max_len=12");
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &bad, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "max_len=12"), "%s", attn_last_error());
    fx_free(&short_w);
    fx_free(&long_w);
}

Test(synthesizer, causal_rows_do_not_see_later_keys_in_any_mode)
{
    for (int m = 0; m < 3; m++)
        for (int dot = 0; dot < 2; dot++) {
            char params[64];
            snprintf(params, sizeof params, "mode=%s dot=%d tile=8", modes[m], dot);
            attn_args a = syn_args(2, 2, 1, 50, 16, "causal", params);
            int ok = 0;
            cr_assert_eq(check_kernel_causal_leakage(K, &a, 21, &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: rows < 21 changed when rows >= 21 did", params);
        }
}

/* ||O - O_oracle||_F / ||O_oracle||_F with the synthetic logits of p scaled by s. */
static double rel_fro_vs_oracle(const attn_args *a, uint64_t seed, float s)
{
    fx_problem p, o;
    fx_make_for(&p, K, a, seed);
    fx_make(&o, a, seed);
    for (int64_t i = 0; i < p.q.B * p.q.sb; i++)
        p.q.data[i] *= 3.0f; /* peaked attention: a test that can fail */
    for (int64_t i = 0; i < o.q.B * o.q.sb; i++)
        o.q.data[i] *= 3.0f;
    fx_ref_forward(&o);
    for (int64_t i = 0; i < p.w.H * p.w.sh; i++)
        p.w.data[i] = s * (float)sin(1.7 * (double)i); /* logits of order s */
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double e = 0, n = 0;
    for (int64_t i = 0; i < p.o.B * p.o.sb; i++)
        e += pow(p.o.data[i] - o.o64.data[i], 2), n += pow(o.o64.data[i], 2);
    fx_free(&p);
    fx_free(&o);
    return sqrt(e / n);
}

Test(synthesizer, with_dot_the_error_against_softmax_falls_as_the_synthetic_logits_shrink, .timeout = 60)
{
    static const float scales[] = {3.0f, 1.0f, 0.3f, 0.1f, 0.01f};
    attn_args a = syn_args(1, 2, 2, 64, 32, "full", "mode=random dot=1");
    double prev = INFINITY;
    for (int s = 0; s < 5; s++) {
        double mean = 0;
        for (uint64_t seed = 0; seed < 3; seed++)
            mean += rel_fro_vs_oracle(&a, 80 + seed, scales[s]) / 3;
        cr_assert(mean < prev, "scale %g: mean rel. Frobenius error %.3g, not below %.3g", scales[s], mean, prev);
        prev = mean;
    }
    cr_assert(prev < 0.02, "small synthetic logits: error %.3g", prev);
}

Test(synthesizer, attention_rows_view_is_the_softmax_the_output_applies)
{
    attn_args a = syn_args(2, 2, 1, 30, 16, "causal", "mode=dense dot=1");
    fx_problem p;
    fx_make_for(&p, K, &a, 90);
    attn_io64 io = problem_io64(&p);
    int64_t rows[] = {0, 7, 29};
    double *P = malloc(sizeof(double) * 3 * 30);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 2; h++) {
            cr_assert_eq(K->ref_view(&a, &io, b, h, rows, 3, P, NULL), ATTN_VIEW_ROWS);
            for (int r = 0; r < 3; r++) {
                double sum = 0;
                for (int64_t j = 0; j < 30; j++) {
                    cr_assert(P[r * 30 + j] >= 0 && (j <= rows[r] || P[r * 30 + j] == 0), "row %ld key %ld",
                              (long)rows[r], (long)j);
                    sum += P[r * 30 + j];
                }
                cr_assert(fabs(sum - 1) < 1e-12, "row %ld sums to %.17g", (long)rows[r], sum);
                for (int64_t d = 0; d < 16; d++) { /* O = P V, V of KV head 0 */
                    double o = 0;
                    for (int64_t j = 0; j < 30; j++)
                        o += P[r * 30 + j] * attn_at64(&p.v64, b, 0, j)[d];
                    cr_assert(fabs(o - attn_at64(&p.o64, b, h, rows[r])[d]) < 1e-12);
                }
            }
        }
    free(P);
    fx_free(&p);
}

Test(synthesizer, cost_model_counts_the_products_of_each_mode)
{
    const double B = 2, H = 4, N = 100, D = 16, k = 8;
    const double pv = B * H * N * N * 2 * D, dot = B * H * N * N * 2 * D;
    struct {
        const char *params;
        double fwd;
    } c[] = {
        {"mode=random dot=0", pv},
        {"mode=random dot=1", pv + dot},
        {"mode=factorized_random k=8 dot=0", pv + B * H * N * N * 2 * k},
        {"mode=dense dot=1", pv + dot + B * H * (N * 2 * D * D + N * N * 2 * D)},
    };
    for (int i = 0; i < 4; i++) {
        attn_args a = syn_args(2, 4, 2, 100, 16, "full", c[i].params);
        cr_assert(fabs(K->flops(&a, ATTN_PASS_FWD) - c[i].fwd) <= 1e-9 * c[i].fwd, "%s: %.6g vs %.6g", c[i].params,
                  K->flops(&a, ATTN_PASS_FWD), c[i].fwd);
        cr_assert(fabs(K->flops(&a, ATTN_PASS_BWD) - 2 * c[i].fwd) <= 1e-9 * c[i].fwd, "%s backward", c[i].params);
    }
    /* causal: half the pairs plus the diagonal */
    attn_args a = syn_args(2, 4, 2, 100, 16, "causal", "mode=random dot=0");
    double want = B * H * (N * (N + 1) / 2) * 2 * D;
    cr_assert(fabs(K->flops(&a, ATTN_PASS_FWD) - want) <= 1e-9 * want);
    /* the weight rows: L^2, 2 L k, D^2 + D + L (D + 1) */
    attn_args r = syn_args(1, 1, 1, 100, 16, "full", "mode=random max_len=128");
    attn_args f = syn_args(1, 1, 1, 100, 16, "full", "mode=factorized_random k=8");
    attn_args d = syn_args(1, 1, 1, 100, 16, "full", "mode=dense");
    cr_assert_eq(weight_cols(&r), 128 * 128);
    cr_assert_eq(weight_cols(&f), 2 * 100 * 8);
    cr_assert_eq(weight_cols(&d), 16 * 16 + 16 + 100 * 17);
}
