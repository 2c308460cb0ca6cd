/* The rows of a Pathfinder training on the official layout say how many
 * images the loader skipped as unreadable: params end in ";skipped=N" when
 * N > 0 and carry no "skipped=" when every image read (the clean case adds
 * nothing, so rows of clean trees keep the cells they always had). The
 * count is provenance, not identity: both runs' rows have the same job_id. */
#include "common/attn_error.h"
#include "harness/results/csvw.h"
#include "harness/train/train_run.h"
#include "tasks/task.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX ATTN_SOURCE_DIR "/tests/data/lra/pathfinder"
#define CURV "pathfinder32/curv_contour_length_14"

/* A copy of the fixture release (2 metadata files x 3 images, by symlinks)
 * without imgs/2/sample_2.png (set_sample_2 puts it in). */
static void make_tree(char *dir)
{
    cr_assert_not_null(mkdtemp(dir));
    static const char *const sub[] = {"/pathfinder32", "/" CURV, "/" CURV "/metadata", "/" CURV "/imgs",
                                      "/" CURV "/imgs/2", "/" CURV "/imgs/10"};
    char path[512], target[512];
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        snprintf(path, sizeof path, "%s%s", dir, sub[i]);
        cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
    }
    static const char *const files[] = {"metadata/2.npy", "metadata/10.npy", "imgs/2/sample_0.png",
                                        "imgs/2/sample_1.png", "imgs/10/sample_0.png", "imgs/10/sample_1.png",
                                        "imgs/10/sample_2.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/" CURV "/%s", dir, files[i]);
        snprintf(target, sizeof target, FIX "/official/" CURV "/%s", files[i]);
        cr_assert_eq(symlink(target, path), 0, "%s", path);
    }
}

/* imgs/2/sample_2.png becomes `image` (a path under FIX). */
static void set_sample_2(const char *dir, const char *image)
{
    char path[512], target[512];
    snprintf(path, sizeof path, "%s/" CURV "/imgs/2/sample_2.png", dir);
    snprintf(target, sizeof target, FIX "/%s", image);
    unlink(path);
    cr_assert_eq(symlink(target, path), 0, "%s", path);
}

/* 6 images split 4/1/1 (split_seed 42): the train split holds sample_2.png. */
static void tiny_run(train_run_opts *r, const char *dir, char *csv, size_t n)
{
    train_run_defaults(r);
    strcpy(r->task, "pathfinder");
    snprintf(r->data_dir, sizeof r->data_dir, "%s", dir);
    snprintf(csv, n, "%s/lra.csv", dir);
    r->out = csv;
    r->train_n = 3, r->valid_n = 1, r->test_n = 1;
    r->model.layers = 1, r->model.d_model = 8, r->model.heads = 1, r->model.mlp = 0;
    r->train.steps = 1, r->train.warmup = 0, r->train.eval_every = 1, r->train.batch = 1, r->train.threads = 1;
    r->train.progress = 0;
}

/* What the loader itself counted over the three splits of run r. */
static int64_t loader_skips(const train_run_opts *r)
{
    const task_def *t = task_find("pathfinder");
    const int64_t n[3] = {r->train_n, r->valid_n, r->test_n};
    int64_t sum = 0;
    for (int q = 0; q < 3; q++) {
        task_data d;
        cr_assert_eq(t->make(&r->task_params, (task_split)q, r->data_seed, n[q], r->data_dir, &d), 0, "%s",
                     attn_last_error());
        sum += d.skipped;
        task_data_free(&d);
    }
    return sum;
}

typedef struct {
    int n;
    char params[2][ATTN_CELL_MAX], job_id[2][17];
} two_rows;

static int keep_row(const csvw_row *row, void *ud)
{
    two_rows *x = ud;
    cr_assert_lt(x->n, 2, "more than the valid and the test row");
    memcpy(x->params[x->n], row->cell[ATTN_COL_PARAMS], ATTN_CELL_MAX);
    memcpy(x->job_id[x->n], row->cell[ATTN_COL_JOB_ID], 17);
    x->n++;
    return 0;
}

/* Trains on the tree in dir and returns its rows (valid at step 1, then test). */
static void train_rows(const char *dir, int64_t want_skipped, two_rows *x)
{
    char csv[64];
    train_run_opts r;
    tiny_run(&r, dir, csv, sizeof csv);
    cr_assert_eq(loader_skips(&r), want_skipped, "the loader's own count over the splits");
    train_result res;
    cr_assert_eq(train_run_exec(&r, &res), 0, "%s", attn_last_error());
    train_result_free(&res);
    memset(x, 0, sizeof *x);
    cr_assert_eq(csvw_read_rows(csv, keep_row, x), 2, "%s", attn_last_error());
    unlink(csv);
}

Test(pathfinder_skipped, a_training_rows_params_count_the_skipped_images, .timeout = 120,
     .init = cr_redirect_stderr)
{
    static two_rows corrupt, clean; /* static: cells are large for a test's stack */
    char dir[] = "/tmp/attn_pfskip_XXXXXX";
    make_tree(dir);
    set_sample_2(dir, "png/bad_crc.png");
    train_rows(dir, 1, &corrupt);
    set_sample_2(dir, "official/" CURV "/imgs/2/sample_0.png");
    train_rows(dir, 0, &clean);
    for (int i = 0; i < 2; i++) {
        cr_assert(strstr(corrupt.params[i], ";skipped=1") && !strstr(corrupt.params[i], ";skipped=1;skipped"),
                  "row %d: %s", i, corrupt.params[i]);
        cr_assert_null(strstr(clean.params[i], "skipped="), "row %d: %s", i, clean.params[i]);
        cr_assert_str_eq(corrupt.job_id[i], clean.job_id[i], "the count is provenance, not part of the job_id");
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
