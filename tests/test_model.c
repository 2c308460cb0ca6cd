/* The model variants and the training loop: whole-model gradients against
 * central differences of the double-precision model, an overfit run, thread
 * independence of the loss curve, and the LM head's ignore index. */
#include "model_check.h"
#include "models/model_ref.h"
#include "common/rng.h"
#include "models/train.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nn_model_cfg tiny_cfg(const char *variant, nn_head_kind head, const char *kernel)
{
    nn_model_cfg c;
    memset(&c, 0, sizeof c);
    for (int i = 0; nn_variant_names[i]; i++)
        if (!strcmp(nn_variant_names[i], variant))
            c.variant = (nn_variant)i;
    c.head = head, c.vocab = 11, c.n_classes = 3, c.max_len = 16, c.layers = 2, c.d_model = 16, c.heads = 2;
    c.mlp = 24, c.n_kernels = 1, c.loops = 1, c.tower_mlp = 8, c.causal = head == NN_HEAD_LM;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    c.pos = NN_POS_LEARNED, c.pool = NN_POOL_CLS;
    return c;
}

typedef struct {
    int32_t tok[64], tok2[64], tgt[64], lab[8], len[8], len2[8];
    nn_batch b;
} tiny_batch;

static void tiny_data(tiny_batch *t, int64_t B, int64_t N, uint64_t seed)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t i = 0; i < B * N; i++) {
        t->tok[i] = (int32_t)attn_rng_uint_below(&r, 11);
        t->tok2[i] = (int32_t)attn_rng_uint_below(&r, 11);
        t->tgt[i] = attn_rng_uniform(&r) < 0.5 ? NN_IGNORE_INDEX : (int32_t)attn_rng_uint_below(&r, 11);
    }
    for (int64_t i = 0; i < B; i++)
        t->lab[i] = (int32_t)attn_rng_uint_below(&r, 2), t->len[i] = (int32_t)(N - i), t->len2[i] = (int32_t)N;
    t->b = (nn_batch){.B = B, .tokens = t->tok, .tokens2 = t->tok2, .labels = t->lab, .targets = t->tgt,
                      .lengths = t->len, .lengths2 = t->len2};
}

/* fp32 backward vs central differences of the double model (model_check.h). */
static void gradcheck(nn_model_cfg c, const char *what)
{
    tiny_batch t;
    tiny_data(&t, 3, 7, 9);
    mc_gradcheck(&c, &t.b, 7, 30, what);
}

Test(model, encoder_gradients_match_the_double_model, .timeout = 60)
{
    gradcheck(tiny_cfg("encoder", NN_HEAD_CLASSIFY, "flash"), "encoder cls learned flash");
    nn_model_cfg c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, "naive");
    c.pool = NN_POOL_MEAN, c.pos = NN_POS_SINUSOID, c.rms = 1;
    gradcheck(c, "encoder mean sinusoid rmsnorm naive");
    c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, "flash");
    c.mlp = 0, c.heads_kv = 1;
    gradcheck(c, "encoder without MLP, GQA");
}

Test(model, lm_twotower_hybrid_and_looped_gradients_match_the_double_model, .timeout = 60)
{
    nn_model_cfg c = tiny_cfg("lm", NN_HEAD_LM, "flash");
    c.pos = NN_POS_ROPE;
    gradcheck(c, "lm rope flash");
    c = tiny_cfg("twotower", NN_HEAD_TWOTOWER, "flash");
    c.n_classes = 2;
    gradcheck(c, "twotower");
    c = tiny_cfg("hybrid", NN_HEAD_LM, "flash");
    c.n_kernels = 2;
    snprintf(c.kernels[1], sizeof c.kernels[1], "naive");
    gradcheck(c, "hybrid flash + naive");
    c = tiny_cfg("looped", NN_HEAD_CLASSIFY, "flash");
    c.layers = 1, c.loops = 3;
    gradcheck(c, "looped x3");
}

