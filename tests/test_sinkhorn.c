/* Properties of `sinkhorn` (Sparse Sinkhorn attention): the fp32 kernel
 * equals its double reference over block sizes that do or do not divide N,
 * both sorts, GQA, several tiles; gradients of q, k, v and the sort net's
 * table against central differences of the reference, for both sorts; one
 * block (c >= N) is exact softmax attention; the error against softmax falls
 * as the block grows; Sinkhorn balancing makes P nearly doubly stochastic
 * with rows exactly normalised; the fidelity view's rows are stochastic and
 * reproduce the output; the causal form does not leak on small blocks; the
 * refusals (causal Sinkhorn, a weight table shorter than the sequence); the
 * table's rows do not depend on its length; the cost model's one-block case.
 * Strided views, GQA on the claimed masks, thread determinism, padded
 * batches and `check` come from the registry-driven tests. */
#include "common/rng.h"
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/oracle.h"
#include "kernels/sinkhorn/sinkhorn_internal.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_sinkhorn;

static attn_args sk_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                         const char *params)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, 2, params);
}

Test(sinkhorn, forward_matches_double_reference_on_blocks_sorts_and_tiles, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N, D;
        const char *mask, *params;
    } cases[] = {
        {2, 2, 1, 50, 16, "full", "block=8"},
        {1, 2, 2, 50, 16, "full", "block=8 sort=sinkhorn"},
        {1, 2, 1, 64, 32, "causal", "block=16"},
        {2, 4, 2, 100, 16, "full", "block=7 sort=sinkhorn iters=3 temp=0.5"},
        {1, 1, 1, 30, 8, "full", "block=64"},
        {1, 2, 1, 45, 16, "causal", "block=4"},
        {1, 2, 1, 300, 16, "full", "block=32"},   /* several tiles of 8 blocks */
        {1, 1, 1, 600, 16, "causal", "block=16"}, /* 38 blocks in tiles of 16 */
        {1, 2, 2, 97, 24, "full", "block=1"},     /* every token a block */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[128];
        snprintf(what, sizeof what, "B%ld H%ld/%ld N%ld D%ld %s %s", (long)cases[i].B, (long)cases[i].H,
                 (long)cases[i].H_kv, (long)cases[i].N, (long)cases[i].D, cases[i].mask, cases[i].params);
        attn_args a = sk_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, cases[i].mask,
                              cases[i].params);
        own_ref_check(K, &a, 20 + i, what);
    }
}

static double max_abs64(const attn_tensor_f64 *t)
{
    double m = 0;
    for (int64_t i = 0; i < t->B * t->sb; i++)
        m = fmax(m, fabs(t->data[i]));
    return m;
}

Test(sinkhorn, backward_matches_reference_gradients_of_q_k_v_and_the_sort_net, .timeout = 60)
{
    static const struct {
        int64_t B, H, N, D;
        const char *mask, *params;
    } cases[] = {
        {1, 2, 10, 4, "full", "block=4 max_len=16"},                     /* last block of 2 rows */
        {1, 2, 10, 4, "full", "block=3 max_len=12 sort=sinkhorn iters=3"},
        {2, 1, 9, 4, "causal", "block=2 max_len=10"},
        {1, 1, 12, 4, "full", "block=4 max_len=12 sort=sinkhorn temp=2"}, /* blocks divide N */
        {1, 2, 11, 3, "full", "block=5 max_len=15 sort=sinkhorn iters=1 temp=0.3"},
    };
    const char *names[] = {"dq", "dk", "dv"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = sk_args(cases[i].B, cases[i].H, 1, cases[i].N, cases[i].D, cases[i].mask, cases[i].params);
        a.backward = 1;
        fx_problem p;
        fx_make_for(&p, K, &a, 60 + i);
        cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
        fx_ref_grads(&p);
        const attn_tensor *g[] = {&p.dq, &p.dk, &p.dv};
        const attn_tensor_f64 *ref[] = {&p.dq64, &p.dk64, &p.dv64};
        for (int t = 0; t < 3; t++) {
            double e = fx_err_grad(g[t], ref[t]);
            cr_assert(e <= 1e-4, "case %zu (%s %s): %s err %.3g", i, cases[i].mask, cases[i].params, names[t], e);
        }
        double e = fx_err_grad(&p.dw, &p.dw64);
        cr_assert(e <= 1e-4, "case %zu (%s %s): dw err %.3g", i, cases[i].mask, cases[i].params, e);
        cr_assert(max_abs64(&p.dw64) > 1e-3, "case %zu: the sort net gets no gradient (degenerate case)", i);
        fx_free(&p);
    }
}

