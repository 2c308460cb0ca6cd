/* results/RECALL.md and recall_best.csv: the best learning rate per cell by
 * its seed mean, cells split by task parameters and model, extrapolation and
 * reload rows left out. */
#include "harness/results/csvw.h"
#include "test_rows.h"
#include "harness/results/recall_report.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put(csvw *w, const char *kernel, int d, const char *params, int seed, const char *acc)
{
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "recall");
    csvw_row_set(&r, ATTN_COL_TASK, "mqar");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MODEL, "lm(L=2,d=%d,H=1,mlp=0,pos=learned)", d);
    csvw_row_set(&r, ATTN_COL_PARAMS, "%s", params);
    csvw_row_set(&r, ATTN_COL_SEED, "%d", seed);
    csvw_row_set(&r, ATTN_COL_METRIC, "accuracy");
    csvw_row_set(&r, ATTN_COL_VALUE, "%s", acc);
    csvw_row_set(&r, ATTN_COL_CI_LOW, "0");
    csvw_row_set(&r, ATTN_COL_CI_HIGH, "1");
    csvw_row_set(&r, ATTN_COL_STATE_BYTES, "%d", d * 100);
    csvw_row_set(&r, ATTN_COL_DATA_SOURCE, "generated");
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    test_row_write(w, &r);
}

Test(recall_report, best_learning_rate_by_seed_mean_per_cell)
{
    char dir[] = "/tmp/attn_recall_XXXXXX", csv[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/recall.csv", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, csv), 0);
    const char *a = "L=256;D=16;lr=0.001;steps=10;step=10;split=test";
    const char *b = "L=256;D=16;lr=0.003;steps=10;step=10;split=test";
    put(&w, "linear", 64, a, 1, "0.50");
    put(&w, "linear", 64, a, 2, "0.30"); /* lr 1e-3: mean 0.40 */
    put(&w, "linear", 64, b, 1, "0.45");
    put(&w, "linear", 64, b, 2, "0.45"); /* lr 3e-3: mean 0.45, the best though not the top single run */
    put(&w, "linear", 64, "L=256;D=16;lr=0.003;steps=10;step=5;split=valid", 1, "0.99");
    put(&w, "linear", 64, "L=256;D=16;lr=0.003;steps=10;step=10;split=test-reload", 1, "0.98");
    put(&w, "linear", 64, "L=256;D=16;lr=0.003;steps=10;split=test;eval_len=1024", 1, "0.97");
    put(&w, "linear", 128, a, 1, "0.90");
    put(&w, "flash", 64, "L=512;D=32;lr=0.001;steps=10;step=10;split=test", 1, "1.0");
    csvw_close(&w);
    static recall_table t;
    cr_assert_eq(recall_table_load(csv, &t), 0);
    cr_assert_eq(t.n, 3, "cells: linear d64 and d128 at L=256, flash at L=512; got %d", t.n);
    char *md = NULL, *best = NULL;
    size_t n;
    FILE *f = open_memstream(&md, &n), *g = open_memstream(&best, &n);
    recall_table_markdown(&t, f);
    recall_table_csv(&t, g);
    fclose(f), fclose(g);
    cr_assert(strstr(best, "mqar,\"L=256;D=16\",linear,\"lm(L=2,d=64,H=1,mlp=0,pos=learned)\",64,0.003,0.450000,0.000000,"
                           "1.000000,2,2,6400,generated"),
              "%s", best);
    cr_assert(strstr(best, ",128,0.001,0.900000,"), "%s", best);
    cr_assert(strstr(md, "## mqar, L=256;D=16 (generated)"), "%s", md);
    cr_assert(strstr(md, "## mqar, L=512;D=32 (generated)"), "%s", md);
    cr_assert(strstr(md, "| `linear` | lm(L=2,H=1,mlp=0,pos=learned) | 0.450 [0.000, 1.000] (lr 0.003, best of 2) | 0.900"),
              "%s", md);
    /* the header names the metric the cells hold: per-example mean over query
     * positions with a normal-approximation interval, not exact match / Wilson */
    cr_assert(strstr(md, "normal-approximation interval of that per-example mean") && !strstr(md, "Wilson"), "%s", md);
    free(md), free(best);
    unlink(csv), rmdir(dir);
}
