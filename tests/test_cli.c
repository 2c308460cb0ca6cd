/* Bad input on the command line and in configs: one clear line naming what
 * was wrong, exit code 2, nothing run. */
#include "harness/cli/cli.h"

#include "common/attn_error.h"
#include "harness/measure/config.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <string.h>

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define EXPECT_USAGE_ERROR(cmd, needle, ...)                                                    \
    do {                                                                                       \
        attn_clear_error();                                                                    \
        int rc_ = cmd(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__));                                   \
        const char *msg_ = attn_last_error();                                                  \
        cr_assert_eq(rc_, 2, "exit code %d for %s", rc_, needle);                               \
        cr_assert(strstr(msg_, needle), "message '%s' does not name '%s'", msg_, needle);      \
        cr_assert(!strchr(msg_, '\n'), "message is not one line: '%s'", msg_);                 \
    } while (0)

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(cli, .init = quiet);

Test(cli, unknown_kernel_is_named_with_the_valid_ones)
{
    EXPECT_USAGE_ERROR(cmd_bench, "unknown kernel 'nope'", "bench", "--kernel", "nope");
    cr_assert(strstr(attn_last_error(), "naive"));
    EXPECT_USAGE_ERROR(cmd_check, "unknown kernel 'nope'", "check", "--kernel", "nope");
}

Test(cli, unknown_mask_is_rejected)
{
    EXPECT_USAGE_ERROR(cmd_bench, "unknown mask 'diagonal'", "bench", "--kernel", "naive", "--mask", "diagonal");
    EXPECT_USAGE_ERROR(cmd_bench, "window needs a width", "bench", "--kernel", "naive", "--mask", "window");
}

Test(cli, non_positive_sizes_are_rejected)
{
    EXPECT_USAGE_ERROR(cmd_bench, "--N", "bench", "--kernel", "naive", "--N", "0");
    EXPECT_USAGE_ERROR(cmd_bench, "--D", "bench", "--kernel", "naive", "--D", "-4");
    EXPECT_USAGE_ERROR(cmd_bench, "--threads", "bench", "--kernel", "naive", "--threads", "0");
}

Test(cli, heads_not_divisible_by_kv_heads_are_rejected)
{
    EXPECT_USAGE_ERROR(cmd_bench, "H_kv", "bench", "--kernel", "naive", "--H", "6", "--Hkv", "4");
}

Test(cli, bad_padded_and_ragged_batches_are_rejected)
{
    EXPECT_USAGE_ERROR(cmd_bench, "--seq-lens: expected lengths <= --N 64", "bench", "--kernel", "flash", "--N", "64",
                       "--seq-lens", "64,65");
    EXPECT_USAGE_ERROR(cmd_bench, "found both", "bench", "--kernel", "flash", "--N", "64", "--seq-lens", "8",
                       "--kv-lens", "8");
    EXPECT_USAGE_ERROR(cmd_bench, "--seq-lens: only with a single --N", "bench", "--kernel", "flash", "--N", "8,16",
                       "--seq-lens", "8");
}

Test(cli, bad_kernel_param_is_rejected)
{
    EXPECT_USAGE_ERROR(cmd_bench, "--param", "bench", "--kernel", "naive", "--param", "novalue");
}

/* "K:k=v" applies to kernel K only: a K that is not benched would be ignored. */
Test(cli, a_param_for_a_kernel_not_benched_is_refused)
{
    EXPECT_USAGE_ERROR(cmd_bench, "param flsh:br=16: expected one of the kernels of --kernel (flash, naive) before ':', found 'flsh'",
                       "bench", "--kernel", "flash,naive", "--N", "64", "--param", "flsh:br=16");
}

/* Checked against the kernel's parameter table before anything runs, as
 * train does: a usage error (exit 2), not an error row (exit 1). */
Test(cli, an_unknown_or_out_of_range_kernel_param_is_a_usage_error)
{
    EXPECT_USAGE_ERROR(cmd_bench, "kernel 'flash': unknown param 'nope' (expected br, bc)", "bench", "--kernel",
                       "flash", "--N", "64", "--param", "nope=3");
    EXPECT_USAGE_ERROR(cmd_bench, "param br: expected an integer in [1, 1024], found '100000'", "bench", "--kernel",
                       "flash", "--N", "64", "--param", "br=100000");
    EXPECT_USAGE_ERROR(cmd_bench, "param br: expected an integer in [1, 1024], found '0'", "bench", "--kernel",
                       "naive,flash", "--N", "64", "--param", "flash:br=0");
}

/* A generated task reads no files: --data would be ignored silently. */
Test(cli, data_given_to_a_generated_task_is_refused)
{
    EXPECT_USAGE_ERROR(cmd_train, "task mqar: --data: expected none (the task is generated, it reads no files), found '/tmp'",
                       "train", "--task", "mqar", "--kernel", "flash", "--data", "/tmp", "--steps", "20", "--warmup", "0");
    EXPECT_USAGE_ERROR(cmd_train, "task copy: --data", "train", "--task", "copy", "--kernel", "flash", "--data", "/tmp",
                       "--steps", "20", "--warmup", "0");
}

