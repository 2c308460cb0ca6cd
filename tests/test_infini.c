/* Properties of `infini` (Infini-attention): the fp32 kernel
 * equals its double reference (linear and delta updates, segment lengths
 * that do not divide N, softmax blocks smaller than a segment, GQA, Dv != D,
 * DOCUMENT); the two limits of the gate (g = 0: softmax with a segment-block
 * causal mask; g = 1 with the linear update: normalised elu+1 linear
 * attention over the earlier segments only), both computed here from plain
 * loops; delta differs from linear only once a segment retrieves; gradients
 * (dQ, dK, dV, dbeta) against central differences of the reference, also
 * inside an attention block whose betas are parameters; gradients are
 * written, not accumulated; documents are independent sequences (causal
 * leakage, thread determinism and strided views: test_properties.c); a NaN
 * stays in its (b, KV group); the kept state and the streaming (decode) step form; the `attnbench
 * check` table; cost model, counters, state bytes and parameter checks. */
#include "check_tally.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "kernels/infini/infini.h"
#include "model_check.h"
#include "own_ref_check.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_infini;

/* args with space-separated key=value params ("" for none) and Dv (0 = D). */
static attn_args inf_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, int64_t Dv, const char *mask,
                          const char *params, int threads)
{
    attn_args a = fx_args(B, H, H_kv, N, N, D, mask, threads);
    a.Dv = Dv;
    fx_add_params(&a, params);
    return a;
}

/* One shape of a case table, its mask and parameters. */
typedef struct {
    int64_t B, H, H_kv, N, D, Dv;
    const char *mask, *params;
} inf_case;

/* Runs check(args, seed, description) on every case of the table. */
static void run_cases(const inf_case *cases, size_t n, uint64_t seed0,
                      void (*check)(const attn_args *, uint64_t, const char *))
{
    for (size_t i = 0; i < n; i++) {
        const inf_case *c = &cases[i];
        char what[160];
        snprintf(what, sizeof what, "B%ld H%ld/%ld N%ld D%ld Dv%ld %s %s", (long)c->B, (long)c->H, (long)c->H_kv,
                 (long)c->N, (long)c->D, (long)c->Dv, c->mask, c->params);
        attn_args a = inf_args(c->B, c->H, c->H_kv, c->N, c->D, c->Dv, c->mask, c->params, 2);
        check(&a, seed0 + i, what);
    }
}

/* beta_h: `fixed` for every head, or U(-2, 2) per head when fixed is NAN;
 * the reference is recomputed. */
static void set_betas(fx_problem *p, float fixed, uint64_t seed)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t h = 0; h < p->a.H; h++)
        attn_at(&p->w, 0, h, 0)[0] = isnan(fixed) ? attn_rng_range(&r, -2.0f, 2.0f) : fixed;
    fx_ref_forward(p);
}

/* Kernel vs its own double reference: err_O <= 5e-5 of max|O_ref| (own_ref_check
 * with random betas instead of the initial beta = 0 of every head). */
static void check_ref(const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    set_betas(&p, NAN, seed);
    own_ref_check_problem(K, &p, what);
}

Test(infini, forward_matches_double_reference, .timeout = 60)
{
    static const inf_case cases[] = {
        {2, 2, 2, 64, 16, 0, "causal", "L=16 update=linear"},
        {2, 2, 2, 64, 16, 0, "causal", "L=16"},
        {1, 4, 2, 130, 32, 0, "causal", "L=16 update=delta tile=5"},
        {1, 4, 1, 130, 16, 0, "causal", "L=16 update=linear tile=7"},
        {2, 2, 1, 57, 16, 0, "causal", "L=7"},
        {1, 2, 2, 37, 16, 8, "causal", "L=9 update=delta"},
        {1, 2, 2, 33, 16, 24, "causal", "L=4 update=linear"},
        {1, 2, 2, 20, 16, 0, "causal", "L=64"},
        {1, 2, 2, 9, 16, 0, "causal", "L=1"},
        {1, 1, 1, 1, 16, 0, "causal", "L=16"},
        {2, 2, 1, 70, 16, 0, "document:lens=20+37+13,causal=1", "L=16"},
        {1, 2, 2, 70, 16, 0, "document:lens=5+60+5", "L=8 update=linear tile=3"},
        {1, 2, 2, 130, 64, 0, "causal", ""},
    };
    run_cases(cases, sizeof cases / sizeof cases[0], 10, check_ref);
}

static double elu1(double x) { return x > 0 ? x + 1 : exp(x); }

