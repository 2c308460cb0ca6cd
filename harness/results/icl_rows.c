/* Rows of the in-context regression suite (icl_rows.h). */
#include "icl_rows.h"

#include "csvw.h"
#include "harness/measure/bench.h"

#include <stdlib.h>

void icl_row(const icl_rows_id *id, const icl_curve *c, int64_t k, csvw_row *row)
{
    const icl_linreg_cfg *t = id->task;
    double mean, lo, hi;
    icl_curve_stat(c, k, t->d, &mean, &lo, &hi);
    bench_row_begin(row, id->threads, "icl");
    csvw_row_set(row, ATTN_COL_TASK, "icl_linreg");
    csvw_row_set(row, ATTN_COL_KERNEL, "%s", id->kernel);
    csvw_row_set(row, ATTN_COL_MODEL, "%s", id->model);
    csvw_row_set(row, ATTN_COL_MASK, "causal");
    csvw_row_set(row, ATTN_COL_PASS, "%s", id->pass);
    bench_row_shape(row, &(bench_shape){id->prompts, 1, 1, icl_prompt_len(t->points), icl_prompt_len(t->points),
                                        t->d, t->d});
    csvw_row_set(row, ATTN_COL_DTYPE, "%s", id->dtype);
    csvw_row_set(row, ATTN_COL_PARAMS, "d=%lld;points=%lld;sigma=%g;%s;prompts=%lld;k=%lld", (long long)t->d,
                 (long long)t->points, t->sigma, id->settings, (long long)id->prompts, (long long)k);
    csvw_row_set(row, ATTN_COL_SEED, "%llu", (unsigned long long)id->seed);
    csvw_row_set(row, ATTN_COL_DATA_SOURCE, "generated");
    csvw_row_set(row, ATTN_COL_METRIC, "sq_err");
    csvw_row_set_num(row, ATTN_COL_VALUE, mean);
    csvw_row_set_num(row, ATTN_COL_CI_LOW, lo);
    csvw_row_set_num(row, ATTN_COL_CI_HIGH, hi);
    csvw_row_set(row, ATTN_COL_PAPI_STATUS, "NA:not measured in quality rows");
    csvw_row_set(row, ATTN_COL_STATUS, "ok");
    char id_hex[17];
    csvw_row_job_id(row, id_hex);
    csvw_row_set(row, ATTN_COL_JOB_ID, "%s", id_hex);
}

int icl_rows_write(const char *path, const icl_rows_id *ids, const icl_curve *curves, int n, int *written)
{
    int64_t cap = 0, used = 0;
    for (int c = 0; c < n; c++)
        cap += ids[c].task->points;
    csvw_row *rows = malloc(sizeof *rows * (size_t)(cap ? cap : 1));
    csvw_idset done;
    csvw_idset_init(&done);
    int rc = rows ? csvw_load_job_ids(path, &done)
                  : attn_fail(ATTN_ENOMEM, "%s: no memory for %lld rows", path, (long long)cap);
    for (int c = 0; !rc && c < n; c++)
        for (int64_t k = 0; k < ids[c].task->points; k++) {
            icl_row(&ids[c], &curves[c], k, &rows[used]);
            used += !csvw_idset_contains(&done, rows[used].cell[ATTN_COL_JOB_ID]); /* the same row again: kept once */
        }
    csvw w;
    if (!rc && used && !(rc = csvw_open(&w, path))) {
        rc = csvw_write_rows(&w, rows, (int)used);
        int rc2 = csvw_close(&w);
        rc = rc ? rc : rc2;
    }
    *written = rc ? 0 : (int)used;
    csvw_idset_free(&done);
    free(rows);
    return rc;
}
