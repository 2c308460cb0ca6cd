/* One typed job: `attnbench bench` options and a sweep config entry that ask
 * for the same problem build the same job, so its row has the same job_id
 * and identity cells whichever way it was asked for. */
#include "harness/cli/cli.h"
#include "harness/measure/bench.h"
#include "harness/measure/config.h"
#include "harness/results/csvw.h"

#include "common/attn_error.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(job, .init = quiet);

static csvw_row last_row;

static int keep_row(const csvw_row *row, void *ud)
{
    (void)ud;
    last_row = *row;
    return 0;
}

/* The row `attnbench bench` writes for these options (one job). */
static csvw_row bench_row(int argc, char **argv)
{
    char path[] = "/tmp/attn_job_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(path);
    char *args[40];
    for (int i = 0; i < argc; i++)
        args[i] = argv[i];
    args[argc++] = "--out";
    args[argc++] = path;
    args[argc] = NULL;
    cr_assert_eq(cmd_bench(argc, args), 0, "%s", attn_last_error());
    cr_assert_eq(csvw_read_rows(path, keep_row, NULL), 1, "%s", attn_last_error());
    unlink(path);
    return last_row;
}

/* The identity row of the only job of a one-entry config. */
static csvw_row config_row(const char *text)
{
    cfg_config cfg;
    cr_assert_eq(cfg_parse("job.json", text, &cfg), 0, "%s", attn_last_error());
    cfg_job *jobs;
    size_t n;
    cr_assert_eq(cfg_expand(&cfg, &jobs, &n), 0, "%s", attn_last_error());
    cr_assert_eq(n, 1);
    csvw_row row;
    bench_identity(&jobs[0].job, &row);
    free(jobs);
    cfg_free(&cfg);
    return row;
}

static void expect_same_identity(const csvw_row *a, const csvw_row *b)
{
    cr_assert_str_eq(a->cell[ATTN_COL_JOB_ID], b->cell[ATTN_COL_JOB_ID], "params '%s' vs '%s', mask '%s' vs '%s'",
                     a->cell[ATTN_COL_PARAMS], b->cell[ATTN_COL_PARAMS], a->cell[ATTN_COL_MASK], b->cell[ATTN_COL_MASK]);
    for (int c = ATTN_COL_IDENTITY_FIRST; c <= ATTN_COL_IDENTITY_LAST; c++)
        cr_assert_str_eq(a->cell[c], b->cell[c], "%s", schema_col_name((schema_col)c));
}

#define RUN_FAST "--reps", "1", "--min-time", "0", "--warmup", "0", "--no-peak", "--threads", "1"

Test(job, bench_options_and_config_entry_build_the_same_padded_job, .timeout = 60)
{
    char *argv[] = {"bench", "--kernel", "flash", "--mask", "window:w=8", "--pass", "fwdbwd", "--H", "4", "--Hkv",
                    "2", "--N", "64", "--D", "16", "--seq-lens", "64,30,1", "--param", "flash:br=16", "--seed", "7",
                    RUN_FAST};
    csvw_row cli = bench_row((int)(sizeof argv / sizeof *argv), argv);
    csvw_row cfg = config_row("{\"name\":\"j\",\"suites\":[{\"suite\":\"kernels\",\"kernels\":[\"flash\"],"
                              "\"masks\":[\"window:wl=8,wr=8\"],\"pass\":[\"fwdbwd\"],\"H\":[4],\"H_kv\":[2],"
                              "\"N\":[64],\"D\":[16],\"seq_lens\":[\"64+30+1\"],\"params\":[\"flash:br=16\"],"
                              "\"seed\":7}]}");
    expect_same_identity(&cli, &cfg);
    cr_assert_str_eq(cli.cell[ATTN_COL_PARAMS], "br=16;seq_lens=64+30+1");
}

Test(job, bench_options_and_config_entry_build_the_same_ragged_job, .timeout = 60)
{
    char *argv[] = {"bench", "--kernel", "decode", "--mask", "causal", "--H", "4", "--Hkv", "2", "--N", "1", "--D",
                    "16", "--kv-lens", "100,37,5", RUN_FAST};
    csvw_row cli = bench_row((int)(sizeof argv / sizeof *argv), argv);
    csvw_row cfg = config_row("{\"name\":\"j\",\"suites\":[{\"suite\":\"kernels\",\"kernels\":[\"decode\"],"
                              "\"masks\":[\"causal\"],\"H\":[4],\"H_kv\":[2],\"N\":[1],\"D\":[16],"
                              "\"kv_lens\":[\"100+37+5\"]}]}");
    expect_same_identity(&cli, &cfg);
    cr_assert_str_eq(cli.cell[ATTN_COL_N_KV], "100", "a ragged batch's longest length is N_kv");
}
