/* Properties of the `flash` kernel: oracle match on every mask, length and
 * head size, GQA, cross lengths, tile sizes, fully masked rows, gradients,
 * causal leakage (O and lse) on tile boundaries, parameter validation, and
 * its building blocks (vector exp, micro-kernel). Thread determinism and
 * strided views on its tile sizes: test_properties.c. */
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "exact_check.h"
#include "kernels/flash/flash_internal.h"
#include "kernels/flash/flash.h"
#include "common/rng.h"
#include "kernels/core/vexp.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_flash;

static const char *const masks[] = {"full", "causal", "window:wl=5,wr=3", "window:wl=16,wr=0"};

Test(flash, forward_matches_oracle_on_every_mask_length_and_head_size, .timeout = 60)
{
    static const int64_t Ns[] = {1, 7, 64, 129, 513}, Ds[] = {16, 64, 80, 128};
    for (int iN = 0; iN < 5; iN++)
        for (int iD = 0; iD < 4; iD++) {
            const char *m = masks[(iN + iD) % 4];
            char what[128];
            snprintf(what, sizeof what, "B=2 H=3 N=%ld D=%ld %s", (long)Ns[iN], (long)Ds[iD], m);
            attn_args a = fx_args(2, 3, 3, Ns[iN], Ns[iN], Ds[iD], m, 2);
            exact_check_forward(K, &a, 1000 + (uint64_t)(iN * 4 + iD), what);
        }
}

Test(flash, forward_matches_oracle_with_gqa_packing)
{
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args(2, 8, 2, 130, 130, 64, masks[m], 2);
        exact_check_forward(K, &a, 20 + (uint64_t)m, masks[m]);
    }
}

Test(flash, forward_matches_oracle_on_cross_lengths_bottom_right_aligned)
{
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args(2, 2, 1, 16, 257, 64, masks[m], 2);
        exact_check_forward(K, &a, 30 + (uint64_t)m, masks[m]);
        attn_args b = fx_args(1, 2, 2, 300, 70, 32, masks[m], 2); /* more queries than keys */
        exact_check_forward(K, &b, 40 + (uint64_t)m, masks[m]);
    }
}

Test(flash, forward_matches_oracle_with_non_default_tile_sizes)
{
    static const char *const tiles[][2] = {{"br=16", "bc=32"}, {"br=7", "bc=5"}, {"br=100", "bc=300"},
                                           {"br=1", "bc=1"}};
    for (int t = 0; t < 4; t++)
        for (int m = 0; m < 4; m++) {
            attn_args a = fx_args_params(1, 4, 2, 77, 77, 24, masks[m], 2, tiles[t][0]);
            fx_add_params(&a, tiles[t][1]);
            char what[96];
            snprintf(what, sizeof what, "%s %s %s", tiles[t][0], tiles[t][1], masks[m]);
            exact_check_forward(K, &a, 50 + (uint64_t)(4 * t + m), what);
        }
}

/* Keys start at position 10 and the window looks back 2: queries 0..9 see no key. */
Test(flash, fully_masked_rows_give_zero_output_and_minus_inf_lse)
{
    attn_args a = fx_args(1, 2, 1, 40, 40, 16, "window:wl=2,wr=0", 2);
    a.q_off = 0, a.k_off = 10;
    fx_add_params(&a, "br=16"); /* rows 0..15: one tile mixing empty and live rows */
    fx_problem p;
    fx_make(&p, &a, 5);
    memset(p.o.data, 0x7f, sizeof(float) * (size_t)(p.o.B * p.o.sb)); /* poison: must be overwritten */
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < 40; i++) {
            float lse = p.lse[h * 40 + i];
            cr_assert_eq(isinf(lse) && lse < 0, i < 10, "h=%ld i=%ld lse=%g", (long)h, (long)i, lse);
            for (int64_t d = 0; d < 16 && i < 10; d++) {
                cr_assert_eq(attn_at(&p.o, 0, h, i)[d], 0.0f);
                cr_assert_eq(attn_at(&p.dq, 0, h, i)[d], 0.0f);
            }
        }
    cr_assert(fx_err_o(&p) <= fx_tol_o(40));
    cr_assert(fx_err_lse(&p) <= 1e-5);
    cr_assert(fx_err_grad(&p.dk, &p.dk64) <= 1e-4);
    fx_free(&p);
}

