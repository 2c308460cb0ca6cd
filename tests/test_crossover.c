/* Crossover lengths: a kernel's series against flash's at common lengths. */
#include "common/attn_error.h"
#include "harness/results/crossover.h"
#include "harness/results/csvw.h"
#include "test_rows.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put(csvw *w, const char *kernel, long n, double ms, const char *status)
{
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "scaling");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "causal");
    csvw_row_set(&r, ATTN_COL_PASS, "fwd");
    csvw_row_set(&r, ATTN_COL_D, "64");
    csvw_row_set(&r, ATTN_COL_N, "%ld", n);
    csvw_row_set(&r, ATTN_COL_N_KV, "%ld", n);
    csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%g", ms);
    csvw_row_set(&r, ATTN_COL_STATUS, "%s", status);
    test_row_write(w, &r);
}

Test(crossover, finds_the_length_from_which_a_kernel_stays_faster)
{
    char dir[] = "/tmp/attn_xover_XXXXXX", path[64], *text = NULL;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/scaling.csv", dir);
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0);
    for (long n = 1024; n <= 16384; n *= 2) {
        put(&w, "flash", n, 1e-6 * (double)n * n, "ok");          /* quadratic */
        put(&w, "linear", n, 1e-1 * (double)n, "ok");             /* crosses at 1e5: beyond 16K */
        put(&w, "deltanet", n, 4e-3 * (double)n, "ok");           /* 4e-3 n < 1e-6 n^2 from n > 4000 */
        put(&w, "gla", n, 1e-9 * (double)n, "ok");                /* always faster */
    }
    put(&w, "broken", 16384, 1e-9, "error:x");                    /* never a point */
    csvw_close(&w);
    crossover_points xs;
    cr_assert_eq(crossover_points_load(path, "scaling", &xs), 0, "%s", attn_last_error());
    size_t len;
    FILE *f = open_memstream(&text, &len);
    cr_assert_eq(crossover_print(&xs, "flash", 1, f), 3);
    fclose(f);
    cr_assert(strstr(text, "\"linear\",\"none\",") != NULL, "%s", text);
    cr_assert(strstr(text, "\"deltanet\",\"4096\",\"1024 2048 4096 8192 16384\",\"faster from here on\"") != NULL,
              "%s", text);
    cr_assert(strstr(text, "\"gla\",\"<=1024\",") != NULL, "%s", text);
    cr_assert(strstr(text, "broken") == NULL, "%s", text);
    free(text);
    crossover_points_free(&xs);
    unlink(path);
    rmdir(dir);
}
