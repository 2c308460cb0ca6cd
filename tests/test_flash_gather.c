/* `flash`'s gathered path (gather=on|auto), forward and backward: oracle
 * match on the masks without tile structure (dilated, Sparse Transformer,
 * random) and on full/causal/window forced through it, lengths that are not
 * multiples of the block or the 16 lanes, GQA, batch-varying masks, cross
 * lengths; gradients against the oracle and against central differences of
 * its forward; thread determinism; what auto chooses and that the chosen
 * path computes fewer scores; the refusals of gather=on. */
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "exact_check.h"
#include "kernels/flash/flash_gather.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_flash;

static const char *const unstructured[] = {
    "dilated:w=8,dil=3", "dilated:wl=6,wr=0,dil=2", "dilated:w=5,dil=2+3", "strided:l=16",
    "fixed:l=16,c=4",    "strided:l=8,split=1",     "random:p=0.1,seed=3", "random:p=0.3,seed=5,diag=0"};
#define N_UNSTRUCTURED (int)(sizeof unstructured / sizeof *unstructured)

/* 1 if a context for a runs the gathered path (its index fits the problem
 * and it is not the per-row path's bitmap, tests/test_flash_rows.c). */
static int runs_gathered(const attn_args *a)
{
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, a, &ctx), 0, "%s", attn_last_error());
    const flash_gather *gp = ctx.priv;
    int on = flash_gather_fits(gp, &ctx.args) && !gp->rows_path;
    attn_ctx_destroy(&ctx);
    return on;
}

/* 1 if a context for a runs the gathered or the per-row path. */
static int runs_sparse(const attn_args *a)
{
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, a, &ctx), 0, "%s", attn_last_error());
    int on = flash_gather_fits(ctx.priv, &ctx.args);
    attn_ctx_destroy(&ctx);
    return on;
}

Test(flash_gather, forward_matches_oracle_on_unstructured_masks_lengths_and_head_sizes, .timeout = 120)
{
    exact_check_masks_by_length(K, unstructured, N_UNSTRUCTURED, "gather=on", runs_gathered, 300);
}

/* Blocks of 1, 5 and 16 rows: a block boundary inside a residue class, one
 * row per block, and blocks exactly one vector wide. */
Test(flash_gather, forward_matches_oracle_with_other_block_sizes_and_panel_widths, .timeout = 60)
{
    static const char *const blocks[][2] = {{"gbr=1", "bc=16"}, {"gbr=5", "bc=7"}, {"gbr=16", "bc=300"}};
    for (int t = 0; t < 3; t++)
        for (int m = 0; m < N_UNSTRUCTURED; m++) {
            attn_args a = fx_args_params(1, 2, 1, 93, 93, 24, unstructured[m], 2, "gather=on");
            fx_add_params(&a, blocks[t][0]);
            fx_add_params(&a, blocks[t][1]);
            char what[160];
            snprintf(what, sizeof what, "%s %s %s", blocks[t][0], blocks[t][1], unstructured[m]);
            exact_check_forward(K, &a, 400 + (uint64_t)(t * 10 + m), what);
        }
}

Test(flash_gather, forward_matches_oracle_on_structured_masks_forced_through_it)
{
    static const char *const structured[] = {"full", "causal", "window:wl=5,wr=3", "document:lens=30+40+27"};
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args_params(1, 2, 2, 97, 97, 32, structured[m], 2, "gather=on");
        cr_assert(runs_gathered(&a), "%s", structured[m]);
        exact_check_forward(K, &a, 500 + (uint64_t)m, structured[m]);
    }
}

/* GQA packs the group's heads into one block (random masks and per-head
 * dilations differ between them: the block's keys are the union over the
 * heads); random masks differ between batch entries; cross lengths are
 * aligned bottom-right. */