Test(model, gtrxl_gated_lm_and_encoder_gradients_match_the_double_model, .timeout = 60)
{
    nn_model_cfg c = tiny_cfg("lm", NN_HEAD_LM, "flash");
    c.gating = NN_GATING_GTRXL;
    gradcheck(c, "lm gtrxl");
    c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, "flash");
    c.gating = NN_GATING_GTRXL, c.pool = NN_POOL_MEAN;
    gradcheck(c, "encoder gtrxl");
    c.mlp = 0;
    gradcheck(c, "encoder gtrxl without MLP");
    c = tiny_cfg("looped", NN_HEAD_LM, "naive");
    c.gating = NN_GATING_GTRXL, c.layers = 1, c.loops = 2;
    gradcheck(c, "looped lm gtrxl x2");
}

Test(model, models_with_linear_deltanet_and_gla_kernels_match_the_double_model, .timeout = 60)
{
    /* kernels with their own double reference: the double model runs it, with
     * the beta / gate projections the attention block adds for them */
    static const char *const kernels[] = {"linear", "deltanet", "gated_deltanet", "gla"};
    for (int i = 0; i < 4; i++) {
        nn_model_cfg c = tiny_cfg("lm", NN_HEAD_LM, kernels[i]);
        char what[64];
        snprintf(what, sizeof what, "lm with %s", kernels[i]);
        gradcheck(c, what);
    }
    nn_model_cfg c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, "linear"); /* non-causal linear attention */
    gradcheck(c, "encoder with linear (full mask)");
}

Test(model, lm_scores_only_positions_with_targets)
{
    nn_model_cfg c = tiny_cfg("lm", NN_HEAD_LM, "flash");
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 1), 0);
    cr_assert_eq(nn_model_plan(&m, 3, 7, 0, 1), 0);
    tiny_batch t;
    tiny_data(&t, 3, 7, 2);
    int64_t want = 0;
    for (int i = 0; i < 21; i++)
        want += t.tgt[i] != NN_IGNORE_INDEX;
    double loss;
    int64_t correct, scored;
    int32_t pred[21];
    cr_assert_eq(nn_model_forward(&m, &t.b, 0, 0, &loss, &correct, &scored, pred), 0);
    cr_assert_eq(scored, want);
    for (int i = 0; i < 21; i++)
        cr_assert_eq(pred[i] < 0, t.tgt[i] == NN_IGNORE_INDEX, "position %d", i);
    /* ignoring one more position removes exactly that position from the mean */
    double again, ref_all, ref_less;
    double *P = malloc(sizeof *P * m.n_params);
    for (size_t i = 0; i < m.n_params; i++)
        P[i] = m.params[i];
    cr_assert_eq(nn_model_loss_ref(&m, P, &t.b, 7, &ref_all), 0);
    int last = 20;
    while (t.tgt[last] == NN_IGNORE_INDEX)
        last--;
    t.tgt[last] = NN_IGNORE_INDEX;
    cr_assert_eq(nn_model_forward(&m, &t.b, 0, 0, &again, &correct, &scored, NULL), 0);
    cr_assert_eq(nn_model_loss_ref(&m, P, &t.b, 7, &ref_less), 0);
    cr_assert_eq(scored, want - 1);
    cr_assert(fabs(loss - ref_all) < 1e-5 && fabs(again - ref_less) < 1e-5 && fabs(again - loss) > 1e-6,
              "loss %.7g/%.7g vs reference %.7g/%.7g", loss, again, ref_all, ref_less);
    free(P);
    nn_model_free(&m);
}

/* 32 random sequences with random labels: only memorisation gets them right. */
static void random_task(task_data *d, int64_t n, int64_t N, uint64_t seed)
{
    cr_assert_eq(task_data_alloc(d, "memo", TASK_CLASSIFY, n, N), 0);
    d->vocab = 11, d->n_classes = 3;
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t i = 0; i < n * N; i++)
        d->tokens[i] = (int32_t)attn_rng_uint_below(&r, 11);
    for (int64_t i = 0; i < n; i++)
        d->labels[i] = (int32_t)attn_rng_uint_below(&r, 3);
}

static nn_train_cfg quick_train(int threads)
{
    nn_train_cfg t = {.steps = 150, .batch = 8, .accum = 1, .eval_every = 150, .warmup = 10, .lr = 3e-3,
                      .min_lr_ratio = 0.1, .weight_decay = 0.0, .clip = 1.0, .sched = OPTIM_SCHED_COSINE,
                      .seed = 11, .threads = threads};
    return t;
}

