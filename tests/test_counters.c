/* Software counters through PAPI SDE and the counter row cells
 * (kernels/core/counters.h, harness/measure/papi_events.h). */
#include "common/attn_error.h"
#include "kernels/core/counters.h"
#include "harness/measure/papi_events.h"

#include <criterion/criterion.h>
#include <math.h>
#include <papi.h>
#include <stdlib.h>
#include <string.h>

Test(counters, sde_flops_read_back_through_a_raw_papi_event_set)
{
    cr_assert_eq(attn_counters_register_sde(), 0, "%s", attn_last_error());
    cr_assert_eq(PAPI_library_init(PAPI_VER_CURRENT), PAPI_VER_CURRENT);
    int es = PAPI_NULL;
    cr_assert_eq(PAPI_create_eventset(&es), PAPI_OK);
    cr_assert_eq(PAPI_add_named_event(es, "sde:::attnbench::flops"), PAPI_OK);
    attn_counter_add(ATTN_CNT_FLOPS, 1000);   /* before start: not in the delta */
    cr_assert_eq(PAPI_start(es), PAPI_OK);
    attn_counter_add(ATTN_CNT_FLOPS, 12345);
    long long v = -1;
    cr_assert_eq(PAPI_read(es, &v), PAPI_OK);
    cr_assert_eq(v, 12345);
    attn_counter_add(ATTN_CNT_FLOPS, 5);
    cr_assert_eq(PAPI_stop(es, &v), PAPI_OK);
    cr_assert_eq(v, 12350);
    PAPI_cleanup_eventset(es);
    PAPI_destroy_eventset(&es);
}

static long long cell_ll(const csvw_row *row, schema_col c)
{
    char *end;
    long long v = strtoll(row->cell[c], &end, 10);
    cr_assert(row->cell[c][0] && *end == '\0', "%s = '%s' is not an integer", schema_col_name(c), row->cell[c]);
    return v;
}

Test(counters, session_reads_every_sde_counter_for_the_region_only)
{
    papi_session p;
    cr_assert_eq(papi_events_init(&p), 0);
    cr_assert_str_empty(p.sde_na, "%s", p.sde_na);
    attn_counter_add(ATTN_CNT_EXPS, 999);   /* outside the region */
    cr_assert_eq(papi_events_start(&p), 0);
    attn_counter_add(ATTN_CNT_FLOPS, 12345);
    attn_counter_add(ATTN_CNT_BYTES_READ, 777);
    attn_counter_add(ATTN_CNT_TILES_COMPUTED, 3);
    attn_counter_add(ATTN_CNT_TILES_SKIPPED, 2);
    attn_counter_add(ATTN_CNT_EXPS, 99);
    cr_assert_eq(papi_events_stop(&p), 0);
    attn_counter_add(ATTN_CNT_FLOPS, 1);    /* after stop: not counted */
    csvw_row row;
    memset(&row, 0, sizeof row);
    cr_assert_eq(papi_events_fill_row(&p, &row), 12345.0);
    cr_assert_eq(cell_ll(&row, ATTN_COL_FLOPS_COUNTED), 12345);
    cr_assert_eq(cell_ll(&row, ATTN_COL_SDE_BYTES_READ), 777);
    cr_assert_eq(cell_ll(&row, ATTN_COL_SDE_TILES_COMPUTED), 3);
    cr_assert_eq(cell_ll(&row, ATTN_COL_SDE_TILES_SKIPPED), 2);
    cr_assert_eq(cell_ll(&row, ATTN_COL_SDE_EXPS), 99);
    /* A second region on the same session starts from zero again. */
    cr_assert_eq(papi_events_start(&p), 0);
    attn_counter_add(ATTN_CNT_FLOPS, 7);
    cr_assert_eq(papi_events_stop(&p), 0);
    cr_assert_eq(papi_events_fill_row(&p, &row), 7.0);
    cr_assert_eq(cell_ll(&row, ATTN_COL_SDE_EXPS), 0);
    papi_events_fini(&p);
}

Test(counters, increments_from_openmp_threads_are_all_counted)
{
    papi_session p;
    papi_events_init(&p);
    cr_assert_eq(papi_events_start(&p), 0);
#pragma omp parallel for num_threads(2) schedule(static)
    for (int i = 0; i < 20000; i++)
        attn_counter_add(ATTN_CNT_TILES_COMPUTED, 1);
    cr_assert_eq(papi_events_stop(&p), 0);
    csvw_row row;
    papi_events_fill_row(&p, &row);
    cr_assert_eq(cell_ll(&row, ATTN_COL_SDE_TILES_COMPUTED), 20000);
    papi_events_fini(&p);
}

