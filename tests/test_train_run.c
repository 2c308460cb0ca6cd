/* A training run end to end: rows per evaluation plus a test row, a
 * checkpoint that reproduces the logged test accuracy exactly on reload, and
 * rows that report the training's own peak RSS. */
#include "common/attn_error.h"
#include "harness/results/csvw.h"
#include "common/rss.h"
#include "harness/train/train_run.h"
#include "test_rows.h"
#include "test_train.h"

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
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    int rows = 0;
    cr_assert_eq(csvw_read_rows(csv, count_rows, &rows), 3); /* steps 10, 20 and the test row */
    cr_assert_eq(test_eval_acc(ckpt, 0, 1, csv, &again, &logged), 0, "%s", attn_last_error());
    cr_assert_eq(logged, acc);
    cr_assert_eq(again, acc, "reloaded %.9g vs trained %.9g", again, acc);
    FILE *f = fopen(ckpt, "r+b"); /* a damaged checkpoint is refused, naming the file */
    fseek(f, 100, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, 100, SEEK_SET); /* a read and a write of an update stream need a seek between them */
    fputc(0x5a ^ byte, f);
    fclose(f);
    cr_assert_lt(test_eval_acc(ckpt, 0, 1, csv, &again, &logged), 0);
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
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    cr_assert(strstr(attn_last_error(), "--model encoder: task 'mqar' needs the lm head"), "%s", attn_last_error());
}

Test(train_run, an_unwritable_results_path_fails_before_any_training_step)
{
    train_run_opts r;
    char dir[] = "/tmp/attn_unwritable_XXXXXX", csv[96];
    tiny_mqar(&r, dir, csv, sizeof csv);
    snprintf(csv, sizeof csv, "%s/missing/recall.csv", dir);
    r.train.steps = 1000000, r.train.halt_after = 1; /* a step taken would fail with another message */
    double acc;
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    cr_assert(strstr(attn_last_error(), "missing/recall.csv: cannot open") != NULL, "%s", attn_last_error());
    rmdir(dir);
}

Test(train_run, an_unwritable_checkpoint_path_fails_before_any_training_step)
{
    train_run_opts r;
    char dir[] = "/tmp/attn_unwritable_XXXXXX", csv[64], ckpt[96];
    tiny_mqar(&r, dir, csv, sizeof csv);
    snprintf(ckpt, sizeof ckpt, "%s/missing/model.ckpt", dir);
    r.checkpoint = ckpt;
    r.train.steps = 1000000, r.train.halt_after = 1; /* a step taken would fail with another message */
    double acc;
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    cr_assert(strstr(attn_last_error(), "missing/model.ckpt") && strstr(attn_last_error(), "cannot create"), "%s",
              attn_last_error());
    unlink(csv), rmdir(dir);
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
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    size_t peak = 0;
    cr_assert_eq(csvw_read_rows(csv, max_peak_rss, &peak), 2);
    cr_assert(peak > 0 && peak + BIG / 2 < high, "rows' peak %zu, process peak before %zu", peak, high);
    unlink(csv), rmdir(dir);
}

/* The numbers train_run_exec returns are the ones its rows hold: one result
 * per validation row, then the test with the weights it evaluated. */
