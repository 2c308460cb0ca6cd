/* Properties of `hyper` (HyperAttention): the fp32 kernel equals its double
 * reference on shapes, parameters and masks (O and lse), also for rows whose
 * sign bits fp32 cannot decide; the limit cases equal softmax (a block of at
 * least N keys; the causal recursion with exact leaves and exact
 * off-diagonal blocks); the Gray-code rank; the key samples (without
 * replacement, in range, uniform); the view (row-stochastic, O = P V, the
 * block at one weight and the samples outside it at w_I times it); the
 * error against softmax falls as samples and blocks grow (mean over seeds,
 * peaked inputs); the seed is recorded and decides the result; cost model against the counters; refusals. Leakage,
 * thread determinism and strided views on the approximate paths: the
 * registry-driven tests (test_properties.c). */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/flash/flash.h"
#include "kernels/hyper/hyper.h"
#include "kernels/hyper/hyper_internal.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_hyper;

static attn_args hy_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                         const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, threads, params);
}

/* O within 5e-5 of max|O_ref| and lse within 1e-5 of the reference's. */
static void assert_matches_reference(fx_problem *p, const char *what)
{
    memset(p->o.data, 0xff, sizeof(float) * (size_t)(p->o.B * p->o.sb)); /* NaN: unwritten rows fail */
    cr_assert_eq(fx_run(K, p, 0), 0, "%s: %s", what, attn_last_error());
    double eo = fx_err_o(p), el = fx_err_lse(p);
    cr_assert(eo <= 5e-5, "%s: err_O %.3g > 5e-5", what, eo);
    cr_assert(el <= 1e-5, "%s: err_lse %.3g > 1e-5", what, el);
}

/* ---- the double reference ---- */

static const struct {
    int64_t B, H, H_kv, N, D;
    const char *mask, *params;
} ref_cases[] = {
    {2, 2, 2, 257, 32, "full", "bs=32 s=16 min_seq_len=64"},         /* last block of 1 key */
    {1, 4, 2, 64, 16, "full", "bs=16 s=16 min_seq_len=16 r=4"},      /* GQA: 2 heads stacked per block */
    {1, 2, 2, 257, 32, "causal", "bs=32 s=16 min_seq_len=16"},       /* 3 depths, odd halves */
    {1, 4, 1, 130, 16, "causal", "bs=8 s=64 min_seq_len=8 r=3"},     /* G = 4, samples > block */
    {1, 2, 2, 200, 16, "full", "bs=16 s=0 min_seq_len=8"},           /* blocks only */
    {1, 2, 2, 200, 16, "full", "bs=16 s=500 min_seq_len=8"},         /* every key a sample */
    {1, 2, 2, 100, 16, "causal", "bs=256 min_seq_len=8"},            /* one block per job: no samples */
    {2, 2, 1, 96, 16, "full", "r=16 bs=8 s=8 min_seq_len=4 seed=9"}, /* 2^16 codes */
    {1, 2, 2, 300, 64, "causal", "r=1 bs=64 s=32 min_seq_len=32"},   /* two codes */
};

Test(hyper, forward_matches_double_reference_on_shapes_parameters_and_masks, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        attn_args a = hy_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].N, ref_cases[i].D,
                              ref_cases[i].mask, ref_cases[i].params, 2);
        char what[160];
        snprintf(what, sizeof what, "%s N%ld H%ld/%ld D%ld %s", ref_cases[i].mask, (long)ref_cases[i].N,
                 (long)ref_cases[i].H, (long)ref_cases[i].H_kv, (long)ref_cases[i].D, ref_cases[i].params);
        fx_problem p;
        fx_make_for(&p, K, &a, 20 + i);
        assert_matches_reference(&p, what);
        fx_free(&p);
    }
}

/* Queries and keys made orthogonal to the first hyperplane (up to fp32
 * rounding): the sgemm projection cannot decide their first sign bit, the
 * exact fallback must, or kernel and reference would sort them apart. */
