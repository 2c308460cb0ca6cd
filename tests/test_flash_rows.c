/* `flash`'s per-row path (gather=rows, or auto's choice for sparse random
 * masks): oracle match on random, dilated and strided masks, causal variants
 * and masks forced through it, lengths that are not multiples of 16 or of a
 * key tile, GQA, batch-varying masks, cross lengths, odd head sizes; the
 * AVX2 and AVX-512 inner loops against the plain ones; the backward after
 * it (on the tiled path) against the oracle; thread determinism; what auto
 * chooses and that it executes 4 D FLOPs per allowed pair; the refusals. */
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "exact_check.h"
#include "common/alloc.h"
#include "common/rng.h"
#include "kernels/flash/flash_gather.h"
#include "kernels/flash/flash_rows.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_flash;

static const char *const masks[] = {"random:p=0.1,seed=3",  "random:p=0.3,seed=5,diag=0", "random:p=0.02,seed=7",
                                    "dilated:w=8,dil=3",    "dilated:wl=6,wr=0,dil=2",    "dilated:w=5,dil=2+3",
                                    "strided:l=16",         "strided:l=8,split=1",        "fixed:l=16,c=4",
                                    "random:p=0.2,causal=1"};
#define N_MASKS (int)(sizeof masks / sizeof *masks)

/* 1 if a context for a runs the per-row forward. */
static int runs_rows(const attn_args *a)
{
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, a, &ctx), 0, "%s", attn_last_error());
    const flash_gather *gp = ctx.priv;
    int on = flash_gather_fits(gp, &ctx.args) && gp->rows_path;
    attn_ctx_destroy(&ctx);
    return on;
}

Test(flash_rows, forward_matches_oracle_on_unstructured_masks_lengths_and_head_sizes, .timeout = 120)
{
    exact_check_masks_by_length(K, masks, N_MASKS, "gather=rows", runs_rows, 2300);
}

Test(flash_rows, forward_matches_oracle_on_structured_masks_forced_through_it)
{
    static const char *const structured[] = {"full", "causal", "window:wl=5,wr=3", "document:lens=30+40+27"};
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args_params(1, 2, 2, 97, 97, 32, structured[m], 2, "gather=rows");
        cr_assert(runs_rows(&a), "%s", structured[m]);
        exact_check_forward(K, &a, 2500 + (uint64_t)m, structured[m]);
    }
}

/* GQA (the group's heads share K and V; random masks differ between them),
 * batch-varying masks, cross lengths aligned bottom-right, head sizes that
 * are not multiples of 16 (masked tails) and above 128, and key counts past
 * one tile (D = 128: 512-key tiles). */
Test(flash_rows, forward_matches_oracle_with_gqa_batch_varying_masks_cross_lengths_and_odd_sizes, .timeout = 120)
{
    static const int64_t shapes[][6] = {/* B, H, H_kv, Nq, Nk, D */
                                        {3, 8, 2, 75, 75, 32},  {1, 6, 1, 130, 130, 16}, {1, 2, 1, 19, 211, 24},
                                        {1, 2, 2, 150, 61, 7},  {1, 2, 2, 40, 1100, 128}, {1, 1, 1, 33, 300, 200},
                                        {2, 2, 1, 29, 29, 80}};
    for (int m = 0; m < N_MASKS; m++)
        for (int s = 0; s < 7; s++) {
            const int64_t *x = shapes[s];
            char what[160];
            snprintf(what, sizeof what, "B=%ld H=%ld/%ld N=%ld/%ld D=%ld %s", (long)x[0], (long)x[1], (long)x[2],
                     (long)x[3], (long)x[4], (long)x[5], masks[m]);
            attn_args a = fx_args_params(x[0], x[1], x[2], x[3], x[4], x[5], masks[m], 2, "gather=rows");
            exact_check_forward(K, &a, 2600 + (uint64_t)(7 * m + s), what);
        }
}

/* The backward after the per-row forward runs on the tiled path from the
 * forward's lse: gradients match the oracle's. */
