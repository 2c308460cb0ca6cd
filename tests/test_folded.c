/* The folded model (models/folded.c): its truncated gradients against the
 * double recurrence, the two limits where it is a known model (no buffer:
 * independent segments; one segment: the plain causal lm), the streaming
 * step against the batch driver, causality, and the buffer carrying a token
 * past the window. */
#include "model_check.h"
#include "models/model_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nn_model_cfg folded_cfg(int64_t segment, int64_t buffer, const char *kernel)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_FOLDED, c.head = NN_HEAD_LM, c.causal = 1;
    c.vocab = 11, c.max_len = 64, c.layers = 2, c.d_model = 16, c.heads = 2, c.mlp = 24;
    c.fold_segment = segment, c.fold_buffer = buffer;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    return c;
}

static void gradcheck(nn_model_cfg c, int64_t B, int64_t N, const char *what)
{
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, c.vocab, 9);
    mc_gradcheck(&c, &t.b, N, 30, what);
}

Test(folded, gradients_with_buffers_held_match_the_double_recurrence, .timeout = 120)
{
    gradcheck(folded_cfg(3, 2, "flash"), 3, 7, "C 3 m 2, last segment partial");
    gradcheck(folded_cfg(2, 5, "flash"), 2, 9, "m 5 > C 2: the buffer keeps evolved buffer rows");
    nn_model_cfg c = folded_cfg(3, 3, "naive");
    c.pos = NN_POS_ROPE, c.mlp = 0, c.gating = NN_GATING_GTRXL;
    gradcheck(c, 2, 8, "naive, rope, no MLP, gtrxl");
    c = folded_cfg(4, 3, "linear");
    c.pos = NN_POS_SINUSOID;
    gradcheck(c, 2, 10, "linear, sinusoid");
}

Test(folded, without_a_buffer_it_is_the_lm_on_independent_segments)
{
    enum { B = 2, S = 4, SEG = 3, N = S * SEG };
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, 11, 4);
    nn_model_cfg f = folded_cfg(SEG, 0, "flash"), lm = f;
    lm.variant = NN_VARIANT_LM, lm.max_len = SEG; /* the same parameter layout: positions of one segment */
    double lf, ll;
    int32_t pf[B * N], pl[B * N];
    mc_run(&f, &t.b, N, &lf, pf);
    nn_batch segs = t.b; /* sequence b's segment s is row b*S + s of a (B*S, SEG) batch: the same memory */
    segs.B = B * S;
    mc_run(&lm, &segs, SEG, &ll, pl);
    mc_expect_same(lf, pf, ll, pl, B * N, "m = 0 vs the lm on segments");
}

Test(folded, a_sequence_within_one_segment_is_the_plain_causal_lm)
{
    enum { B = 3, N = 7 };
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, 11, 6);
    nn_model_cfg f = folded_cfg(8, 4, "flash"), lm = f;
    lm.variant = NN_VARIANT_LM, lm.max_len = nn_fold_window(&f);
    double lf, ll;
    int32_t pf[B * N], pl[B * N];
    mc_run(&f, &t.b, N, &lf, pf);
    mc_run(&lm, &t.b, N, &ll, pl);
    mc_expect_same(lf, pf, ll, pl, B * N, "N <= C vs the plain lm");
}

typedef struct {
    nn_model m;
    int64_t B, N;
    float *hidden;
} folded_run;

static void folded_open(folded_run *r, const nn_model_cfg *c, int64_t B, int64_t N)
{
    r->B = B, r->N = N;
    cr_assert_eq(nn_model_init(&r->m, c, 5), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&r->m, B, N, 0, 2), 0, "%s", attn_last_error());
    r->hidden = malloc(sizeof(float) * (size_t)(B * N * c->d_model));
}

static void folded_hidden(folded_run *r, const int32_t *tok)
{
    nn_batch b = {.B = r->B, .tokens = tok};
    cr_assert_eq(nn_folded_hidden(&r->m, &b, r->hidden), 0, "%s", attn_last_error());
}