Test(hyper, near_zero_projections_follow_the_reference)
{
    int64_t N = 128, D = 16;
    attn_args a = hy_args(1, 1, 1, N, D, "full", "r=2 bs=16 s=8 min_seq_len=8", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    hy_plan pl;
    cr_assert_eq(hy_plan_make(&pl, &a), 0, "%s", attn_last_error());
    double R[2 * 16], rr = 0;
    hy_hyperplanes(&pl, D, R);
    for (int64_t d = 0; d < D; d++)
        rr += R[d * 2] * R[d * 2];
    int ties = 0;
    attn_tensor *t[] = {&p.q, &p.k};
    for (int w = 0; w < 2; w++)
        for (int64_t i = 0; i < N; i += 2) { /* every other row: x - (x.R0) R0 / |R0|^2 */
            float *x = attn_at(t[w], 0, 0, i);
            double xr = 0, left = 0;
            for (int64_t d = 0; d < D; d++)
                xr += x[d] * R[d * 2];
            for (int64_t d = 0; d < D; d++)
                x[d] = (float)(x[d] - xr * R[d * 2] / rr);
            for (int64_t d = 0; d < D; d++)
                left += (double)x[d] * R[d * 2];
            ties += fabs(left) < 1e-5;
        }
    cr_assert_geq(ties, 64, "only %d near-zero rows", ties);
    fx_ref_forward(&p);
    assert_matches_reference(&p, "near-zero projections");
    fx_free(&p);
}

/* ---- limit cases against softmax ---- */

/* A block of at least N keys holds every key (and the samples then all
 * fall in it): the oracle, with or without the causal recursion. */
Test(hyper, a_block_of_all_keys_is_the_softmax_oracle, .timeout = 30)
{
    static const char *const masks[] = {"full", "causal"};
    static const char *const params[] = {"bs=200 s=16 min_seq_len=16", "bs=4096 s=64 min_seq_len=8 r=3"};
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 2; c++) {
            attn_args a = hy_args(2, 4, 2, 200, 32, masks[m], params[c], 2);
            fx_problem p;
            fx_make(&p, &a, 5 + c); /* the oracle's answers */
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            double eo = fx_err_o(&p), el = fx_err_lse(&p);
            cr_assert(eo <= fx_tol_o(200) && el <= 1e-5, "%s %s: err_O %.3g err_lse %.3g", masks[m], params[c], eo,
                      el);
            fx_free(&p);
        }
}

/* Causal recursion whose leaves are exact and whose off-diagonal blocks are
 * exact too (each job's keys fit in one block): causal flash, row by row,
 * merged by lse across 4 depths; min_seq_len >= N is the delegate itself. */
Test(hyper, causal_recursion_with_exact_pieces_is_causal_flash, .timeout = 30)
{
    static const char *const params[] = {"bs=128 min_seq_len=8", "min_seq_len=4096"};
    for (int c = 0; c < 2; c++) {
        attn_args a = hy_args(1, 4, 2, 251, 32, "causal", params[c], 2);
        attn_args af = fx_args(1, 4, 2, 251, 251, 32, "causal", 2);
        fx_problem p, f;
        fx_make(&p, &a, 11);
        fx_make(&f, &af, 11);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(&attn_kernel_flash, &f, 0), 0, "%s", attn_last_error());
        double e = 0, vmax = 0;
        for (int64_t h = 0; h < 4; h++)
            for (int64_t i = 0; i < 251; i++)
                for (int64_t d = 0; d < 32; d++) {
                    e = fmax(e, fabs(attn_at(&p.o, 0, h, i)[d] - attn_at(&f.o, 0, h, i)[d]));
                    vmax = fmax(vmax, fabs(attn_at(&p.v, 0, h / 2, i)[d]));
                }
        cr_assert(e / vmax <= fx_tol_o(251), "%s: %.3g from causal flash", params[c], e / vmax);
        if (c == 1)
            cr_assert(fx_bitwise_equal(&p.o, &f.o), "min_seq_len >= N is not flash itself");
        fx_free(&p), fx_free(&f);
    }
}

/* ---- codes and samples ---- */

