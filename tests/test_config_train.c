/* "trainings" entries of sweep configs: the grid and strict errors. */
#include "harness/measure/config.h"
#include "harness/train/config_train.h"
#include "harness/train/train_run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, cfg_config *c) { return cfg_parse("t.json", text, c); }

typedef struct {
    const char *text, *needle;
} parse_case;

/* Every case fails with its needle in the message, which names one JSON path. */
static void expect_errors(const parse_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cfg_config c;
        cr_assert_lt(parse(cases[i].text, &c), 0, "case %zu parsed", i);
        cr_assert(strstr(attn_last_error(), cases[i].needle), "case %zu: %s", i, attn_last_error());
        const char *first = strstr(attn_last_error(), "$.trainings");
        cr_assert(!first || !strstr(first + 1, "$.trainings"), "case %zu: %s", i, attn_last_error());
    }
}

Test(config_train, grid_is_kernels_by_width_by_lr_by_seed_and_hybrids_split_per_layer)
{
    cfg_config c;
    cr_assert_eq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\",\"naive+flash\"],"
                       "\"d_model\":[32,64],\"lr\":[1e-3,3e-3],\"seeds\":[1,2,3],\"steps\":5,\"short_conv\":4}]}", &c), 0,
                 "%s", attn_last_error());
    train_run_opts *j;
    size_t n;
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, NULL, NULL, 0, &j, &n), 0);
    cr_assert_eq(n, 2 * 2 * 2 * 3);
    cr_assert_str_eq(j[23].model.kernels[0], "naive");
    cr_assert_str_eq(j[23].model.kernels[1], "flash");
    cr_assert_eq(j[23].model.n_kernels, 2);
    cr_assert_eq(j[23].model.variant, NN_VARIANT_HYBRID);
    cr_assert_eq(j[23].model.d_model, 64);
    cr_assert_eq(j[23].train.seed, 3);
    cr_assert_eq(j[0].train.steps, 5);
    cr_assert_eq(j[0].model.short_conv, 4);
    free(j);
    const char *only[] = {"naive"};
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, "mqar", only, 1, &j, &n), 0);
    cr_assert_eq(n, 12);
    free(j);
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, "listops", NULL, 0, &j, &n), 0);
    cr_assert_eq(n, 0);
    free(j);
    cfg_free(&c);
}

Test(config_train, extrapolate_entries_carry_scales_and_depths_to_every_job)
{
    cfg_config c;
    cr_assert_eq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"passkey\",\"kernels\":[\"flash\"],\"pos\":\"rope\","
                       "\"lr\":[1e-3,3e-3],\"extrapolate\":{\"scale\":[1,2,4],\"depths\":3}}]}", &c), 0,
                 "%s", attn_last_error());
    train_run_opts *j;
    size_t n;
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, NULL, NULL, 0, &j, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(j[1].n_scales == 3 && j[1].scale[2] == 4 && j[1].depths == 3);
    free(j);
    cfg_free(&c);
    cr_assert_neq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"passkey\",\"kernels\":[\"flash\"],"
                        "\"extrapolate\":{\"scale\":[2],\"depth\":3}}]}", &c), 0);
    cr_assert(strstr(attn_last_error(), "extrapolate: unknown key \"depth\""), "%s", attn_last_error());
    cr_assert_neq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"passkey\",\"kernels\":[\"flash\"],"
                        "\"extrapolate\":{\"depths\":3}}]}", &c), 0);
    cr_assert(strstr(attn_last_error(), "$.trainings[0].extrapolate.scale: expected a list"), "%s", attn_last_error());
}

Test(config_train, errors_name_the_json_path_and_what_was_expected)
{
    parse_case cases[] = {
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"lrr\":1}]}",
         "t.json: $.trainings[0]: unknown key \"lrr\""},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"nope\",\"kernels\":[\"flash\"]}]}",
         "t.json: $.trainings[0].task: unknown task 'nope'"},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash+nope\"]}]}",
         "t.json: $.trainings[0].kernels: unknown kernel 'nope'"},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"steps\":0}]}",
         "t.json: $.trainings[0].steps: expected an integer in [1, 1073741824], found a number"},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"pos\":\"alibi\"}]}",
         "t.json: $.trainings[0].pos: expected one of learned, sinusoid, rope, none, found 'alibi'"},
        {"{\"name\":\"t\",\"trainings\":[]}", "t.json: $.trainings: expected a non-empty array"},
        {NULL, "t.json: $.trainings[0].description: expected a string of at most 511 characters, found a string"},
    };
    char long_desc[1024]; /* the last case: a 600-character description */
    snprintf(long_desc, sizeof long_desc,
             "{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"description\":\"%0600d\"}]}", 0);
    cases[sizeof cases / sizeof *cases - 1].text = long_desc;
    expect_errors(cases, sizeof cases / sizeof *cases);
}

