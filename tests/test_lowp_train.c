/* Training with 16-bit attention operands (--attn-dtype): the gradients of a
 * step stay within the operand type's rounding of the fp32 step's (and are
 * not bit-equal to them: the rounding happened), a tiny MQAR model trained
 * with bf16 operands reaches the fp32 run's accuracy interval, and the model
 * JSON names the type only when it is not fp32 (fp32 job_ids unchanged). */
#include "common/attn_error.h"
#include "common/rng.h"
#include "memory_train.h"
#include "models/model_json.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { B = 2, N = 12, VOCAB = 13 };

static nn_model_cfg lm_cfg(const char *kernel, attn_dtype t)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM, c.head = NN_HEAD_LM, c.causal = 1, c.vocab = VOCAB, c.max_len = N;
    c.d_model = 32, c.heads = 2, c.mlp = 32, c.attn_dtype = t;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    return c;
}

/* The gradient of one batch's loss, every parameter (caller frees). */
static float *step_grads(const char *kernel, attn_dtype t, size_t *n)
{
    int32_t tok[B * N], tgt[B * N], len[B];
    attn_rng r;
    attn_rng_seed(&r, 5);
    for (int i = 0; i < B * N; i++)
        tok[i] = (int32_t)attn_rng_uint_below(&r, VOCAB), tgt[i] = (int32_t)attn_rng_uint_below(&r, VOCAB);
    for (int i = 0; i < B; i++)
        len[i] = N;
    nn_batch b = {.B = B, .tokens = tok, .targets = tgt, .lengths = len};
    nn_model_cfg c = lm_cfg(kernel, t);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 3), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, B, N, B * N, 1), 0, "%s %s: %s", kernel, attn_dtype_names[t], attn_last_error());
    double loss;
    int64_t correct, scored;
    cr_assert_eq(nn_model_forward(&m, &b, 1, 0, &loss, &correct, &scored, NULL), 0, "%s", attn_last_error());
    memset(m.grads, 0, sizeof(float) * m.n_params);
    cr_assert_eq(nn_model_backward(&m, &b, 0, 1.0f), 0, "%s", attn_last_error());
    float *g = malloc(sizeof(float) * m.n_params);
    memcpy(g, m.grads, sizeof(float) * m.n_params);
    *n = m.n_params;
    nn_model_free(&m);
    return g;
}

Test(lowp_train, a_16_bit_step_has_the_fp32_gradients_to_within_the_types_rounding, .timeout = 60)
{
    static const char *const kernels[] = {"flash", "linear", "gla", "deltanet"};
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++)
        for (attn_dtype t = ATTN_DT_BF16; t <= ATTN_DT_FP16; t++) {
            size_t n, n16;
            float *g32 = step_grads(kernels[k], ATTN_DT_FP32, &n), *g16 = step_grads(kernels[k], t, &n16);
            cr_assert_eq(n, n16);
            double diff = 0, norm = 0;
            for (size_t i = 0; i < n; i++)
                diff += ((double)g16[i] - g32[i]) * ((double)g16[i] - g32[i]), norm += (double)g32[i] * g32[i];
            double rel = sqrt(diff / norm), u = attn_dtype_unit_roundoff(t);
            cr_log_info("%s %s: relative gradient difference %.3g (unit roundoff %.3g)", kernels[k],
                        attn_dtype_names[t], rel, u);
            /* a few roundings of operands and gradients, amplified mildly through the layers */
            cr_assert(rel < 30 * u, "%s %s: relative gradient difference %.3g, expected below %.3g", kernels[k],
                      attn_dtype_names[t], rel, 30 * u);
            cr_assert(rel > 0, "%s %s: gradients bit-equal to fp32: the operands were not rounded", kernels[k],
                      attn_dtype_names[t]);
            free(g32), free(g16);
        }
}

Test(lowp_train, a_kernel_without_16_bit_operands_is_refused_at_the_plan)
{
    nn_model_cfg c = lm_cfg("naive", ATTN_DT_BF16);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 3), 0, "%s", attn_last_error());
    cr_assert_lt(nn_model_plan(&m, B, N, B * N, 1), 0, "naive takes fp32 operands only");
    cr_assert(strstr(attn_last_error(), "bf16"), "the error names the type: %s", attn_last_error());
    nn_model_free(&m);
}

static train_result tiny_mqar_with(attn_dtype t, char *dir, char *csv, size_t csv_size)
{
    train_run_opts r;
    tiny_mqar_opts(&r, dir, csv, csv_size);
    r.model.attn_dtype = t;
    train_result res;
    cr_assert_eq(train_run_exec(&r, &res), 0, "%s", attn_last_error());
    return res;
}

Test(lowp_train, bf16_operands_train_mqar_to_the_fp32_runs_accuracy, .timeout = 240)
{
    char d32[] = "/tmp/attn_lowp32_XXXXXX", d16[] = "/tmp/attn_lowp16_XXXXXX", c32[64], c16[64];
    train_result f32 = tiny_mqar_with(ATTN_DT_FP32, d32, c32, sizeof c32);
    train_result b16 = tiny_mqar_with(ATTN_DT_BF16, d16, c16, sizeof c16);
    cr_log_info("tiny MQAR test accuracy: fp32 %.4f [%.4f, %.4f], bf16 operands %.4f [%.4f, %.4f]", f32.test.value,
                f32.test.ci_low, f32.test.ci_high, b16.test.value, b16.test.ci_low, b16.test.ci_high);
    tiny_mqar_expect_above_chance("flash bf16", &b16);
    cr_assert(SANITIZED || (b16.test.value >= f32.test.ci_low && b16.test.value <= f32.test.ci_high) ||
                  b16.test.value > f32.test.ci_high,
              "bf16 operands: test accuracy %.4f, below the fp32 run's 95%% interval [%.4f, %.4f]", b16.test.value,
              f32.test.ci_low, f32.test.ci_high);
    train_result_free(&f32), train_result_free(&b16);
    unlink(c32), unlink(c16), rmdir(d32), rmdir(d16);
}

Test(lowp_train, the_model_json_names_the_operand_type_only_when_it_is_not_fp32)
{
    nn_model_cfg c, back;
    nn_model_cfg_defaults(&c);
    cJSON *o = nn_model_cfg_to_json(&c);
    cr_assert_null(cJSON_GetObjectItem(o, "attn_dtype"), "fp32 models write no key (job_ids unchanged)");
    back.attn_dtype = ATTN_DT_FP16;
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.attn_dtype, ATTN_DT_FP32, "a model without the key loads as fp32");
    cJSON_Delete(o);
    c.attn_dtype = ATTN_DT_BF16;
    o = nn_model_cfg_to_json(&c);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "attn_dtype")), "bf16");
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.attn_dtype, ATTN_DT_BF16);
    cJSON_Delete(o);
}
