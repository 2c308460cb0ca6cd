/* The regress head of the model (in-context regression, docs/icl.md): its
 * fp32 gradients against central differences of the double model on
 * generated prompts, with softmax and with a linear-time kernel, the
 * configurations it refuses, and a tiny softmax model trained on 2-d prompts
 * that predicts better than averaging from d examples on. */
#include "harness/train/icl_train.h"
#include "model_check.h"
#include "models/batch_buf.h"
#include "models/train.h"
#include "sanitize.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static task_data prompts(int64_t d, int64_t points, task_split split, int64_t n)
{
    param_bag p = {0};
    char kv[32];
    snprintf(kv, sizeof kv, "d=%lld", (long long)d), param_bag_add(&p, kv);
    snprintf(kv, sizeof kv, "points=%lld", (long long)points), param_bag_add(&p, kv);
    task_data t;
    cr_assert_eq(task_icl_linreg.make(&p, split, 4, n, NULL, &t), 0, "%s", attn_last_error());
    return t;
}

static void regress_gradcheck(const char *kernel, int64_t mlp)
{
    icl_linreg_cfg tc = {.d = 3, .points = 4};
    icl_train_opts o;
    icl_train_defaults(&o);
    snprintf(o.kernel, sizeof o.kernel, "%s", kernel);
    o.layers = 2, o.d_model = 8, o.heads = 2, o.mlp = mlp;
    nn_model_cfg c;
    icl_model_cfg(&o, &tc, &c);
    task_data t = prompts(3, 4, TASK_TEST, 2);
    nn_batch_buf bb;
    cr_assert_eq(nn_batch_buf_alloc(&bb, &t, 2), 0);
    nn_batch_buf_fill(&bb, &t, 0, 2);
    mc_gradcheck(&c, &bb.b, t.len, 40, kernel);
    nn_batch_buf_free(&bb);
    task_data_free(&t);
}

Test(icl_model, regress_head_gradients_match_the_double_model_with_softmax)
{
    regress_gradcheck("flash", 16);
}

Test(icl_model, regress_head_gradients_match_the_double_model_with_linear_attention)
{
    regress_gradcheck("linear", 0);
}

Test(icl_model, regress_head_refuses_tokens_of_a_vocabulary_and_non_causal_attention)
{
    icl_linreg_cfg tc = {.d = 3, .points = 4};
    icl_train_opts o;
    icl_train_defaults(&o);
    nn_model_cfg c;
    nn_model m;
    icl_model_cfg(&o, &tc, &c);
    c.vocab = 5;
    cr_assert_neq(nn_model_init(&m, &c, 1), 0);
    icl_model_cfg(&o, &tc, &c);
    c.causal = 0;
    cr_assert_neq(nn_model_init(&m, &c, 1), 0);
    icl_model_cfg(&o, &tc, &c);
    c.head = NN_HEAD_LM, c.vocab = 4;
    cr_assert_neq(nn_model_init(&m, &c, 1), 0, "in_dim without the regress head");
}

/* Mean over k = d .. points-1 of the curve's sq_err. */
static double mean_from(const icl_curve *c, int64_t k0, int64_t d)
{
    double s = 0;
    for (int64_t k = k0; k < c->points; k++) {
        double m, lo, hi;
        icl_curve_stat(c, k, d, &m, &lo, &hi);
        s += m;
    }
    return s / (double)(c->points - k0);
}

Test(icl_model, tiny_softmax_model_beats_averaging_from_d_examples, .timeout = SAN_TIMEOUT(300))
{
    const int64_t d = 2, points = 8;
    icl_linreg_cfg tc = {.d = d, .points = points};
    param_bag p = {0};
    param_bag_add(&p, "d=2"), param_bag_add(&p, "points=8");
    icl_train_opts o;
    icl_train_defaults(&o);
    o.d_model = 32, o.heads = 2, o.mlp = 64, o.steps = 2000, o.batch = 32;
    o.train_n = 4096, o.lr = 3e-3;
    task_data test = prompts(d, points, TASK_TEST, 512);
    icl_curve model, base[ICL_BASELINES];
    char desc[160];
    cr_assert_eq(icl_train_curve(&o, &tc, &p, 4, &test, &model, desc, sizeof desc), 0, "%s", attn_last_error());
    cr_assert_eq(icl_baseline_curves(&test, 0, base), 0, "%s", attn_last_error());
    double m = mean_from(&model, d, d), avg = mean_from(&base[ICL_AVG], d, d);
    cr_log_info("icl d=2: %s error from k=d %.4f, averaging %.4f, zero %.4f", desc, m, avg,
                mean_from(&base[ICL_ZERO], d, d));
    cr_assert(m < 0.6 * avg, "the trained model (%.4f) beats averaging (%.4f) by 40 %% from k = d", m, avg);
    icl_curve_free(&model);
    for (int b = 0; b < ICL_BASELINES; b++)
        icl_curve_free(&base[b]);
    task_data_free(&test);
}

Test(icl_model, accuracy_evaluation_refuses_a_regression_dataset)
{
    icl_linreg_cfg tc = {.d = 3, .points = 4};
    icl_train_opts o;
    icl_train_defaults(&o);
    o.d_model = 8, o.mlp = 0;
    nn_model_cfg c;
    nn_model m;
    icl_model_cfg(&o, &tc, &c);
    cr_assert_eq(nn_model_init(&m, &c, 1), 0, "%s", attn_last_error());
    task_data t = prompts(3, 4, TASK_TEST, 2);
    nn_eval_result r;
    cr_assert_neq(nn_evaluate(&m, &t, 0, 2, 1, &r), 0);
    cr_assert(strstr(attn_last_error(), "regression"), "%s", attn_last_error());
    nn_model_free(&m);
    task_data_free(&t);
}
