/* "trainings" entries of sweep configs: the grid and strict errors. */
#include "config.h"
#include "config_train.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, cfg_config *c) { return cfg_parse("t.json", text, c); }

Test(config_train, grid_is_kernels_by_width_by_lr_by_seed_and_hybrids_split_per_layer)
{
    cfg_config c;
    cr_assert_eq(parse("{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\",\"naive+flash\"],"
                       "\"d_model\":[32,64],\"lr\":[1e-3,3e-3],\"seeds\":[1,2,3],\"steps\":5,\"short_conv\":4}]}", &c), 0,
                 "%s", attn_last_error());
    attn_train_run *j;
    size_t n;
    cr_assert_eq(cfg_trainings_expand(c.trainings, c.n_trainings, NULL, NULL, NULL, 0, &j, &n), 0);
    cr_assert_eq(n, 2 * 2 * 2 * 3);
    cr_assert_str_eq(j[23].model.kernels[0], "naive");
    cr_assert_str_eq(j[23].model.kernels[1], "flash");
    cr_assert_eq(j[23].model.n_kernels, 2);
    cr_assert_str_eq(j[23].model.variant, "hybrid");
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
    attn_train_run *j;
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
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"lrr\":1}]}",
         "t.json: $.trainings[0]: unknown key \"lrr\""},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"nope\",\"kernels\":[\"flash\"]}]}",
         "t.json: $.trainings[0].task: unknown task 'nope'"},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash+nope\"]}]}",
         "t.json: $.trainings[0].kernels: unknown kernel 'nope'"},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"steps\":0}]}",
         "t.json: $.trainings[0].steps: expected an integer in [1, 1073741824], found a number"},
        {"{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"],\"pos\":\"alibi\"}]}",
         "t.json: $.trainings[0].pos: expected one of the documented names, found a string"},
        {"{\"name\":\"t\",\"trainings\":[]}", "t.json: $.trainings: expected a non-empty array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cfg_config c;
        cr_assert_lt(parse(cases[i].text, &c), 0, "case %zu parsed", i);
        cr_assert(strstr(attn_last_error(), cases[i].needle), "case %zu: %s", i, attn_last_error());
    }
}