Test(flash_rows, backward_after_it_matches_oracle_gradients, .timeout = 120)
{
    static const int64_t Ns[] = {7, 100, 131};
    for (int m = 0; m < N_MASKS; m++)
        for (int iN = 0; iN < 3; iN++) {
            char what[160];
            snprintf(what, sizeof what, "B=2 H=4 H_kv=2 N=%ld %s", (long)Ns[iN], masks[m]);
            attn_args a = fx_args_params(2, 4, 2, Ns[iN], Ns[iN], 24, masks[m], 2, "gather=rows");
            a.backward = 1;
            cr_assert(runs_rows(&a), "%s: the context has no per-row bitmap", what);
            exact_check_backward(K, &a, 2800 + (uint64_t)(m * 3 + iN), what);
        }
}

Test(flash_rows, forward_and_backward_are_bitwise_identical_for_any_thread_count)
{
    for (int m = 0; m < N_MASKS; m++) {
        attn_args a = fx_args_params(2, 4, 2, 201, 201, 16, masks[m], 1, "gather=rows");
        a.backward = 1;
        fx_problem p1, p3;
        fx_make(&p1, &a, 2900 + (uint64_t)m);
        a.threads = 3;
        fx_make(&p3, &a, 2900 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p1, 1), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(K, &p3, 1), 0, "%s", attn_last_error());
        cr_assert(fx_bitwise_equal(&p1.o, &p3.o), "%s: O differs between 1 and 3 threads", masks[m]);
        cr_assert_eq(memcmp(p1.lse, p3.lse, sizeof(float) * (size_t)(2 * 4 * 201)), 0, "%s: lse differs", masks[m]);
        cr_assert(fx_bitwise_equal(&p1.dq, &p3.dq) && fx_bitwise_equal(&p1.dk, &p3.dk) &&
                      fx_bitwise_equal(&p1.dv, &p3.dv),
                  "%s: gradients differ between 1 and 3 threads", masks[m]);
        fx_free(&p1);
        fx_free(&p3);
    }
}

/* Every compiled variant of the inner loops against the plain loops, on
 * head sizes with and without a 16-float tail and on lists that are not a
 * multiple of 16 keys (relative error: the variants sum in other orders). */
Test(flash_rows, vector_inner_loops_match_the_plain_ones)
{
    static const int64_t Ds[] = {1, 7, 16, 24, 64, 80, 128, 200, 256, 300};
    const int64_t nk = 257, sn = 304;
    float *kv = attn_alloc(sizeof(float) * (size_t)(nk * sn));
    float *q = attn_alloc(sizeof(float) * 320), *p = attn_alloc(sizeof(float) * 64);
    float *s0 = attn_alloc(sizeof(float) * 64), *s1 = attn_alloc(sizeof(float) * 64);
    float *a0 = attn_alloc(sizeof(float) * 320), *a1 = attn_alloc(sizeof(float) * 320);
    int32_t idx[64];
    attn_rng r;
    attn_rng_seed(&r, 77);
    for (int64_t i = 0; i < nk * sn; i++)
        kv[i] = (float)attn_rng_normal(&r);
    for (int64_t k = 0; k < 64; k++)
        idx[k] = (int32_t)attn_rng_uint_below(&r, (uint64_t)nk), p[k] = (float)attn_rng_uniform(&r);
    for (int isa = FLASH_ROWS_AVX2; isa <= FLASH_ROWS_AVX512; isa++) {
        if (!flash_rows_has_isa((flash_rows_isa)isa))
            continue;
        for (int d = 0; d < 10; d++) {
            int64_t D = Ds[d];
            memset(q, 0, sizeof(float) * 320);
            for (int64_t i = 0; i < D; i++)
                q[i] = (float)attn_rng_normal(&r), a0[i] = a1[i] = (float)attn_rng_normal(&r);
            /* lists ending in a batch of 16, of 9, of exactly 8 (the short
             * batch's edge) and of fewer; odd and even lengths for the P V
             * loop's pairs of keys */
            static const int64_t ns[] = {1, 8, 9, 13, 16, 24, 25, 37};
            for (int in = 0; in < 8; in++) {
                int64_t n = ns[in];
                flash_rows_dot(FLASH_ROWS_PLAIN, q, kv, sn, idx, n, D, s0);
                flash_rows_dot((flash_rows_isa)isa, q, kv, sn, idx, n, D, s1);
                for (int64_t k = 0; k < n; k++)
                    cr_assert(fabsf(s0[k] - s1[k]) <= 1e-5f * (1 + fabsf(s0[k])) * sqrtf((float)D),
                              "isa %d D=%ld n=%ld score %ld: %g vs %g", isa, (long)D, (long)n, (long)k, s1[k], s0[k]);
                flash_rows_pv(FLASH_ROWS_PLAIN, a0, 0.75f, p, kv, sn, idx, n, D);
                flash_rows_pv((flash_rows_isa)isa, a1, 0.75f, p, kv, sn, idx, n, D);
                for (int64_t i = 0; i < D; i++)
                    cr_assert(fabsf(a0[i] - a1[i]) <= 1e-4f * (1 + fabsf(a0[i])), "isa %d D=%ld n=%ld acc %ld",
                              isa, (long)D, (long)n, (long)i);
            }
        }
    }
    attn_free(kv), attn_free(q), attn_free(p), attn_free(s0);
    attn_free(s1), attn_free(a0), attn_free(a1);
}

