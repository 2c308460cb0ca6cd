/* results/LRA.md: test rows become cells that name non-official data sources,
 * the published rows of the same models sit beside them, and the average
 * needs all five tasks. */
#include "csvw.h"
#include "test_rows.h"
#include "lra_report.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put(csvw *w, const char *task, const char *kernel, const char *split, const char *acc, const char *src)
{
    attn_row r;
    attn_row_init(&r);
    attn_row_set(&r, ATTN_COL_SUITE, "lra");
    attn_row_set(&r, ATTN_COL_TASK, "%s", task);
    attn_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    attn_row_set(&r, ATTN_COL_PARAMS, "lr=0.001;step=10;split=%s", split);
    attn_row_set(&r, ATTN_COL_METRIC, "accuracy");
    attn_row_set(&r, ATTN_COL_VALUE, "%s", acc);
    attn_row_set(&r, ATTN_COL_DATA_SOURCE, "%s", src);
    attn_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%s", !strcmp(kernel, "flash") ? "20" : "10");
    attn_row_set(&r, ATTN_COL_STATUS, "ok");
    test_row_write(w, &r);
}

Test(lra_report, cells_name_their_source_beside_the_published_rows)
{
    char dir[] = "/tmp/attn_lra_XXXXXX", csv[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/lra.csv", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, csv), 0);
    put(&w, "listops", "flash", "valid", "0.30", "generated");
    put(&w, "listops", "flash", "test", "0.364", "generated");
    put(&w, "image", "flash", "test", "0.5", "official");
    put(&w, "listops", "linear", "valid", "0.2", "generated");
    put(&w, "listops", "linear", "test", "0.25", "generated");
    put(&w, "listops", "linear", "test-reload", "0.99", "generated"); /* a reload is not another run */
    csvw_close(&w);
    static lra_table t;
    cr_assert_eq(lra_table_load(csv, &t), 0);
    char *md = NULL, *bub = NULL;
    size_t n;
    FILE *f = open_memstream(&md, &n), *g = open_memstream(&bub, &n);
    lra_table_markdown(&t, f);
    lra_table_bubbles(&t, g);
    fclose(f), fclose(g);
    cr_assert(strstr(md, "| attnbench `flash` | 36.40 (generated) | — | — | 50.00 | — | — | — (2 of 5 tasks) |"), "%s", md);
    cr_assert(strstr(md, "| *published: Transformer* | *36.37* |"), "%s", md);
    cr_assert(strstr(md, "| attnbench `linear` | 25.00 (generated) |"), "%s", md);
    cr_assert(strstr(md, "| *published: Linear Trans.* | *16.13* |"), "%s", md);
    cr_assert(strstr(bub, "linear,2.0000,25.000"), "%s", bub); /* half the step time of flash */
    free(md), free(bub);
    unlink(csv), rmdir(dir);
}
