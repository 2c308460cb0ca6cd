/* `flash`'s split path for the strided Sparse Transformer mask (split=on|auto):
 * O and LSE against the oracle for several strides (l = 1, l past N, N not
 * a multiple of l), GQA, split heads, small tiles; against the dense-cost
 * tiled path; the backward from its LSE; thread determinism; what auto
 * chooses, the work it saves, and the refusals of split=on. */
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "exact_check.h"
#include "kernels/flash/flash_split.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_flash;

static const char *const strided[] = {"strided:l=1", "strided:l=2", "strided:l=3",   "strided:l=7",
                                      "strided:l=16", "strided:l=64", "strided:l=500", "strided:l=5,split=1"};
#define N_STRIDED (int)(sizeof strided / sizeof *strided)

/* 1 if the forward plan of a takes the split path. */
static int runs_split(const attn_args *a)
{
    flash_plan pl;
    cr_assert_eq(attn_flash_plan(&pl, a), 0, "%s", attn_last_error());
    return pl.split;
}

Test(flash_split, forward_matches_oracle_on_strided_masks_and_lengths_not_multiples_of_l, .timeout = 120)
{
    exact_check_masks_by_length(K, strided, N_STRIDED, "split=on", runs_split, 2300);
}

/* Tiles of 1, 5 and 16 rows and 7, 16 and 300 keys: class tiles that end
 * inside a class, FULL and PARTIAL class tiles, one tile per class. */
Test(flash_split, forward_matches_oracle_with_small_and_large_tiles, .timeout = 60)
{
    static const char *const tiles[][2] = {{"br=1", "bc=7"}, {"br=5", "bc=16"}, {"br=16", "bc=300"}};
    for (int t = 0; t < 3; t++)
        for (int m = 0; m < N_STRIDED; m++) {
            attn_args a = fx_args_params(1, 2, 2, 211, 211, 24, strided[m], 2, "split=on");
            fx_add_params(&a, tiles[t][0]);
            fx_add_params(&a, tiles[t][1]);
            char what[160];
            snprintf(what, sizeof what, "%s %s %s", tiles[t][0], tiles[t][1], strided[m]);
            exact_check_forward(K, &a, 2400 + (uint64_t)(t * 10 + m), what);
        }
}

/* GQA packs the group's query heads into one class tile; split heads need
 * one query head per KV head (checked by the refusal test). */
Test(flash_split, forward_matches_oracle_with_gqa, .timeout = 60)
{
    static const int64_t shapes[][4] = {/* B, H, H_kv, N */ {3, 8, 2, 75}, {1, 6, 1, 130}, {2, 4, 4, 99}};
    for (int m = 0; m < N_STRIDED - 1; m++)
        for (int s = 0; s < 3; s++) {
            const int64_t *x = shapes[s];
            char what[160];
            snprintf(what, sizeof what, "B=%ld H=%ld/%ld N=%ld %s", (long)x[0], (long)x[1], (long)x[2], (long)x[3],
                     strided[m]);
            attn_args a = fx_args_params(x[0], x[1], x[2], x[3], x[3], 32, strided[m], 2, "split=on");
            exact_check_forward(K, &a, 2500 + (uint64_t)(3 * m + s), what);
        }
    attn_args sh = fx_args_params(2, 6, 6, 140, 140, 16, "strided:l=9,split=1", 2, "split=on");
    exact_check_forward(K, &sh, 2560, "split heads, H = H_kv = 6");
}

/* Head sizes 64 and 128 with their default key tiles (256 and 128 keys):
 * at l = 128 and 150 a block of 16 rows sees 143 and 165 band keys, more
 * than one key tile at D = 128; GQA groups whose last tile's lane blocks
 * hold rows of two heads; a batch of two; N odd and not a multiple of l. */
Test(flash_split, forward_matches_oracle_at_head_sizes_64_and_128_with_bands_past_a_key_tile, .timeout = 120)
{
    static const char *const masks[] = {"strided:l=128", "strided:l=150", "strided:l=37"};
    static const int64_t D[] = {64, 128};
    for (int d = 0; d < 2; d++)
        for (int m = 0; m < 3; m++) {
            attn_args a = fx_args_params(2, 4, 2, 397, 397, D[d], masks[m], 2, "split=on");
            char what[160];
            snprintf(what, sizeof what, "D=%ld %s", (long)D[d], masks[m]);
            exact_check_forward(K, &a, 2580 + (uint64_t)(3 * d + m), what);
        }
}

