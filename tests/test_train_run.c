/* A training run end to end: rows per evaluation plus a test row, a
 * checkpoint that reproduces the logged test accuracy exactly on reload, and
 * rows that report the training's own peak RSS. */
#include "common/attn_error.h"
#include "harness/results/csvw.h"
#include "common/rss.h"
#include "harness/train/train_run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int count_rows(const csvw_row *row, void *ud)
{
    int *n = ud;
    cr_assert_str_eq(row->cell[ATTN_COL_STATUS], "ok");
    cr_assert_str_eq(row->cell[ATTN_COL_METRIC], "accuracy");
    cr_assert_str_eq(row->cell[ATTN_COL_SUITE], "recall");
    cr_assert_str_eq(row->cell[ATTN_COL_DATA_SOURCE], "generated");
    (*n)++;
    return 0;
}

/* A small MQAR run (L 32, 4 pairs, vocabulary 64) with its CSV in a new
 * temporary folder: dir (a mkdtemp template) and csv are filled in. */
static void tiny_mqar(train_run_opts *r, char *dir, char *csv, size_t csv_size)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, csv_size, "%s/recall.csv", dir);
    train_run_defaults(r);
    strcpy(r->task, "mqar");
    cr_assert_eq(param_bag_add(&r->task_params, "L=32"), 0);
    cr_assert_eq(param_bag_add(&r->task_params, "D=4"), 0);
    cr_assert_eq(param_bag_add(&r->task_params, "V=64"), 0);
    r->train.progress = 0;
    r->out = csv;
}

Test(train_run, checkpoint_reload_reproduces_the_logged_test_accuracy, .timeout = 120)
{
    char dir[] = "/tmp/attn_train_XXXXXX", csv[64], ckpt[64];
    train_run_opts r;
    tiny_mqar(&r, dir, csv, sizeof csv);
    snprintf(ckpt, sizeof ckpt, "%s/model.ckpt", dir);
    r.train_n = 256, r.valid_n = 32, r.test_n = 40; /* 40: the last test batch is partial */
    r.model.d_model = 32, r.model.mlp = 0;
    r.train.steps = 20, r.train.eval_every = 10, r.train.batch = 16, r.train.threads = 2;
    r.checkpoint = ckpt;
    double acc, again, logged;
    cr_assert_eq(train_run_exec(&r, &acc), 0, "%s", attn_last_error());
    int rows = 0;
    cr_assert_eq(csvw_read_rows(csv, count_rows, &rows), 3); /* steps 10, 20 and the test row */
    cr_assert_eq(train_run_eval_checkpoint(ckpt, 0, 1, csv, &again, &logged), 0, "%s", attn_last_error());
    cr_assert_eq(logged, acc);
    cr_assert_eq(again, acc, "reloaded %.9g vs trained %.9g", again, acc);
    FILE *f = fopen(ckpt, "r+b"); /* a damaged checkpoint is refused, naming the file */
    fseek(f, 100, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, 100, SEEK_SET); /* a read and a write of an update stream need a seek between them */
    fputc(0x5a ^ byte, f);
    fclose(f);
    cr_assert_lt(train_run_eval_checkpoint(ckpt, 0, 1, csv, &again, &logged), 0);
    cr_assert(strstr(attn_last_error(), "model.ckpt"), "%s", attn_last_error());
    unlink(csv), unlink(ckpt), rmdir(dir);
}

Test(train_run, a_model_that_does_not_fit_the_task_is_refused)
{
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, "mqar");
    r.model.variant = NN_VARIANT_ENCODER;
    r.train_n = r.valid_n = r.test_n = 4, r.train.progress = 0;
    double acc;
    cr_assert_lt(train_run_exec(&r, &acc), 0);
    cr_assert(strstr(attn_last_error(), "--model encoder: task 'mqar' needs the lm head"), "%s", attn_last_error());
}

static int max_peak_rss(const csvw_row *row, void *ud)
{
    size_t *peak = ud, v = (size_t)strtoull(row->cell[ATTN_COL_PEAK_RSS_BYTES], NULL, 10);
    *peak = v > *peak ? v : *peak;
    return 0;
}

/* A sweep runs many trainings in one process: a small training after a
 * bigger allocation must not report the earlier peak (it did, so the LRA
 * bubble chart gave every kernel the largest training's memory). */
Test(train_run, rows_report_the_trainings_own_peak_rss, .timeout = 60)
{
    enum { BIG = 256 << 20 };
    if (rss_reset_peak() != 0)
        cr_skip_test("peak RSS reset unsupported here: %s", attn_last_error());
    char *p = malloc(BIG); /* mmap'd: free returns it, the high-water mark stays */
    cr_assert_not_null(p);
    for (size_t i = 0; i < BIG; i += 4096)
        p[i] = (char)i;
    free(p);
    size_t high = rss_peak_bytes();
    char dir[] = "/tmp/attn_train_XXXXXX", csv[64];
    train_run_opts r;
    tiny_mqar(&r, dir, csv, sizeof csv);
    r.train_n = 64, r.valid_n = 16, r.test_n = 16;
    r.model.d_model = 16, r.model.mlp = 0;
    r.train.steps = 4, r.train.warmup = 1, r.train.eval_every = 4, r.train.batch = 8;
    double acc;
    cr_assert_eq(train_run_exec(&r, &acc), 0, "%s", attn_last_error());
    size_t peak = 0;
    cr_assert_eq(csvw_read_rows(csv, max_peak_rss, &peak), 2);
    cr_assert(peak > 0 && peak + BIG / 2 < high, "rows' peak %zu, process peak before %zu", peak, high);
    unlink(csv), rmdir(dir);
}