/* The oracle's O on p's (double) inputs, [B,H,N,D] contiguous. */
static double *oracle_o(const fx_problem *p)
{
    const attn_tensor_f64 *o = &p->o64;
    size_t n = (size_t)(o->B * o->H * o->N * o->D);
    attn_tensor_f64 out = {calloc(n, sizeof(double)), o->B, o->H, o->N, o->D, o->H * o->N * o->D, o->N * o->D, o->D};
    double *lse = calloc((size_t)(o->B * o->H * o->N), sizeof(double));
    attn_oracle_forward_f64(&p->a, &p->q64, &p->k64, &p->v64, &out, lse);
    free(lse);
    return out.data;
}

Test(sinkhorn, one_block_is_exact_softmax_attention, .timeout = 30)
{
    static const char *const cases[][2] = {
        {"full", "block=50"}, {"full", "block=64"}, {"full", "block=50 sort=sinkhorn"},
        {"causal", "block=50"}, {"causal", "block=200"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = sk_args(2, 2, 1, 50, 16, cases[i][0], cases[i][1]);
        fx_problem p;
        fx_make_for(&p, K, &a, 5 + i);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double *ref = oracle_o(&p), vmax = 0, err = 0;
        for (int64_t j = 0; j < p.v.B * p.v.sb; j++)
            vmax = fmax(vmax, fabs(p.v.data[j]));
        int64_t n = 0;
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < 2; h++)
                for (int64_t t = 0; t < 50; t++)
                    for (int64_t d = 0; d < 16; d++, n++)
                        err = fmax(err, fabs(attn_at(&p.o, b, h, t)[d] - ref[n]) / vmax);
        cr_assert(err <= fx_tol_o(50), "%s %s: |O - softmax| / max|V| = %.3g", cases[i][0], cases[i][1], err);
        free(ref);
        fx_free(&p);
    }
}

/* ||O - O_softmax||_F / ||O_softmax||_F of the fp32 kernel, with q scaled
 * up so that attention is far from uniform. */
static double softmax_rel_err(const char *mask, int64_t block, uint64_t seed)
{
    char params[32];
    snprintf(params, sizeof params, "block=%ld", (long)block);
    attn_args a = sk_args(1, 2, 2, 256, 32, mask, params);
    fx_problem p;
    fx_make_for(&p, K, &a, seed);
    for (int64_t i = 0; i < p.q.B * p.q.sb; i++)
        p.q.data[i] *= 4.0f;
    fx_ref_forward(&p);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double *ref = oracle_o(&p), num = 0, den = 0;
    int64_t n = 0;
    for (int64_t h = 0; h < 2; h++)
        for (int64_t t = 0; t < 256; t++)
            for (int64_t d = 0; d < 32; d++, n++) {
                double x = attn_at(&p.o, 0, h, t)[d] - ref[n];
                num += x * x, den += ref[n] * ref[n];
            }
    free(ref);
    fx_free(&p);
    return sqrt(num / den);
}