/* The two limits of the gate (docs/kernels/infini.md), straight from the definitions, for
 * segments of L from position 0: `memory` = 0: softmax over the keys of the
 * query's own segment up to itself (segment-block causal mask); `memory` = 1:
 * sum_j phi(q).phi(k_j) v_j / sum_j phi(q).phi(k_j) over the keys of earlier
 * segments, 0 in the first segment. */
static void limit_oracle(const fx_problem *p, int64_t L, int memory, double *out)
{
    const attn_args *a = &p->a;
    int64_t N = a->Nk, D = a->D, Dv = attn_dv(a), G = a->H / a->H_kv, i = 0;
    double sc = attn_scale(a), *wt = malloc(sizeof(double) * (size_t)N);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t t = 0; t < N; t++, i += Dv) {
                const float *q = attn_at(&p->q, b, h, t);
                int64_t lo = memory ? 0 : t / L * L, hi = memory ? t / L * L : t + 1;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = lo; j < hi; j++) {
                    const float *k = attn_at(&p->k, b, h / G, j);
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += memory ? elu1(q[d]) * elu1(k[d]) : sc * q[d] * k[d];
                    wt[j] = s, mx = fmax(mx, s);
                }
                for (int64_t c = 0; c < Dv; c++)
                    out[i + c] = 0;
                for (int64_t j = lo; j < hi; j++) {
                    double w = memory ? wt[j] : exp(wt[j] - mx);
                    sum += w;
                    for (int64_t c = 0; c < Dv; c++)
                        out[i + c] += w * attn_at(&p->v, b, h / G, j)[c];
                }
                for (int64_t c = 0; sum > 0 && c < Dv; c++)
                    out[i + c] /= sum;
            }
    free(wt);
}

static void check_limit(int64_t N, int64_t L, int64_t H_kv, const char *update, int memory)
{
    char params[64];
    snprintf(params, sizeof params, "L=%ld update=%s tile=6", (long)L, update);
    attn_args a = inf_args(2, 2, H_kv, N, 16, 0, "causal", params, 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 7 + (uint64_t)N);
    set_betas(&p, memory ? 30.0f : -30.0f, 1); /* g = 1 - 9e-14 or 9e-14 */
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double *ref = malloc(sizeof(double) * (size_t)(2 * 2 * N * 16));
    limit_oracle(&p, L, memory, ref);
    double e = own_rel_err(&p.o, ref);
    cr_assert(e <= 5e-5, "N=%ld L=%ld %s g=%d: err %.3g", (long)N, (long)L, update, memory, e);
    if (memory) /* the first segment reads an empty memory: exactly 0 */
        for (int64_t t = 0; t < L && t < N; t++)
            for (int64_t d = 0; d < 16; d++)
                cr_assert(attn_at(&p.o, 1, 1, t)[d] == 0.0f, "row %ld of the first segment is not 0", (long)t);
    free(ref);
    fx_free(&p);
}

Test(infini, closed_gate_is_softmax_with_a_segment_block_causal_mask)
{
    check_limit(64, 16, 2, "delta", 0);
    check_limit(75, 16, 1, "linear", 0);
    check_limit(50, 7, 2, "delta", 0);
}

Test(infini, open_gate_with_linear_update_is_linear_attention_over_earlier_segments)
{
    check_limit(64, 16, 2, "linear", 1);
    check_limit(75, 16, 1, "linear", 1);
    check_limit(50, 7, 2, "linear", 1);
}

/* The delta rule differs from the linear one (same inputs, open gate). */
Test(infini, delta_update_changes_the_memory_read)
{
    attn_args al = inf_args(1, 1, 1, 48, 16, 0, "causal", "L=16 update=linear", 1);
    attn_args ad = inf_args(1, 1, 1, 48, 16, 0, "causal", "L=16 update=delta", 1);
    fx_problem pl, pd;
    fx_make_for(&pl, K, &al, 3), fx_make_for(&pd, K, &ad, 3);
    set_betas(&pl, 30.0f, 1), set_betas(&pd, 30.0f, 1);
    cr_assert_eq(fx_run(K, &pl, 0), 0);
    cr_assert_eq(fx_run(K, &pd, 0), 0);
    /* segment 1 reads only segment 0's memory, where delta = linear (empty memory) */
    for (int64_t t = 0; t < 32; t++)
        cr_assert(memcmp(attn_at(&pl.o, 0, 0, t), attn_at(&pd.o, 0, 0, t), 16 * sizeof(float)) == 0,
                  "row %ld differs before the first delta retrieval", (long)t);
    double diff = 0;
    for (int64_t t = 32; t < 48; t++)
        for (int64_t d = 0; d < 16; d++)
            diff = fmax(diff, fabs(attn_at(&pl.o, 0, 0, t)[d] - attn_at(&pd.o, 0, 0, t)[d]));
    cr_assert(diff > 1e-3, "segment 2 reads the same memory under delta and linear (%.3g)", diff);
    fx_free(&pl), fx_free(&pd);
}