Test(flash_gather, forward_matches_oracle_with_gqa_batch_varying_masks_and_cross_lengths, .timeout = 60)
{
    static const int64_t shapes[][6] = {/* B, H, H_kv, Nq, Nk, D */
                                        {3, 8, 2, 75, 75, 32}, {1, 6, 1, 130, 130, 16},
                                        {1, 2, 1, 19, 211, 32}, {1, 2, 2, 150, 61, 16}};
    for (int m = 0; m <= N_UNSTRUCTURED; m++)
        for (int s = 0; s < 4; s++) {
            const int64_t *x = shapes[s];
            const char *mask = m < N_UNSTRUCTURED ? unstructured[m] : "causal";
            char what[160];
            snprintf(what, sizeof what, "B=%ld H=%ld/%ld N=%ld/%ld %s", (long)x[0], (long)x[1], (long)x[2],
                     (long)x[3], (long)x[4], mask);
            attn_args a = fx_args_params(x[0], x[1], x[2], x[3], x[4], x[5], mask, 2, "gather=on");
            exact_check_forward(K, &a, 600 + (uint64_t)(4 * m + s), what);
        }
}

/* Executed FLOPs of the forward of a on fresh data. */
static long long forward_flops(const attn_args *a)
{
    fx_problem p;
    fx_make(&p, a, 900);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    long long f = attn_counter_get(ATTN_CNT_FLOPS);
    fx_free(&p);
    return f;
}

/* At N = 1024 the dilated and fixed masks and a sparse random one leave the
 * tiles nearly all PARTIAL: auto takes the gathered path (for the random
 * one it may take the per-row path), which executes
 * less than half the tiled path's FLOPs; the masks with tile structure and a
 * dense random mask stay on the tiled path. */
Test(flash_gather, auto_gathers_only_where_it_computes_less_than_half, .timeout = 60)
{
    static const char *const sparse[] = {"dilated:w=64,dil=4", "fixed:l=128,c=8", "random:p=0.01,seed=1"};
    static const char *const tiled[] = {"full", "causal", "window:wl=64,wr=0", "random:p=0.5,seed=1"};
    for (int m = 0; m < 3; m++) {
        attn_args a = fx_args(1, 2, 2, 1024, 1024, 32, sparse[m], 2);
        /* the random mask may take the per-row path instead (test_flash_rows.c) */
        cr_assert(m == 2 ? runs_sparse(&a) : runs_gathered(&a), "%s: auto did not gather", sparse[m]);
        attn_args off = a;
        fx_add_params(&off, "gather=off");
        cr_assert(!runs_sparse(&off), "%s: gather=off built the gathered path", sparse[m]);
        long long fg = forward_flops(&a), ft = forward_flops(&off);
        cr_assert(2 * fg <= ft, "%s: gathered %lld FLOPs, tiled %lld", sparse[m], fg, ft);
    }
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args(1, 2, 2, 1024, 1024, 32, tiled[m], 2);
        cr_assert(!runs_gathered(&a), "%s: auto gathered", tiled[m]);
    }
}

/* A random mask's key lists grow with N^2: at N = 16384, D = 8 they pass 8
 * times the bytes of Q, K, V and O, so auto declines the index (its work
 * alone would take it; the per-row bitmap passes the cap too) and gather=on
 * still builds it. */
Test(flash_gather, auto_declines_an_index_larger_than_eight_times_the_inputs, .timeout = 120)
{
    attn_args a = fx_args(1, 1, 1, 16384, 16384, 8, "random:p=0.02,seed=1", 2);
    cr_assert(!runs_gathered(&a), "auto kept an index of a random mask at N = 16384, D = 8");
    fx_add_params(&a, "gather=on");
    cr_assert(runs_gathered(&a), "gather=on did not build the index");
    /* at N = 4096 auto keeps a sparse path: the per-row one, whose bitmap
     * (N^2 / 8 bytes) stays under the same cap and costs less here */
    attn_args b = fx_args(1, 1, 1, 4096, 4096, 8, "random:p=0.02,seed=1", 2);
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &b, &ctx), 0, "%s", attn_last_error());
    cr_assert(flash_gather_fits(ctx.priv, &ctx.args), "auto declined both sparse paths at N = 4096, D = 8");
    attn_ctx_destroy(&ctx);
}

Test(flash_gather, backward_matches_oracle_gradients_on_every_mask_kind, .timeout = 120)
{
    static const int64_t Ns[] = {7, 100, 131};
    static const char *const structured[] = {"full", "causal"};
    for (int m = 0; m < N_UNSTRUCTURED + 2; m++)
        for (int iN = 0; iN < 3; iN++) {
            const char *mask = m < N_UNSTRUCTURED ? unstructured[m] : structured[m - N_UNSTRUCTURED];
            char what[160];
            snprintf(what, sizeof what, "B=2 H=4 H_kv=2 N=%ld %s", (long)Ns[iN], mask);
            attn_args a = fx_args_params(2, 4, 2, Ns[iN], Ns[iN], 24, mask, 2, "gather=on");
            a.backward = 1;
            cr_assert(runs_gathered(&a), "%s: the backward context has no gathered index", what);
            exact_check_backward(K, &a, 1000 + (uint64_t)(m * 3 + iN), what);
        }
}

