/* NaN and infinities are reported, never timed as a success: a benchmark
 * row whose inputs (a kv file) or kernel output hold a non-finite value says
 * error:nonfinite naming the tensor, through bench_run, `attnbench bench
 * --out` and `attnbench sweep`, and `attnbench check` fails such a case
 * naming it. */
#include "harness/cli/cli.h"
#include "bench_row.h"
#include "harness/measure/bench.h"
#include "harness/measure/check.h"
#include "harness/measure/kv_file.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { H = 2, N = 64, D = 16 };

/* A one-layer kv file of U(-1,1)-like values with `bad` at (K, head 1, row 37, column 5). */
static float store[3][H * N * D];
static float bad_value;

static int bad_layer(void *ud, int64_t l, attn_tensor *q, attn_tensor *k, attn_tensor *v)
{
    (void)ud, (void)l;
    attn_tensor *t[3] = {q, k, v};
    for (int i = 0; i < 3; i++) {
        *t[i] = (attn_tensor){store[i], 1, H, N, D, H * N * D, N * D, D};
        for (int j = 0; j < H * N * D; j++)
            store[i][j] = (float)((j * 37 + i * 11) % 199) / 99.0f - 1.0f;
    }
    attn_at(k, 0, 1, 37)[5] = bad_value;
    return 0;
}

static void write_kv(const char *path, float bad)
{
    bad_value = bad;
    cr_assert_eq(kv_file_write(path, 1, 0, "synthetic", bad_layer, NULL), 0, "%s", attn_last_error());
}

static bench_job job_for(const attn_kernel *k)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "kernels");
    j.kernel = k;
    j.args.B = 1, j.args.H = H, j.args.H_kv = H, j.args.Nq = j.args.Nk = N, j.args.D = D, j.args.threads = 2;
    cr_assert_eq(attn_mask_parse("full", &j.args.mask), 0);
    j.seed = 1;
    j.measure = (measure_opts){1, 3, 10, 0.0};
    return j;
}

Test(nonfinite, kv_file_inputs_holding_nan_or_inf_give_an_error_nonfinite_row_naming_the_tensor)
{
    char dir[] = "/tmp/attn_nf_XXXXXX", path[64], spec[80];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.kv", dir);
    snprintf(spec, sizeof spec, "cache:%s", path);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        write_kv(path, bad[i]);
        bench_job j = job_for(attn_find_kernel("flash"));
        cr_assert_eq(bench_inputs_parse(spec, &j.inputs, "test"), 0, "%s", attn_last_error());
        csvw_row r;
        test_bench_row(&j, &r);
        const char *status = r.cell[ATTN_COL_STATUS];
        cr_assert(strncmp(status, "error:nonfinite: input K holds", 30) == 0, "%s", status);
        cr_assert(strstr(status, "b=0 h=1 n=37 d=5") && strstr(status, path), "%s", status);
        cr_assert_str_empty(r.cell[ATTN_COL_TIME_MS_MEDIAN], "a non-finite job is not timed");
    }
    write_kv(path, 0.5f); /* the same file, finite: the job runs */
    bench_job j = job_for(attn_find_kernel("flash"));
    cr_assert_eq(bench_inputs_parse(spec, &j.inputs, "test"), 0);
    csvw_row r;
    test_bench_row(&j, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok");
    unlink(path), rmdir(dir);
}

Test(nonfinite, bench_command_writes_the_nonfinite_status_of_a_kv_file_with_nan)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
    char dir[] = "/tmp/attn_nf_XXXXXX", path[64], spec[80], out[80];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.kv", dir);
    snprintf(spec, sizeof spec, "cache:%s", path);
    snprintf(out, sizeof out, "%s/rows.csv", dir);
    write_kv(path, NAN);
    char *argv[] = {"bench", "--kernel", "naive", "--inputs", spec, "--H", "2", "--N", "64", "--D", "16",
                    "--reps", "1", "--warmup", "0", "--min-time", "0", "--no-peak", "--threads", "1", "--out", out,
                    NULL};
    cr_assert_neq(cmd_bench((int)(sizeof argv / sizeof *argv) - 1, argv), 0, "a failed job fails the command");
    FILE *f = fopen(out, "r");
    cr_assert(f, "%s", out);
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strstr(text, "error:nonfinite: input K holds nan"), "%s", text);
    cr_assert(!strstr(text, ",ok,") && !strstr(text, ",ok\n"), "no ok row: %s", text);
    unlink(out), unlink(path), rmdir(dir);
}

