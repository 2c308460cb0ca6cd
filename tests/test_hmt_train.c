/* The hmt model end to end: a tiny hmt LM learns MQAR above chance through
 * the ordinary training path, its rows report (memories + sensory) x d_model
 * floats as its state and name j, k, N_m and L, its checkpoint keeps them (a
 * reload scores the same), and the model JSON names them only for the hmt
 * variant. */
#include "common/attn_error.h"
#include "memory_train.h"
#include "models/model_json.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(hmt_train, an_hmt_lm_learns_mqar_above_chance_and_reloads_hmt, .timeout = 240)
{
    char dir[] = "/tmp/attn_hmt_XXXXXX", csv[64], ckpt[64];
    train_run_opts r;
    tiny_mqar_opts(&r, dir, csv, sizeof csv);
    r.model.variant = NN_VARIANT_HMT;
    /* two segments of 16: the second segment's queries find the pairs only
     * through the sensory tokens and the recalled memory */
    r.model.hmt_segment = 16, r.model.hmt_summary = 8, r.model.hmt_sensory = 16, r.model.hmt_memories = 4;
    train_result res;
    tiny_mqar_train_and_reload("flash hmt", &r, dir, ckpt, &res);
    size_t state = sizeof(float) * (size_t)((4 + 16) * r.model.d_model);
    cr_assert_eq(res.test.state_bytes, state, "state: %zu bytes, expected (N_m + k) d_model floats, %zu",
                 res.test.state_bytes, state);
    char desc[256];
    nn_model_describe(&r.model, desc, sizeof desc);
    cr_assert(strstr(desc, "hmt(") && strstr(desc, "segment=16,summary=8,sensory=16,memories=4,unroll=2"), "%s", desc);
    train_result_free(&res);
    tiny_mqar_clean(dir, csv, ckpt);
}

Test(hmt_train, the_model_json_names_the_hmt_sizes_only_for_hmt)
{
    static const char *const keys[] = {"hmt_segment", "hmt_summary", "hmt_sensory", "hmt_memories", "hmt_unroll"};
    nn_model_cfg c, back;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM;
    cJSON *o = nn_model_cfg_to_json(&c);
    for (int i = 0; i < 5; i++)
        cr_assert_null(cJSON_GetObjectItem(o, keys[i]), "%s: other models write no key (job_ids unchanged)", keys[i]);
    cJSON_Delete(o);
    c.variant = NN_VARIANT_HMT, c.hmt_segment = 12, c.hmt_summary = 5, c.hmt_sensory = 3, c.hmt_memories = 7;
    c.hmt_unroll = 1;
    o = nn_model_cfg_to_json(&c);
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.variant, NN_VARIANT_HMT);
    cr_assert_eq(back.hmt_segment, 12);
    cr_assert_eq(back.hmt_summary, 5);
    cr_assert_eq(back.hmt_sensory, 3);
    cr_assert_eq(back.hmt_memories, 7);
    cr_assert_eq(back.hmt_unroll, 1);
    cJSON_Delete(o);
    /* a config's value is range-checked like every model option */
    cJSON *zero = cJSON_CreateNumber(0);
    cr_assert_lt(opt_set_json(opt_find(nn_model_opts, "hmt_segment"), &back, zero, "t.json: $.hmt_segment"), 0);
    cr_assert(strstr(attn_last_error(), "hmt_segment: expected an integer in [1, 4096], found a number"), "%s",
              attn_last_error());
    cJSON_Delete(zero);
}

Test(hmt_train, a_summary_longer_than_the_segment_is_refused)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_HMT, c.head = NN_HEAD_LM, c.causal = 1, c.vocab = 8, c.max_len = 32;
    c.hmt_segment = 4, c.hmt_summary = 5;
    nn_model m;
    cr_assert_lt(nn_model_init(&m, &c, 1), 0);
    cr_assert(strstr(attn_last_error(), "0 <= summary <= segment"), "%s", attn_last_error());
}
