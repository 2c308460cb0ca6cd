/* One benchmark job end to end: the row is complete, counted FLOPs agree
 * with the analytic model, refusals become skipped rows, never zeros. */
#include "harness/measure/bench.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static bench_job small_job(const char *kernel, const char *mask, bench_pass pass)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "kernels");
    j.kernel = attn_find_kernel(kernel);
    cr_assert(j.kernel, "%s", kernel);
    j.args.B = 1, j.args.H = 2, j.args.H_kv = 2, j.args.Nq = j.args.Nk = 192, j.args.D = 32;
    j.args.threads = 2;
    cr_assert_eq(attn_mask_parse(mask, &j.args.mask), 0);
    j.pass = pass;
    j.seed = 3;
    j.measure = (measure_opts){1, 3, 10, 0.0};
    return j;
}

static double cell(const csvw_row *r, schema_col c) { return strtod(r->cell[c], NULL); }

/* Runs the job without same-run peaks and formats its row. */
static int run_row(const bench_job *j, csvw_row *r)
{
    bench_result res;
    int rc = bench_run(j, NULL, &res);
    if (!rc)
        bench_result_row(j, &res, r);
    return rc;
}

Test(bench, row_is_complete_and_honest)
{
    bench_job j = small_job("naive", "causal", BENCH_PASS_FWD);
    csvw_row r;
    cr_assert_eq(run_row(&j, &r), 0);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok");
    cr_assert_gt(cell(&r, ATTN_COL_TIME_MS_MEDIAN), 0);
    cr_assert_leq(cell(&r, ATTN_COL_TIME_MS_P10), cell(&r, ATTN_COL_TIME_MS_MEDIAN));
    cr_assert_geq(cell(&r, ATTN_COL_TIME_MS_P90), cell(&r, ATTN_COL_TIME_MS_MEDIAN));
    cr_assert_geq(cell(&r, ATTN_COL_REPS), 3);
    cr_assert_eq(strlen(r.cell[ATTN_COL_JOB_ID]), 16);
    cr_assert_float_eq(cell(&r, ATTN_COL_DENSITY), 193.0 / 384.0, 1e-6);
    cr_assert_gt(cell(&r, ATTN_COL_WORKSPACE_BYTES), 0);
    cr_assert_str_eq(r.cell[ATTN_COL_METRIC], "max_abs_err");
    cr_assert_lt(cell(&r, ATTN_COL_VALUE), 1e-5);
    /* every counter cell is a number or says why it is missing; never blank */
    for (int c = ATTN_COL_PAPI_STATUS; c <= ATTN_COL_SDE_EXPS; c++)
        cr_assert(r.cell[c][0] != '\0', "%s is empty", schema_col_name((schema_col)c));
    cr_assert(strncmp(r.cell[ATTN_COL_SDE_TILES_COMPUTED], "NA:", 3) == 0, "naive has no tiles");
}

Test(bench, counted_flops_equal_analytic_for_naive)
{
    static const char *const masks[] = {"full", "causal", "window:wl=7,wr=3"};
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 2; p++) {
            bench_job j = small_job("naive", masks[m], p ? BENCH_PASS_BWD : BENCH_PASS_FWD);
            csvw_row r;
            cr_assert_eq(run_row(&j, &r), 0);
            cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok");
            cr_assert_eq(cell(&r, ATTN_COL_FLOPS_COUNTED), cell(&r, ATTN_COL_FLOPS_ANALYTIC), "%s %s: %s vs %s",
                         masks[m], p ? "bwd" : "fwd", r.cell[ATTN_COL_FLOPS_COUNTED],
                         r.cell[ATTN_COL_FLOPS_ANALYTIC]);
        }
}

Test(bench, tiled_kernels_count_at_least_the_useful_flops)
{
    static const char *const masks[] = {"full", "causal", "window:wl=7,wr=3"};
    const attn_kernel *flash = attn_find_kernel("flash");
    cr_assert(flash);
    for (int m = 0; m < 3; m++) {
        bench_job j = small_job("flash", masks[m], BENCH_PASS_FWD);
        csvw_row r;
        cr_assert_eq(run_row(&j, &r), 0);
        double counted = cell(&r, ATTN_COL_FLOPS_COUNTED), analytic = cell(&r, ATTN_COL_FLOPS_ANALYTIC);
        cr_assert_geq(counted, analytic, "%s", masks[m]);
        /* partial tiles add masked work, but never more than the dense product */
        cr_assert_leq(counted, 4.0 * 192 * 192 * 32 * 2, "%s", masks[m]);
        cr_assert_gt(cell(&r, ATTN_COL_SDE_TILES_COMPUTED), 0);
    }
}

Test(bench, refusals_become_skipped_rows)
{
    bench_job j = small_job("naive", "full", BENCH_PASS_FWD);
    j.max_workspace_bytes = 1024;
    csvw_row r;
    cr_assert_eq(run_row(&j, &r), 0);
    cr_assert(strncmp(r.cell[ATTN_COL_STATUS], "skipped:workspace", 17) == 0, "%s", r.cell[ATTN_COL_STATUS]);
    cr_assert_str_eq(r.cell[ATTN_COL_TIME_MS_MEDIAN], "");
}

Test(bench, job_id_ignores_run_metadata_but_not_shape)
{
    bench_job j = small_job("blas", "full", BENCH_PASS_FWD);
    csvw_row a, b;
    bench_identity(&j, &a);
    bench_identity(&j, &b);
    strcpy(b.cell[ATTN_COL_UTC], "1999-01-01T00:00:00Z");
    char ia[17], ib[17];
    csvw_row_job_id(&a, ia);
    csvw_row_job_id(&b, ib);
    cr_assert_str_eq(ia, ib);
    j.args.D = 64;
    bench_identity(&j, &b);
    csvw_row_job_id(&b, ib);
    cr_assert_str_neq(ia, ib);
}