/* The split path and the dense-cost tiled path compute the same softmax:
 * O and LSE agree to fp32 rounding. */
Test(flash_split, forward_equals_the_tiled_path_within_fp32_rounding, .timeout = 60)
{
    for (int m = 0; m < N_STRIDED; m++) {
        int64_t H_kv = strstr(strided[m], "split=1") ? 4 : 2;
        attn_args a = fx_args_params(1, 4, H_kv, 517, 517, 64, strided[m], 2, "split=on");
        attn_args off = fx_args_params(1, 4, H_kv, 517, 517, 64, strided[m], 2, "split=off");
        fx_add_params(&off, "gather=off");
        cr_assert(runs_split(&a) && !runs_split(&off), "%s", strided[m]);
        fx_problem ps, pt;
        fx_make(&ps, &a, 2600 + (uint64_t)m);
        fx_make(&pt, &off, 2600 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &ps, 0), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(K, &pt, 0), 0, "%s", attn_last_error());
        double eo = 0, el = 0, omax = 0;
        for (int64_t i = 0; i < ps.o.B * ps.o.sb; i++) {
            eo = fmax(eo, fabs(ps.o.data[i] - pt.o.data[i]));
            omax = fmax(omax, fabs(pt.o.data[i]));
        }
        for (int64_t i = 0; i < a.B * a.H * a.Nq; i++)
            el = fmax(el, fabs(ps.lse[i] - pt.lse[i]) / fmax(1, fabs(pt.lse[i])));
        cr_assert(eo <= 1e-5 * fmax(1, omax), "%s: O differs from the tiled path by %.3g", strided[m], eo);
        cr_assert(el <= 1e-5, "%s: LSE differs from the tiled path by %.3g", strided[m], el);
        fx_free(&ps);
        fx_free(&pt);
    }
}

/* The backward runs from the split forward's LSE (the tiled or gathered
 * backward, whichever the context holds): gradients match the oracle's. */
Test(flash_split, backward_after_the_split_forward_matches_oracle_gradients, .timeout = 120)
{
    static const char *const gathers[] = {"gather=auto", "gather=off"};
    for (int m = 0; m < N_STRIDED; m++)
        for (int g = 0; g < 2; g++) {
            int64_t H_kv = strstr(strided[m], "split=1") ? 4 : 2;
            attn_args a = fx_args_params(2, 4, H_kv, 131, 131, 24, strided[m], 2, "split=on");
            fx_add_params(&a, gathers[g]);
            a.backward = 1;
            char what[160];
            snprintf(what, sizeof what, "%s %s", strided[m], gathers[g]);
            exact_check_backward(K, &a, 2700 + (uint64_t)(2 * m + g), what);
        }
}

Test(flash_split, forward_is_bitwise_identical_for_any_thread_count)
{
    for (int m = 0; m < N_STRIDED; m++) {
        attn_args a = fx_args_params(2, 4, 4, 201, 201, 16, strided[m], 1, "split=on");
        fx_problem p1, p3;
        fx_make(&p1, &a, 2800 + (uint64_t)m);
        a.threads = 3;
        fx_make(&p3, &a, 2800 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p1, 0), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(K, &p3, 0), 0, "%s", attn_last_error());
        cr_assert(fx_bitwise_equal(&p1.o, &p3.o), "%s: O differs between 1 and 3 threads", strided[m]);
        cr_assert_eq(memcmp(p1.lse, p3.lse, sizeof(float) * (size_t)(2 * 4 * 201)), 0, "%s: lse differs",
                     strided[m]);
        fx_free(&p1);
        fx_free(&p3);
    }
}

/* Executed FLOPs of the forward of a on fresh data. */
static long long forward_flops(const attn_args *a)
{
    fx_problem p;
    fx_make(&p, a, 2900);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    long long f = attn_counter_get(ATTN_CNT_FLOPS);
    fx_free(&p);
    return f;
}