Test(cli, malformed_json_names_file_line_and_column)
{
    EXPECT_USAGE_ERROR(cmd_sweep, "malformed.json:4:", "sweep", "--config", ATTN_SOURCE_DIR "/tests/data/malformed.json", "--dry-run");
}

Test(cli, unknown_config_key_names_the_json_path)
{
    EXPECT_USAGE_ERROR(cmd_sweep, "$.suites[0]", "sweep", "--config", ATTN_SOURCE_DIR "/tests/data/unknown_key.json", "--dry-run");
    cr_assert(strstr(attn_last_error(), "windows"));
}

Test(cli, missing_config_file_is_named)
{
    EXPECT_USAGE_ERROR(cmd_sweep, "no_such.json", "sweep", "--config", ATTN_SOURCE_DIR "/tests/data/no_such.json");
}

Test(cli, a_task_the_config_does_not_train_is_refused)
{
    EXPECT_USAGE_ERROR(cmd_sweep, "has no training job for it", "sweep", "--config",
                       ATTN_SOURCE_DIR "/configs/quick.json", "--task", "listops");
}

/* A repeat is an error everywhere with one message: "<where>: given twice ('<first>', then '<second>')". */
Test(cli, a_parameter_given_twice_on_any_command_line_is_an_error)
{
    EXPECT_USAGE_ERROR(cmd_train, "param L: given twice ('32', then '40')", "train", "--task", "mqar", "--kernel",
                       "flash", "--task-param", "L=32", "--task-param", "L=40");
    EXPECT_USAGE_ERROR(cmd_train, "param br: given twice ('32', then '16')", "train", "--task", "mqar", "--kernel",
                       "flash", "--param", "br=32", "--param", "br=16");
    EXPECT_USAGE_ERROR(cmd_eval, "param br: given twice ('32', then '16')", "eval", "--checkpoint", "x.ckpt",
                       "--scale", "1", "--kernel", "flash", "--param", "br=32", "--param", "br=16");
    EXPECT_USAGE_ERROR(cmd_bench, "param br: given twice ('32', then '16')", "bench", "--kernel", "flash", "--param",
                       "br=32", "--param", "br=16");
}

Test(cli, an_option_given_twice_on_the_command_line_is_an_error)
{
    EXPECT_USAGE_ERROR(cmd_train, "--steps: given twice ('5', then '6')", "train", "--task", "mqar", "--kernel",
                       "flash", "--steps", "5", "--steps", "6");
    EXPECT_USAGE_ERROR(cmd_train, "--rms: given twice", "train", "--task", "mqar", "--kernel", "flash", "--rms",
                       "--rms");
    EXPECT_USAGE_ERROR(cmd_eval, "--test-n: given twice ('8', then '9')", "eval", "--checkpoint", "x.ckpt",
                       "--test-n", "8", "--test-n", "9");
    EXPECT_USAGE_ERROR(cmd_bench, "--H: given twice ('4', then '8')", "bench", "--kernel", "flash", "--H", "4",
                       "--H", "8");
    EXPECT_USAGE_ERROR(cmd_bench, "--no-peak: given twice", "bench", "--kernel", "flash", "--no-peak", "--no-peak");
}

/* The range in "...: expected an integer in [lo, hi], found ..." of the last error. */
static void last_range(char *buf, size_t n)
{
    const char *in = strstr(attn_last_error(), " in ["), *open = in ? in + 4 : NULL;
    const char *close = open ? strchr(open, ']') : NULL;
    cr_assert(open && close, "no range in '%s'", attn_last_error());
    snprintf(buf, n, "%.*s", (int)(close - open + 1), open);
}

Test(cli, a_bench_option_and_the_config_key_of_the_same_quantity_have_one_range)
{
    static const char *const keys[][2] = {{"--H", "H"}, {"--Hkv", "H_kv"}, {"--B", "B"}, {"--Nkv", "N_kv"},
                                          {"--threads", "threads"}, {"--Dv", "Dv"}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char cli_range[64], cfg_range[64], text[512];
        char *argv[] = {"bench", "--kernel", "naive", (char *)keys[i][0], "99999999", NULL};
        cr_assert_eq(cmd_bench(5, argv), 2);
        last_range(cli_range, sizeof cli_range);
        snprintf(text, sizeof text, "{\"name\":\"t\",\"suites\":[{\"suite\":\"k\",\"kernels\":[\"naive\"],"
                 "\"N\":[64],\"D\":[16],%s\"%s\":[99999999]}]}", strcmp(keys[i][1], "H") ? "\"H\":[8]," : "",
                 keys[i][1]);
        cfg_config c;
        cr_assert_neq(cfg_parse("x.json", text, &c), 0, "%s accepted 99999999", keys[i][1]);
        last_range(cfg_range, sizeof cfg_range);
        cr_assert_str_eq(cli_range, cfg_range, "%s %s vs %s %s", keys[i][0], cli_range, keys[i][1], cfg_range);
    }
}