Test(hyper, gray_rank_orders_codes_so_neighbours_differ_in_one_bit)
{
    enum { R = 10 };
    uint32_t word_of[1 << R];
    for (uint32_t w = 0; w < (1u << R); w++) {
        uint32_t rank = hy_gray_rank(w);
        cr_assert_lt(rank, 1u << R);
        cr_assert_eq(rank ^ (rank >> 1), w, "rank %u of word %u is not its Gray position", rank, w);
        word_of[rank] = w;
    }
    for (uint32_t k = 1; k < (1u << R); k++)
        cr_assert_eq(__builtin_popcount(word_of[k] ^ word_of[k - 1]), 1, "ranks %u and %u", k - 1, k);
}

/* Distinct, ascending, inside the job's keys, min(s, nk) of them, none when
 * one block holds every key; over many jobs each key is drawn about s / nk
 * of the time. */
Test(hyper, samples_are_uniform_without_replacement_in_the_jobs_keys)
{
    attn_args a = hy_args(1, 1, 1, 64, 16, "full", "bs=8 s=24", 1);
    hy_plan pl;
    cr_assert_eq(hy_plan_make(&pl, &a), 0, "%s", attn_last_error());
    enum { NK = 96, JOBS = 4000 };
    int32_t out[NK];
    int64_t hits[NK] = {0};
    for (int64_t t = 0; t < JOBS; t++) {
        hy_job j = {.q0 = 1000 + t, .nq = NK, .k0 = 500, .nk = NK};
        int64_t n = hy_draw_samples(&pl, &j, 0, 0, 1, out);
        cr_assert_eq(n, 24);
        for (int64_t c = 0; c < n; c++) {
            cr_assert(out[c] >= 500 && out[c] < 500 + NK, "sample %d out of the job", out[c]);
            cr_assert(c == 0 || out[c] > out[c - 1], "samples not distinct and ascending");
            hits[out[c] - 500]++;
        }
    }
    double expect = JOBS * 24.0 / NK, worst = 0; /* binomial sd ~ 13.4 */
    for (int64_t k = 0; k < NK; k++)
        worst = fmax(worst, fabs((double)hits[k] - expect));
    cr_assert_lt(worst, 6 * sqrt(expect * (1 - 24.0 / NK)), "a key drawn %.0f from its expected %.0f", worst, expect);
    hy_job small = {.q0 = 1, .nq = 6, .k0 = 0, .nk = 8}; /* one block of 8 */
    cr_assert_eq(hy_samples_of(&pl, &small), 0);
    hy_job few = {.q0 = 1, .nq = 20, .k0 = 0, .nk = 20};
    cr_assert_eq(hy_draw_samples(&pl, &few, 0, 0, 1, out), 20);
    for (int c = 0; c < 20; c++)
        cr_assert_eq(out[c], c);
}

/* ---- the view ---- */

/* FULL, one job of 256 keys in blocks of 32, 16 samples: each row weighs
 * its 32 block keys and the samples outside its block (P >= 0, sum 1,
 * P V = the reference's O), and P_j / exp(s_ij) is one constant c on the
 * block and c w on the samples, w = (256 - 32) / (samples outside). */
static void assert_block_and_weighted_samples(const attn_io64 *io, int64_t h, int64_t i, const double *P,
                                              const unsigned char *sel, int64_t N, int64_t D)
{
    double ratio[64], sum = 0;
    int64_t n = 0;
    for (int64_t j = 0; j < N; j++) {
        cr_assert(P[j] >= 0 && (P[j] == 0 || sel[j]), "row %ld key %ld: weight %g", (long)i, (long)j, P[j]);
        sum += P[j];
        if (!sel[j])
            continue;
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += attn_at64(&io->q, 0, h, i)[d] * attn_at64(&io->k, 0, 0, j)[d];
        cr_assert_lt(n, 64);
        ratio[n++] = P[j] / exp(s / sqrt((double)D));
    }
    cr_assert(fabs(sum - 1) < 1e-12, "row %ld sums to %.15g", (long)i, sum);
    cr_assert(n > 32 && n <= 48, "row %ld attends %ld keys, expected 32 + samples outside", (long)i, (long)n);
    double lo = ratio[0];
    for (int64_t c = 1; c < n; c++)
        lo = fmin(lo, ratio[c]);
    int64_t block = 0;
    double w = 224.0 / (double)(n - 32);
    for (int64_t c = 0; c < n; c++) {
        int in_block = fabs(ratio[c] / lo - 1) < 1e-9, weighted = fabs(ratio[c] / (lo * w) - 1) < 1e-9;
        cr_assert(in_block || weighted, "row %ld: weight ratio %.12g is neither 1 nor w = %.6g", (long)i,
                  ratio[c] / lo, w);
        block += in_block;
    }
    cr_assert_eq(block, 32, "row %ld: %ld keys at the block's weight", (long)i, (long)block);
}