/* auto takes the split path for a strided mask it computes (under
 * gather=auto only: gather=on and off keep their paths), and that path
 * executes under a quarter of the tiled path's FLOPs at N = 2048, l = 32
 * (density about 1/32 + 1/32 of the causal half). */
Test(flash_split, auto_splits_strided_masks_and_computes_a_fraction_of_the_tiled_work, .timeout = 60)
{
    attn_args a = fx_args(1, 2, 2, 2048, 2048, 32, "strided:l=32", 2);
    cr_assert(runs_split(&a), "auto did not split strided:l=32");
    attn_args on = a, off = a;
    fx_add_params(&on, "gather=on");
    fx_add_params(&off, "gather=off");
    cr_assert(!runs_split(&on) && !runs_split(&off), "split=auto split beside gather=on/off");
    long long fs = forward_flops(&a), ft = forward_flops(&off);
    cr_assert(4 * fs <= ft, "split %lld FLOPs, tiled %lld", fs, ft);
    static const char *const others[] = {"fixed:l=32,c=4", "causal", "dilated:w=8,dil=2"};
    for (int m = 0; m < 3; m++) {
        attn_args o = fx_args(1, 2, 2, 256, 256, 32, others[m], 2);
        cr_assert(!runs_split(&o), "auto split %s", others[m]);
    }
}

/* Each block of 16 query rows computes only the keys its rows see, in the
 * band and in a class: the executed FLOPs stay within 1.4 times 4 D per
 * allowed pair (row n: min(n + 1, l) band keys and n / l class keys) at
 * N = 2048, l = 32 and 64 (1.35 and 1.28 now; whole 64-row tiles executed
 * 2.48 and 1.99 times). */
Test(flash_split, executes_at_most_1_4_times_the_allowed_pairs, .timeout = 60)
{
    static const int64_t ls[] = {32, 64};
    for (int s = 0; s < 2; s++) {
        char mask[32];
        snprintf(mask, sizeof mask, "strided:l=%ld", (long)ls[s]);
        attn_args a = fx_args_params(1, 2, 2, 2048, 2048, 32, mask, 2, "split=on");
        double pairs = 0;
        for (int64_t n = 0; n < 2048; n++)
            pairs += (double)((n + 1 < ls[s] ? n + 1 : ls[s]) + n / ls[s]);
        double useful = 4.0 * 32 * 2 * pairs, fs = (double)forward_flops(&a);
        cr_assert(fs >= useful && fs <= 1.4 * useful, "%s: %.0f FLOPs executed, %.0f useful", mask, fs, useful);
    }
}

/* split=on names what it needs; auto leaves those problems on the other paths. */
Test(flash_split, split_on_refuses_what_it_does_not_compute_with_a_message)
{
    static const int64_t lens[2] = {64, 20};
    attn_args pad = fx_args_params(2, 2, 2, 64, 64, 16, "strided:l=8", 1, "split=on");
    pad.seq_len = lens;
    attn_args cross = fx_args_params(1, 2, 2, 40, 64, 16, "strided:l=8", 1, "split=on");
    attn_args gqa = fx_args_params(1, 4, 2, 64, 64, 16, "strided:l=8,split=1", 1, "split=on");
    attn_args fixed = fx_args_params(1, 2, 2, 64, 64, 16, "fixed:l=8,c=2", 1, "split=on");
    const attn_args *bad[] = {&pad, &cross, &gqa, &fixed};
    const char *words[] = {"seq_len", "self-attention", "H_kv == H", "not fixed"};
    for (int i = 0; i < 4; i++) {
        attn_ctx ctx;
        attn_clear_error();
        cr_assert_eq(attn_ctx_create(K, bad[i], &ctx), ATTN_EUNSUPPORTED, "case %d accepted", i);
        cr_assert(strstr(attn_last_error(), words[i]), "message: %s", attn_last_error());
        attn_args a = *bad[i];
        a.params.n = 0;
        cr_assert(!runs_split(&a), "auto split case %d", i);
    }
}
