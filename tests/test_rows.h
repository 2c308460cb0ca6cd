/* Writing hand-made result rows in tests: the job_id is filled from the
 * row's identity cells (as the harness does) and the row appended whole. */
#ifndef ATTN_TEST_ROWS_H
#define ATTN_TEST_ROWS_H

#include "common/attn_error.h"
#include "harness/results/csvw.h"

#include <criterion/criterion.h>

static inline void test_row_write(csvw *w, csvw_row *r)
{
    char id[17];
    csvw_row_job_id(r, id);
    csvw_row_set(r, ATTN_COL_JOB_ID, "%s", id);
    cr_assert_eq(csvw_write(w, r), 0, "%s", attn_last_error());
}

/* The rows of a file in order (a csvw_read_rows callback): all are counted,
 * the first TEST_ROWS_MAX kept. */
#define TEST_ROWS_MAX 8
typedef struct {
    int n;
    csvw_row rows[TEST_ROWS_MAX];
} test_rows;

static inline int test_rows_collect(const csvw_row *row, void *ud)
{
    test_rows *c = ud;
    if (c->n < TEST_ROWS_MAX)
        c->rows[c->n] = *row;
    c->n++;
    return 0;
}

#endif
