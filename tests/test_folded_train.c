/* The folded model end to end: a tiny folded LM learns MQAR above chance
 * through the ordinary training path, its rows report the buffers as its
 * state, its checkpoint keeps the segment and buffer (a reload scores the
 * same), and the model JSON names them only for
 * the folded variant. */
#include "common/attn_error.h"
#include "memory_train.h"
#include "models/model_json.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(folded_train, a_folded_lm_learns_mqar_above_chance_and_reloads_folded, .timeout = 180)
{
    char dir[] = "/tmp/attn_folded_XXXXXX", csv[64], ckpt[64];
    train_run_opts r;
    tiny_mqar_opts(&r, dir, csv, sizeof csv);
    r.model.variant = NN_VARIANT_FOLDED;
    r.model.fold_segment = 16, r.model.fold_buffer = 16;
    train_result res;
    tiny_mqar_train_and_reload("flash folded", &r, dir, ckpt, &res);
    size_t state = sizeof(float) * (size_t)(r.model.layers * r.model.fold_buffer * r.model.d_model);
    cr_assert_eq(res.test.state_bytes, state, "state: %zu bytes, expected the buffers' %zu", res.test.state_bytes, state);
    train_result_free(&res);
    tiny_mqar_clean(dir, csv, ckpt);
}

Test(folded_train, the_model_json_names_segment_and_buffer_only_when_folded)
{
    nn_model_cfg c, back;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM;
    cJSON *o = nn_model_cfg_to_json(&c);
    cr_assert_null(cJSON_GetObjectItem(o, "fold_segment"), "other models write no key (job_ids unchanged)");
    cr_assert_null(cJSON_GetObjectItem(o, "fold_buffer"));
    cJSON_Delete(o);
    c.variant = NN_VARIANT_FOLDED, c.fold_segment = 5, c.fold_buffer = 7;
    o = nn_model_cfg_to_json(&c);
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.variant, NN_VARIANT_FOLDED);
    cr_assert_eq(back.fold_segment, 5);
    cr_assert_eq(back.fold_buffer, 7);
    cJSON_Delete(o);
    /* a config's value is range-checked like every model option */
    cJSON *zero = cJSON_CreateNumber(0);
    cr_assert_lt(opt_set_json(opt_find(nn_model_opts, "fold_segment"), &back, zero, "t.json: $.fold_segment"), 0);
    cr_assert(strstr(attn_last_error(), "fold_segment: expected an integer in [1, 4096], found a number"), "%s",
              attn_last_error());
    cJSON_Delete(zero);
}
