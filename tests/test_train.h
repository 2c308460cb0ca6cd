/* Training in tests: most compare only the test accuracy of a run. */
#ifndef ATTN_TEST_TRAIN_H
#define ATTN_TEST_TRAIN_H

#include "harness/train/train_run.h"

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

#endif