Test(train_run, the_typed_result_holds_what_the_rows_say, .timeout = 60)
{
    char dir[] = "/tmp/attn_train_XXXXXX", csv[64];
    train_run_opts r;
    tiny_mqar(&r, dir, csv, sizeof csv);
    r.train_n = 64, r.valid_n = 16, r.test_n = 24;
    r.model.d_model = 16, r.model.mlp = 0;
    r.train.steps = 6, r.train.warmup = 1, r.train.eval_every = 3, r.train.batch = 8, r.train.threads = 1;
    r.train.patience = 5; /* keeps the best weights: the test names them */
    train_result res;
    cr_assert_eq(train_run_exec(&r, &res), 0, "%s", attn_last_error());
    static test_rows x; /* static: rows are large for a test's stack */
    cr_assert_eq(csvw_read_rows(csv, test_rows_collect, &x), 3);
    cr_assert_eq(res.n_evals, 2);
    for (int i = 0; i < 3; i++) {
        const train_eval_result *e = i < 2 ? &res.evals[i] : &res.test;
        const csvw_row *row = &x.rows[i];
        cr_assert_eq(e->kind, i < 2 ? TRAIN_EVAL_VALID : TRAIN_EVAL_TEST);
        cr_assert_eq(e->status, TRAIN_EVAL_OK);
        cr_assert_float_eq(strtod(row->cell[ATTN_COL_VALUE], NULL), e->value, 5e-7);
        cr_assert_float_eq(strtod(row->cell[ATTN_COL_CI_LOW], NULL), e->ci_low, 5e-7);
        cr_assert_float_eq(strtod(row->cell[ATTN_COL_CI_HIGH], NULL), e->ci_high, 5e-7);
        cr_assert_eq(strtoll(row->cell[ATTN_COL_TRAIN_STEPS], NULL, 10), e->step);
        cr_assert_eq((size_t)strtoull(row->cell[ATTN_COL_PEAK_RSS_BYTES], NULL, 10), e->peak_rss_bytes);
        cr_assert_eq(e->examples, i < 2 ? 16 : 24);
        cr_assert_eq(row->cell[ATTN_COL_TRAIN_TIME_S][0] != '\0', i < 2, "%s", row->cell[ATTN_COL_TRAIN_TIME_S]);
    }
    cr_assert_eq(res.evals[1].step, 6);
    cr_assert_eq(res.weights, TRAIN_WEIGHTS_BEST);
    cr_assert(res.best_step == 3 || res.best_step == 6, "%lld", (long long)res.best_step);
    cr_assert_eq(res.test.step, res.best_step);
    char tail[64];
    snprintf(tail, sizeof tail, ";split=test;best_step=%lld;weights=best", (long long)res.best_step);
    const char *params = x.rows[2].cell[ATTN_COL_PARAMS];
    cr_assert(strlen(params) > strlen(tail) && !strcmp(params + strlen(params) - strlen(tail), tail), "%s", params);
    train_result_free(&res);
    unlink(csv), rmdir(dir);
}

/* The CSV cells of an evaluation come from its typed values: the step time
 * is the training time over the steps, and only validation rows have one. */
Test(train_run, a_row_is_formatted_from_the_typed_evaluation)
{
    train_eval_result e = {.kind = TRAIN_EVAL_VALID, .split = "valid", .step = 40, .metric = "accuracy",
                           .value = 0.25, .ci_low = 0.125, .ci_high = 0.375, .examples = 64, .peak_rss_bytes = 4096,
                           .state_bytes = 512,
                           .progress = {.steps = 80, .train_time_s = 2.0, .tokens_per_s = 1234.56}};
    csvw_row row;
    csvw_row_init(&row);
    train_eval_fill(&e, &row);
    cr_assert_str_eq(row.cell[ATTN_COL_VALUE], "0.250000");
    cr_assert_str_eq(row.cell[ATTN_COL_CI_LOW], "0.125000");
    cr_assert_str_eq(row.cell[ATTN_COL_TRAIN_STEPS], "40");
    cr_assert_str_eq(row.cell[ATTN_COL_TRAIN_TIME_S], "2.000");
    cr_assert_str_eq(row.cell[ATTN_COL_TOKENS_PER_S], "1234.6");
    cr_assert_str_eq(row.cell[ATTN_COL_TIME_MS_MEDIAN], "50");
    cr_assert_str_eq(row.cell[ATTN_COL_STATE_BYTES], "512");
    cr_assert_str_eq(row.cell[ATTN_COL_STATUS], "ok");
    e.kind = TRAIN_EVAL_TEST, e.weights = TRAIN_WEIGHTS_LAST, e.best_step = 20;
    e.status = TRAIN_EVAL_ERROR;
    snprintf(e.reason, sizeof e.reason, "out of memory");
    csvw_row_init(&row);
    csvw_row_set(&row, ATTN_COL_PARAMS, "split=test");
    train_eval_fill(&e, &row);
    cr_assert_str_eq(row.cell[ATTN_COL_PARAMS], "split=test;best_step=20;weights=last");
    cr_assert_str_eq(row.cell[ATTN_COL_TRAIN_TIME_S], "");
    cr_assert_str_eq(row.cell[ATTN_COL_TIME_MS_MEDIAN], "");
    cr_assert_str_eq(row.cell[ATTN_COL_STATUS], "error:out of memory");
}