/* Gradients (dQ, dK, dV, dbeta) against central differences of the reference. */
static void check_grads(const attn_args *a, uint64_t seed, const char *what)
{
    fx_problem p;
    fx_make_for(&p, K, a, seed);
    set_betas(&p, NAN, seed);
    fx_ref_grads(&p);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s: %s", what, attn_last_error());
    const attn_tensor *g[] = {&p.dq, &p.dk, &p.dv, &p.dw};
    const attn_tensor_f64 *r[] = {&p.dq64, &p.dk64, &p.dv64, &p.dw64};
    static const char *const names[] = {"dQ", "dK", "dV", "dbeta"};
    for (int i = 0; i < 4; i++) {
        double e = fx_err_grad(g[i], r[i]);
        cr_assert(e <= 1e-4, "%s: %s err %.3g", what, names[i], e);
    }
    fx_free(&p);
}

Test(infini, backward_matches_central_differences, .timeout = 60)
{
    static const inf_case cases[] = {
        {1, 2, 1, 9, 4, 0, "causal", "L=4 update=linear"},
        {1, 2, 1, 9, 4, 0, "causal", "L=4 update=delta"},
        {2, 2, 2, 11, 4, 3, "causal", "L=3 tile=2"},
        {1, 3, 1, 10, 5, 0, "causal", "L=5 update=linear tile=2"},
        {1, 2, 1, 12, 4, 0, "document:lens=5+7,causal=1", "L=3"},
        {1, 1, 1, 5, 16, 0, "causal", "L=2"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0], 60, check_grads);
}

Test(infini, check_table_backward_passes_with_initial_weights)
{
    attn_args a = inf_args(1, 2, 1, 9, 8, 0, "causal", "L=4", 2);
    double e[ATTN_CHECK_GRADS];
    cr_assert_eq(check_kernel_backward(K, &a, 5, e), 0, "%s", attn_last_error());
    cr_assert(e[0] <= 1e-4 && e[1] <= 1e-4 && e[2] <= 1e-4, "dQ %.3g dK %.3g dV %.3g", e[0], e[1], e[2]);
    cr_assert(e[6] <= 1e-4, "dbeta err %.3g", e[6]);
}

static void fill_tensor(const attn_tensor *t, float v)
{
    for (int64_t i = 0; i < t->B * t->sb; i++)
        t->data[i] = v;
}

Test(infini, backward_overwrites_gradients)
{
    attn_args a = inf_args(2, 2, 1, 30, 8, 0, "causal", "L=8", 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    set_betas(&p, NAN, 3);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    fx_problem q;
    fx_make_for(&q, K, &a, 3);
    set_betas(&q, NAN, 3);
    fill_tensor(&q.dq, 7.0f), fill_tensor(&q.dk, NAN), fill_tensor(&q.dv, 3.0f), fill_tensor(&q.dw, 5.0f);
    cr_assert_eq(fx_run(K, &q, 1), 0, "%s", attn_last_error());
    cr_assert(fx_bitwise_equal(&p.dq, &q.dq) && fx_bitwise_equal(&p.dk, &q.dk) && fx_bitwise_equal(&p.dv, &q.dv),
              "dQ/dK/dV depend on their previous contents");
    cr_assert(fx_bitwise_equal(&p.dw, &q.dw), "dbeta accumulated instead of written");
    fx_free(&p), fx_free(&q);
}

/* A DOCUMENT mask makes every document its own sequence: the memory and the
 * segments restart at its first token. */
Test(infini, documents_are_independent_sequences)
{
    attn_args a = inf_args(1, 2, 1, 70, 16, 0, "document:lens=20+37+13,causal=1", "L=16 tile=5", 1);
    attn_args d = inf_args(1, 2, 1, 37, 16, 0, "causal", "L=16 tile=5", 1);
    fx_problem p, q;
    fx_make_for(&p, K, &a, 4), fx_make_for(&q, K, &d, 4);
    set_betas(&p, NAN, 2), set_betas(&q, NAN, 2);
    attn_tensor *src[] = {&p.q, &p.k, &p.v}, *dst[] = {&q.q, &q.k, &q.v};
    for (int i = 0; i < 3; i++)
        for (int64_t h = 0; h < dst[i]->H; h++)
            for (int64_t t = 0; t < 37; t++)
                memcpy(attn_at(dst[i], 0, h, t), attn_at(src[i], 0, h, 20 + t), sizeof(float) * 16);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &q, 0), 0, "%s", attn_last_error());
    for (int64_t h = 0; h < 2; h++)
        for (int64_t t = 0; t < 37; t++)
            cr_assert(memcmp(attn_at(&p.o, 0, h, 20 + t), attn_at(&q.o, 0, h, t), sizeof(float) * 16) == 0,
                      "head %ld row %ld of document 2 differs from the document alone", (long)h, (long)t);
    fx_free(&p), fx_free(&q);
}

