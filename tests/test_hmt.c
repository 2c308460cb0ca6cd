/* The hmt model (models/hmt.c): its truncated gradients (unroll 1: memories
 * held constant; unroll 2: also through the newest memory into the segment
 * that wrote it) against central differences of the double recurrence's
 * same truncated objective, the limit
 * where it is a known model (no memories, no sensory tokens: the lm under a
 * document mask over the segments), causality (also inside the tokens a
 * summary reads), and what reaches how far: sensory tokens one segment,
 * memories further. */
#include "model_check.h"
#include "models/model_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nn_model_cfg hmt_cfg(int64_t L, int64_t j, int64_t k, int64_t Nm, const char *kernel)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_HMT, c.head = NN_HEAD_LM, c.causal = 1;
    c.vocab = 11, c.max_len = 64, c.layers = 2, c.d_model = 16, c.heads = 2, c.mlp = 24;
    c.hmt_segment = L, c.hmt_summary = j, c.hmt_sensory = k, c.hmt_memories = Nm;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    return c;
}

static void gradcheck(nn_model_cfg c, int64_t B, int64_t N, const char *what)
{
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, c.vocab, 9);
    mc_gradcheck(&c, &t.b, N, 40, what);
}

Test(hmt, truncated_gradients_match_the_double_recurrence, .timeout = 240)
{
    nn_model_cfg c = hmt_cfg(3, 2, 1, 2, "flash");
    gradcheck(c, 2, 13, "L 3 j 2 k 1 N_m 2, unroll 2: FIFO full, last segment partial");
    c.hmt_unroll = 1;
    gradcheck(c, 2, 13, "the same, unroll 1");
    c = hmt_cfg(3, 0, 3, 3, "naive");
    c.pos = NN_POS_ROPE, c.mlp = 0, c.gating = NN_GATING_GTRXL;
    gradcheck(c, 2, 12, "j 0 (the paper's layout), k = L, naive, rope, no MLP, gtrxl");
    c = hmt_cfg(4, 4, 2, 4, "linear");
    c.pos = NN_POS_SINUSOID;
    gradcheck(c, 2, 16, "j = L, linear, sinusoid");
    c = hmt_cfg(2, 1, 0, 1, "flash");
    gradcheck(c, 3, 9, "N_m 1 (one memory: the recall is a copy), k 0");
}

/* The recall's maps get gradients in the checks above only if the recall
 * reads two or more memories and they are not all alike: make sure the
 * gradient there is not zero, so the checks compare something. */
Test(hmt, the_recall_maps_receive_gradient)
{
    nn_model_cfg c = hmt_cfg(3, 2, 1, 2, "flash");
    mc_lm_batch t;
    mc_lm_batch_make(&t, 2, 13, c.vocab, 9);
    nn_model m;
    double loss;
    int64_t correct, scored;
    cr_assert_eq(nn_model_init(&m, &c, 5), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, 2, 13, 0, 2), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_forward(&m, &t.b, 1, 0, &loss, &correct, &scored, NULL), 0, "%s", attn_last_error());
    memset(m.grads, 0, sizeof(float) * m.n_params);
    cr_assert_eq(nn_model_backward(&m, &t.b, 0, 1.0f), 0, "%s", attn_last_error());
    double gq = 0, gk = 0, gp = 0;
    for (int64_t i = 0; i < 16 * 16; i++)
        gq = fmax(gq, fabs(m.hmt_q.dw[i])), gk = fmax(gk, fabs(m.hmt_k.dw[i]));
    for (int64_t i = 0; i < 16; i++)
        gp = fmax(gp, fabs(m.hmt_dprompt[i]));
    cr_assert(gq > 1e-7 && gk > 1e-7 && gp > 1e-7, "max |grad|: Wq %.3g, Wk %.3g, prompt %.3g", gq, gk, gp);
    nn_model_free(&m);
}

Test(hmt, without_memories_or_sensory_tokens_it_is_the_lm_under_a_document_mask)
{
    enum { B = 2, S = 4, SEG = 3, N = S * SEG - 1 }; /* the last segment is partial */
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, 11, 4);
    const char *const kernels[] = {"flash", "naive"};
    for (int k = 0; k < 2; k++) {
        nn_model_cfg h = hmt_cfg(SEG, 2, 0, 0, kernels[k]), lm = h;
        h.pos = lm.pos = NN_POS_NONE; /* positions restart per segment; without them the two read alike */
        lm.variant = NN_VARIANT_LM;
        snprintf(lm.mask, sizeof lm.mask, "document:lens=3+3+3+2,causal=1");
        double lh, ll;
        int32_t ph[B * N], pl[B * N];
        mc_run(&h, &t.b, N, &lh, ph);
        mc_run(&lm, &t.b, N, &ll, pl);
        mc_expect_same(lh, ph, ll, pl, B * N, kernels[k]);
    }
}

