/* The canonical JSON of models (what training job_ids hash and checkpoint
 * headers hold): the texts below are those the program wrote for these
 * models when the fold and halting settings were written by per-option code;
 * with their rows' json_when declarations the text, and so every job_id, is
 * the same. The options of a variant are written only for that variant. */
#include "common/attn_error.h"
#include "models/model_json.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define HEAD "\"head\":0,\"vocab\":0,\"n_classes\":0,\"max_len\":0,\"layers\":2,\"d_model\":64,\"heads\":2,\"heads_kv\":0," \
             "\"mlp\":128,\"causal\":0,\"rms\":0,"
#define TAIL "\"pos\":\"learned\",\"pool\":\"cls\",\"kernels\":[\"flash\"],\"kernel_params\":[]}"

static void assert_json(const nn_model_cfg *c, const char *want)
{
    cJSON *o = nn_model_cfg_to_json(c);
    char *s = cJSON_PrintUnformatted(o);
    cr_assert_str_eq(s, want);
    nn_model_cfg back;
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cJSON *again = nn_model_cfg_to_json(&back);
    char *t = cJSON_PrintUnformatted(again);
    cr_assert_str_eq(t, want, "read back and written again");
    free(s), free(t);
    cJSON_Delete(o), cJSON_Delete(again);
}

Test(model_json, plain_folded_and_act_models_write_the_same_canonical_text)
{
    nn_model_cfg c;
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LM;
    assert_json(&c, "{\"variant\":\"lm\"," HEAD "\"loops\":1,\"tower_mlp\":0,\"short_conv\":0,\"dropout\":0," TAIL);
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LOOPED, c.loops = 3;
    assert_json(&c, "{\"variant\":\"looped\"," HEAD "\"loops\":3,\"tower_mlp\":0,\"short_conv\":0,\"dropout\":0," TAIL);
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_FOLDED;
    assert_json(&c, "{\"variant\":\"folded\"," HEAD "\"loops\":1,\"fold_segment\":6,\"fold_buffer\":6,\"tower_mlp\":0,"
                    "\"short_conv\":0,\"dropout\":0," TAIL);
    c.fold_segment = 5, c.fold_buffer = 0;
    assert_json(&c, "{\"variant\":\"folded\"," HEAD "\"loops\":1,\"fold_segment\":5,\"fold_buffer\":0,\"tower_mlp\":0,"
                    "\"short_conv\":0,\"dropout\":0," TAIL);
    nn_model_cfg_defaults(&c);
    c.variant = NN_VARIANT_LOOPED, c.loops = 3, c.halting = NN_HALTING_ACT;
    assert_json(&c, "{\"variant\":\"looped\"," HEAD "\"loops\":3,\"tower_mlp\":0,\"short_conv\":0,\"dropout\":0,"
                    "\"halting\":\"act\",\"ponder_cost\":0.00999999977648258," TAIL);
    c.ponder_cost = 0.03f;
    assert_json(&c, "{\"variant\":\"looped\"," HEAD "\"loops\":3,\"tower_mlp\":0,\"short_conv\":0,\"dropout\":0,"
                    "\"halting\":\"act\",\"ponder_cost\":0.029999999329447746," TAIL);
}

/* A condition naming no row would write the key always: every json_when
 * names a number or an enumeration of the same table. */
Test(model_json, every_json_when_names_a_numeric_row_of_the_table)
{
    int n = 0;
    for (const opt_def *d = nn_model_opts; d->name; d++) {
        if (!d->json_when)
            continue;
        const opt_def *x = opt_find(nn_model_opts, d->json_when);
        cr_assert_not_null(x, "%s: json_when names no row '%s'", d->name, d->json_when);
        cr_assert(x->type <= OPT_ENUM, "%s: json_when row '%s' is not a number", d->name,
                  x->name);
        n++;
    }
    cr_assert_eq(n, 8, "fold_segment, fold_buffer, ponder_cost and the five hmt rows");
}
