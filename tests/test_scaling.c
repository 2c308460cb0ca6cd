/* Scaling exponent: the least-squares slope of log time on log length over
 * one series, from 16K up to the row's own length; NA outside that range. */
#include "harness/results/csvw.h"
#include "harness/results/scaling.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static csvw_row make(const char *kernel, long n, long n_kv, double ms)
{
    csvw_row r;
    csvw_row_init(&r);
    csvw_row_set(&r, ATTN_COL_SUITE, "scaling");
    csvw_row_set(&r, ATTN_COL_KERNEL, "%s", kernel);
    csvw_row_set(&r, ATTN_COL_MASK, "causal");
    csvw_row_set(&r, ATTN_COL_PASS, "fwd");
    csvw_row_set(&r, ATTN_COL_D, "64");
    csvw_row_set(&r, ATTN_COL_N, "%ld", n);
    csvw_row_set(&r, ATTN_COL_N_KV, "%ld", n_kv);
    csvw_row_set(&r, ATTN_COL_TIME_MS_MEDIAN, "%.9g", ms);
    csvw_row_set(&r, ATTN_COL_STATUS, "ok");
    return r;
}

static double exponent_of(const csvw_row *r) { return strtod(r->cell[ATTN_COL_N_EXPONENT], NULL); }

Test(scaling, exponent_recovers_linear_and_quadratic_series)
{
    scaling_points s;
    scaling_init(&s);
    for (long n = 4096; n <= 262144; n *= 2) {
        csvw_row lin = make("linear", n, n, 1e-3 * (double)n), quad = make("flash", n, n, 1e-9 * (double)n * n);
        scaling_fill(&s, &lin);
        scaling_fill(&s, &quad);
        scaling_note(&s, &lin);
        scaling_note(&s, &quad);
        if (n < ATTN_SCALING_MIN_N) {
            cr_assert_str_eq(lin.cell[ATTN_COL_N_EXPONENT], "NA:N_kv below the fit range (>= 16384)");
        } else if (n == ATTN_SCALING_MIN_N) {
            cr_assert(strncmp(lin.cell[ATTN_COL_N_EXPONENT], "NA:fewer than 2", 15) == 0, "%s",
                      lin.cell[ATTN_COL_N_EXPONENT]);
        } else {
            cr_assert(fabs(exponent_of(&lin) - 1) < 1e-3, "linear at %ld: %s", n, lin.cell[ATTN_COL_N_EXPONENT]);
            cr_assert(fabs(exponent_of(&quad) - 2) < 1e-3, "quadratic at %ld: %s", n, quad.cell[ATTN_COL_N_EXPONENT]);
        }
    }
    scaling_free(&s);
}

Test(scaling, decode_rows_fit_over_kv_length_and_keep_query_counts_apart)
{
    scaling_points s;
    scaling_init(&s);
    csvw_row one = make("decode", 1, 16384, 1.0), four = make("decode", 4, 32768, 100.0);
    scaling_note(&s, &one);
    scaling_note(&s, &four);
    csvw_row two = make("decode", 1, 32768, 2.0);
    scaling_fill(&s, &two);
    cr_assert(fabs(exponent_of(&two) - 1) < 1e-9, "%s", two.cell[ATTN_COL_N_EXPONENT]);
    csvw_row other = make("decode", 4, 65536, 200.0); /* only the N=4 point at 32K joins it */
    scaling_fill(&s, &other);
    cr_assert(fabs(exponent_of(&other) - 1) < 1e-9, "%s", other.cell[ATTN_COL_N_EXPONENT]);
    scaling_free(&s);
}

Test(scaling, failed_rows_are_neither_points_nor_filled)
{
    scaling_points s;
    scaling_init(&s);
    csvw_row bad = make("linear", 32768, 32768, 5.0);
    csvw_row_set(&bad, ATTN_COL_STATUS, "error:boom");
    scaling_note(&s, &bad);
    scaling_fill(&s, &bad);
    cr_assert_str_eq(bad.cell[ATTN_COL_N_EXPONENT], "");
    cr_assert_eq(s.n, 0);
    scaling_free(&s);
}
