/* Adaptive computation time of the looped model (--halting act): gradients
 * against the double model away from the halting threshold, the two limits
 * of the halting bias (never halting early is the plain looped model,
 * halting at once is one loop), causality of an LM, and the option's checks
 * and JSON keys. */
#include "model_check.h"
#include "models/model_json.h"
#include "models/model_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nn_model_cfg act_cfg(nn_head_kind head, int loops, float tau)
{
    nn_model_cfg c;
    memset(&c, 0, sizeof c);
    c.variant = NN_VARIANT_LOOPED, c.head = head, c.vocab = 11, c.n_classes = 3, c.max_len = 16;
    c.layers = 1, c.d_model = 16, c.heads = 2, c.mlp = 24, c.n_kernels = 1, c.loops = loops, c.tower_mlp = 8;
    c.causal = head == NN_HEAD_LM, c.pos = NN_POS_LEARNED, c.pool = NN_POOL_MEAN;
    c.halting = NN_HALTING_ACT, c.ponder_cost = tau;
    snprintf(c.kernels[0], sizeof c.kernels[0], "flash");
    return c;
}

static float *halt_bias(nn_model *m)
{
    nn_param_info info[64];
    int k = nn_model_params(m, info, 64);
    for (int i = 0; i < k; i++)
        if (!strcmp(info[i].name, "halt.b"))
            return m->params + info[i].offset;
    cr_assert_fail("no halt.b among %d parameter tensors", k);
    return NULL;
}

/* A batch of 3 sequences of 7 tokens, lengths 7, 6, 5, with labels and
 * (half of the positions) LM targets. */
typedef struct {
    mc_lm_batch lm;
    int32_t lab[3], len[3];
} act_batch;

static void act_batch_make(act_batch *t, uint64_t seed)
{
    mc_lm_batch_make(&t->lm, 3, 7, 11, seed);
    for (int i = 0; i < 3; i++)
        t->lab[i] = (int32_t)((seed + (uint64_t)i) % 3), t->len[i] = 7 - i;
    t->lm.b.labels = t->lab, t->lm.b.lengths = t->len;
}

static double forward(nn_model *m, const nn_batch *b, int training)
{
    double loss;
    int64_t correct, scored;
    cr_assert_eq(nn_model_forward(m, b, training, 0, &loss, &correct, &scored, NULL), 0, "%s", attn_last_error());
    return loss;
}

/* The halting unit's weights times 16 (probabilities that differ between
 * positions), then the first halting bias of -2, -1.9, ..., 2 whose forward
 * halts positions at steps at least 2 apart (a halted position then serves
 * as key and value to a later step, which the backward must carry back to
 * its state) with every halting decision at least 1e-3 from the threshold:
 * central differences of step 1e-6 then never flip a step. */
static void pick_mixed_halting(nn_model *m, const nn_batch *b, const char *what)
{
    cr_assert_eq(nn_model_plan(m, b->B, 7, 0, 2), 0, "%s", attn_last_error());
    float *bias = halt_bias(m), *w = bias - m->cfg.d_model; /* halt.w (1, C) precedes halt.b */
    for (int64_t c = 0; c < m->cfg.d_model; c++)
        w[c] *= 16;
    for (int i = 0; i <= 40; i++) {
        *bias = -2.0f + 0.1f * (float)i;
        forward(m, b, 0);
        nn_halting_stats h = nn_model_halting_stats(m);
        if (h.max_steps - h.min_steps >= 2 && h.margin > 1e-3) {
            cr_log_info("%s: halting bias %g, steps %d..%d (mean %.3f), margin %.3g", what, *bias, h.min_steps,
                        h.max_steps, h.mean_steps, h.margin);
            return;
        }
    }
    cr_assert_fail("%s: no bias of the list halts at steps 2 apart away from the threshold", what);
}

static void act_gradcheck(nn_model_cfg c, const char *what)
{
    act_batch t;
    act_batch_make(&t, 9);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 5), 0, "%s: %s", what, attn_last_error());
    pick_mixed_halting(&m, &t.lm.b, what);
    mc_gradcheck_model(&m, &t.lm.b, 7, 40, what);
    cr_assert_gt(nn_model_halting_stats(&m).margin, 1e-3, "%s: the checked forward is near the threshold", what);
    nn_model_free(&m);
}