static void folded_close(folded_run *r)
{
    nn_model_free(&r->m);
    free(r->hidden);
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

Test(folded, segment_by_segment_streaming_equals_the_batch_driver)
{
    enum { B = 2, N = 11, SEG = 3, C = 16 };
    nn_model_cfg c = folded_cfg(SEG, 4, "flash");
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, 11, 8);
    folded_run r;
    folded_open(&r, &c, B, N);
    folded_hidden(&r, t.tok);
    nn_fold_state st = {.rows = calloc(nn_folded_state_floats(&r.m, B) + 1, sizeof(float))};
    int32_t seg[B * SEG];
    float h[B * SEG * C];
    double err = 0;
    for (int64_t s0 = 0; s0 < N; s0 += SEG) {
        int64_t len = N - s0 < SEG ? N - s0 : SEG;
        for (int64_t b = 0; b < B; b++)
            memcpy(seg + b * len, t.tok + b * N + s0, sizeof(int32_t) * (size_t)len);
        cr_assert_eq(nn_folded_step(&r.m, seg, len, &st, h), 0, "%s", attn_last_error());
        for (int64_t b = 0; b < B; b++)
            err = fmax(err, max_diff(h + b * len * C, r.hidden + (b * N + s0) * C, len * C));
    }
    cr_assert_eq(st.valid, 4, "the buffer is full after two segments of 3");
    cr_assert(err <= 1e-5, "streaming vs batch driver: max |diff| %.3g", err);
    free(st.rows);
    folded_close(&r);
}

/* Hidden states of tokens a and of a with position `at` changed. */
static void perturbed(const nn_model_cfg *c, int64_t N, int64_t at, float *ha, float *hb)
{
    mc_lm_batch t;
    mc_lm_batch_make(&t, 1, N, 11, 12);
    folded_run r;
    folded_open(&r, c, 1, N);
    folded_hidden(&r, t.tok);
    memcpy(ha, r.hidden, sizeof(float) * (size_t)(N * c->d_model));
    t.tok[at] = (t.tok[at] + 5) % 11;
    folded_hidden(&r, t.tok);
    memcpy(hb, r.hidden, sizeof(float) * (size_t)(N * c->d_model));
    folded_close(&r);
}

Test(folded, no_position_sees_a_later_token)
{
    enum { N = 14, C = 16, AT = 7 };
    const char *const kernels[] = {"flash", "linear", "naive"};
    float ha[N * C], hb[N * C];
    for (int k = 0; k < 3; k++) {
        nn_model_cfg c = folded_cfg(3, 4, kernels[k]);
        perturbed(&c, N, AT, ha, hb);
        double before = max_diff(ha, hb, AT * C), after = max_diff(ha + AT * C, hb + AT * C, (N - AT) * C);
        cr_assert(before <= 1e-6, "%s: positions before %d moved by %.3g", kernels[k], AT, before);
        cr_assert(after > 1e-4, "%s: the changed token moved nothing (%.3g)", kernels[k], after);
    }
}

Test(folded, the_buffer_carries_a_token_past_the_window)
{
    enum { N = 15, C = 16, LAST = 12 }; /* positions 12..14: two windows (W = 6) after token 0 */
    float ha[N * C], hb[N * C];
    nn_model_cfg c = folded_cfg(3, 3, "flash");
    perturbed(&c, N, 0, ha, hb);
    double far = max_diff(ha + LAST * C, hb + LAST * C, (N - LAST) * C);
    cr_assert(far > 1e-4, "m = 3: token 0 does not reach positions %d.. (%.3g)", LAST, far);
    c.fold_buffer = 0;
    perturbed(&c, N, 0, ha, hb);
    far = max_diff(ha + 3 * C, hb + 3 * C, (N - 3) * C);
    cr_assert(far == 0, "m = 0: token 0 reaches a later segment (%.3g)", far);
}