/* The kept state: M, z of the complete segments (checked against the
 * linear-update sums in double) and the open segment's rows. */
Test(infini, kept_state_is_the_memory_of_complete_segments_and_the_open_rows)
{
    attn_args a = inf_args(2, 2, 1, 40, 8, 4, "causal", "L=16 update=linear", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 12);
    attn_ctx full, two;
    own_forward_prefix(K, &p, 40, &full);
    own_forward_prefix(K, &p, 32, &two);
    cr_assert_eq(full.state_bytes_used, K->state_bytes(&a));
    cr_assert_eq(K->state_bytes(&a), 4u * 2 * 1 * (8 * 4 + 8 + 16 * (8 + 4)));
    for (int64_t b = 0; b < 2; b++) {
        const float *z, *kr, *vr, *z2, *k2, *v2;
        int64_t rows, rows2;
        const float *M = attn_infini_state(&full, b, 0, &z, &kr, &vr, &rows);
        const float *M2 = attn_infini_state(&two, b, 0, &z2, &k2, &v2, &rows2);
        cr_assert(M && M2);
        cr_assert_eq(rows, 8);
        cr_assert_eq(rows2, 0);
        cr_assert(memcmp(M, M2, sizeof(float) * 32) == 0 && memcmp(z, z2, sizeof(float) * 8) == 0,
                  "the N=40 state is not the memory after the two complete segments");
        for (int64_t i = 0; i < 8; i++)
            cr_assert(memcmp(kr + i * 8, attn_at(&p.k, b, 0, 32 + i), 32) == 0 &&
                      memcmp(vr + i * 4, attn_at(&p.v, b, 0, 32 + i), 16) == 0, "open row %ld", (long)i);
        for (int64_t d = 0; d < 8; d++) {
            double zr = 0;
            for (int64_t j = 0; j < 32; j++)
                zr += elu1(attn_at(&p.k, b, 0, j)[d]);
            cr_assert(fabs(z[d] - zr) <= 1e-5 * zr, "z[%ld] %.7g vs %.7g", (long)d, z[d], zr);
            for (int64_t c = 0; c < 4; c++) {
                double m = 0, s = 0;
                for (int64_t j = 0; j < 32; j++) {
                    double f = elu1(attn_at(&p.k, b, 0, j)[d]) * attn_at(&p.v, b, 0, j)[c];
                    m += f, s += fabs(f);
                }
                cr_assert(fabs(M[d * 4 + c] - m) <= 1e-5 * s, "M[%ld][%ld] %.7g vs %.7g", (long)d, (long)c,
                          M[d * 4 + c], m);
            }
        }
    }
    attn_ctx_destroy(&full), attn_ctx_destroy(&two);
    fx_free(&p);
}

/* Forward 2 (Dk + Dv) per allowed pair + 2 N Dk Dv per query head + (2 or 4)
 * N Dk Dv per KV head; backward 2.5x. The counter counts what runs: whole
 * score blocks, no read in the first segment, one update per segment here. */