Test(flash, backward_matches_oracle_gradients, .timeout = 60)
{
    static const char *const bmasks[] = {"full", "causal", "window:wl=5,wr=3"};
    static const int64_t Ns[] = {7, 130}, Ds[] = {16, 80};
    for (int m = 0; m < 3; m++)
        for (int iN = 0; iN < 2; iN++)
            for (int iD = 0; iD < 2; iD++) {
                char what[96];
                snprintf(what, sizeof what, "H=2 H_kv=1 N=%ld D=%ld %s", (long)Ns[iN], (long)Ds[iD], bmasks[m]);
                attn_args a = fx_args(1, 2, 1, Ns[iN], Ns[iN], Ds[iD], bmasks[m], 2);
                exact_check_backward(K, &a, 70 + (uint64_t)(m * 4 + iN * 2 + iD), what);
            }
}

Test(flash, backward_matches_oracle_with_small_tiles_cross_lengths_and_gqa)
{
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args_params(2, 4, 2, 45, 101, 32, masks[m], 2, "br=16");
        fx_add_params(&a, "bc=24");
        exact_check_backward(K, &a, 90 + (uint64_t)m, masks[m]);
        attn_args b = fx_args(1, 3, 1, 150, 40, 16, masks[m], 2);
        exact_check_backward(K, &b, 95 + (uint64_t)m, masks[m]);
    }
}

/* One KV head and ten key tiles: the one-pass backward cuts the key tiles
 * into stripes (flash_bwd_stripes), each with its own dQ partial. Its
 * gradients match the oracle's, are bitwise the same for 1, 2 and 3 threads,
 * and agree with the two-pass backward of memory-budget mode. */
Test(flash, one_pass_backward_with_key_stripes_matches_oracle_threads_and_two_pass)
{
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args_params(1, 2, 1, 300, 300, 32, masks[m], 1, "bc=32");
        flash_plan pl;
        a.backward = 1;
        cr_assert_eq(attn_flash_plan(&pl, &a), 0, "%s", attn_last_error());
        cr_assert(pl.stripes > 1 && pl.stripes < pl.nkt, "%s: %ld stripes over %ld key tiles: not the case meant",
                  masks[m], (long)pl.stripes, (long)pl.nkt);
        exact_check_backward(K, &a, 140 + (uint64_t)m, masks[m]);
        fx_problem p[4];
        for (int t = 0; t < 4; t++) {
            attn_args at = a;
            at.threads = t < 3 ? t + 1 : 2;
            at.mem_budget = t < 3 ? 0 : (uint64_t)1 << 30; /* the two-pass backward */
            fx_make(&p[t], &at, 150 + (uint64_t)m);
            cr_assert_eq(fx_run(K, &p[t], 1), 0, "%s", attn_last_error());
        }
        for (int t = 1; t < 3; t++)
            cr_assert(fx_bitwise_equal(&p[0].dq, &p[t].dq) && fx_bitwise_equal(&p[0].dk, &p[t].dk) &&
                          fx_bitwise_equal(&p[0].dv, &p[t].dv),
                      "%s: gradients differ between 1 and %d threads", masks[m], t + 1);
        attn_tensor *one[] = {&p[0].dq, &p[0].dk, &p[0].dv}, *two[] = {&p[3].dq, &p[3].dk, &p[3].dv};
        for (int x = 0; x < 3; x++) {
            double err = 0, big = 0;
            for (int64_t h = 0; h < one[x]->H; h++)
                for (int64_t n = 0; n < 300; n++)
                    for (int64_t d = 0; d < 32; d++) {
                        double u = attn_at(one[x], 0, h, n)[d], v = attn_at(two[x], 0, h, n)[d];
                        err = fabs(u - v) > err ? fabs(u - v) : err;
                        big = fabs(v) > big ? fabs(v) : big;
                    }
            cr_assert(err <= 1e-5 * big, "%s: d%c of one and two passes differ by %.3g (max %.3g)", masks[m],
                      "QKV"[x], err, big);
        }
        for (int t = 0; t < 4; t++)
            fx_free(&p[t]);
    }
}

