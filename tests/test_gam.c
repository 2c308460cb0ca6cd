/* Properties of the `gam` mixer (Gated Associative Memory):
 * the fp32 kernel equals its double reference (N 7 and 130, D 16 and 64,
 * CAUSAL and FULL, tiles that do not divide N); gradients against central differences of
 * the reference (dK = dV = 0); the global path alone is softmax
 * cross-attention of X onto K = V = M with scale 1 (the oracle); the conv
 * path alone is the depthwise conv; one tap makes it token-wise; FULL is not
 * causal (causal leakage, thread determinism and strided views:
 * test_properties.c); the streaming ring-buffer form equals the parallel one and the kept conv tail
 * is all the state it needs; cost model, init and parameter checks. */
#include "harness/measure/check.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "own_ref_check.h"
#include "kernels/gam/gam.h"
#include "kernels/core/oracle.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_gam;

/* args with space-separated key=value params ("" for none). */
static attn_args gam_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                          const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, threads, params);
}

static gam_plan plan_of(const attn_args *a)
{
    gam_plan pl;
    cr_assert_eq(attn_gam_plan(&pl, a), 0, "%s", attn_last_error());
    return pl;
}

Test(gam, forward_matches_double_reference_over_lengths_widths_masks_and_tiles, .timeout = 60)
{
    static const int64_t Ns[] = {7, 130}, Ds[] = {16, 64};
    static const char *const masks[] = {"causal", "full"};
    static const char *const tiles[] = {"", "tile=9", "tile=3"};
    int c = 0;
    for (int n = 0; n < 2; n++)
        for (int d = 0; d < 2; d++)
            for (int m = 0; m < 2; m++, c++) {
                char what[96];
                snprintf(what, sizeof what, "N=%ld D=%ld %s k=3 %s", (long)Ns[n], (long)Ds[d], masks[m], tiles[c % 3]);
                attn_args a = gam_args(2, 2, 1, Ns[n], Ds[d], masks[m], tiles[c % 3], 2);
                own_ref_check(K, &a, 10 + (uint64_t)c, what);
            }
}

Test(gam, forward_matches_reference_on_other_taps_slots_and_scale, .timeout = 60)
{
    static const struct {
        int64_t N, D;
        const char *mask, *params;
    } cases[] = {
        {40, 16, "full", "taps=4 tile=7"},  {40, 16, "causal", "taps=1 slots=7"},
        {33, 32, "full", "taps=6 tile=2"},  {50, 64, "causal", "scaled=1 slots=100 tile=16"},
        {1, 16, "causal", "taps=5"},        {3, 16, "full", "taps=7 slots=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "N=%ld D=%ld %s %s", (long)cases[i].N, (long)cases[i].D, cases[i].mask,
                 cases[i].params);
        attn_args a = gam_args(1, 2, 2, cases[i].N, cases[i].D, cases[i].mask, cases[i].params, 2);
        own_ref_check(K, &a, 40 + i, what);
    }
}