Test(flash_gather, backward_matches_oracle_with_small_blocks_cross_lengths_and_one_kv_head, .timeout = 60)
{
    for (int m = 0; m < N_UNSTRUCTURED; m++) {
        attn_args a = fx_args_params(1, 3, 1, 45, 101, 32, unstructured[m], 2, "gather=on");
        fx_add_params(&a, "gbr=5");
        fx_add_params(&a, "bc=24");
        exact_check_backward(K, &a, 1100 + (uint64_t)m, unstructured[m]);
        attn_args b = fx_args_params(1, 2, 2, 150, 40, 16, unstructured[m], 2, "gather=on");
        exact_check_backward(K, &b, 1120 + (uint64_t)m, unstructured[m]);
    }
}

/* Worst |g - central difference| / max|g| over every coordinate of x (the
 * kernel's fp32 gradient g, x the double input the oracle reads). */
static double central_difference_err(fx_problem *p, attn_tensor_f64 *x, const attn_tensor *g)
{
    double worst = 0, gmax = 0;
    int64_t n = x->B * x->sb;
    for (int64_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(g->data[i]));
    for (int64_t i = 0; i < n; i++) {
        double keep = x->data[i], h = 1e-6;
        x->data[i] = keep + h;
        double up = exact_oracle_loss(p);
        x->data[i] = keep - h;
        double down = exact_oracle_loss(p);
        x->data[i] = keep;
        worst = fmax(worst, fabs((up - down) / (2 * h) - g->data[i]) / (gmax > 0 ? gmax : 1));
    }
    return worst;
}

/* auto with a backward: the gathered forward, then the gathered backward
 * (two KV heads for two threads) or the tiled one (one KV head: the
 * gathered backward would leave a thread idle), both within the oracle's. */
Test(flash_gather, auto_backward_matches_oracle_gradients_on_either_path, .timeout = 60)
{
    static const char *const bmasks[] = {"dilated:w=16,dil=4", "random:p=0.02,seed=2"};
    for (int m = 0; m < 2; m++)
        for (int64_t H_kv = 1; H_kv <= 2; H_kv++) {
            attn_args a = fx_args(1, 4, H_kv, 300, 300, 16, bmasks[m], 2);
            a.backward = 1;
            cr_assert(runs_sparse(&a), "%s: auto did not gather", bmasks[m]); /* forward gathered or per-row */
            exact_check_backward(K, &a, 1150 + (uint64_t)(2 * m + H_kv), bmasks[m]);
        }
}

Test(flash_gather, backward_matches_central_differences_of_the_oracle_forward, .timeout = 60)
{
    static const char *const cd_masks[] = {"dilated:w=3,dil=2", "random:p=0.3,seed=4", "strided:l=4",
                                           "fixed:l=4,c=1"};
    for (int m = 0; m < 4; m++) {
        attn_args a = fx_args_params(1, 2, 1, 11, 11, 8, cd_masks[m], 1, "gather=on");
        fx_problem p;
        fx_make(&p, &a, 1200 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p, 1), 0, "%s: %s", cd_masks[m], attn_last_error());
        double e[3] = {central_difference_err(&p, &p.q64, &p.dq), central_difference_err(&p, &p.k64, &p.dk),
                       central_difference_err(&p, &p.v64, &p.dv)};
        for (int t = 0; t < 3; t++)
            cr_assert(e[t] <= 1e-4, "%s: d%c differs from central differences by %.3g", cd_masks[m], "QKV"[t], e[t]);
        fx_free(&p);
    }
}

