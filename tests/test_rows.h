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

#endif