Test(hmt, without_memories_or_sensory_tokens_learned_positions_restart_per_segment)
{
    enum { B = 2, S = 4, SEG = 3, N = S * SEG };
    mc_lm_batch t;
    mc_lm_batch_make(&t, B, N, 11, 4);
    nn_model_cfg h = hmt_cfg(SEG, 1, 0, 0, "flash"), lm = h;
    lm.variant = NN_VARIANT_LM, lm.max_len = SEG; /* the same parameter layout: positions of one segment */
    double lh, ll;
    int32_t ph[B * N], pl[B * N];
    mc_run(&h, &t.b, N, &lh, ph);
    nn_batch segs = t.b; /* sequence b's segment s is row b*S + s of a (B*S, SEG) batch */
    segs.B = B * S;
    mc_run(&lm, &segs, SEG, &ll, pl);
    mc_expect_same(lh, ph, ll, pl, B * N, "N_m = k = 0 vs the lm on segments");
}

/* Final hidden states of the hmt model on tokens a and on a with position
 * `at` changed. */
static void perturbed(const nn_model_cfg *c, int64_t N, int64_t at, float *ha, float *hb)
{
    mc_lm_batch t;
    mc_lm_batch_make(&t, 1, N, 11, 12);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, c, 5), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, 1, N, 0, 2), 0, "%s", attn_last_error());
    nn_batch b = {.B = 1, .tokens = t.tok};
    cr_assert_eq(nn_hmt_hidden(&m, &b, ha), 0, "%s", attn_last_error());
    t.tok[at] = (t.tok[at] + 5) % 11;
    cr_assert_eq(nn_hmt_hidden(&m, &b, hb), 0, "%s", attn_last_error());
    nn_model_free(&m);
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* Token 9 is the second of segment 2 (L 4), inside the j = 2 tokens its
 * summary reads: in the paper's layout the recalled row, computed from
 * them, stands before the whole segment and would carry token 9 to
 * position 8. */
Test(hmt, no_position_sees_a_later_token)
{
    enum { N = 16, C = 16, AT = 9 };
    const char *const kernels[] = {"flash", "linear", "naive"};
    float ha[N * C], hb[N * C];
    for (int k = 0; k < 3; k++) {
        nn_model_cfg c = hmt_cfg(4, 2, 2, 3, kernels[k]);
        perturbed(&c, N, AT, ha, hb);
        double before = max_diff(ha, hb, AT * C), after = max_diff(ha + AT * C, hb + AT * C, (N - AT) * C);
        cr_assert(before == 0, "%s: positions before %d moved by %.3g", kernels[k], AT, before);
        cr_assert(after > 1e-4, "%s: the changed token moved nothing (%.3g)", kernels[k], after);
    }
}

Test(hmt, memories_carry_a_token_past_the_sensory_reach)
{
    enum { N = 15, C = 16, SEG = 3 };
    float ha[N * C], hb[N * C];
    nn_model_cfg c = hmt_cfg(SEG, 1, SEG, 0, "flash"); /* sensory only: one segment deep */
    perturbed(&c, N, 0, ha, hb);
    double near = max_diff(ha + SEG * C, hb + SEG * C, SEG * C);
    double far = max_diff(ha + 2 * SEG * C, hb + 2 * SEG * C, (N - 2 * SEG) * C);
    cr_assert(near > 1e-4, "k = L: token 0 does not reach segment 1 (%.3g)", near);
    cr_assert(far == 0, "k = L, N_m = 0: token 0 reaches segment 2 (%.3g)", far);
    c = hmt_cfg(SEG, 1, 0, 2, "flash"); /* memories only */
    perturbed(&c, N, 0, ha, hb);
    far = max_diff(ha + 3 * SEG * C, hb + 3 * SEG * C, (N - 3 * SEG) * C);
    cr_assert(far > 1e-4, "N_m = 2: token 0 does not reach segments 3.. (%.3g)", far);
}