Test(sinkhorn, error_against_softmax_falls_as_the_block_grows, .timeout = 60)
{
    static const int64_t blocks[] = {8, 32, 128, 256};
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++) {
        double mean[4] = {0};
        for (int b = 0; b < 4; b++)
            for (uint64_t seed = 1; seed <= 3; seed++)
                mean[b] += softmax_rel_err(masks[m], blocks[b], seed) / 3;
        for (int b = 0; b + 1 < 3; b++)
            cr_assert(mean[b + 1] < 0.9 * mean[b], "%s: mean error %.3g at block %ld, %.3g at block %ld", masks[m],
                      mean[b], (long)blocks[b], mean[b + 1], (long)blocks[b + 1]);
        cr_assert(mean[3] < 1e-5, "%s: one block (256) is not exact: %.3g", masks[m], mean[3]);
    }
}

/* Largest |row sum - 1| and |column sum - 1| of P from random logits. */
static void balance_of(const char *params, int64_t nb, uint64_t seed, double *row_dev, double *col_dev)
{
    attn_args a = sk_args(1, 1, 1, nb * 4, 8, "full", params);
    sk_plan pl;
    cr_assert_eq(sk_plan_make(&pl, &a), 0, "%s", attn_last_error());
    float *R = malloc(sizeof(float) * (size_t)(nb * nb)), *P = malloc(sizeof(float) * (size_t)(nb * nb));
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t e = 0; e < nb * nb; e++)
        R[e] = (float)(3.0 * attn_rng_normal(&r));
    sk_permute(&pl, nb, R, P, NULL);
    *row_dev = *col_dev = 0;
    for (int64_t i = 0; i < nb; i++) {
        double rs = 0, cs = 0;
        for (int64_t j = 0; j < nb; j++)
            rs += P[i * nb + j], cs += P[j * nb + i];
        *row_dev = fmax(*row_dev, fabs(rs - 1)), *col_dev = fmax(*col_dev, fabs(cs - 1));
    }
    free(R), free(P);
}

Test(sinkhorn, sinkhorn_balancing_makes_P_nearly_doubly_stochastic)
{
    double row1, col1, row20, col20, rows, cols;
    balance_of("sort=sinkhorn iters=1", 16, 3, &row1, &col1);
    balance_of("sort=sinkhorn iters=20", 16, 3, &row20, &col20);
    balance_of("sort=softmax", 16, 3, &rows, &cols);
    cr_assert(row1 < 1e-5 && row20 < 1e-5 && rows < 1e-5, "rows not normalised: %.3g %.3g %.3g", row1, row20, rows);
    cr_assert(col20 < 0.02, "20 Sinkhorn rounds leave column sums %.3g from 1", col20);
    cr_assert(col20 < 0.5 * col1, "more rounds did not balance the columns: %.3g after 1, %.3g after 20", col1, col20);
    cr_assert(cols > 0.5, "a row softmax of N(0, 9) logits has column sums %.3g from 1 (expected far)", cols);
}

Test(sinkhorn, view_rows_are_stochastic_and_reproduce_the_output, .timeout = 30)
{
    static const char *const cases[][2] = {
        {"full", "block=8"}, {"full", "block=8 sort=sinkhorn"}, {"causal", "block=8"}, {"full", "block=64"},
    };
    static int64_t lens[2] = {45, 30};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attn_args a = sk_args(2, 2, 1, 45, 16, cases[c][0], cases[c][1]);
        a.seq_len = lens;
        fx_problem p;
        fx_make_for(&p, K, &a, 80 + c);
        attn_io64 io = {.q = p.q64, .k = p.k64, .v = p.v64, .o = p.o64, .w = p.w64};
        int64_t rows[45];
        for (int64_t i = 0; i < 45; i++)
            rows[i] = 44 - i;
        double *P = malloc(sizeof(double) * 45 * 45);
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < 2; h++) {
                cr_assert_eq(K->ref_view(&p.a, &io, b, h, rows, 45, P, NULL), ATTN_VIEW_ROWS, "%s", attn_last_error());
                for (int64_t s = 0; s < 45; s++) {
                    double sum = 0, err = 0;
                    for (int64_t j = 0; j < 45; j++) {
                        cr_assert(P[s * 45 + j] >= 0, "%s %s: negative weight", cases[c][0], cases[c][1]);
                        cr_assert(j < lens[b] || P[s * 45 + j] == 0, "weight on a padding key");
                        sum += P[s * 45 + j];
                    }
                    cr_assert(fabs(sum - (rows[s] < lens[b] ? 1 : 0)) < 1e-12, "%s %s b%ld row %ld sums to %.15g",
                              cases[c][0], cases[c][1], (long)b, (long)rows[s], sum);
                    for (int64_t d = 0; d < 16; d++) {
                        double o = 0;
                        for (int64_t j = 0; j < lens[b]; j++)
                            o += P[s * 45 + j] * attn_at64(&p.v64, b, 0, j)[d];
                        err = fmax(err, fabs(o - attn_at64(&p.o64, b, h, rows[s])[d]));
                    }
                    cr_assert(err < 1e-12, "%s %s: P V differs from O by %.3g", cases[c][0], cases[c][1], err);
                }
            }
        free(P);
        fx_free(&p);
    }
}

