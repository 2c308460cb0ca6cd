/* 16-bit operands through the harness (docs/dtypes.md): a bench row names the
 * type in its dtype cell and acc=fp32 in its params, counts 2-byte operands,
 * passes its gate against the oracle on the rounded operands (forward and
 * fwdbwd) and carries its error against the unrounded oracle in
 * softmax_rel_err; a kernel without the type is a skipped row; a sweep
 * config's "dtype" list makes one job per type and survives cfg_dump;
 * `check --dtype` runs the forward and backward cases. */
#include "check_tally.h"
#include "config_list.h"
#include "bench_row.h"
#include "harness/measure/bench.h"
#include "harness/measure/config.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static bench_job typed_job(const char *kernel, attn_dtype t, bench_pass pass)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "kernels");
    j.kernel = attn_find_kernel(kernel);
    cr_assert(j.kernel, "%s", kernel);
    j.args.B = 1, j.args.H = 4, j.args.H_kv = 2, j.args.Nq = j.args.Nk = 384, j.args.D = 64;
    j.args.threads = 2;
    j.args.dtype = t;
    j.pass = pass;
    cr_assert_eq(attn_mask_parse("causal", &j.args.mask), 0);
    j.seed = 4;
    j.measure = (measure_opts){1, 3, 10, 0.0};
    return j;
}

static double cell(const csvw_row *r, schema_col c) { return strtod(r->cell[c], NULL); }

Test(dtype_rows, a_16_bit_row_names_its_type_accumulation_bytes_and_error, .timeout = 120)
{
    csvw_row r32, r;
    bench_job j32 = typed_job("flash", ATTN_DT_FP32, BENCH_PASS_FWD);
    test_bench_row(&j32, &r32);
    cr_assert_str_eq(r32.cell[ATTN_COL_DTYPE], "fp32");
    cr_assert(!strstr(r32.cell[ATTN_COL_PARAMS], "acc="), "%s", r32.cell[ATTN_COL_PARAMS]);
    for (int t = ATTN_DT_BF16; t < ATTN_DT__COUNT; t++)
        for (int p = BENCH_PASS_FWD; p <= BENCH_PASS_FWDBWD; p += BENCH_PASS_FWDBWD) {
            bench_job j = typed_job("flash", (attn_dtype)t, (bench_pass)p);
            test_bench_row(&j, &r);
            const char *name = attn_dtype_names[t];
            cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "%s: %s", name, r.cell[ATTN_COL_STATUS]);
            cr_assert_str_eq(r.cell[ATTN_COL_DTYPE], name);
            cr_assert(strstr(r.cell[ATTN_COL_PARAMS], "acc=fp32"), "%s", r.cell[ATTN_COL_PARAMS]);
            cr_assert_str_neq(r.cell[ATTN_COL_JOB_ID], r32.cell[ATTN_COL_JOB_ID], "the type is part of the job");
            if (p == BENCH_PASS_FWD) /* Q, O and K, V at 2 bytes, the LSE at 4 */
                cr_assert_float_eq(cell(&r, ATTN_COL_BYTES_ANALYTIC),
                                   (cell(&r32, ATTN_COL_BYTES_ANALYTIC) - 4.0 * 4 * 384) / 2 + 4.0 * 4 * 384, 0.5,
                                   "%s", name);
            double u = attn_dtype_unit_roundoff((attn_dtype)t);
            cr_assert_lt(cell(&r, ATTN_COL_VALUE), 2e-4 + u, "%s: the gate on the rounded operands", name);
            double rel = cell(&r, ATTN_COL_SOFTMAX_REL_ERR);
            cr_assert(rel > 0 && rel < 1e-2, "%s: softmax_rel_err %s", name, r.cell[ATTN_COL_SOFTMAX_REL_ERR]);
        }
}

Test(dtype_rows, a_kernel_without_the_type_is_a_skipped_row_with_the_reason)
{
    csvw_row r;
    bench_job j = typed_job("sigmoid", ATTN_DT_BF16, BENCH_PASS_FWD);
    test_bench_row(&j, &r);
    cr_assert(strstr(r.cell[ATTN_COL_STATUS], "skipped:") && strstr(r.cell[ATTN_COL_STATUS], "bf16"), "%s",
              r.cell[ATTN_COL_STATUS]);
    cr_assert_str_eq(r.cell[ATTN_COL_DTYPE], "bf16");
}

#define DT_SUITE(list)                                                                                          \
    "{\"name\":\"t\",\"suites\":[{\"suite\":\"kernels\",\"kernels\":[\"flash\",\"naive\"],\"H\":[8],"          \
    "\"N\":[256],\"D\":[64],\"dtype\":" list "}]}"

static int job_dtype(const bench_job *j) { return (int)j->args.dtype; }
static size_t dtypes_len(const cfg_suite *s) { return s->dtypes.n; }

Test(dtype_rows, a_config_dtype_list_makes_one_job_per_type_and_dumps_back)
{
    static const int want[] = {ATTN_DT_FP32, ATTN_DT_BF16, ATTN_DT_FP16};
    assert_config_list(DT_SUITE("[\"fp32\",\"bf16\",\"fp16\"]"), 6, job_dtype, want, 3, dtypes_len, "\"bf16\"",
                       DT_SUITE("[\"q8_0\"]"), "$.suites[0].dtype[0]", "\"fp16\"");
}

Test(dtype_rows, check_runs_forward_and_backward_cases_on_16_bit_operands, .timeout = 120)
{
    check_tally t = {0};
    cr_assert_eq(check_kernel_cases_typed(&attn_kernel_flash, "causal", 2, ATTN_KV_FP32, ATTN_DT_BF16, check_tally_add,
                                          &t),
                 0, "%s", attn_last_error());
    cr_assert_gt(t.cases, 0);
    cr_assert_eq(t.failed, 0, "%s", t.first_failure);
    cr_assert_eq(t.kinds, (1u << CHECK_FORWARD) | (1u << CHECK_BACKWARD), "forward and backward cases");
    check_tally none = {0};
    const attn_kernel *sig = attn_find_kernel("sigmoid");
    cr_assert_eq(check_kernel_cases_typed(sig, NULL, 2, ATTN_KV_FP32, ATTN_DT_FP16, check_tally_add, &none),
                 ATTN_EUNSUPPORTED);
    cr_assert_eq(none.cases, 0);
}
