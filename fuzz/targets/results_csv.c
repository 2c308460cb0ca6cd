/* Results CSV files (harness/results/csvw.h) as `sweep --resume` and
 * `report` read them: the job ids, the rows before and after csvw_open's
 * repair, and the LRA report's table. What csvw_open accepts must then read
 * strictly with the rows the resume saw. (The converse does not hold: a file
 * whose header line is torn reads as no rows, but csvw_open refuses to append
 * to what may not be a results file.) */
#include "fuzz/fuzz_io.h"
#include "fuzz/fuzz_targets.h"
#include "harness/results/csvw.h"
#include "harness/results/lra_report.h"

#include <stdio.h>
#include <stdlib.h>

static int count_row(const csvw_row *row, void *ud)
{
    char id[17];
    csvw_row_job_id(row, id);
    ++*(long *)ud;
    return 0;
}

static void broken(const char *what, long a, long b)
{
    fprintf(stderr, "fuzz results_csv: %s (%ld, %ld): %s\n", what, a, b, attn_last_error());
    abort();
}

/* The rows csvw_open keeps are the rows a resume read, and they read strictly. */
static void check_repair(const char *path, int before)
{
    csvw w;
    attn_clear_error();
    int rc = csvw_open(&w, path);
    fuzz_check_error(rc, "results_csv: csvw_open");
    if (rc == 0 && before < 0)
        broken("csvw_open accepts a file the resume refuses", rc, before);
    if (rc)
        return;
    csvw_close(&w);
    long seen = 0;
    int after = csvw_read_rows(path, count_row, &seen);
    if (after != before || w.rows != before || seen != before)
        broken("rows after the repair differ from the rows read before it", after, before);
}

int fuzz_results_csv(const uint8_t *data, size_t n)
{
    const char *path = fuzz_write("results.csv", data, n);
    csvw_idset ids;
    csvw_idset_init(&ids);
    attn_clear_error();
    int rc = csvw_load_job_ids(path, &ids);
    fuzz_check_error(rc, "results_csv: csvw_load_job_ids");
    csvw_idset_free(&ids);
    long seen = 0;
    attn_clear_error();
    int strict = csvw_read_rows(path, count_row, &seen);
    fuzz_check_error(strict, "results_csv: csvw_read_rows");
    seen = 0;
    attn_clear_error();
    int before = csvw_read_rows_before_repair(path, count_row, &seen);
    fuzz_check_error(before, "results_csv: csvw_read_rows_before_repair");
    if (before >= 0 && seen != before)
        broken("csvw_read_rows_before_repair's count differs from its callbacks", before, seen);
    lra_table *t = malloc(sizeof *t);
    if (t) {
        attn_clear_error();
        int lra = lra_table_load(path, t);
        fuzz_check_error(lra, "results_csv: lra_table_load");
        free(t);
    }
    check_repair(path, before);
    return strict < 0 ? strict : 0;
}