Test(gam, backward_matches_reference_gradients, .timeout = 60)
{
    static const struct {
        int64_t B, H, N, D;
        const char *mask, *params;
    } cases[] = {
        {1, 2, 7, 4, "causal", "slots=5"},
        {1, 2, 7, 4, "full", "slots=5"},
        {2, 1, 9, 4, "causal", "slots=6 tile=2 chunks=3"},
        {2, 1, 9, 4, "full", "slots=6 tile=2 chunks=2 taps=4"},
        {1, 1, 6, 5, "full", "slots=4 scaled=1 taps=5 tile=4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_args a = gam_args(cases[i].B, cases[i].H, 1, cases[i].N, cases[i].D, cases[i].mask, cases[i].params, 2);
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        cr_assert(e[0] <= 1e-4, "case %zu (%s %s): dX err %.3g", i, cases[i].mask, cases[i].params, e[0]);
        cr_assert(e[6] <= 1e-4, "case %zu (%s %s): dw err %.3g", i, cases[i].mask, cases[i].params, e[6]);
        cr_assert(e[1] == 0 && e[2] == 0, "case %zu: dK/dV not zero (%.3g, %.3g)", i, e[1], e[2]);
    }
}

static void fill_tensor(const attn_tensor *t, float v)
{
    for (int64_t i = 0; i < t->B * t->sb; i++)
        t->data[i] = v;
}

Test(gam, backward_writes_zero_dk_dv_and_overwrites_dw)
{
    attn_args a = gam_args(2, 2, 1, 20, 8, "causal", "slots=6 tile=6", 2);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    int64_t nw = p.dw.B * p.dw.sb;
    float *first = malloc(sizeof(float) * (size_t)nw);
    memcpy(first, p.dw.data, sizeof(float) * (size_t)nw);
    fill_tensor(&p.dk, 7.0f), fill_tensor(&p.dv, NAN), fill_tensor(&p.dw, 3.0f);
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    cr_assert(memcmp(first, p.dw.data, sizeof(float) * (size_t)nw) == 0, "dw accumulated instead of written");
    for (int64_t i = 0; i < p.dk.B * p.dk.sb; i++)
        cr_assert(p.dk.data[i] == 0 && p.dv.data[i] == 0, "dK/dV element %ld not zero", (long)i);
    free(first);
    fx_free(&p);
}

/* Sets W_g = 0 and the gate biases to (ba, bc): sigma(+-30) is 1 or 9e-14. */
static void set_gates(fx_problem *p, float ba, float bc)
{
    gam_plan pl = plan_of(&p->a);
    int64_t D = p->a.D;
    for (int64_t h = 0; h < p->a.H; h++) {
        float *w = attn_at(&p->w, 0, h, 0);
        memset(w + pl.off_wg, 0, sizeof(float) * (size_t)(2 * D * D));
        for (int64_t d = 0; d < D; d++)
            w[pl.off_bg + d] = ba, w[pl.off_bg + D + d] = bc;
    }
}

Test(gam, global_path_equals_oracle_cross_attention_on_the_bank)
{
    for (int scaled = 0; scaled < 2; scaled++) {
        attn_args a = gam_args(2, 2, 2, 33, 16, "full", scaled ? "slots=24 tile=10 scaled=1" : "slots=24 tile=10", 1);
        fx_problem p;
        fx_make_for(&p, K, &a, 21);
        set_gates(&p, -30.0f, 30.0f);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        /* oracle: X onto K = V = M of head h, scale 1 (or 1/sqrt(D)), FULL */
        int64_t B = 2, H = 2, N = 33, S = 24, D = 16;
        attn_args oa = fx_args(B, H, H, N, S, D, "full", 1);
        oa.scale = scaled ? 0 : 1.0;
        attn_tensor_f64 q = {calloc((size_t)(B * H * N * D), 8), B, H, N, D, H * N * D, N * D, D};
        attn_tensor_f64 kv = {calloc((size_t)(B * H * S * D), 8), B, H, S, D, H * S * D, S * D, D};
        attn_tensor_f64 o = q;
        o.data = calloc((size_t)(B * H * N * D), 8);
        double *lse = calloc((size_t)(B * H * N), 8);
        for (int64_t i = 0; i < B * H * N * D; i++)
            q.data[i] = p.q.data[i];
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < S * D; i++)
                    kv.data[b * kv.sb + h * kv.sh + i] = attn_at(&p.w, 0, h, 0)[i];
        attn_oracle_forward_f64(&oa, &q, &kv, &kv, &o, lse);
        double e = own_rel_err(&p.o, o.data);
        cr_assert(e <= 5e-5, "scaled=%d: global path vs oracle err %.3g", scaled, e);
        free(q.data), free(kv.data), free(o.data), free(lse);
        fx_free(&p);
    }
}