static int take_status(const csvw_row *row, void *ud)
{
    snprintf(ud, ATTN_CELL_MAX, "%s", row->cell[ATTN_COL_STATUS]);
    return 0;
}

Test(nonfinite, a_sweep_job_on_a_kv_file_holding_inf_writes_an_error_nonfinite_row)
{
    cr_redirect_stderr();
    char dir[] = "/tmp/attn_nf_XXXXXX", results[64], path[96], config[96], csv[96];
    cr_assert(mkdtemp(dir));
    snprintf(results, sizeof results, "%s/res", dir);
    cr_assert_eq(mkdir(results, 0755), 0);
    snprintf(path, sizeof path, "%s/m.kv", results);
    snprintf(config, sizeof config, "%s/sweep.json", dir);
    snprintf(csv, sizeof csv, "%s/kernels.csv", results);
    write_kv(path, INFINITY);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fputs("{\"name\": \"t\", \"threads\": [1], \"measure\": {\"warmup\": 0, \"min_reps\": 1, \"min_time_s\": 0,"
          " \"max_reps\": 1}, \"suites\": [{\"suite\": \"kernels\", \"kernels\": [\"flash\"], \"H\": [2], \"N\": [64],"
          " \"D\": [16], \"inputs\": [\"cache:m.kv@0\"]}]}\n", f);
    fclose(f);
    char *argv[] = {"sweep", "--config", config, "--results", results, NULL};
    cr_assert_neq(cmd_sweep(5, argv), 0, "a failed job fails the sweep");
    char status[ATTN_CELL_MAX] = "";
    cr_assert_eq(csvw_read_rows(csv, take_status, status), 1, "one row: %s", attn_last_error());
    cr_assert(strncmp(status, "error:nonfinite: input K holds inf at b=0 h=1 n=37 d=5", 54) == 0, "%s", status);
    char peak[96];
    snprintf(peak, sizeof peak, "%s/peak.csv", results);
    unlink(peak), unlink(csv), unlink(path), unlink(config), rmdir(results), rmdir(dir);
}

/* flash, whose forward then writes NaN into one element of a row the gate
 * does not sample (it checks the first, middle and last query rows). */
static attn_kernel nan_flash;

static int nan_forward(attn_ctx *ctx, const attn_io *io)
{
    int rc = attn_find_kernel("flash")->forward(ctx, io);
    if (io->o.N > 1 && io->o.D > 3)
        attn_at(&io->o, 0, 0, 1)[3] = NAN;
    return rc;
}

static const attn_kernel *nan_kernel(void)
{
    nan_flash = *attn_find_kernel("flash");
    nan_flash.forward = nan_forward;
    return &nan_flash;
}

Test(nonfinite, an_output_nan_outside_the_gates_sampled_rows_gives_an_error_nonfinite_row)
{
    bench_job j = job_for(nan_kernel());
    csvw_row r;
    test_bench_row(&j, &r);
    cr_assert(strncmp(r.cell[ATTN_COL_STATUS], "error:nonfinite: output O holds nan at b=0 h=0 n=1 d=3", 55) == 0,
              "%s", r.cell[ATTN_COL_STATUS]);
    cr_assert_str_empty(r.cell[ATTN_COL_TIME_MS_MEDIAN], "a non-finite job is not timed");
    j.kernel = attn_find_kernel("flash"); /* the same job on the kernel itself passes */
    test_bench_row(&j, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok");
}

static void first_failure(const check_result *r, void *ctx)
{
    check_result *first = ctx;
    if (r->status != CHECK_PASS && first->status == CHECK_PASS)
        *first = *r;
}

Test(nonfinite, check_fails_a_case_whose_output_is_not_finite_naming_it)
{
    check_result first = {.status = CHECK_PASS};
    cr_assert_eq(check_kernel_cases(nan_kernel(), "full", 2, first_failure, &first), 0, "%s", attn_last_error());
    cr_assert_eq(first.status, CHECK_NONFINITE, "status %d: %s", first.status, first.reason);
    cr_assert(strstr(first.reason, "nonfinite: output O holds nan at b=0 h=0 n=1 d=3"), "%s", first.reason);
}
