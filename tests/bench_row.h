/* One bench job run in a test and formatted as its CSV row (no same-run
 * peaks): what the row-level tests of several files read. */
#ifndef ATTN_TEST_BENCH_ROW_H
#define ATTN_TEST_BENCH_ROW_H

#include "harness/measure/bench.h"

#include <criterion/criterion.h>

static inline void test_bench_row(const bench_job *j, csvw_row *r)
{
    bench_result res;
    cr_assert_eq(bench_run(j, NULL, &res), 0);
    bench_result_row(j, &res, r);
}

#endif