Test(act, gradients_match_the_double_model_away_from_the_halting_threshold, .timeout = 120)
{
    act_gradcheck(act_cfg(NN_HEAD_LM, 3, 0.05f), "lm act x3");
    act_gradcheck(act_cfg(NN_HEAD_CLASSIFY, 4, 0.1f), "padded encoder act x4");
    nn_model_cfg c = act_cfg(NN_HEAD_LM, 4, 0.05f);
    c.layers = 2, c.mlp = 0, c.gating = NN_GATING_GTRXL;
    snprintf(c.kernels[0], sizeof c.kernels[0], "naive");
    act_gradcheck(c, "lm act x4, 2 layers without MLP, gtrxl, naive");
}

/* Loss and gradients of a training step of cfg (seed 5) with the halting
 * bias at `bias` when the model halts; grads (n floats) may be NULL. */
static double train_step(nn_model_cfg c, const act_batch *t, float bias, float *grads, size_t n, double *steps)
{
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 5), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, 3, 7, 0, 2), 0, "%s", attn_last_error());
    if (c.halting)
        *halt_bias(&m) = bias;
    memset(m.grads, 0, sizeof(float) * m.n_params);
    double loss = forward(&m, &t->lm.b, 1);
    cr_assert_eq(nn_model_backward(&m, &t->lm.b, 0, 1.0f), 0, "%s", attn_last_error());
    cr_assert_geq(m.n_params, n);
    if (grads)
        memcpy(grads, m.grads, sizeof(float) * n);
    if (steps)
        *steps = nn_model_halting_stats(&m).mean_steps;
    nn_model_free(&m);
    return loss;
}

static size_t plain_params(nn_model_cfg c)
{
    c.halting = NN_HALTING_NONE, c.ponder_cost = 0;
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 5), 0, "%s", attn_last_error());
    size_t n = m.n_params;
    nn_model_free(&m);
    return n;
}

/* Halting bias -30: p^n = sigmoid(-30 + w.s) ~ 1e-13, no position halts
 * before the last step S, R = 1 - sum p ~ 1, and y = s^S + sum_{n<S} p^n
 * (s^n - s^S) is the plain looped model's output to within fp32 rounding.
 * Loss = plain loss + tau (S + R) = plain + tau (S + 1); the gradients of the
 * shared weights are the plain model's. */
Test(act, never_halting_early_is_the_plain_looped_model_plus_tau_times_s_plus_1, .timeout = 60)
{
    for (int head = 0; head < 2; head++) {
        nn_model_cfg c = act_cfg(head ? NN_HEAD_LM : NN_HEAD_CLASSIFY, 3, 0.1f), plain = c;
        plain.halting = NN_HALTING_NONE, plain.ponder_cost = 0;
        act_batch t;
        act_batch_make(&t, 4);
        size_t n = plain_params(c);
        float *g = malloc(sizeof *g * n), *gp = malloc(sizeof *gp * n);
        double steps, loss = train_step(c, &t, -30.0f, g, n, &steps);
        double ref = train_step(plain, &t, 0, gp, n, NULL);
        cr_assert_eq(steps, 3.0, "every position takes the 3 steps, found a mean of %g", steps);
        cr_assert(fabs(loss - (ref + 0.1 * 4)) < 1e-5, "head %d: act loss %.9g vs plain %.9g + 0.1 * (3 + 1)", head, loss,
                  ref);
        double err = 0, gmax = 0;
        for (size_t i = 0; i < n; i++)
            err = fmax(err, fabs(g[i] - gp[i])), gmax = fmax(gmax, fabs(gp[i]));
        cr_assert(gmax > 0 && err <= 1e-5 * gmax, "head %d: gradients differ by %.3g (largest %.3g)", head, err, gmax);
        free(g), free(gp);
    }
}

/* Halting bias +30: p^1 = 1 >= 1 - eps, every position halts after step 1
 * with R = 1 and y = s^1 exactly: the model is one loop of the stack, its
 * loss plus tau (1 + 1), and the forward stops after the first step. */