Test(hyper, view_rows_are_the_block_and_the_weighted_samples)
{
    int64_t N = 256, D = 16;
    attn_args a = hy_args(1, 2, 1, N, D, "full", "bs=32 s=16 min_seq_len=16", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 4);
    attn_io64 io = problem_io64(&p);
    int64_t rows[8] = {0, 1, 37, 100, 128, 200, 254, 255};
    double *P = malloc(sizeof(double) * 8 * (size_t)N);
    unsigned char *sel = malloc(8 * (size_t)N);
    for (int64_t h = 0; h < 2; h++) {
        cr_assert_eq(K->ref_view(&p.a, &io, 0, h, rows, 8, P, sel), ATTN_VIEW_ROWS | ATTN_VIEW_KEYS);
        for (int r = 0; r < 8; r++) {
            assert_block_and_weighted_samples(&io, h, rows[r], P + r * N, sel + r * N, N, D);
            for (int64_t d = 0; d < D; d++) {
                double o = 0;
                for (int64_t j = 0; j < N; j++)
                    o += P[r * N + j] * attn_at64(&io.v, 0, 0, j)[d];
                cr_assert(fabs(o - attn_at64(&p.o64, 0, h, rows[r])[d]) < 1e-12, "P V is not the reference's O");
            }
        }
    }
    free(P), free(sel);
    fx_free(&p);
}

/* ---- error against softmax ---- */

/* Mean relative Frobenius error against the oracle on peaked inputs over 5
 * seeds (kernel seed and data), full and causal, N = 512: more samples
 * (s 16 -> 64 -> 128) and larger blocks (bs 16 -> 64 -> 128) each bring it
 * down (below the largest causal job's 256 keys: no budget is exact). */
static double mean_error(const char *mask, const char *params)
{
    double mean = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        char full[128];
        snprintf(full, sizeof full, "%s seed=%llu", params, (unsigned long long)seed);
        attn_args a = hy_args(1, 2, 2, 512, 32, mask, full, 2);
        fid_metrics f;
        cr_assert_eq(check_kernel_fidelity(K, &a, FID_PEAKED, 40 + seed, &f), 0, "%s", attn_last_error());
        mean += f.rel_fro / 5;
    }
    return mean;
}

Test(hyper, error_against_softmax_falls_as_samples_and_blocks_grow, .timeout = 60)
{
    static const char *const masks[] = {"full", "causal"};
    static const char *const by_s[] = {"bs=32 s=16 min_seq_len=32", "bs=32 s=64 min_seq_len=32",
                                       "bs=32 s=128 min_seq_len=32"};
    static const char *const by_bs[] = {"bs=16 s=32 min_seq_len=32", "bs=64 s=32 min_seq_len=32",
                                        "bs=128 s=32 min_seq_len=32"};
    for (int m = 0; m < 2; m++) {
        double es[3], eb[3];
        for (int i = 0; i < 3; i++)
            es[i] = mean_error(masks[m], by_s[i]), eb[i] = mean_error(masks[m], by_bs[i]);
        for (int i = 1; i < 3; i++) {
            cr_assert(es[i] < es[i - 1], "%s %s: mean error %.4f, not below %.4f", masks[m], by_s[i], es[i], es[i - 1]);
            cr_assert(eb[i] < eb[i - 1], "%s %s: mean error %.4f, not below %.4f", masks[m], by_bs[i], eb[i],
                      eb[i - 1]);
        }
    }
}