Test(infini, cost_model_and_counters)
{
    attn_args a = inf_args(2, 4, 2, 64, 16, 0, "causal", "L=16 tile=16", 1);
    double pairs = 4 * 16 * 17 / 2.0, fwd = 2 * (4 * (2 * 32 * pairs + 2 * 64 * 256.0) + 2 * 4 * 64 * 256.0);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-9 * fwd);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 2.5 * fwd, 1e-9 * fwd);
    attn_args l = inf_args(1, 2, 2, 70, 16, 8, "causal", "L=16 update=linear", 1);
    double pl = 4 * 16 * 17 / 2.0 + 6 * 7 / 2.0, fl = 2 * (2 * 24 * pl + 2 * 70 * 128.0) + 2 * 2 * 70 * 128.0;
    cr_assert_float_eq(K->flops(&l, ATTN_PASS_FWD), fl, 1e-9 * fl);
    double q = 4 * 64 * 16, kv = 2 * 64 * 32, o = 4 * 64 * 16;
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4 * (2 * (q + kv + o) + 4), 1e-9);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_BWD), 4 * (2 * (2 * q + 2 * kv + o) + 8), 1e-9);
    cr_assert_eq(K->state_bytes(&a), 4u * 2 * 2 * (16 * 16 + 16 + 16 * 32));
    fx_problem p;
    fx_make_for(&p, K, &a, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    /* per (b, KV head): 2 heads x (3 reads + 4 full 16x16 blocks), updates 1 linear + 3 delta */
    double run = 2 * 2 * (2 * (3 * 2 * 16 * 256.0 + 4 * 2 * 256 * 32.0) + (2 + 3 * 4) * 16 * 256.0);
    cr_assert_eq((double)attn_counter_get(ATTN_CNT_FLOPS), run);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) >= 4 * 2 * (q + kv));
    fx_free(&p);
}

