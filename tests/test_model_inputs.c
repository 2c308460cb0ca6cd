/* Models with kernels that read router logits (sse, titans' momentum gate) or
 * learned weights (gam, infini, synthesizer):
 * the attention block projects x to the logits and owns the kernel's weights
 * as parameters; both appear in the parameter table, and the block and whole
 * models match their double twins (central differences). */
#include "models/model.h"
#include "model_check.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nn_model_cfg lm_cfg(const char *kernel, const char *const *params)
{
    nn_model_cfg c = {.head = NN_HEAD_LM, .vocab = 11, .max_len = 16, .layers = 2, .d_model = 16, .heads = 2,
                      .mlp = 24, .n_kernels = 1, .loops = 1, .causal = 1};
    c.variant = NN_VARIANT_LM;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    c.pos = NN_POS_LEARNED;
    c.pool = NN_POOL_CLS;
    for (int i = 0; params[i]; i++)
        cr_assert_eq(param_bag_add(&c.kparams, params[i]), 0);
    return c;
}

/* How many parameter tensors have `part` in their name, and their total size. */
static int count_params(const nn_model_cfg *c, const char *part, size_t *floats)
{
    nn_model m;
    cr_assert_eq(nn_model_init(&m, c, 5), 0, "%s", attn_last_error());
    int k = nn_model_params(&m, NULL, 0), hits = 0;
    nn_param_info *info = malloc(sizeof *info * (size_t)k);
    nn_model_params(&m, info, k);
    *floats = 0;
    for (int i = 0; i < k; i++)
        if (strstr(info[i].name, part))
            hits++, *floats += info[i].count;
    free(info);
    nn_model_free(&m);
    return hits;
}

/* The block and a 2-layer LM with `kernel` against their double twins. */
static void check_against_double(const nn_model_cfg *c, const char *kernel, uint64_t seed, const char *what)
{
    nn_attn_cfg a = {.C = 16, .H = 2, .H_kv = 2, .kernel = attn_find_kernel(kernel), .mask = {.kind = ATTN_MASK_CAUSAL},
                     .params = c->kparams, .max_len = c->max_len};
    mc_check_block(&a, 2, 7, 2, seed, what);
    mc_lm_batch t;
    mc_lm_batch_make(&t, 3, 7, 11, 9);
    mc_gradcheck(c, &t.b, 7, 30, what);
}

Test(model_inputs, sse_router_projection_is_a_parameter_and_matches_the_double_model, .timeout = 60)
{
    static const char *const params[] = {"partitions=3", "topk=2", "chunk=4", NULL};
    nn_model_cfg c = lm_cfg("sse", params);
    size_t floats;
    /* per layer a dense x -> H_kv * P logits: weight (6, 16) and bias (6) */
    cr_assert_eq(count_params(&c, ".attn.router", &floats), 4);
    cr_assert_eq(floats, (size_t)2 * (2 * 3 * 16 + 2 * 3));
    check_against_double(&c, "sse", 2026, "lm sse P=3 k=2");
}

Test(model_inputs, gam_weights_are_block_parameters_and_match_the_double_model, .timeout = 60)
{
    static const char *const params[] = {"slots=5", "taps=3", NULL};
    nn_model_cfg c = lm_cfg("gam", params);
    size_t floats;
    /* per head: bank 5x8, taps 3x8, conv bias 8, gates 16x8 + 16 = 232; 2 heads, 2 layers */
    cr_assert_eq(count_params(&c, ".attn.kernel_w", &floats), 2);
    cr_assert_eq(floats, (size_t)2 * 2 * (5 * 8 + 3 * 8 + 8 + 16 * 8 + 16), "%zu", floats);
    check_against_double(&c, "gam", 2027, "lm gam slots=5");
}

Test(model_inputs, infini_betas_are_block_parameters_and_match_the_double_model, .timeout = 60)
{
    static const char *const params[] = {"L=3", NULL};
    nn_model_cfg c = lm_cfg("infini", params);
    size_t floats;
    /* one beta per head: 2 heads, 2 layers */
    cr_assert_eq(count_params(&c, ".attn.kernel_w", &floats), 2);
    cr_assert_eq(floats, (size_t)2 * 2, "%zu", floats);
    check_against_double(&c, "infini", 2028, "lm infini L=3");
}

/* Titans reads three per-token gates: step (beta), forgetting (gate) and the
 * momentum logit (router, one column per kv-head). */
Test(model_inputs, titans_gate_projections_are_parameters_and_match_the_double_model, .timeout = 60)
{
    static const char *const params[] = {"chunk=3", NULL};
    nn_model_cfg c = lm_cfg("titans", params);
    size_t floats;
    /* per layer a dense x -> H_kv momentum logits: weight (2, 16) and bias (2) */
    cr_assert_eq(count_params(&c, ".attn.router", &floats), 4);
    cr_assert_eq(floats, (size_t)2 * (2 * 16 + 2));
    check_against_double(&c, "titans", 2029, "lm titans chunk=3");
}

/* ATLAS reads four per-token gates: step (beta), retention (gate) and two
 * router logits per kv-head (momentum, window weight). */
Test(model_inputs, atlas_gate_projections_are_parameters_and_match_the_double_model, .timeout = 60)
{
    static const char *const params[] = {"chunk=3", "window=2", NULL};
    nn_model_cfg c = lm_cfg("atlas", params);
    size_t floats;
    /* per layer a dense x -> 2 H_kv logits: weight (4, 16) and bias (4) */
    cr_assert_eq(count_params(&c, ".attn.router", &floats), 4);
    cr_assert_eq(floats, (size_t)2 * (4 * 16 + 4));
    check_against_double(&c, "atlas", 2030, "lm atlas chunk=3 window=2");
}

Test(model_inputs, synthesizer_logits_are_block_parameters_sized_at_max_len_and_match_the_double_model, .timeout = 60)
{
    /* the weights serve the model's max_len = 16; the checks run at N = 7, the top-left block */
    static const char *const random[] = {"mode=random", "dot=1", NULL}, *const dense[] = {"mode=dense", "dot=0", NULL};
    nn_model_cfg c = lm_cfg("synthesizer", random);
    size_t floats;
    cr_assert_eq(count_params(&c, ".attn.kernel_w", &floats), 2);
    cr_assert_eq(floats, (size_t)2 * 2 * 16 * 16, "%zu", floats); /* R [16 x 16] per head and layer */
    check_against_double(&c, "synthesizer", 2028, "lm synthesizer random+dot");
    c = lm_cfg("synthesizer", dense);
    cr_assert_eq(count_params(&c, ".attn.kernel_w", &floats), 2);
    cr_assert_eq(floats, (size_t)2 * 2 * (8 * 8 + 8 + 16 * 9), "%zu", floats); /* W1, b1, W2 [16 x 8], b2 */
    check_against_double(&c, "synthesizer", 2029, "lm synthesizer dense");
}