/* Perturbs Q, K, V rows >= t of every head (self-attention, causal) and
 * requires O and lse of rows < t to keep their exact bits. */
static void check_causal_leakage(const char *br, const char *bc, int64_t t)
{
    attn_args a = fx_args_params(1, 2, 1, 200, 200, 32, "causal", 2, br);
    fx_add_params(&a, bc);
    fx_problem p;
    fx_make(&p, &a, 3);
    cr_assert_eq(fx_run(K, &p, 0), 0);
    float *o0 = malloc(sizeof(float) * (size_t)(p.o.B * p.o.sb)), *l0 = malloc(sizeof(float) * 400);
    memcpy(o0, p.o.data, sizeof(float) * (size_t)(p.o.B * p.o.sb));
    memcpy(l0, p.lse, sizeof(float) * 400);
    attn_tensor *in[] = {&p.q, &p.k, &p.v};
    for (int x = 0; x < 3; x++)
        for (int64_t h = 0; h < in[x]->H; h++)
            for (int64_t n = t; n < 200; n++)
                for (int64_t d = 0; d < 32; d++)
                    attn_at(in[x], 0, h, n)[d] = 7.0f * attn_at(in[x], 0, h, n)[d] + 1.0f;
    cr_assert_eq(fx_run(K, &p, 0), 0);
    for (int64_t h = 0; h < 2; h++) {
        cr_assert_eq(memcmp(attn_at(&p.o, 0, h, 0), o0 + h * p.o.sh, sizeof(float) * (size_t)(t * 32)), 0,
                     "%s %s: O rows < %ld changed", br, bc, (long)t);
        cr_assert_eq(memcmp(p.lse + h * 200, l0 + h * 200, sizeof(float) * (size_t)t), 0);
        cr_assert_neq(memcmp(attn_at(&p.o, 0, h, t), o0 + h * p.o.sh + t * 32, sizeof(float) * 32), 0,
                      "row t itself should change (the test would be vacuous)");
    }
    free(o0);
    free(l0);
    fx_free(&p);
}

Test(flash, causal_outputs_ignore_future_rows_bitwise)
{
    check_causal_leakage("br=64", "bc=256", 77);
    check_causal_leakage("br=16", "bc=32", 64); /* t on a tile boundary */
    check_causal_leakage("br=5", "bc=3", 101);
}

/* Unvalidated NaN input: no crash, and other (b, KV group)
 * slices keep their bits. */
Test(flash, nan_input_stays_within_its_kv_group)
{
    attn_args a = fx_args(2, 4, 2, 40, 40, 16, "causal", 2);
    fx_problem p, clean; /* one seed: the same data, NaN only in p */
    fx_make(&p, &a, 9);
    fx_make(&clean, &a, 9);
    cr_assert_eq(fx_run(K, &clean, 1), 0);
    const attn_tensor *o = &clean.o, *dq = &clean.dq, *dk = &clean.dk;
    attn_at(&p.k, 0, 0, 39)[3] = NAN; /* masked for most rows of a partial tile */
    cr_assert_eq(fx_run(K, &p, 1), 0);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 4; h++)
            for (int64_t n = 0; n < 40; n++) {
                if (b == 0 && h < 2)
                    continue; /* the group of KV head 0 in batch 0 may hold NaN */
                cr_assert_eq(memcmp(attn_at(o, b, h, n), attn_at(&p.o, b, h, n), 64), 0);
                cr_assert_eq(memcmp(attn_at(dq, b, h, n), attn_at(&p.dq, b, h, n), 64), 0);
                cr_assert_eq(memcmp(attn_at(dk, b, h / 2, n), attn_at(&p.dk, b, h / 2, n), 64), 0);
            }
    fx_free(&clean);
    fx_free(&p);
}

/* Executed FLOPs (4 D per computed score, padded lanes included), tiles and
 * exps as exported through the SDE counters, for a causal self-attention. */