/* Depthwise conv in double straight from the layout: tap tau on x_{t - tau + s}. */
static void conv_ref(const fx_problem *p, int64_t shift, double *out)
{
    gam_plan pl = plan_of(&p->a);
    int64_t N = p->a.Nq, D = p->a.D, i = 0;
    for (int64_t b = 0; b < p->a.B; b++)
        for (int64_t h = 0; h < p->a.H; h++)
            for (int64_t t = 0; t < N; t++)
                for (int64_t d = 0; d < D; d++, i++) {
                    const float *w = attn_at(&p->w, 0, h, 0);
                    double l = w[pl.off_cbias + d];
                    for (int64_t tau = 0; tau < pl.k; tau++)
                        if (t - tau + shift >= 0 && t - tau + shift < N)
                            l += (double)w[pl.off_taps + tau * D + d] * attn_at(&p->q, b, h, t - tau + shift)[d];
                    out[i] = l;
                }
}

Test(gam, closed_global_gate_leaves_the_causal_or_centred_conv)
{
    static const char *const masks[] = {"causal", "full"};
    for (int m = 0; m < 2; m++) {
        attn_args a = gam_args(1, 2, 1, 29, 16, masks[m], "taps=3 slots=8 tile=8", 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 22);
        set_gates(&p, 30.0f, -30.0f);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double *ref = malloc(sizeof(double) * 2 * 29 * 16);
        conv_ref(&p, m == 0 ? 0 : 1, ref);
        double e = own_rel_err(&p.o, ref);
        cr_assert(e <= 1e-5, "%s: conv path err %.3g", masks[m], e);
        free(ref);
        fx_free(&p);
    }
}

/* Keeps only tap `keep`: the conv of row t reads token t - keep + s alone.
 * Perturbing token 9 changes its own row (bank read, gates) and the row whose
 * conv reads it, `conv_row`; every other row stays bitwise equal. */
static void check_single_tap(const char *mask, int64_t keep, int64_t conv_row)
{
    attn_args a = gam_args(1, 1, 1, 23, 16, mask, "taps=3 slots=8 tile=4", 2);
    gam_plan pl = plan_of(&a);
    fx_problem p;
    fx_make_for(&p, K, &a, 23);
    float *w = attn_at(&p.w, 0, 0, 0);
    for (int64_t tau = 0; tau < pl.k; tau++)
        if (tau != keep)
            memset(w + pl.off_taps + tau * a.D, 0, sizeof(float) * (size_t)a.D);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    size_t bytes = sizeof(float) * (size_t)(23 * 16);
    float *before = malloc(bytes);
    memcpy(before, p.o.data, bytes);
    for (int64_t d = 0; d < a.D; d++)
        attn_at(&p.q, 0, 0, 9)[d] += 0.5f;
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    for (int64_t t = 0; t < 23; t++) {
        int same = memcmp(before + t * 16, attn_at(&p.o, 0, 0, t), sizeof(float) * 16) == 0;
        cr_assert(same == (t != 9 && t != conv_row), "%s tap %ld: row %ld %s after perturbing token 9", mask,
                  (long)keep, (long)t,
                  same ? "unchanged" : "changed");
    }
    free(before);
    fx_free(&p);
}

Test(gam, zero_taps_beyond_the_current_token_make_outputs_tokenwise)
{
    check_single_tap("causal", 0, 9); /* w_tau = 0 for tau > 0 */
    check_single_tap("full", 1, 9);   /* centred: tap 1 is the current token */
    check_single_tap("full", 0, 8);   /* tap 0 reads the next token: rows 8 and 9 change */
}

Test(gam, full_mask_is_not_causal)
{
    attn_args a = gam_args(1, 2, 1, 97, 16, "full", "slots=32 tile=16", 2);
    int ok = 1;
    cr_assert_eq(check_kernel_causal_leakage(K, &a, 40, &ok), 0, "%s", attn_last_error());
    cr_assert(!ok, "FULL (centred conv): row 39 should read token 40");
}