/* Every registered kernel with its own reference passes the gate on a GQA
 * problem whose sampled heads include the last one: kernels whose math
 * depends on the head index (RetNet's per-head decay) must be checked at
 * that head, not at head 0. */
Test(bench, own_reference_gate_passes_for_every_kernel_and_reports_softmax_fidelity, .timeout = 120)
{
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!(*k)->ref_forward)
            continue;
        bench_job j = small_job((*k)->name, "causal", BENCH_PASS_FWD);
        j.args.B = 2, j.args.H = 4, j.args.H_kv = (*k)->flags & ATTN_GQA ? 2 : 4, j.args.D = 16;
        if ((*k)->flags & ATTN_ONE_QUERY)
            j.args.Nq = 1;
        csvw_row r;
        cr_assert_eq(run_row(&j, &r), 0);
        if (!strncmp(r.cell[ATTN_COL_STATUS], "skipped", 7))
            continue; /* e.g. a mask the kernel does not take */
        cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "%s: %s", (*k)->name, r.cell[ATTN_COL_STATUS]);
        cr_assert(r.cell[ATTN_COL_SOFTMAX_REL_ERR][0] != '\0', "%s: no softmax fidelity cell", (*k)->name);
    }
}

/* A padded batch (job lens PADDED_SEQ): the gate checks each sequence's rows
 * against its own reference and the padding rows against 0, the row names
 * the lengths, and the cost model counts only the real rows. */
Test(bench, padded_batch_rows_pass_the_gate_and_name_their_lengths, .timeout = 60)
{
    static const char *const kernels[] = {"flash", "linear", "sigmoid"};
    for (int i = 0; i < 3; i++) {
        bench_job j = small_job(kernels[i], "full", BENCH_PASS_FWD);
        j.args.B = 3;
        j.lens = (bench_lens){BENCH_LENS_PADDED_SEQ, 3, {192, 50, 1}};
        csvw_row r;
        cr_assert_eq(run_row(&j, &r), 0);
        cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "%s", kernels[i]);
        cr_assert_lt(cell(&r, ATTN_COL_VALUE), 1e-4, "%s: gate error %s", kernels[i], r.cell[ATTN_COL_VALUE]);
        cr_assert(strstr(r.cell[ATTN_COL_PARAMS], "seq_lens=192+50+1"), "%s: params %s", kernels[i],
                  r.cell[ATTN_COL_PARAMS]);
    }
}

/* A causal problem longer than the gate's 2048-row prefix: sigmoid's default
 * bias (-ln N_kv; in a padded batch -ln seq_len[b]) is pinned to the full
 * length in the prefix's reference (attn_kernel.ref_prefix_args); without
 * it the gate failed every such row (and, until the hook took the sequence,
 * every padded one with a sequence longer than 2048). */
Test(bench, gate_on_a_prefix_keeps_the_full_length_bias, .timeout = 60)
{
    for (int padded = 0; padded < 2; padded++) {
        bench_job j = small_job("sigmoid", "causal", BENCH_PASS_FWD);
        j.args.H = j.args.H_kv = 1, j.args.Nq = j.args.Nk = 2100, j.args.D = 16;
        if (padded) {
            j.args.B = 2;
            j.lens = (bench_lens){BENCH_LENS_PADDED_SEQ, 2, {2100, 2090}};
        }
        csvw_row r;
        cr_assert_eq(run_row(&j, &r), 0);
        cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "padded %d: %s (gate error %s)", padded,
                         r.cell[ATTN_COL_STATUS], r.cell[ATTN_COL_VALUE]);
    }
}

/* The result holds numbers and a status; the row is those numbers formatted,
 * counters included, each a count or the reason it is missing. */
Test(bench, row_formats_the_typed_result)
{
    bench_job j = small_job("flash", "causal", BENCH_PASS_FWD);
    bench_result res;
    cr_assert_eq(bench_run(&j, NULL, &res), 0);
    cr_assert_eq(res.status, BENCH_OK, "%s", res.reason);
    cr_assert(res.measured && res.gated && res.time.median_ms > 0 && res.flops > 0);
    cr_assert_float_eq(res.density, 193.0 / 384.0, 1e-6);
    csvw_row r;
    bench_result_row(&j, &res, &r);
    char want[64];
    snprintf(want, sizeof want, "%.6g", res.time.median_ms);
    cr_assert_str_eq(r.cell[ATTN_COL_TIME_MS_MEDIAN], want);
    snprintf(want, sizeof want, "%.4g", res.flops / (res.time.median_ms * 1e-3) * 1e-9);
    cr_assert_str_eq(r.cell[ATTN_COL_GFLOPS], want);
    cr_assert_str_eq(r.cell[ATTN_COL_PCT_SGEMM_PEAK], "NA:no same-run peak");
    const papi_count *flops = &res.counters.sde[ATTN_CNT_FLOPS];
    if (flops->available) {
        snprintf(want, sizeof want, "%lld", flops->value);
        cr_assert_str_eq(r.cell[ATTN_COL_FLOPS_COUNTED], want);
    } else {
        cr_assert_str_eq(r.cell[ATTN_COL_FLOPS_COUNTED], flops->na);
    }

    j.max_workspace_bytes = 1;
    cr_assert_eq(bench_run(&j, NULL, &res), 0);
    cr_assert_eq(res.status, BENCH_SKIPPED);
    cr_assert(!res.measured && strncmp(res.reason, "workspace", 9) == 0, "%s", res.reason);
    bench_result_row(&j, &res, &r);
    char status[600];
    snprintf(status, sizeof status, "skipped:%s", res.reason);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], status);
}
