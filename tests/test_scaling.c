/* Scaling exponent: the least-squares slope of log time on log length over
 * one series, from 16K up to the run's own length; NA outside that range. */
#include "harness/results/csvw.h"
#include "harness/results/scaling.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

/* The series key of a causal fwd row of `kernel` with N queries (N = N_kv
 * leaves N out of the key). */
static const char *series(const char *kernel, long n, long n_kv)
{
    static char key[256];
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "scaling");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "causal");
    csvw_row_set(&r, ATTN_COL_PASS, "fwd");
    csvw_row_set(&r, ATTN_COL_D, "64");
    csvw_row_set(&r, ATTN_COL_N, "%ld", n);
    csvw_row_set(&r, ATTN_COL_N_KV, "%ld", n_kv);
    scaling_series_key(&r, key);
    return key;
}

/* The exponent of a run; notes it afterwards when `note`. */
static schema_num fit(scaling_points *s, const char *kernel, long n, long n_kv, double ms, int note)
{
    char key[256];
    strcpy(key, series(kernel, n, n_kv));
    const scaling_run run = {1, (double)n_kv, ms};
    schema_num e = scaling_exponent(s, key, &run);
    if (note)
        scaling_note(s, key, &run);
    return e;
}

Test(scaling, exponent_recovers_linear_and_quadratic_series)
{
    scaling_points s;
    scaling_init(&s);
    for (long n = 4096; n <= 262144; n *= 2) {
        schema_num lin = fit(&s, "linear", n, n, 1e-3 * (double)n, 1);
        schema_num quad = fit(&s, "flash", n, n, 1e-9 * (double)n * n, 1);
        if (n < ATTN_SCALING_MIN_N) {
            cr_assert_eq(lin.state, SCHEMA_NUM_NA);
            cr_assert_str_eq(lin.why, "N_kv below the fit range (>= 16384)");
        } else if (n == ATTN_SCALING_MIN_N) {
            cr_assert(lin.state == SCHEMA_NUM_NA && strncmp(lin.why, "fewer than 2", 12) == 0, "%s", lin.why);
        } else {
            cr_assert(lin.state == SCHEMA_NUM_VALUE && fabs(lin.value - 1) < 1e-3, "linear at %ld: %g", n, lin.value);
            cr_assert(quad.state == SCHEMA_NUM_VALUE && fabs(quad.value - 2) < 1e-3, "quadratic at %ld: %g", n,
                      quad.value);
        }
    }
    scaling_free(&s);
}

Test(scaling, decode_rows_fit_over_kv_length_and_keep_query_counts_apart)
{
    scaling_points s;
    scaling_init(&s);
    fit(&s, "decode", 1, 16384, 1.0, 1);
    fit(&s, "decode", 4, 32768, 100.0, 1);
    schema_num two = fit(&s, "decode", 1, 32768, 2.0, 0);
    cr_assert(two.state == SCHEMA_NUM_VALUE && fabs(two.value - 1) < 1e-9, "%g", two.value);
    schema_num other = fit(&s, "decode", 4, 65536, 200.0, 0); /* only the N=4 point at 32K joins it */
    cr_assert(other.state == SCHEMA_NUM_VALUE && fabs(other.value - 1) < 1e-9, "%g", other.value);
    scaling_free(&s);
}

Test(scaling, failed_runs_are_neither_points_nor_fitted)
{
    scaling_points s;
    scaling_init(&s);
    const scaling_run bad = {0, 32768, 5.0};
    scaling_note(&s, series("linear", 32768, 32768), &bad);
    cr_assert_eq(scaling_exponent(&s, series("linear", 32768, 32768), &bad).state, SCHEMA_NUM_NONE);
    cr_assert_eq(s.n, 0);
    scaling_free(&s);
}