Test(config_train, extrapolate_kernels_are_swaps_with_params_and_mask_for_every_job)
{
    cfg_config c;
    cr_assert_eq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"passkey\",\"kernels\":[\"flash\",\"linear\"],"
                       "\"pos\":\"rope\",\"extrapolate\":{\"scale\":[1,2],\"depths\":3,\"kernels\":["
                       "{\"kernel\":\"streaming\",\"params\":[\"mode=decode\"],\"mask\":\"sink:n=4,w=192\"},"
                       "{\"kernel\":\"flash\"},{\"kernel\":\"decode\",\"kv_dtype\":\"q4_0\"}]}}]}", &c), 0, "%s",
                 attn_last_error());
    train_run_opts *j;
    size_t n;
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, NULL, NULL, 0, &j, &n), 0);
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(j[i].n_swaps, 3);
        cr_assert(!strcmp(j[i].swap[2].kernel, "decode") && j[i].swap[2].kv_dtype == ATTN_KV_Q4_0);
        cr_assert_eq(j[i].swap[0].kv_dtype, ATTN_KV_FP32);
        const train_kernel_swap *s = &j[i].swap[0];
        cr_assert_str_eq(s->kernel, "streaming");
        cr_assert(s->params.n == 1 && !strcmp(s->params.key[0], "mode") && !strcmp(s->params.val[0], "decode"));
        cr_assert_str_eq(s->mask, "sink:n=4,w=192");
        cr_assert(!strcmp(j[i].swap[1].kernel, "flash") && j[i].swap[1].params.n == 0 && !j[i].swap[1].mask[0]);
    }
    free(j);
    cfg_free(&c);
    /* without "kernels": no swap */
    cr_assert_eq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"passkey\",\"kernels\":[\"flash\"],"
                       "\"extrapolate\":{\"scale\":[2]}}]}", &c), 0, "%s", attn_last_error());
    cr_assert_eq(c.trainings[0].base.n_swaps, 0);
    cfg_free(&c);
}