Test(gam, streaming_ring_buffer_equals_parallel_and_the_tail_is_the_state)
{
    for (int64_t k = 1; k <= 5; k += 2) {
        char params[64];
        snprintf(params, sizeof params, "taps=%ld slots=16 tile=8", (long)k);
        int64_t N = 30, N0 = 20, D = 16, r = k - 1;
        attn_args a = gam_args(2, 2, 1, N, D, "causal", params, 2);
        cr_assert_eq(K->state_bytes(&a), sizeof(float) * 2 * 2 * (size_t)(r * D));
        fx_problem p;
        fx_make_for(&p, K, &a, 31);
        attn_ctx full, head;
        own_forward_prefix(K, &p, N, &full);
        cr_assert_eq(full.state_bytes_used, K->state_bytes(&a), "k=%ld: state_bytes_used %zu", (long)k,
                     full.state_bytes_used);
        float *O = malloc(sizeof(float) * (size_t)(p.o.B * p.o.sb));
        memcpy(O, p.o.data, sizeof(float) * (size_t)(p.o.B * p.o.sb));
        own_forward_prefix(K, &p, N0, &head); /* keeps the tail of rows N0-r .. N0-1 */
        float ring[4 * 16], f[16];
        double err = 0, omax = 0;
        for (int64_t b = 0; b < 2; b++)
            for (int64_t h = 0; h < 2; h++) {
                const float *w = attn_at(&p.w, 0, h, 0), *tail = attn_gam_tail(&full, b, h);
                for (int64_t i = 0; i < r; i++) /* the full run's tail: its last r rows */
                    cr_assert(memcmp(tail + i * D, attn_at(&p.q, b, h, N - r + i), sizeof(float) * (size_t)D) == 0);
                /* from the start with a zero ring, then from the prefix's tail */
                memset(ring, 0, sizeof ring);
                for (int64_t t = 0; t < N; t++) {
                    cr_assert_eq(attn_gam_step(&a, w, ring, t, attn_at(&p.q, b, h, t), f), 0, "%s", attn_last_error());
                    for (int64_t d = 0; d < D; d++) {
                        float o = O[b * p.o.sb + h * p.o.sh + t * p.o.sn + d];
                        err = fmax(err, fabs(f[d] - o)), omax = fmax(omax, fabs(o));
                    }
                }
                const float *t0 = attn_gam_tail(&head, b, h);
                for (int64_t i = 0; i < r; i++)
                    memcpy(ring + ((N0 - r + i) % r) * D, t0 + i * D, sizeof(float) * (size_t)D);
                for (int64_t t = N0; t < N; t++) {
                    cr_assert_eq(attn_gam_step(&a, w, ring, t, attn_at(&p.q, b, h, t), f), 0);
                    for (int64_t d = 0; d < D; d++)
                        err = fmax(err, fabs(f[d] - O[b * p.o.sb + h * p.o.sh + t * p.o.sn + d]));
                }
            }
        cr_assert(err <= 1e-5 * omax, "k=%ld: streaming vs parallel err %.3g (max|O| %.3g)", (long)k, err, omax);
        attn_ctx_destroy(&full), attn_ctx_destroy(&head);
        free(O);
        fx_free(&p);
    }
    attn_args f = gam_args(1, 1, 1, 8, 16, "full", "", 1);
    float w[1], ring[1], x[16], o[16];
    cr_assert_eq(attn_gam_step(&f, w, ring, 0, x, o), ATTN_EUNSUPPORTED);
}

/* Forward 4NSD + 4ND^2 + 2NkD per (b, head), backward twice that; the
 * forward counter counts exactly the model, the backward adds the recomputed
 * forward (and the gates of the k-1 halo rows per tile): fwd + bwd = 4x fwd. */
