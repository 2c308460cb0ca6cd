/* Kernels from shared objects: the example plugin (examples/plugin) loads,
 * is registered with its flags, passes `check` against the oracle, benches
 * and trains like a built-in kernel; a plugin of another ABI version, one
 * missing a symbol and one whose kernel name is taken are refused by name,
 * adding nothing. */
#include "harness/cli/cli.h"
#include "harness/plugin/plugin.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXAMPLE ATTN_PLUGIN_DIR "/tiled_softmax.so"
#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
    unsetenv("ATTNBENCH_PLUGINS");
}

TestSuite(plugins, .init = quiet, .timeout = 120);

Test(plugins, the_example_plugin_registers_its_kernel_with_its_flags)
{
    int before = attn_registry_count();
    cr_assert_eq(plugin_load(EXAMPLE), 0, "%s", attn_last_error());
    cr_assert_eq(attn_registry_count(), before + 1);
    const attn_kernel *k = attn_find_kernel("tiled_softmax");
    cr_assert(k, "%s", attn_last_error());
    unsigned want = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC;
    cr_assert_eq(k->flags, want, "flags 0x%x", k->flags);
    cr_assert(k->masks & ATTN_MASK_BIT(ATTN_MASK_CAUSAL));
    cr_assert(strstr(k->notes, "tiled_softmax.so"), "the notes name the file: %s", k->notes);
    cr_assert_eq(plugin_load(EXAMPLE), 0, "loading a file twice is a no-op");
    cr_assert_eq(attn_registry_count(), before + 1);
    cr_assert(strstr(getenv("ATTNBENCH_PLUGINS"), "tiled_softmax.so"), "children inherit the plugin");
}

Test(plugins, the_plugin_kernel_passes_check_against_the_oracle)
{
    cr_assert_eq(plugin_load(EXAMPLE), 0, "%s", attn_last_error());
    cr_assert_eq(cmd_check(ARGC("check", "--kernel", "tiled_softmax", "--mask", "causal"),
                           ARGV("check", "--kernel", "tiled_softmax", "--mask", "causal")),
                 0, "check failed: %s", attn_last_error());
}

/* Rows of a results file whose kernel is `kernel` and status ok. */
typedef struct {
    const char *kernel;
    int n;
} ok_count;

static int count_ok(const csvw_row *r, void *ud)
{
    ok_count *c = ud;
    c->n += !strcmp(r->cell[ATTN_COL_KERNEL], c->kernel) && !strcmp(r->cell[ATTN_COL_STATUS], "ok");
    return 0;
}

static int ok_rows_of(const char *path, const char *kernel)
{
    ok_count c = {kernel, 0};
    cr_assert_geq(csvw_read_rows(path, count_ok, &c), 0, "%s", attn_last_error());
    return c.n;
}

Test(plugins, the_plugin_kernel_benches_and_trains_an_mqar_model)
{
    char dir[] = "/tmp/attnbench-plugin-XXXXXX", bench[128], train[128];
    cr_assert(mkdtemp(dir));
    snprintf(bench, sizeof bench, "%s/kernels.csv", dir), snprintf(train, sizeof train, "%s/recall.csv", dir);
    int argc = ARGC("attnbench", "--plugin", EXAMPLE, "list");
    char **argv = ARGV("attnbench", "--plugin", EXAMPLE, "list");
    cr_assert_eq(plugin_load_all(&argc, argv), 0, "%s", attn_last_error());
    cr_assert_eq(argc, 2, "--plugin and its path leave argv");
    cr_assert_str_eq(argv[1], "list");
    cr_assert_eq(cmd_bench(ARGC("bench", "--kernel", "tiled_softmax", "--mask", "causal", "--N", "128", "--H", "2",
                                "--D", "32", "--reps", "2", "--min-time", "0", "--no-peak", "--out", bench),
                           ARGV("bench", "--kernel", "tiled_softmax", "--mask", "causal", "--N", "128", "--H", "2",
                                "--D", "32", "--reps", "2", "--min-time", "0", "--no-peak", "--out", bench)),
                 0, "%s", attn_last_error());
    cr_assert_eq(ok_rows_of(bench, "tiled_softmax"), 1, "one gated, timed row");
    cr_assert_eq(cmd_train(ARGC("train", "--task", "mqar", "--kernel", "tiled_softmax", "--task-param", "L=32",
                                "--task-param", "D=4", "--steps", "12", "--eval-every", "12", "--train-n", "64",
                                "--valid-n", "16", "--test-n", "16", "--d-model", "16", "--out", train),
                           ARGV("train", "--task", "mqar", "--kernel", "tiled_softmax", "--task-param", "L=32",
                                "--task-param", "D=4", "--steps", "12", "--eval-every", "12", "--train-n", "64",
                                "--valid-n", "16", "--test-n", "16", "--d-model", "16", "--out", train)),
                 0, "%s", attn_last_error());
    cr_assert_geq(ok_rows_of(train, "tiled_softmax"), 2, "validation and test rows");
    unlink(bench), unlink(train), rmdir(dir);
}

Test(plugins, a_bad_plugin_is_refused_by_name_and_adds_nothing)
{
    static const struct {
        const char *file, *needle;
    } bad[] = {{ATTN_PLUGIN_DIR "/bad_wrong_abi.so", "built for plugin ABI 2, this attnbench has ABI 1"},
               {ATTN_PLUGIN_DIR "/bad_no_kernels.so", "missing symbol attnbench_plugin_kernels"},
               {ATTN_PLUGIN_DIR "/bad_clash.so", "kernel 'flash': the name is taken"},
               {ATTN_PLUGIN_DIR "/no_such_plugin.so", "cannot load"}};
    int before = attn_registry_count();
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_neq(plugin_load(bad[i].file), 0, "%s loaded", bad[i].file);
        cr_assert(strstr(attn_last_error(), bad[i].needle) && strstr(attn_last_error(), bad[i].file), "'%s'",
                  attn_last_error());
        cr_assert(!strchr(attn_last_error(), '\n'), "one line");
        cr_assert_eq(attn_registry_count(), before, "%s added a kernel", bad[i].file);
    }
    setenv("ATTNBENCH_PLUGINS", ATTN_PLUGIN_DIR "/bad_clash.so", 1);
    int argc = ARGC("attnbench", "list");
    cr_assert_neq(plugin_load_all(&argc, ARGV("attnbench", "list")), 0);
    cr_assert(strstr(attn_last_error(), "ATTNBENCH_PLUGINS"), "the variable is named: %s", attn_last_error());
}