Test(config_train, extrapolate_kernels_errors_name_the_json_path_and_what_was_expected)
{
#define HEAD "{\"name\":\"t\",\"trainings\":[{\"task\":\"passkey\",\"kernels\":[\"flash\"],\"extrapolate\":{\"scale\":[1],"
    static const parse_case cases[] = {
        {HEAD "\"kernels\":\"streaming\"}}]}",
         "t.json: $.trainings[0].extrapolate.kernels: expected a list of 1..8 kernel objects {\"kernel\": K, ...}, "
         "found a string"},
        {HEAD "\"kernels\":[]}}]}", "t.json: $.trainings[0].extrapolate.kernels: expected a list of 1..8"},
        {HEAD "\"kernels\":[{\"kernel\":\"flash\"},\"streaming\"]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[1]: expected an object {\"kernel\": K, \"params\": [\"k=v\"], "
         "\"mask\": SPEC}, found a string"},
        {HEAD "\"kernels\":[{\"params\":[\"mode=decode\"]}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].kernel: expected a kernel name, found nothing"},
        {HEAD "\"kernels\":[{\"kernel\":\"nope\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].kernel: unknown kernel 'nope'"},
        {HEAD "\"kernels\":[{\"kernel\":\"streaming\",\"maks\":\"sink:n=4,w=8\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0]: unknown key \"maks\" (expected kernel, params, mask, kv_dtype)"},
        {HEAD "\"kernels\":[{\"kernel\":\"streaming\",\"params\":\"mode=decode\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].params: expected a list of \"key=value\" strings, found a "
         "string"},
        {HEAD "\"kernels\":[{\"kernel\":\"streaming\",\"params\":[\"decode\"]}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].params: "},
        {HEAD "\"kernels\":[{\"kernel\":\"streaming\",\"mask\":4}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].mask: expected a mask spec (e.g. \"sink:n=4,w=192\"), "
         "found a number"},
        {HEAD "\"kernels\":[{\"kernel\":\"streaming\",\"mask\":\"sinc:n=4\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].mask: "},
        {HEAD "\"kernels\":[{\"kernel\":\"linear\",\"mask\":\"sink:n=4,w=192\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].mask: kernel 'linear' does not support mask 'sink:n=4,w=192'"},
        {HEAD "\"kernels\":[{\"kernel\":\"decode\",\"kv_dtype\":\"q5\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].kv_dtype: "},
        {HEAD "\"kernels\":[{\"kernel\":\"decode\",\"kv_dtype\":8}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].kv_dtype: expected a KV format name (fp32, bf16, fp16, q8_0, "
         "q4_0), found a number"},
        {HEAD "\"kernels\":[{\"kernel\":\"flash\",\"kv_dtype\":\"q8_0\"}]}}]}",
         "t.json: $.trainings[0].extrapolate.kernels[0].kv_dtype: kernel 'flash' does not read a q8_0 KV cache"},
        {HEAD "\"kernel\":[{\"kernel\":\"streaming\"}]}}]}",
         "t.json: $.trainings[0].extrapolate: unknown key \"kernel\" (expected scale, depths, kernels, mem_budgets, dump_kv)"},
    };
#undef HEAD
    expect_errors(cases, sizeof cases / sizeof *cases);
}

Test(config_train, a_key_given_twice_is_an_error_at_its_json_path)
{
#define TRAINING(rest) "{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"]" rest "}]}"
    static const parse_case cases[] = {
        {TRAINING(",\"task_params\":[\"L=32\",\"L=40\"]"),
         "t.json: $.trainings[0].task_params: param L: given twice ('32', then '40')"},
        {TRAINING(",\"kernel_params\":[\"br=32\",\"br=16\"]"),
         "t.json: $.trainings[0].kernel_params: param br: given twice ('32', then '16')"},
        {TRAINING(",\"steps\":5,\"steps\":6"), "t.json: $.trainings[0].steps: given twice ('5', then '6')"},
        {TRAINING(",\"extrapolate\":{\"scale\":[1],\"kernels\":[{\"kernel\":\"flash\",\"params\":[\"br=32\",\"br=16\"]}]}"),
         "t.json: $.trainings[0].extrapolate.kernels[0].params: param br: given twice ('32', then '16')"},
    };
#undef TRAINING
    expect_errors(cases, sizeof cases / sizeof *cases);
}

/* configs/mqar256.json is the command line of the dated MQAR 256/16 rows: every
 * test row of that reference file has the job_id of one of the config's
 * trainings (a changed budget, vocabulary or kernel parameter changes the id). */
Test(config_train, mqar256_config_has_the_job_ids_of_its_reference_rows)
{
    cfg_config c;
    cr_assert_eq(cfg_load(ATTN_SOURCE_DIR "/configs/mqar256.json", &c), 0, "%s", attn_last_error());
    train_run_opts *j;
    size_t n;
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, NULL, NULL, 0, &j, &n), 0);
    cr_assert_eq(n, 8);
    char (*ids)[17] = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(train_run_test_id(&j[i], ids[i]), 0, "%s", attn_last_error());
    cr_assert_eq(j[7].model.variant, NN_VARIANT_HMT);
    FILE *f = fopen(ATTN_SOURCE_DIR "/results/reference/recall-mqar256-v512-2026-12-08.csv", "r");
    cr_assert(f);
    char line[4096];
    int tests = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, ";split=test;"))
            continue;
        const char *id = strrchr(line, ',') + 1;
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = strncmp(id, ids[i], 16) == 0;
        cr_assert(found, "test row %.16s is none of the config's trainings", id);
        tests++;
    }
    fclose(f);
    cr_assert_eq(tests, 6, "the test rows of flash, deltanet, linear, gla, titans and atlas");
    free(ids);
    free(j);
    cfg_free(&c);
}
