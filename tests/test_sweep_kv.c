/* A sweep whose kernel jobs read a trained model's attention inputs: the
 * training's extrapolation writes the kv file into the results directory
 * ("dump_kv"), and the jobs with inputs cache:NAME run after the trainings
 * and find it there; their rows name the file and say kv-file. */
#include "common/attn_error.h"
#include "harness/cli/cli.h"
#include "harness/results/csvw.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/attn_sweepkv_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(void) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

TestSuite(sweep_kv, .init = make_dir, .fini = remove_dir);

typedef struct {
    int ok, kv_source, recall;
} kv_rows;

static int take(const csvw_row *row, void *ud)
{
    kv_rows *r = ud;
    r->ok += !strcmp(row->cell[ATTN_COL_STATUS], "ok");
    r->kv_source += !strcmp(row->cell[ATTN_COL_DATA_SOURCE], "kv-file") &&
                    strstr(row->cell[ATTN_COL_PARAMS], "inputs=cache:m.kv@0") != NULL;
    r->recall += !strcmp(row->cell[ATTN_COL_METRIC], "topk_recall");
    return 0;
}

Test(sweep_kv, cache_jobs_run_after_the_training_that_writes_their_kv_file, .timeout = 120)
{
    char config[96], results[96], kv[128], csv[128];
    snprintf(config, sizeof config, "%s/sweep.json", dir);
    snprintf(results, sizeof results, "%s/res", dir);
    snprintf(kv, sizeof kv, "%s/m.kv", results);
    snprintf(csv, sizeof csv, "%s/longctx.csv", results);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    /* MQAR of 16 tokens, dumped at 2x: 32 positions, 1 head of 16 */
    fputs("{\"name\": \"t\", \"threads\": [1], \"measure\": {\"warmup\": 0, \"min_reps\": 1, \"min_time_s\": 0, \"max_reps\": 1},\n"
          " \"suites\": [{\"suite\": \"longctx\", \"kernels\": [\"decode\"], \"H\": [1], \"N\": [1], \"N_kv\": [32],\n"
          " \"D\": [16], \"inputs\": [\"cache:m.kv@0\"]}],\n"
          " \"trainings\": [{\"task\": \"mqar\", \"task_params\": [\"L=16\", \"D=2\", \"V=72\"],\n"
          " \"kernels\": [\"flash\"], \"layers\": 1, \"d_model\": 16, \"heads\": 1, \"mlp\": 0, \"pos\": \"none\",\n"
          " \"steps\": 2, \"warmup\": 1, \"eval_every\": 2, \"batch\": 8, \"train_n\": 16, \"valid_n\": 8, \"test_n\": 8,\n"
          " \"threads\": 1, \"extrapolate\": {\"scale\": [1, 2], \"dump_kv\": \"m.kv\"}}]}\n",
          f);
    fclose(f);
    char *argv[] = {"sweep", "--config", config, "--results", results, NULL};
    cr_assert_eq(cmd_sweep(5, argv), 0, "%s", attn_last_error());
    cr_assert_eq(access(kv, F_OK), 0, "the training wrote %s", kv);
    kv_rows r = {0};
    cr_assert_geq(csvw_read_rows(csv, take, &r), 0, "%s", attn_last_error());
    cr_assert_eq(r.ok, 6, "the job's row and its five measures, all ok");
    cr_assert_eq(r.kv_source, 6, "every row names the file and says kv-file");
    cr_assert_eq(r.recall, 1);
}

Test(sweep_kv, a_dump_kv_with_a_directory_is_refused_naming_the_key)
{
    char config[96], results[96];
    snprintf(config, sizeof config, "%s/bad.json", dir);
    snprintf(results, sizeof results, "%s/res2", dir);
    FILE *f = fopen(config, "w");
    fputs("{\"name\": \"t\", \"trainings\": [{\"task\": \"mqar\", \"task_params\": [\"L=16\", \"D=2\", \"V=72\"],\n"
          " \"kernels\": [\"flash\"], \"extrapolate\": {\"scale\": [1], \"dump_kv\": \"../m.kv\"}}]}\n",
          f);
    fclose(f);
    char *argv[] = {"sweep", "--config", config, "--results", results, "--dry-run", NULL};
    cr_assert_neq(cmd_sweep(6, argv), 0);
    cr_assert(strstr(attn_last_error(), "dump_kv"), "%s", attn_last_error());
}