static int is_na(const char *s) { return strncmp(s, "NA:", 3) == 0 && strlen(s) > 3; }

Test(counters, preset_cells_are_positive_counts_or_na_never_zero)
{
    static const schema_col presets[] = {ATTN_COL_PAPI_TOT_CYC, ATTN_COL_PAPI_TOT_INS, ATTN_COL_PAPI_L1_DCM,
                                       ATTN_COL_PAPI_L2_TCM, ATTN_COL_PAPI_L3_TCM};
    papi_session p;
    papi_events_init(&p);
    /* 32 MiB of strided reads: cycles, instructions and misses at every level. */
    size_t n = (size_t)8 << 20;
    float *buf = calloc(n, sizeof *buf);
    cr_assert_not_null(buf);
    cr_assert_eq(papi_events_start(&p), 0);
    volatile float sink = 0;
    for (int rep = 0; rep < 2; rep++)
        for (size_t i = 0; i < n; i += 16)
            sink += buf[i];
    cr_assert_eq(papi_events_stop(&p), 0);
    free(buf);
    csvw_row row;
    memset(&row, 0, sizeof row);
    papi_events_fill_row(&p, &row);
    int numeric = 0;
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) {
        const char *c = row.cell[presets[i]];
        if (is_na(c))
            continue;
        cr_assert_gt(cell_ll(&row, presets[i]), 0, "%s = %s", schema_col_name(presets[i]), c);
        numeric++;
    }
    const char *status = row.cell[ATTN_COL_PAPI_STATUS];
    if (numeric == 5)
        cr_assert_str_eq(status, "ok");
    else
        cr_assert(is_na(status), "papi_status '%s' with %d of 5 presets counted", status, numeric);
    cr_assert_null(strchr(status, '\n'));
    papi_events_fini(&p);
}

Test(counters, unmeasured_session_reports_na_not_zero)
{
    papi_session p;
    papi_events_init(&p);
    csvw_row row;
    memset(&row, 0, sizeof row);
    cr_assert(isnan(papi_events_fill_row(&p, &row)));
    for (int c = ATTN_COL_PAPI_TOT_CYC; c <= ATTN_COL_SDE_EXPS; c++)
        cr_assert(is_na(row.cell[c]), "%s = '%s'", schema_col_name(c), row.cell[c]);
    cr_assert(is_na(row.cell[ATTN_COL_FLOPS_COUNTED]));
    papi_events_fini(&p);
}

Test(counters, start_and_stop_must_pair)
{
    papi_session p;
    papi_events_init(&p);
    cr_assert_lt(papi_events_stop(&p), 0);
    cr_assert_eq(papi_events_start(&p), 0);
    cr_assert_lt(papi_events_start(&p), 0);
    cr_assert(strstr(attn_last_error(), "start") != NULL);
    cr_assert_eq(papi_events_stop(&p), 0);
    papi_events_fini(&p);
}

Test(counters, describe_names_papi_presets_and_sde)
{
    papi_session p;
    papi_events_init(&p);
    const char *d = papi_events_describe(&p);
    cr_assert(strstr(d, "PAPI 7") && strstr(d, "presets") && strstr(d, p.status), "%s", d);
    cr_assert(strstr(d, "sde:::attnbench::*: ok"), "%s", d);
    papi_events_fini(&p);
}

Test(counters, names_match_sde_events_and_help_explains_them)
{
    static const char *const want[ATTN_CNT__COUNT] = {"flops", "bytes_read", "tiles_computed",
                                                      "tiles_skipped", "exps"};
    for (int i = 0; i < ATTN_CNT__COUNT; i++) {
        cr_assert_str_eq(attn_counter_name((attn_counter_id)i), want[i]);
        cr_assert_gt(strlen(attn_counter_help((attn_counter_id)i)), 30);
    }
    cr_assert_eq(attn_counters_register_sde(), 0);
    cr_assert_eq(attn_counters_register_sde(), 0, "second registration failed");
}

Test(counters, reset_zeroes_and_add_accumulates)
{
    attn_counters_reset();
    attn_counter_add(ATTN_CNT_BYTES_READ, 40);
    attn_counter_add(ATTN_CNT_BYTES_READ, 2);
    cr_assert_eq(attn_counter_get(ATTN_CNT_BYTES_READ), 42);
    attn_counters_reset();
    cr_assert_eq(attn_counter_get(ATTN_CNT_BYTES_READ), 0);
}