Test(model, a_tiny_encoder_memorises_32_examples, .timeout = 120)
{
    task_data d;
    random_task(&d, 32, 12, 4);
    nn_model_cfg c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, "flash");
    c.d_model = 32, c.mlp = 64;
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 1), 0, "%s", attn_last_error());
    nn_train_cfg t = quick_train(2);
    int64_t best;
    cr_assert_eq(nn_train(&m, &d, &d, &t, NULL, NULL, &best), 0, "%s", attn_last_error());
    nn_eval_result r;
    cr_assert_eq(nn_evaluate(&m, &d, 0, 8, 2, &r), 0);
    cr_assert_eq(r.examples, 32);
    cr_assert(r.accuracy == 1.0, "train accuracy %.3f after 150 steps", r.accuracy);
    nn_model_free(&m);
    task_data_free(&d);
}

static int record_loss(const nn_eval_point *pt, void *ud)
{
    double *out = ud;
    out[pt->step / 10 - 1] = pt->train_loss;
    return 0;
}

Test(model, same_seed_gives_the_same_loss_curve_on_1_and_2_threads, .timeout = 60)
{
    task_data d;
    random_task(&d, 32, 12, 5);
    double curve[2][3];
    for (int th = 1; th <= 2; th++) {
        nn_model_cfg c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, "flash");
        c.dropout = 0.1f;
        nn_model m;
        cr_assert_eq(nn_model_init(&m, &c, 7), 0);
        nn_train_cfg t = quick_train(th);
        t.steps = 30, t.eval_every = 10;
        int64_t best;
        cr_assert_eq(nn_train(&m, &d, &d, &t, record_loss, curve[th - 1], &best), 0, "%s", attn_last_error());
        nn_model_free(&m);
    }
    cr_assert_eq(memcmp(curve[0], curve[1], sizeof curve[0]), 0, "losses %.9g %.9g %.9g vs %.9g %.9g %.9g",
                 curve[0][0], curve[0][1], curve[0][2], curve[1][0], curve[1][1], curve[1][2]);
    task_data_free(&d);
}

Test(model, a_kernel_without_backward_cannot_be_trained)
{
    nn_model_cfg c = tiny_cfg("lm", NN_HEAD_LM, "decode");
    nn_model m;
    cr_assert_lt(nn_model_init(&m, &c, 1), 0);
    cr_assert(strstr(attn_last_error(), "kernel 'decode' has no backward: it can be evaluated but not trained"), "%s",
              attn_last_error());
}

/* Loss of the encoder on batch t after replacing every padding token by `pad`. */
static double loss_with_padding(nn_model *m, tiny_batch *t, int32_t pad)
{
    for (int64_t i = 0; i < t->b.B; i++)
        for (int64_t n = t->len[i]; n < 7; n++)
            t->tok[i * 7 + n] = pad;
    double loss;
    int64_t correct, scored;
    cr_assert_eq(nn_model_forward(m, &t->b, 0, 0, &loss, &correct, &scored, NULL), 0, "%s", attn_last_error());
    return loss;
}

Test(model, encoders_with_padded_kernels_do_not_see_the_padding_tokens)
{
    static const char *const kernels[] = {"flash", "linear", "naive"};
    for (int i = 0; i < 3; i++) {
        nn_model_cfg c = tiny_cfg("encoder", NN_HEAD_CLASSIFY, kernels[i]);
        c.pool = NN_POOL_MEAN;
        nn_model m;
        cr_assert_eq(nn_model_init(&m, &c, 4), 0, "%s", attn_last_error());
        cr_assert_eq(nn_model_plan(&m, 3, 7, 0, 2), 0, "%s", attn_last_error());
        tiny_batch t;
        tiny_data(&t, 3, 7, 6); /* lengths 7, 6, 5 */
        double a = loss_with_padding(&m, &t, 0), b = loss_with_padding(&m, &t, 10);
        int masked = i < 2; /* naive has no PADDED: its queries attend to the padding */
        cr_assert_eq(a == b, masked, "%s: loss %.9g with padding 0, %.9g with padding 10", kernels[i], a, b);
        cr_assert_str_eq(nn_model_padding(&c), masked ? "masked" : "attended");
        nn_model_free(&m);
    }
    nn_model_cfg lm = tiny_cfg("lm", NN_HEAD_LM, "naive"); /* causal: the padding follows the sequence */
    cr_assert_str_eq(nn_model_padding(&lm), "masked");
}
