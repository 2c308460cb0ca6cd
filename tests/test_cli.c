/* Bad input on the command line and in configs: one clear line naming what
 * was wrong, exit code 2, nothing run. The cases with one assertion each are
 * rows of the bad-input catalogue (tests/bad_input_cases.c); these check more. */
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

Test(cli, unknown_config_key_names_the_json_path)
{
    EXPECT_USAGE_ERROR(cmd_sweep, "$.suites[0]", "sweep", "--config", ATTN_SOURCE_DIR "/tests/data/unknown_key.json", "--dry-run");
    cr_assert(strstr(attn_last_error(), "windows"));
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
