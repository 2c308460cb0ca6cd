/* GTrXL gating end to end: a tiny gated LM learns MQAR above chance, its
 * checkpoint keeps the gating (a reload scores the same), and the model JSON
 * names the gate only when it is on (older checkpoints load as residual). */
#include "common/attn_error.h"
#include "memory_train.h"
#include "models/model_json.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(gtrxl_train, a_gated_lm_learns_mqar_above_chance_and_reloads_gated, .timeout = 120)
{
    char dir[] = "/tmp/attn_gtrxl_XXXXXX", csv[64], ckpt[64];
    train_run_opts r;
    tiny_mqar_opts(&r, dir, csv, sizeof csv);
    cr_assert_eq(opt_set_text(opt_find(nn_model_opts, "gating"), &r.model, "gtrxl", "--gating"), 0);
    train_result res;
    tiny_mqar_train_and_reload("flash gtrxl", &r, dir, ckpt, &res);
    train_result_free(&res);
    tiny_mqar_clean(dir, csv, ckpt);
}

Test(gtrxl_train, the_model_json_names_the_gating_only_when_gated)
{
    nn_model_cfg c, back;
    nn_model_cfg_defaults(&c);
    cJSON *o = nn_model_cfg_to_json(&c);
    cr_assert_null(cJSON_GetObjectItem(o, "gating"), "residual models write no key (job_ids unchanged)");
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.gating, NN_GATING_RESIDUAL, "a model without the key loads as residual");
    cJSON_Delete(o);
    c.gating = NN_GATING_GTRXL;
    o = nn_model_cfg_to_json(&c);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "gating")), "gtrxl");
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.gating, NN_GATING_GTRXL);
    cJSON_ReplaceItemInObject(o, "gating", cJSON_CreateString("lstm"));
    cr_assert_lt(nn_model_cfg_from_json(o, "test", &back), 0);
    cr_assert(strstr(attn_last_error(), "expected one of residual, gtrxl, found 'lstm'"), "%s", attn_last_error());
    cJSON_Delete(o);
}
