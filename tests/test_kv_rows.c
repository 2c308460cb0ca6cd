/* A low-precision KV cache through the harness (docs/kv-formats.md): a
 * bench row names the format in its dtype cell, counts the stored bytes,
 * passes its gate against the oracle on the stored values and carries its
 * error against the unrounded oracle in softmax_rel_err; a kernel that reads
 * no such cache is a skipped row; a sweep config's "kv_dtype" list makes one
 * job per format and survives cfg_dump; `check --kv-dtype` runs the forward
 * cases. */
#include "check_tally.h"
#include "config_list.h"
#include "bench_row.h"
#include "harness/measure/bench.h"
#include "harness/measure/config.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"
#include "kernels/decode/decode.h"
#include "kernels/flash/flash.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static bench_job decode_job(const char *kernel, attn_kv_dtype t)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "decode");
    j.kernel = attn_find_kernel(kernel);
    cr_assert(j.kernel, "%s", kernel);
    j.args.B = 1, j.args.H = 8, j.args.H_kv = 2, j.args.Nq = 1, j.args.Nk = 2048, j.args.D = 64;
    j.args.threads = 2;
    j.args.kv_dtype = t;
    cr_assert_eq(attn_mask_parse("causal", &j.args.mask), 0);
    j.seed = 4;
    j.measure = (measure_opts){1, 3, 10, 0.0};
    return j;
}

static double cell(const csvw_row *r, schema_col c) { return strtod(r->cell[c], NULL); }

Test(kv_rows, a_stored_cache_row_names_its_format_bytes_and_error)
{
    csvw_row r32, r;
    bench_job j32 = decode_job("decode", ATTN_KV_FP32);
    test_bench_row(&j32, &r32);
    cr_assert_str_eq(r32.cell[ATTN_COL_DTYPE], "fp32");
    cr_assert_str_eq(r32.cell[ATTN_COL_SOFTMAX_REL_ERR], "", "an fp32 softmax row has no fidelity cell");
    for (int t = ATTN_KV_BF16; t < ATTN_KV__COUNT; t++) {
        bench_job j = decode_job("decode", (attn_kv_dtype)t);
        test_bench_row(&j, &r);
        char want[32];
        snprintf(want, sizeof want, "fp32;kv=%s", attn_kv_dtype_names[t]);
        cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "%s", r.cell[ATTN_COL_STATUS]);
        cr_assert_str_eq(r.cell[ATTN_COL_DTYPE], want);
        cr_assert_str_neq(r.cell[ATTN_COL_JOB_ID], r32.cell[ATTN_COL_JOB_ID], "the format is part of the job");
        /* K and V are 2 * H_kv * N_kv rows; Q, O and lse stay fp32 */
        double kv32 = 2.0 * 2 * 2048 * 64 * 4, kv = 2.0 * 2 * 2048 * (double)attn_kv_row_bytes((attn_kv_dtype)t, 64);
        cr_assert_float_eq(cell(&r, ATTN_COL_BYTES_ANALYTIC), cell(&r32, ATTN_COL_BYTES_ANALYTIC) - kv32 + kv, 0.5,
                           "%s", want);
        cr_assert_float_eq(cell(&r, ATTN_COL_STATE_BYTES), kv, 0.5, "%s", want);
        cr_assert_lt(cell(&r, ATTN_COL_VALUE), 2e-5, "%s: the gate compares with the oracle on the stored values",
                     want);
        double rel = cell(&r, ATTN_COL_SOFTMAX_REL_ERR);
        cr_assert(rel > 0 && rel < 0.2, "%s: softmax_rel_err %s", want, r.cell[ATTN_COL_SOFTMAX_REL_ERR]);
    }
}

Test(kv_rows, a_kernel_without_the_format_is_a_skipped_row_with_the_reason)
{
    csvw_row r;
    bench_job j = decode_job("flash", ATTN_KV_Q4_0);
    test_bench_row(&j, &r);
    cr_assert(strstr(r.cell[ATTN_COL_STATUS], "skipped:") && strstr(r.cell[ATTN_COL_STATUS], "q4_0"), "%s",
              r.cell[ATTN_COL_STATUS]);
    cr_assert_str_eq(r.cell[ATTN_COL_DTYPE], "fp32;kv=q4_0");
}

#define KV_SUITE(list)                                                                                            \
    "{\"name\":\"t\",\"suites\":[{\"suite\":\"decode\",\"kernels\":[\"decode\",\"flash\"],\"H\":[8],\"H_kv\":[2],"  \
    "\"N\":[1],\"N_kv\":[4096],\"D\":[64],\"kv_dtype\":" list "}]}"

static int job_kv_dtype(const bench_job *j) { return (int)j->args.kv_dtype; }
static size_t kv_dtypes_len(const cfg_suite *s) { return s->kv_dtypes.n; }

Test(kv_rows, a_config_kv_dtype_list_makes_one_job_per_format_and_dumps_back)
{
    static const int want[] = {ATTN_KV_FP32, ATTN_KV_Q8_0, ATTN_KV_BF16};
    assert_config_list(KV_SUITE("[\"fp32\",\"q8_0\",\"bf16\"]"), 6, job_kv_dtype, want, 3, kv_dtypes_len, "\"q8_0\"",
                       KV_SUITE("[\"q5_1\"]"), "$.suites[0].kv_dtype[0]", "\"q4_0\"");
}

Test(kv_rows, check_runs_the_forward_cases_on_the_stored_cache, .timeout = 120)
{
    check_tally t = {0};
    cr_assert_eq(check_kernel_cases_kv(&attn_kernel_decode, "causal", 2, ATTN_KV_Q8_0, check_tally_add, &t), 0, "%s",
                 attn_last_error());
    cr_assert_gt(t.cases, 0);
    cr_assert_eq(t.failed, 0, "%s", t.first_failure);
    cr_assert_eq(t.kinds, 1u << CHECK_FORWARD, "forward cases only");
    check_tally none = {0};
    cr_assert_eq(check_kernel_cases_kv(&attn_kernel_flash, NULL, 2, ATTN_KV_Q8_0, check_tally_add, &none),
                 ATTN_EUNSUPPORTED);
    cr_assert_eq(none.cases, 0);
}
