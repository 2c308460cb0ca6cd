/* Training in tests: most compare only the test accuracy of a run. */
#ifndef ATTN_TEST_TRAIN_H
#define ATTN_TEST_TRAIN_H

#include "harness/train/train_run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* train_run_exec keeping the test accuracy (*acc, when it succeeds) and
 * freeing the rest of the result. Returns train_run_exec's code. */
static inline int test_train_acc(const train_run_opts *r, double *acc)
{
    train_result res;
    int rc = train_run_exec(r, &res);
    if (!rc)
        *acc = res.test.value;
    train_result_free(&res);
    return rc;
}

/* train_run_eval_checkpoint keeping the accuracy (*acc, when it succeeds). */
static inline int test_eval_acc(const char *path, int64_t test_n, int threads, const char *out, double *acc,
                                double *logged)
{
    train_eval_result e;
    int rc = train_run_eval_checkpoint(path, test_n, threads, out, &e, logged);
    if (!rc)
        *acc = e.value;
    return rc;
}

/* A small MQAR run (L 32, 4 pairs, vocabulary 64) with its CSV in a new
 * temporary folder: dir (a mkdtemp template) and csv are filled in. */
static inline void tiny_mqar(train_run_opts *r, char *dir, char *csv, size_t csv_size)
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

#endif