Test(gam, cost_model_and_counters)
{
    attn_args a = gam_args(2, 3, 1, 40, 16, "causal", "slots=24 taps=3 tile=16", 1);
    double N = 40, D = 16, S = 24, k = 3, per = 4 * N * S * D + 4 * N * D * D + 2 * N * k * D;
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 6 * per, 1e-9 * per);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 12 * per, 1e-9 * per);
    gam_plan pl = plan_of(&a);
    cr_assert_eq(pl.W, S * D + k * D + D + 2 * D * D + 2 * D);
    double x = 2 * 3 * 40 * 16, w = 3 * (double)pl.W, kv = 2 * 1 * 40 * 16;
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4 * (2 * x + w), 1e-9);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_BWD), 4 * (3 * x + 2 * w + 2 * kv), 1e-9);
    cr_assert_eq(K->state_bytes(&a), 4u * 2 * 3 * 2 * 16);
    fx_problem p;
    fx_make_for(&p, K, &a, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq((double)attn_counter_get(ATTN_CNT_FLOPS), 6 * per);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) >= 4 * x);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS);
    cr_assert(got >= 24 * per && got <= 25 * per, "fwd + bwd counted %.0f, model fwd %.0f", got, 6 * per);
    fx_free(&p);
}

Test(gam, init_weights_follow_the_reference_initialisation)
{
    attn_args a = gam_args(1, 2, 1, 4, 16, "causal", "slots=48 taps=3", 1);
    gam_plan pl = plan_of(&a);
    fx_problem p, q;
    fx_make_for(&p, K, &a, 1), fx_make_for(&q, K, &a, 1);
    cr_assert(memcmp(p.w.data, q.w.data, sizeof(float) * (size_t)(2 * pl.W)) == 0, "same seed, other weights");
    const float *w0 = attn_at(&p.w, 0, 0, 0), *w1 = attn_at(&p.w, 0, 1, 0);
    cr_assert(memcmp(w0, w1, sizeof(float) * (size_t)pl.W) != 0, "heads share weights");
    double bound[] = {sqrt(6.0 / (48 + 16)), 1 / sqrt(3.0), 1 / sqrt(3.0), 0.25, 0.25};
    int64_t off[] = {0, pl.off_taps, pl.off_cbias, pl.off_wg, pl.off_bg, pl.W};
    for (int s = 0; s < 5; s++) {
        double m = 0;
        for (int64_t i = off[s]; i < off[s + 1]; i++)
            m = fmax(m, fabs(w0[i]));
        cr_assert(m <= bound[s] && m >= 0.5 * bound[s], "segment %d: max|w| %.3g, bound %.3g", s, m, bound[s]);
    }
    fx_free(&p), fx_free(&q);
}

Test(gam, refuses_cross_lengths_bad_params_and_masks)
{
    attn_ctx ctx;
    attn_args c = fx_args(1, 1, 1, 8, 12, 16, "causal", 1);
    cr_assert_eq(attn_ctx_create(K, &c, &ctx), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "N_kv == N") != NULL, "%s", attn_last_error());
    static const char *const bad[] = {"slots=0", "taps=0", "scaled=2", "tile=0", "chunks=x", "heads=2"};
    for (int i = 0; i < 6; i++) {
        attn_args b = gam_args(1, 1, 1, 8, 16, "causal", bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &b, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        cr_assert(strstr(attn_last_error(), key) != NULL, "%s: %s", bad[i], attn_last_error());
    }
    attn_args s = gam_args(1, 1, 1, 8, 16, "causal", "", 1);
    s.scale = 0.5;
    cr_assert_eq(attn_ctx_create(K, &s, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "scaled=1") != NULL, "%s", attn_last_error());
    attn_args o = gam_args(1, 1, 1, 8, 16, "causal", "", 1);
    o.q_off = 3;
    cr_assert_eq(attn_ctx_create(K, &o, &ctx), ATTN_EINVAL);
    attn_args v = gam_args(1, 1, 1, 8, 16, "causal", "", 1);
    v.Dv = 8;
    cr_assert_eq(attn_ctx_create(K, &v, &ctx), ATTN_EUNSUPPORTED);
    attn_args m = gam_args(1, 1, 1, 8, 16, "window:wl=2,wr=0", "", 1);
    cr_assert_eq(attn_ctx_create(K, &m, &ctx), ATTN_EUNSUPPORTED);
}