Test(sinkhorn, causal_outputs_ignore_future_rows_on_small_blocks, .timeout = 30)
{
    static const char *const params[] = {"block=8", "block=5", "block=16", "block=1"};
    static const int64_t at[] = {40, 41, 48};
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 3; t++) {
            attn_args a = sk_args(2, 2, 1, 97, 16, "causal", params[i]);
            int ok;
            cr_assert_eq(check_kernel_causal_leakage(K, &a, at[t], &ok), 0, "%s", attn_last_error());
            cr_assert(ok, "%s: rows < %ld changed when rows >= %ld were perturbed", params[i], (long)at[t],
                      (long)at[t]);
        }
}

Test(sinkhorn, causal_sinkhorn_and_a_short_weight_table_are_refused)
{
    attn_args a = sk_args(1, 1, 1, 64, 8, "causal", "sort=sinkhorn");
    attn_ctx ctx;
    cr_assert_eq(attn_ctx_create(K, &a, &ctx), ATTN_EUNSUPPORTED, "causal sinkhorn was accepted");
    cr_assert(strstr(attn_last_error(), "sort=softmax") != NULL, "%s", attn_last_error());
    /* a model sizes the table before it knows N: max_len=16 covers 2 blocks of 8, N = 64 needs 8 */
    a = sk_args(1, 1, 1, 64, 8, "full", "block=8 max_len=16");
    attn_args one = a;
    one.Nq = one.Nk = 1;
    cr_assert_eq(K->input_cols(&one, ATTN_IN_WEIGHTS), 2 * 9);
    fx_problem p;
    fx_make_for(&p, K, &a, 1);
    p.w.D = 2 * 9;
    cr_assert_eq(fx_run(K, &p, 0), ATTN_EINVAL, "a forward with too few table rows ran");
    cr_assert(strstr(attn_last_error(), "max_len") != NULL, "%s", attn_last_error());
    p.w.D = p.w.sn;
    fx_free(&p);
}

Test(sinkhorn, a_longer_weight_table_starts_with_the_same_rows)
{
    attn_args s = sk_args(1, 2, 2, 1, 8, "full", "block=4 max_len=16"), l = sk_args(1, 2, 2, 1, 8, "full", "block=4 max_len=64");
    int64_t ws = K->input_cols(&s, ATTN_IN_WEIGHTS), wl = K->input_cols(&l, ATTN_IN_WEIGHTS);
    cr_assert(ws == 4 * 9 && wl == 16 * 9, "columns %ld, %ld", (long)ws, (long)wl);
    float *xs = calloc((size_t)(2 * ws), sizeof(float)), *xl = calloc((size_t)(2 * wl), sizeof(float));
    attn_tensor ts = {xs, 1, 2, 1, ws, 2 * ws, ws, ws}, tl = {xl, 1, 2, 1, wl, 2 * wl, wl, wl};
    K->init_weights(&s, &ts, 9);
    K->init_weights(&l, &tl, 9);
    for (int64_t h = 0; h < 2; h++) {
        cr_assert(memcmp(xs + h * ws, xl + h * wl, sizeof(float) * (size_t)ws) == 0, "head %ld rows differ", (long)h);
        for (int64_t j = 0; j < 16; j++)
            cr_assert(xl[h * wl + j * 9 + 8] == 0, "bias of row %ld not zero", (long)j);
    }
    double var = 0;
    for (int64_t e = 0; e < 2 * wl; e++)
        var += (double)xl[e] * xl[e] / (2 * 16 * 8);
    cr_assert(var > 0.08 && var < 0.17, "weights' variance %.3g, expected about 1/D = 0.125", var);
    free(xs), free(xl);
}