Test(act, halting_at_once_is_one_loop, .timeout = 60)
{
    for (int head = 0; head < 2; head++) {
        nn_model_cfg c = act_cfg(head ? NN_HEAD_LM : NN_HEAD_CLASSIFY, 4, 0.25f), one = c;
        one.halting = NN_HALTING_NONE, one.ponder_cost = 0, one.loops = 1;
        act_batch t;
        act_batch_make(&t, 6);
        size_t n = plain_params(c);
        float *g = malloc(sizeof *g * n), *g1 = malloc(sizeof *g1 * n);
        double steps, loss = train_step(c, &t, 30.0f, g, n, &steps);
        double ref = train_step(one, &t, 0, g1, n, NULL);
        cr_assert_eq(steps, 1.0, "every position halts after step 1, found a mean of %g steps", steps);
        cr_assert(fabs(loss - (ref + 0.25 * 2)) < 1e-6, "head %d: act loss %.9g vs one loop %.9g + 0.25 * 2", head,
                  loss, ref);
        cr_assert_eq(memcmp(g, g1, sizeof *g * n), 0, "head %d: the gradients are one loop's", head);
        free(g), free(g1);
    }
}

/* An LM's prediction at position t depends on tokens 0..t only: halting is
 * per position, from its own state; every later token is redrawn (which
 * also changes when the forward may stop early). tau = 0: the ponder cost
 * of the later positions is a training term, not a prediction. */
Test(act, an_act_lm_does_not_see_later_tokens, .timeout = 60)
{
    nn_model_cfg c = act_cfg(NN_HEAD_LM, 4, 0.0f);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 3), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, 1, 12, 0, 1), 0, "%s", attn_last_error());
    *halt_bias(&m) = 0.0f; /* halting at steps 2..4 */
    mc_lm_batch t;
    for (int at = 0; at < 12; at++) {
        mc_lm_batch_make(&t, 1, 12, 11, 20);
        for (int i = 0; i < 12; i++)
            t.tgt[i] = i == at ? 3 : NN_IGNORE_INDEX;
        double before = forward(&m, &t.b, 0);
        for (int i = at + 1; i < 12; i++)
            t.tok[i] = (t.tok[i] + 1 + i) % 11;
        double after = forward(&m, &t.b, 0);
        cr_assert_eq(before, after, "position %d: loss %.9g, %.9g after the later tokens changed", at, before, after);
    }
    nn_model_free(&m);
}

Test(act, halting_needs_the_looped_model_and_the_ponder_cost_needs_act)
{
    nn_model_cfg c = act_cfg(NN_HEAD_LM, 3, 0.01f);
    c.variant = NN_VARIANT_LM;
    nn_model m;
    cr_assert_lt(nn_model_init(&m, &c, 1), 0);
    cr_assert(strstr(attn_last_error(), "--halting act: expected --model looped"), "%s", attn_last_error());
    c = act_cfg(NN_HEAD_LM, 3, 0.5f);
    c.halting = NN_HALTING_NONE;
    cr_assert_lt(nn_model_init(&m, &c, 1), 0);
    cr_assert(strstr(attn_last_error(), "--ponder-cost 0.5: expected --halting act"), "%s", attn_last_error());
    cr_assert_lt(opt_set_text(opt_find(nn_model_opts, "halting"), &c, "pondernet", "--halting"), 0);
    cr_assert(strstr(attn_last_error(), "--halting: expected one of none, act, found 'pondernet'"), "%s", attn_last_error());
    cr_assert_lt(opt_set_text(opt_find(nn_model_opts, "ponder_cost"), &c, "-1", "--ponder-cost"), 0);
}

Test(act, the_model_json_names_halting_and_its_cost_only_with_act)
{
    nn_model_cfg c, back;
    nn_model_cfg_defaults(&c);
    cJSON *o = nn_model_cfg_to_json(&c);
    cr_assert_null(cJSON_GetObjectItem(o, "halting"), "models without act write no key (job_ids unchanged)");
    cr_assert_null(cJSON_GetObjectItem(o, "ponder_cost"));
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.halting, NN_HALTING_NONE);
    cJSON_Delete(o);
    c.variant = NN_VARIANT_LOOPED, c.halting = NN_HALTING_ACT, c.ponder_cost = 0.03f;
    o = nn_model_cfg_to_json(&c);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "halting")), "act");
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.halting, NN_HALTING_ACT);
    cr_assert_eq(back.ponder_cost, 0.03f);
    cJSON_Delete(o);
}