Test(infini, refuses_bad_params_masks_and_offsets_and_starts_with_beta_zero)
{
    attn_ctx ctx;
    static const char *const bad[] = {"L=0", "update=rms", "tile=0", "chunk=4"};
    for (int i = 0; i < 4; i++) {
        attn_args b = inf_args(1, 1, 1, 8, 16, 0, "causal", bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &b, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        cr_assert(strstr(attn_last_error(), key) != NULL, "%s: %s", bad[i], attn_last_error());
    }
    attn_args f = inf_args(1, 1, 1, 8, 16, 0, "full", "", 1);
    cr_assert_eq(attn_ctx_create(K, &f, &ctx), ATTN_EUNSUPPORTED);
    attn_args w = inf_args(1, 1, 1, 8, 16, 0, "window:wl=2,wr=0", "", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    attn_args c = fx_args(1, 1, 1, 8, 12, 16, "causal", 1);
    cr_assert_eq(attn_ctx_create(K, &c, &ctx), ATTN_EUNSUPPORTED);
    attn_args o = inf_args(1, 1, 1, 8, 16, 0, "causal", "", 1);
    o.q_off = 3;
    cr_assert_eq(attn_ctx_create(K, &o, &ctx), ATTN_EUNSUPPORTED);
    attn_args a = inf_args(1, 1, 1, 8, 16, 0, "causal", "L=4", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 2);
    cr_assert_eq(K->input_cols(&a, ATTN_IN_WEIGHTS), 1);
    cr_assert_eq(attn_at(&p.w, 0, 0, 0)[0], 0.0f, "beta starts at 0 (g = 1/2)");
    fx_free(&p);
}

/* Decode: the step form from a zero state over the whole sequence, and from
 * the state a prefix forward kept, gives the parallel forward's outputs. */
static void check_stream(const char *params, int64_t N, int64_t N0, int64_t L)
{
    attn_args a = inf_args(2, 4, 2, N, 16, 8, "causal", params, 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 17);
    set_betas(&p, NAN, 17);
    attn_ctx full, head;
    own_forward_prefix(K, &p, N, &full);
    float *O = malloc(sizeof(float) * (size_t)(p.o.B * p.o.sb));
    memcpy(O, p.o.data, sizeof(float) * (size_t)(p.o.B * p.o.sb));
    own_forward_prefix(K, &p, N0, &head);
    size_t st = (size_t)(16 * 8 + 16 + L * 24);
    float *S = calloc(st, sizeof(float)), *scr = calloc(attn_infini_step_floats(&a), sizeof(float));
    float q[2 * 16], o[2 * 8];
    double err = 0, omax = 0;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t hk = 0; hk < 2; hk++)
            for (int from = 0; from < 2; from++) {
                int64_t rows = 0, t0 = from ? N0 : 0;
                float *M = S, *z = M + 128, *Ks = z + 16, *Vs = Ks + L * 16;
                memset(S, 0, sizeof(float) * st);
                if (from) { /* continue from the prefix's kept state */
                    const float *z0, *k0, *v0;
                    const float *M0 = attn_infini_state(&head, b, hk, &z0, &k0, &v0, &rows);
                    memcpy(M, M0, sizeof(float) * 128), memcpy(z, z0, sizeof(float) * 16);
                    memcpy(Ks, k0, sizeof(float) * (size_t)(rows * 16)), memcpy(Vs, v0, sizeof(float) * (size_t)(rows * 8));
                }
                for (int64_t t = t0; t < N; t++) {
                    for (int64_t g = 0; g < 2; g++)
                        memcpy(q + g * 16, attn_at(&p.q, b, hk * 2 + g, t), sizeof(float) * 16);
                    cr_assert_eq(attn_infini_step(&a, &p.w, hk, M, z, Ks, Vs, &rows, q, attn_at(&p.k, b, hk, t),
                                                  attn_at(&p.v, b, hk, t), o, scr), 0, "%s", attn_last_error());
                    cr_assert_eq(rows, (t + 1) % L, "%s t=%ld: %ld open rows", params, (long)t, (long)rows);
                    for (int64_t g = 0; g < 2; g++)
                        for (int64_t c = 0; c < 8; c++) {
                            float r = O[b * p.o.sb + (hk * 2 + g) * p.o.sh + t * p.o.sn + c];
                            err = fmax(err, fabs(o[g * 8 + c] - r)), omax = fmax(omax, fabs(r));
                        }
                }
            }
    cr_assert(err <= 1e-5 * omax, "%s: streaming vs parallel err %.3g (max|O| %.3g)", params, err, omax);
    attn_ctx_destroy(&full), attn_ctx_destroy(&head);
    free(O), free(S), free(scr);
    fx_free(&p);
}

Test(infini, streaming_steps_equal_the_parallel_forward_and_continue_its_state)
{
    check_stream("L=16 update=delta tile=5", 45, 21, 16);
    check_stream("L=16 update=linear", 45, 32, 16);
    check_stream("L=5", 23, 7, 5);
}

/* The table behind `attnbench check` (CAUSAL and the two DOCUMENT masks it
 * tries; gradients with check_params L=8 so the memory path is exercised). */
Test(infini, attnbench_check_table_passes, .timeout = 120)
{
    check_tally t = {0};
    cr_assert_eq(check_kernel_cases(K, NULL, 2, check_tally_add, &t), 0, "%s", attn_last_error());
    cr_assert_eq(t.failed, 0, "%d of %d cases failed, first %s", t.failed, t.cases, t.first_failure);
    cr_assert((t.grads & (1u << 6)) && t.saw_document, "no dw gradient or no document case in %d cases", t.cases);
}

/* In a model the betas are attention-block parameters (ATTN_IN_WEIGHTS): the
 * block's fp32 gradients, beta included, match central differences of its
 * double twin. */
Test(infini, attention_block_with_learned_betas_matches_its_double_twin, .timeout = 60)
{
    param_bag kp = {0};
    cr_assert_eq(param_bag_add_list(&kp, "L=3 update=delta"), 0);
    nn_attn_cfg a = {.C = 16, .H = 2, .H_kv = 2, .kernel = K, .mask = {.kind = ATTN_MASK_CAUSAL}, .params = kp};
    mc_check_block(&a, 2, 7, 2, 2031, "infini block L=3");
}

/* An unvalidated NaN key spreads within its (b, KV group)
 * only; the other slices keep their bits, forward and backward. */
Test(infini, a_nan_stays_inside_its_batch_and_kv_group)
{
    attn_args a = inf_args(2, 4, 2, 40, 8, 0, "causal", "L=16", 2);
    fx_problem p, q;
    fx_make_for(&p, K, &a, 8), fx_make_for(&q, K, &a, 8);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    attn_at(&q.k, 1, 0, 5)[3] = NAN;
    cr_assert_eq(fx_run(K, &q, 1), 0, "%s", attn_last_error());
    for (int64_t b = 0; b < 2; b++)
        for (int64_t h = 0; h < 4; h++) {
            int hit = b == 1 && h / 2 == 0;
            size_t n = sizeof(float) * 40 * 8;
            int same = memcmp(attn_at(&p.o, b, h, 0), attn_at(&q.o, b, h, 0), n) == 0 &&
                       memcmp(attn_at(&p.dq, b, h, 0), attn_at(&q.dq, b, h, 0), n) == 0;
            cr_assert(same != hit, "b=%ld h=%ld: %s", (long)b, (long)h, hit ? "NaN did not reach its group" : "changed");
        }
    fx_free(&p), fx_free(&q);
}