Test(flash, counters_report_executed_work_and_skipped_tiles)
{
    attn_args a = fx_args_params(1, 2, 2, 256, 256, 32, "causal", 2, "br=64");
    fx_add_params(&a, "bc=64");
    fx_problem p;
    fx_make(&p, &a, 4);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0);
    /* 4 query tiles x 4 key tiles per head: 10 computed (lower triangle), 6 skipped */
    cr_assert_eq(attn_counter_get(ATTN_CNT_TILES_COMPUTED), 2 * 10);
    cr_assert_eq(attn_counter_get(ATTN_CNT_TILES_SKIPPED), 2 * 6);
    cr_assert_eq(attn_counter_get(ATTN_CNT_FLOPS), 2LL * 10 * 4 * 32 * 64 * 64);
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 2LL * 10 * (64 + 1) * 64);
    cr_assert_gt(attn_counter_get(ATTN_CNT_BYTES_READ), 4LL * 2 * 3 * 256 * 32);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 1), 0);
    /* the one-pass backward adds 5 products per computed tile to the forward's 2 */
    cr_assert_eq(attn_counter_get(ATTN_CNT_FLOPS), 2LL * 10 * 7 * 2 * 32 * 64 * 64);
    cr_assert_eq(attn_counter_get(ATTN_CNT_TILES_COMPUTED), 2 * 2 * 10);
    fx_free(&p);

    /* PARTIAL tiles are trimmed: query tile t of 16 rows computes keys [0, 16 (t+1)) only */
    attn_args b = fx_args_params(1, 1, 1, 64, 64, 32, "causal", 1, "br=16");
    fx_add_params(&b, "bc=64");
    fx_make(&p, &b, 4);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0);
    cr_assert_eq(attn_counter_get(ATTN_CNT_FLOPS), 4LL * 32 * 16 * (16 + 32 + 48 + 64));
    fx_free(&p);
}

/* Units in the last place of the float nearest to `ref` between got and ref. */
static double ulps(float got, double ref)
{
    float r = (float)ref;
    double u = (double)nextafterf(fabsf(r), INFINITY) - fabsf(r);
    return fabs((double)got - ref) / u;
}

Test(flash, vector_exp_is_within_2_ulp_and_zero_below_cutoff)
{
    /* every 61st float bit pattern of [-87.3, 88.7] (about 36 million) */
    static float x[4096], y[4096];
    double worst = 0;
    int n = 0;
    for (uint64_t bits = 0; bits < 0x100000000ull; bits += 61) {
        float f;
        uint32_t b32 = (uint32_t)bits;
        memcpy(&f, &b32, sizeof f);
        if (!(f >= -87.3f && f <= 88.7f))
            continue;
        x[n++] = f;
        if (n < 4096)
            continue;
        attn_vexp(y, x, n);
        for (int i = 0; i < n; i++) {
            double e = ulps(y[i], exp((double)x[i]));
            worst = e > worst ? e : worst;
            cr_assert(e <= 2.0, "exp(%.9g) = %.9g: %.2f ulp", x[i], y[i], e);
        }
        n = 0;
    }
    cr_assert_gt(worst, 0.0);
    float edge[] = {-87.31f, -87.4f, -100.0f, -1e30f, -INFINITY, 88.8f, 1e30f, INFINITY, NAN, -87.3f};
    float out[10];
    attn_vexp(out, edge, 10); /* length 10: the masked-tail path */
    for (int i = 0; i < 5; i++)
        cr_assert(out[i] == 0.0f && !signbit(out[i]), "exp(%g) = %g, expected +0", edge[i], out[i]);
    for (int i = 5; i < 8; i++)
        cr_assert(isinf(out[i]) && out[i] > 0, "exp(%g) = %g, expected inf", edge[i], out[i]);
    cr_assert(isnan(out[8]));
    cr_assert(out[9] > 1.17e-38f && out[9] < 1.23e-38f, "exp(-87.3) = %g", out[9]);
    for (int i = 0; i < 10; i++) {
        float s = attn_expf(edge[i]);
        cr_assert_eq(memcmp(&s, &out[i], sizeof s), 0, "scalar and vector exp differ at %g", edge[i]);
    }
}