static int mask_cells(const csvw_row *row, void *ud)
{
    cr_assert_str_eq(row->cell[ATTN_COL_MASK], (const char *)ud, "every row names the model's mask");
    return 0;
}

/* A model mask (LRA's sparse-pattern rows) is what every layer trains and
 * evaluates with: the rows name it, the checkpoint keeps it (a reload scores
 * the same), and the lm head refuses a mask that sees the future. */
Test(train_run, a_model_mask_is_trained_recorded_and_reloaded, .timeout = 120)
{
    char dir[] = "/tmp/attn_mask_XXXXXX", csv[64], ckpt[64];
    train_run_opts r;
    tiny_mqar(&r, dir, csv, sizeof csv);
    snprintf(ckpt, sizeof ckpt, "%s/model.ckpt", dir);
    r.train_n = 64, r.valid_n = 16, r.test_n = 16;
    r.model.d_model = 16, r.model.mlp = 0;
    r.train.steps = 12, r.train.warmup = 2, r.train.eval_every = 12, r.train.batch = 8, r.train.threads = 2;
    r.checkpoint = ckpt;
    cr_assert_eq(opt_set_text(opt_find(nn_model_opts, "mask"), &r.model, "window:wr=0,wl=6", "--mask"), 0);
    cr_assert_str_eq(r.model.mask, "window:wl=6,wr=0", "kept in canonical spelling");
    double acc, again, logged;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    cr_assert_eq(csvw_read_rows(csv, mask_cells, "window:wl=6,wr=0"), 2);
    cr_assert_eq(test_eval_acc(ckpt, 0, 1, csv, &again, &logged), 0, "%s", attn_last_error());
    cr_assert_eq(again, acc, "reloaded %.9g vs trained %.9g", again, acc);
    unlink(csv), unlink(ckpt), rmdir(dir);

    tiny_mqar(&r, (char[]){"/tmp/attn_mask_XXXXXX"}, csv, sizeof csv);
    cr_assert_eq(opt_set_text(opt_find(nn_model_opts, "mask"), &r.model, "window:w=6", "--mask"), 0);
    r.train_n = r.valid_n = r.test_n = 4;
    cr_assert_lt(test_train_acc(&r, &acc), 0);
    cr_assert(strstr(attn_last_error(), "expected a causal mask, found 'window:wl=6,wr=6'"), "%s", attn_last_error());
}

static int kernel_params_cell(const csvw_row *row, void *ud)
{
    cr_assert(strstr(row->cell[ATTN_COL_PARAMS], (const char *)ud), "%s", row->cell[ATTN_COL_PARAMS]);
    return 0;
}

/* Runs of two budgets or two random draws are two settings: training rows
 * name the kernel parameters given and the seeds a kernel records. */
Test(train_run, rows_name_the_kernel_parameters_and_recorded_seeds, .timeout = 60)
{
    char dir[] = "/tmp/attn_kp_XXXXXX", csv[64];
    train_run_opts r;
    tiny_mqar(&r, dir, csv, sizeof csv);
    r.train_n = 32, r.valid_n = 8, r.test_n = 8;
    r.model.d_model = 16, r.model.mlp = 0;
    r.train.steps = 4, r.train.warmup = 1, r.train.eval_every = 4, r.train.batch = 8, r.train.threads = 1;
    strcpy(r.model.kernels[0], "performer");
    cr_assert_eq(param_bag_add(&r.model.kparams, "features=16"), 0);
    double acc;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s", attn_last_error());
    cr_assert_eq(csvw_read_rows(csv, kernel_params_cell, ";kernel_params=features=16,seed=0,draw=0;"), 2);
    unlink(csv), rmdir(dir);
}