Test(flash_gather, forward_and_backward_are_bitwise_identical_for_any_thread_count)
{
    for (int m = 0; m < N_UNSTRUCTURED; m++) {
        attn_args a = fx_args_params(2, 4, 2, 201, 201, 16, unstructured[m], 1, "gather=on");
        fx_problem p1, p3;
        fx_make(&p1, &a, 1300 + (uint64_t)m);
        a.threads = 3;
        fx_make(&p3, &a, 1300 + (uint64_t)m);
        cr_assert_eq(fx_run(K, &p1, 1), 0, "%s", attn_last_error());
        cr_assert_eq(fx_run(K, &p3, 1), 0, "%s", attn_last_error());
        cr_assert(fx_bitwise_equal(&p1.o, &p3.o), "%s: O differs between 1 and 3 threads", unstructured[m]);
        cr_assert_eq(memcmp(p1.lse, p3.lse, sizeof(float) * (size_t)(2 * 4 * 201)), 0, "%s: lse differs",
                     unstructured[m]);
        cr_assert(fx_bitwise_equal(&p1.dq, &p3.dq) && fx_bitwise_equal(&p1.dk, &p3.dk) &&
                      fx_bitwise_equal(&p1.dv, &p3.dv),
                  "%s: gradients differ between 1 and 3 threads", unstructured[m]);
        fx_free(&p1);
        fx_free(&p3);
    }
}

Test(flash_gather, gather_on_refuses_a_padded_batch_and_unknown_modes_with_a_message)
{
    static const int64_t lens[2] = {64, 20};
    attn_args b = fx_args_params(2, 2, 2, 64, 64, 16, "dilated:w=4,dil=2", 1, "gather=on");
    b.seq_len = lens;
    attn_ctx ctx;
    attn_clear_error();
    cr_assert_eq(attn_ctx_create(K, &b, &ctx), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "seq_len"), "message: %s", attn_last_error());
    attn_args c = fx_args_params(1, 1, 1, 8, 8, 16, "random:p=0.5", 1, "gather=sometimes");
    attn_clear_error();
    cr_assert_lt(attn_ctx_create(K, &c, &ctx), 0, "gather=sometimes accepted");
    cr_assert(strstr(attn_last_error(), "gather"), "message: %s", attn_last_error());
}

/* A model plans its attention once and binds each padded batch's lengths
 * afterwards. The gathered index and the per-row bitmap are built at create
 * time from the mask alone and would visit the padded rows and keys: with
 * lengths bound later the context must take the tiled path, which skips
 * them (padded K and V rows hold 1e30 here, so reading one is not finite). */
Test(flash_gather, lengths_bound_after_create_take_the_tiled_path, .timeout = 60)
{
    int64_t lens[4] = {100, 60, 1, 0};
    static const char *const masks[] = {"fixed:l=16,c=4", "random:p=0.1,seed=3"};
    static const char *const paths[] = {"gather=on", "gather=rows"};
    for (int m = 0; m < 2; m++)
        for (int g = 0; g < 2; g++) {
            attn_args tiled = fx_args_params(4, 4, 2, 100, 100, 16, masks[m], 2, "gather=off");
            attn_args sparse = fx_args_params(4, 4, 2, 100, 100, 16, masks[m], 2, paths[g]);
            tiled.seq_len = lens, sparse.seq_len = lens;
            fx_problem p, q;
            fx_make_for(&p, K, &tiled, 11);
            fx_make_for(&q, K, &sparse, 11);
            for (int64_t b = 0; b < 4; b++)
                for (int64_t h = 0; h < 2; h++)
                    for (int64_t n = lens[b]; n < 100; n++)
                        for (int64_t d = 0; d < 16; d++)
                            attn_at(&p.k, b, h, n)[d] = attn_at(&p.v, b, h, n)[d] = 1e30f,
                            attn_at(&q.k, b, h, n)[d] = attn_at(&q.v, b, h, n)[d] = 1e30f;
            cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
            cr_assert_eq(fx_run_lengths_late(K, &q, 1), 0, "%s %s: %s", masks[m], paths[g], attn_last_error());
            cr_assert(fx_bitwise_equal(&p.o, &q.o) && fx_bitwise_equal(&p.dq, &q.dq) &&
                          fx_bitwise_equal(&p.dk, &q.dk) && fx_bitwise_equal(&p.dv, &q.dv),
                      "%s %s: the late-bound context differs from the tiled path", masks[m], paths[g]);
            for (int64_t i = 0; i < q.dk.B * q.dk.sb; i++)
                cr_assert(isfinite(q.dk.data[i]) && isfinite(q.dv.data[i]), "%s %s: dK/dV not finite", masks[m],
                          paths[g]);
            fx_free(&p), fx_free(&q);
        }
}