Test(flash_rows, key_lists_are_the_set_bits_in_order)
{
    uint64_t w[3] = {0x8000000000000001ull, 0, 0xffff0000ffff0010ull};
    int32_t idx[64 * 3 + 16];
    int64_t n = flash_rows_list(w, 3, 100, idx), k = 0;
    for (int64_t j = 0; j < 192; j++)
        if (w[j / 64] >> (j % 64) & 1) {
            cr_assert_lt(k, n);
            cr_assert_eq(idx[k], 100 + j, "key %ld: %d", (long)k, idx[k]);
            k++;
        }
    cr_assert_eq(k, n);
}

/* Executed FLOPs of the forward of a on fresh data. */
static long long forward_flops(const attn_args *a)
{
    fx_problem p;
    fx_make(&p, a, 3100);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    long long f = attn_counter_get(ATTN_CNT_FLOPS);
    fx_free(&p);
    return f;
}

/* At N = 1024 auto takes the per-row path for random masks at p = 0.05 and
 * 0.1 (the gathered blocks' unions are most of the keys), which executes
 * 4 D FLOPs per allowed pair; full and causal stay off it, and so do dilated
 * masks, whose gathered blocks cost less, and dense random ones (the
 * model's cost passes the tiled path's). */
Test(flash_rows, auto_takes_it_for_sparse_random_masks_only, .timeout = 60)
{
    static const char *const sparse[] = {"random:p=0.1,seed=1", "random:p=0.05,seed=2"};
    static const char *const other[] = {"full", "causal", "random:p=0.9,seed=1", "dilated:w=64,dil=4"};
    for (int m = 0; m < 2; m++) {
        attn_args a = fx_args(1, 2, 2, 1024, 1024, 32, sparse[m], 2);
        cr_assert(runs_rows(&a), "%s: auto did not take the per-row path", sparse[m]);
        attn_args off = a;
        fx_add_params(&off, "gather=off");
        cr_assert(!runs_rows(&off), "%s: gather=off built the bitmap", sparse[m]);
        double pairs = 0;
        for (int64_t h = 0; h < 2; h++)
            pairs += attn_mask_pairs(&a.mask, 0, h, 1024, 1024, 0, 0);
        long long fr = forward_flops(&a), ft = forward_flops(&off);
        cr_assert_eq(fr, (long long)(4.0 * 32 * pairs), "%s: %lld FLOPs for %.0f pairs", sparse[m], fr, pairs);
        cr_assert(2 * fr <= ft, "%s: per-row %lld FLOPs, tiled %lld", sparse[m], fr, ft);
    }
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args(1, 2, 2, 1024, 1024, 32, other[m], 2);
        cr_assert(!runs_rows(&a), "%s: auto took the per-row path", other[m]);
    }
}

Test(flash_rows, gather_rows_refuses_a_padded_batch_with_a_message)
{
    static const int64_t lens[2] = {64, 20};
    attn_args b = fx_args_params(2, 2, 2, 64, 64, 16, "random:p=0.2", 1, "gather=rows");
    b.seq_len = lens;
    attn_ctx ctx;
    attn_clear_error();
    cr_assert_eq(attn_ctx_create(K, &b, &ctx), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "seq_len") && strstr(attn_last_error(), "rows"), "message: %s",
              attn_last_error());
}
