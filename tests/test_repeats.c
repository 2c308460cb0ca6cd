/* An option or parameter given twice is an error everywhere, with one message
 * shape "<where>: given twice ('<first>', then '<second>')": on the command
 * line of train, eval and bench, in a training entry of a config (a repeated
 * key, a repeated key=value in a list) and in a sweep suite's params. */
#include "harness/cli/cli.h"
#include "harness/measure/config.h"

#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <string.h>

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define EXPECT_TWICE(cmd, needle, ...)                                                             \
    do {                                                                                          \
        attn_clear_error();                                                                       \
        int rc_ = cmd(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__));                                      \
        cr_assert_eq(rc_, 2, "exit code %d for %s", rc_, needle);                                  \
        cr_assert(strstr(attn_last_error(), needle), "'%s' does not hold '%s'", attn_last_error(), needle); \
    } while (0)

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(repeats, .init = quiet);

Test(repeats, a_parameter_given_twice_on_any_command_line_is_an_error)
{
    EXPECT_TWICE(cmd_train, "param L: given twice ('32', then '40')", "train", "--task", "mqar", "--kernel", "flash",
                 "--task-param", "L=32", "--task-param", "L=40");
    EXPECT_TWICE(cmd_train, "param br: given twice ('32', then '16')", "train", "--task", "mqar", "--kernel", "flash",
                 "--param", "br=32", "--param", "br=16");
    EXPECT_TWICE(cmd_eval, "param br: given twice ('32', then '16')", "eval", "--checkpoint", "x.ckpt", "--scale",
                 "1", "--kernel", "flash", "--param", "br=32", "--param", "br=16");
    EXPECT_TWICE(cmd_bench, "param br: given twice ('32', then '16')", "bench", "--kernel", "flash", "--param",
                 "br=32", "--param", "br=16");
}

Test(repeats, an_option_given_twice_on_the_command_line_is_an_error)
{
    EXPECT_TWICE(cmd_train, "--steps: given twice ('5', then '6')", "train", "--task", "mqar", "--kernel", "flash",
                 "--steps", "5", "--steps", "6");
    EXPECT_TWICE(cmd_train, "--rms: given twice", "train", "--task", "mqar", "--kernel", "flash", "--rms", "--rms");
    EXPECT_TWICE(cmd_eval, "--test-n: given twice ('8', then '9')", "eval", "--checkpoint", "x.ckpt", "--test-n",
                 "8", "--test-n", "9");
}

static const char *config_error(const char *text)
{
    cfg_config c;
    cr_assert_lt(cfg_parse("t.json", text, &c), 0, "parsed: %s", text);
    return attn_last_error();
}

#define TRAINING(rest) "{\"name\":\"t\",\"trainings\":[{\"task\":\"mqar\",\"kernels\":[\"flash\"]" rest "}]}"

Test(repeats, a_key_given_twice_in_a_config_is_an_error_at_its_json_path)
{
    cr_assert(strstr(config_error(TRAINING(",\"task_params\":[\"L=32\",\"L=40\"]")),
                     "t.json: $.trainings[0].task_params: param L: given twice ('32', then '40')"),
              "%s", attn_last_error());
    cr_assert(strstr(config_error(TRAINING(",\"kernel_params\":[\"br=32\",\"br=16\"]")),
                     "t.json: $.trainings[0].kernel_params: param br: given twice ('32', then '16')"),
              "%s", attn_last_error());
    cr_assert(strstr(config_error(TRAINING(",\"steps\":5,\"steps\":6")),
                     "t.json: $.trainings[0].steps: given twice ('5', then '6')"),
              "%s", attn_last_error());
    cr_assert(strstr(config_error(TRAINING(",\"extrapolate\":{\"scale\":[1],\"kernels\":[{\"kernel\":\"flash\","
                                           "\"params\":[\"br=32\",\"br=16\"]}]}")),
                     "$.trainings[0].extrapolate.kernels[0].params: param br: given twice ('32', then '16')"),
              "%s", attn_last_error());
    cr_assert(strstr(config_error("{\"name\":\"t\",\"suites\":[{\"suite\":\"s\",\"kernels\":[\"flash\"],\"H\":[8],"
                                  "\"N\":[256],\"D\":[64],\"params\":[\"flash:br=32,br=16\"]}]}"),
                     "param br: given twice ('32', then '16')"),
              "%s", attn_last_error());
}