/* ---- seed, cost, parameters ---- */

Test(hyper, the_seed_is_recorded_and_decides_the_result)
{
    attn_args a = hy_args(1, 2, 1, 128, 16, "causal", "bs=8 s=8 min_seq_len=16 seed=3", 1);
    attn_args other = hy_args(1, 2, 1, 128, 16, "causal", "bs=8 s=8 min_seq_len=16 seed=4", 1);
    own_seed_is_recorded_and_decides(K, &a, &other, 3);
}

/* FULL, N = 300, bs = 64, s = 32, r = 8, H 4/2, D 16: one job; blocks
 * 4 x 64 + 44, so per head 2 (16 + 16) (4 64^2 + 44^2 + 300 32), plus the
 * hashes 2 300 16 8 (4 + 2). Causal N = 64, min_seq_len 16, bs 8, s 4: two
 * fused leaves of 32 rows, (16 + 16) 32 33 each, and the job (32, 32, 0,
 * 32): 4 blocks of 8, 2 (16 + 16) (4 64 + 32 4). */
Test(hyper, cost_model_matches_the_formula_and_the_counters)
{
    attn_args a = hy_args(1, 4, 2, 300, 16, "full", "bs=64 s=32 min_seq_len=64", 1);
    double fwd = 4 * 2.0 * 32 * (4 * 64 * 64 + 44 * 44 + 300 * 32) + 2.0 * 300 * 16 * 8 * 6;
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-6);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 0, 1e-12);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4.0 * 300 * (4 * 16 + 2 * 2 * 16 + 4 * 16 + 4), 1e-6);
    cr_assert_eq(K->state_bytes(&a), 4u * 300 * 2 * 2 * 16);
    fx_problem p;
    fx_make_for(&p, K, &a, 8);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_float_eq((double)attn_counter_get(ATTN_CNT_FLOPS), fwd, 0.5);
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 4 * (4 * 64 * (64 + 32) + 44 * (44 + 32)),
                 "exps: one per score of each row's block and samples");
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) > 0);
    fx_free(&p);
    attn_args c = hy_args(1, 4, 2, 64, 16, "causal", "bs=8 s=4 min_seq_len=16", 1);
    double head = 2 * 32.0 * 32 * 33 + 2 * 32.0 * (4 * 64 + 32 * 4);
    cr_assert_float_eq(K->flops(&c, ATTN_PASS_FWD), 4 * head + 2.0 * 64 * 16 * 8 * 6, 1e-6);
}

Test(hyper, refuses_cross_lengths_other_masks_shifted_causal_and_bad_parameters)
{
    attn_ctx ctx;
    attn_args cross = fx_args(1, 1, 1, 8, 16, 16, "full", 1);
    cr_assert_eq(attn_ctx_create(K, &cross, &ctx), ATTN_EUNSUPPORTED);
    attn_args w = hy_args(1, 1, 1, 16, 16, "window:wl=4,wr=0", "", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    attn_args shifted = hy_args(1, 1, 1, 16, 16, "causal", "", 1);
    shifted.q_off = 5;
    cr_assert_eq(attn_ctx_create(K, &shifted, &ctx), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "q_off"), "%s", attn_last_error());
    attn_args r = hy_args(1, 1, 1, 16, 16, "full", "r=17", 1);
    cr_assert_eq(attn_ctx_create(K, &r, &ctx), ATTN_EINVAL);
    attn_args bs = hy_args(1, 1, 1, 16, 16, "full", "bs=0", 1);
    cr_assert_eq(attn_ctx_create(K, &bs, &ctx), ATTN_EINVAL);
    attn_args unknown = hy_args(1, 1, 1, 16, 16, "full", "rounds=2", 1);
    cr_assert_neq(attn_ctx_create(K, &unknown, &ctx), 0);
    attn_args ok = hy_args(1, 1, 1, 16, 16, "full", "r=16 bs=4 s=0 min_seq_len=4", 1);
    cr_assert_eq(attn_ctx_create(K, &ok, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}
