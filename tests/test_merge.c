/* attnbench merge (harness/results/merge.h): the parts of a sharded sweep
 * joined into one directory, every row once, conflicts and foreign headers
 * refused. */
#include "common/attn_error.h"
#include "harness/results/csvw.h"
#include "harness/results/merge.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void quiet(void) { cr_redirect_stderr(); }

TestSuite(merge, .init = quiet);

static char root[64];

static const char *dir(const char *name)
{
    static char buf[4][128];
    static int k;
    char *b = buf[k++ % 4];
    if (!root[0]) {
        strcpy(root, "/tmp/attn_merge_XXXXXX");
        cr_assert(mkdtemp(root));
    }
    snprintf(b, 128, "%s/%s", root, name);
    mkdir(b, 0777);
    return b;
}

/* A kernels row for job n of value v. */
static void write_row(const char *d, const char *file, int n, const char *value)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", d, file);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0);
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "kernels");
    csvw_row_set(&r, ATTN_COL_KERNEL, "flash");
    csvw_row_set(&r, ATTN_COL_N, "%d", n);
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    csvw_row_set(&r, ATTN_COL_VALUE, "%s", value);
    cr_assert_eq(csvw_write(&w, &r), 0);
    csvw_close(&w);
}

typedef struct {
    int rows;
    csvw_idset ids;
} tally;

static int count(const csvw_row *r, void *ud)
{
    tally *t = ud;
    t->rows++;
    csvw_idset_add(&t->ids, r->cell[ATTN_COL_JOB_ID]);
    return 0;
}

static tally read_back(const char *d, const char *file)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", d, file);
    tally t = {0};
    csvw_idset_init(&t.ids);
    cr_assert_geq(csvw_read_rows(path, count, &t), 0, "%s", path);
    return t;
}

/* Two parts with overlapping identical rows: every job once; merging again
 * adds nothing. */
Test(merge, every_job_lands_once_and_a_second_merge_adds_nothing)
{
    const char *a = dir("a"), *b = dir("b"), *out = dir("out");
    for (int n = 1; n <= 5; n++)
        write_row(a, "kernels.csv", n, "1");
    for (int n = 4; n <= 9; n++) /* 4 and 5: the same rows as a's */
        write_row(b, "kernels.csv", n, "1");
    write_row(b, "decode.csv", 100, "2");
    const char *parts[] = {a, b};
    results_merge_stats st;
    cr_assert_eq(results_merge(parts, 2, out, &st), 0, "%s", attn_last_error());
    tally k = read_back(out, "kernels.csv"), d = read_back(out, "decode.csv");
    cr_assert_eq(k.rows, 9, "%d rows", k.rows);
    cr_assert_eq(k.ids.n, 9);
    cr_assert_eq(d.rows, 1);
    cr_assert_eq(st.duplicates, 2);
    cr_assert_eq(results_merge(parts, 2, out, &st), 0, "%s", attn_last_error());
    tally again = read_back(out, "kernels.csv");
    cr_assert_eq(again.rows, 9, "%d rows after a second merge", again.rows);
    cr_assert_eq(st.written, 0);
    csvw_idset_free(&k.ids), csvw_idset_free(&d.ids), csvw_idset_free(&again.ids);
}

/* One job_id with different cells in two parts: an error naming file:line,
 * and nothing of that file written. */
Test(merge, a_job_with_different_cells_is_a_conflict_naming_file_and_line)
{
    const char *a = dir("ca"), *b = dir("cb"), *out = dir("cout");
    write_row(a, "kernels.csv", 1, "1");
    write_row(b, "kernels.csv", 2, "1");
    write_row(b, "kernels.csv", 1, "7");
    const char *parts[] = {a, b};
    results_merge_stats st;
    cr_assert_eq(results_merge(parts, 2, out, &st), ATTN_EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s/kernels.csv:3:", b);
    cr_assert(strstr(attn_last_error(), want), "%s", attn_last_error());
    snprintf(want, sizeof want, "%s/kernels.csv:2", a);
    cr_assert(strstr(attn_last_error(), want), "%s", attn_last_error());
    char path[256];
    snprintf(path, sizeof path, "%s/kernels.csv", out);
    cr_assert_neq(access(path, F_OK), 0, "a conflicting file must not be written");
}

/* A part whose header is not the schema's is refused by name. */
Test(merge, a_file_with_another_header_is_refused)
{
    const char *a = dir("ha"), *b = dir("hb"), *out = dir("hout");
    write_row(a, "kernels.csv", 1, "1");
    char path[256];
    snprintf(path, sizeof path, "%s/kernels.csv", b);
    FILE *f = fopen(path, "w");
    fputs("run_id,utc,something_else\n1,2,3\n", f);
    fclose(f);
    const char *parts[] = {a, b};
    results_merge_stats st;
    cr_assert_eq(results_merge(parts, 2, out, &st), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "kernels.csv:1: header column"), "%s", attn_last_error());
}

/* peak.csv: each run's peaks share job_ids; every distinct row is kept. */
Test(merge, peak_rows_of_different_runs_are_all_kept)
{
    const char *a = dir("pa"), *b = dir("pb"), *out = dir("pout");
    write_row(a, "peak.csv", 1, "100");
    write_row(b, "peak.csv", 1, "90");
    write_row(b, "peak.csv", 1, "100");
    const char *parts[] = {a, b};
    results_merge_stats st;
    cr_assert_eq(results_merge(parts, 2, out, &st), 0, "%s", attn_last_error());
    tally p = read_back(out, "peak.csv");
    cr_assert_eq(p.rows, 2, "%d peak rows", p.rows);
    csvw_idset_free(&p.ids);
}
