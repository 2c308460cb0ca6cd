/* Building a task's data in tests: make_task asserts that it succeeds,
 * make_fails that it fails with a message holding a given text. */
#ifndef ATTN_TEST_TASK_CHECK_H
#define ATTN_TEST_TASK_CHECK_H

#include "common/attn_error.h"
#include "tasks/task.h"

#include <criterion/criterion.h>
#include <string.h>

static inline void make_task(const task_def *t, const char *params, task_split split, uint64_t seed, int64_t n,
                             task_data *d)
{
    param_bag p = {.n = 0};
    cr_assert_eq(param_bag_add_list(&p, params), 0, "%s", attn_last_error());
    cr_assert_eq(t->make(&p, split, seed, n, NULL, d), 0, "%s: %s", t->name, attn_last_error());
    cr_assert_eq(d->n, n);
}

static inline int make_fails(const task_def *t, const char *params, const char *needle)
{
    param_bag p = {.n = 0};
    param_bag_add_list(&p, params); /* a bad pair is what some cases test: make reports it */
    task_data d;
    memset(&d, 0, sizeof d);
    int rc = t->make(&p, TASK_TRAIN, 1, 4, NULL, &d);
    task_data_free(&d);
    return rc < 0 && strstr(attn_last_error(), needle) != NULL;
}

#endif