Test(sinkhorn, cost_model_of_one_block_is_twice_softmax_plus_the_sort)
{
    attn_args a = sk_args(2, 4, 2, 100, 32, "full", "block=100");
    double D = 32, N = 100, sort = 2 * D + 4 * N * D; /* one logit, K and V mixed once */
    double fwd = 2 * attn_softmax_flops(&a, ATTN_PASS_FWD) + 8 * sort;
    cr_assert(fabs(K->flops(&a, ATTN_PASS_FWD) - fwd) <= 1e-9 * fwd, "forward %.6g, expected %.6g",
              K->flops(&a, ATTN_PASS_FWD), fwd);
    double bwd = 2.5 * 2 * attn_softmax_flops(&a, ATTN_PASS_FWD) + 2 * 8 * sort;
    cr_assert(fabs(K->flops(&a, ATTN_PASS_BWD) - bwd) <= 1e-9 * bwd, "backward %.6g, expected %.6g",
              K->flops(&a, ATTN_PASS_BWD), bwd);
}

Test(sinkhorn, results_are_bitwise_equal_for_any_thread_count_on_sorts_blocks_and_padding, .timeout = 60)
{
    static const struct {
        const char *mask, *params;
    } cases[] = {
        {"full", "block=8 sort=sinkhorn"}, {"full", "block=7"}, {"causal", "block=16"}, {"causal", "block=3"},
    };
    static int64_t lens[2] = {130, 77};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int padded = 0; padded < 2; padded++) {
            attn_args a = sk_args(2, 4, 2, 130, 16, cases[i].mask, cases[i].params);
            a.seq_len = padded ? lens : NULL;
            for (int threads = 2; threads <= 3; threads++) {
                int ok;
                cr_assert_eq(check_kernel_thread_determinism(K, &a, threads, &ok), 0, "%s", attn_last_error());
                cr_assert(ok, "%s %s%s: 1 and %d threads differ", cases[i].mask, cases[i].params,
                          padded ? " padded" : "", threads);
            }
        }
}

Test(sinkhorn, a_block_longer_than_the_sequence_is_the_one_block_of_the_sequence)
{
    fx_problem p[2];
    const char *params[2] = {"block=100 max_len=64", "block=65536 max_len=64"};
    for (int i = 0; i < 2; i++) {
        attn_args a = sk_args(1, 2, 1, 100, 16, "causal", params[i]);
        fx_make_for(&p[i], K, &a, 4);
        if (i)
            for (int64_t h = 0; h < 2; h++) /* the same sort-net row 0 in both tables */
                memcpy(attn_at(&p[1].w, 0, h, 0), attn_at(&p[0].w, 0, h, 0), sizeof(float) * 17);
        cr_assert_eq(fx_run(K, &p[i], 0), 0, "%s", attn_last_error());
        attn_ctx ctx;
        cr_assert_eq(attn_ctx_create(K, &p[i].a, &ctx), 0, "%s", attn_last_error());
        cr_assert(ctx.workspace_bytes < (1u << 20), "%s: workspace %zu bytes", params[i], ctx.workspace_bytes);
        attn_ctx_destroy(&ctx);
    }
    cr_assert(fx_bitwise_equal(&p[0].o, &p[1].o), "block=65536 and block=N differ");
    fx_free(&p[0]), fx_free(&p[1]);
}