Test(flash, microkernel_matches_plain_products_in_every_mode)
{
    static const int64_t shapes[][3] = {{1, 16, 1}, {7, 48, 5}, {13, 80, 33}, {64, 128, 64}, {6, 64, 128}};
    attn_rng r;
    attn_rng_seed(&r, 12);
    for (int s = 0; s < 5; s++)
        for (int mode = 0; mode < 3; mode++) {
            int64_t m = shapes[s][0], nn = shapes[s][1], k = shapes[s][2];
            int64_t sam = (s % 2) ? 1 : k + 2, sak = (s % 2) ? m + 1 : 1; /* both orientations */
            float *A = attn_alloc(sizeof(float) * (size_t)((m + 1) * (k + 2)));
            float *B = attn_alloc(sizeof(float) * (size_t)(k * nn)), *C = attn_alloc(sizeof(float) * (size_t)(m * nn));
            float *cs = attn_alloc(sizeof(float) * (size_t)nn), *cmax = attn_alloc(sizeof(float) * (size_t)nn);
            double *ref = malloc(sizeof(double) * (size_t)(m * nn)), *refmax = malloc(sizeof(double) * (size_t)nn);
            for (int64_t i = 0; i < (m + 1) * (k + 2); i++)
                A[i] = attn_rng_range(&r, -1, 1);
            for (int64_t i = 0; i < k * nn; i++)
                B[i] = attn_rng_range(&r, -1, 1);
            for (int64_t n = 0; n < nn; n++)
                cs[n] = attn_rng_range(&r, 0, 1), cmax[n] = attn_rng_range(&r, -2, 2), refmax[n] = cmax[n];
            for (int64_t i = 0; i < m; i++)
                for (int64_t n = 0; n < nn; n++) {
                    C[i * nn + n] = attn_rng_range(&r, -1, 1);
                    double c = mode == ATTN_MK_SET ? 0 : mode == ATTN_MK_ADD ? C[i * nn + n] : C[i * nn + n] * (double)cs[n];
                    for (int64_t p = 0; p < k; p++)
                        c += (double)A[i * sam + p * sak] * B[p * nn + n];
                    ref[i * nn + n] = c;
                    refmax[n] = c > refmax[n] ? c : refmax[n];
                }
            double f = attn_mk_gemm(m, nn, k, A, sam, sak, B, nn, C, nn, (attn_mk_mode)mode, cs, cmax);
            cr_assert_eq(f, 2.0 * (double)(m * nn * k));
            double tol = 1e-5 * (double)(k + 1);
            for (int64_t i = 0; i < m * nn; i++)
                cr_assert(fabs(C[i] - ref[i]) <= tol, "shape %d mode %d: C[%ld] = %g, expected %g", s, mode,
                          (long)i, C[i], ref[i]);
            for (int64_t n = 0; n < nn; n++)
                cr_assert(fabs(cmax[n] - refmax[n]) <= tol, "shape %d: cmax[%ld] = %g, expected %g", s, (long)n,
                          cmax[n], refmax[n]);
            attn_free(A), attn_free(B), attn_free(C), attn_free(cs), attn_free(cmax);
            free(ref), free(refmax);
        }
}

Test(flash, rejects_bad_and_unknown_params_with_a_message)
{
    static const char *const bad[] = {"br=0", "bc=0", "bc=-3", "br=abc", "br=5000", "tile=64"};
    for (int i = 0; i < 6; i++) {
        attn_args a = fx_args_params(1, 1, 1, 8, 8, 16, "full", 1, bad[i]);
        attn_ctx ctx;
        attn_clear_error();
        int rc = attn_ctx_create(K, &a, &ctx);
        cr_assert_lt(rc, 0, "%s accepted", bad[i]);
        char key[8];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        cr_assert(strstr(attn_last_error(), key), "%s: message '%s' does not name the key", bad[i],
                  attn_last_error());
    }
    attn_args ok = fx_args_params(1, 1, 1, 8, 8, 16, "full", 1, "br=32");
    fx_add_params(&ok, "bc=48");
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &ok, &ctx), 0, "valid params refused: %s", attn_last_error());
    attn_ctx_destroy(&ctx);
}
