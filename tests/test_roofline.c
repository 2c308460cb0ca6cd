/* The roofline and noise columns: pct_roofline against the same-run FMA roof
 * and STREAM, the bench gate refusing a rate above the roof, the noise verdict
 * from /proc readings (faked here: no CPU is burnt), and results files of the
 * earlier header read everywhere, refused for appending, and migrated without
 * losing a row. */
#include "common/attn_error.h"
#include "harness/cli/cli.h"
#include "harness/measure/bench.h"
#include "harness/measure/bf16_roof.h"
#include "harness/measure/sysload.h"
#include "harness/results/csvw.h"
#include "harness/results/migrate.h"
#include "harness/results/report_summary.h"
#include "kernels/core/registry.h"
#include "test_rows.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})

static char dir[64];

static void make_dir(void)
{
    cr_redirect_stderr();
    strcpy(dir, "/tmp/attn_roof_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(void)
{
    sysload_set_proc_dir(NULL);
    sysload_set_host_ranks(1);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(roofline, .init = make_dir, .fini = remove_dir);

static bench_job small_job(const char *kernel, int64_t n, int64_t d)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    strcpy(j.suite, "kernels");
    j.kernel = attn_find_kernel(kernel);
    cr_assert(j.kernel, "%s", kernel);
    j.args.B = 1, j.args.H = 2, j.args.H_kv = 2, j.args.Nq = j.args.Nk = n, j.args.D = d;
    j.args.threads = 1;
    cr_assert_eq(attn_mask_parse("full", &j.args.mask), 0);
    j.seed = 3;
    j.measure = (measure_opts){1, 3, 10, 0.0};
    return j;
}

static void run_row(const bench_job *j, const peak_result *peak, csvw_row *r)
{
    bench_result res;
    cr_assert_eq(bench_run(j, peak, &res), 0);
    bench_result_row(j, &res, r);
}

/* flash at N 512, D 64 is compute-bound: its roofline time is its FLOPs over
 * the FMA roof, which no real run beats by more than the tolerance. */
Test(roofline, a_real_bench_stays_under_its_roofline, .timeout = 120)
{
    peak_result peak;
    /* sgemm 1024: the FMA probe then runs 2^18 iterations a call, long enough to read the steady rate */
    cr_assert_eq(peak_measure_sized(1, 1024, (size_t)3 << 22, &peak), 0, "%s", attn_last_error());
    cr_assert(peak.fma_gflops > 0 && isfinite(peak.fma_gflops), "%g", peak.fma_gflops);
    bench_job j = small_job("flash", 512, 64);
    csvw_row r;
    run_row(&j, &peak, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok");
    char *end;
    double pct = strtod(r.cell[ATTN_COL_PCT_ROOFLINE], &end);
    cr_assert(end != r.cell[ATTN_COL_PCT_ROOFLINE] && *end == '\0', "'%s'", r.cell[ATTN_COL_PCT_ROOFLINE]);
    cr_assert(pct > 0 && pct <= 100 * (1 + BENCH_ROOF_TOLERANCE), "pct_roofline %g", pct);
    double gflops = strtod(r.cell[ATTN_COL_GFLOPS], NULL);
    cr_assert_leq(gflops, peak.fma_gflops * (1 + BENCH_ROOF_TOLERANCE), "%g GFLOP/s above the roof", gflops);
}

/* A roof the row's rate exceeds (here a probe said to read 1 MFLOP/s): the
 * row is an error saying so, with its figures kept. */
Test(roofline, a_rate_above_the_fma_roof_fails_the_gate)
{
    peak_result peak = {.threads = 1, .sgemm_gflops = 10, .stream_gbs = 10, .fma_gflops = 1e-3};
    bench_job j = small_job("naive", 64, 16);
    csvw_row r;
    run_row(&j, &peak, &r);
    cr_assert(strstr(r.cell[ATTN_COL_STATUS], "error:above the compute roof"), "%s", r.cell[ATTN_COL_STATUS]);
    cr_assert_gt(strtod(r.cell[ATTN_COL_PCT_ROOFLINE], NULL), 100.0);
}

/* A bf16 row is judged against the bf16 dot roof where the CPU has one:
 * with a tiny bf16 roof and a huge FMA roof the bf16 row fails the gate and
 * the fp32 row of the same job passes; without a bf16 roof (0) the bf16
 * row falls back to the FMA roof, as a widening kernel can do no better. */
Test(roofline, a_bf16_row_uses_the_bf16_roof_where_it_exists)
{
    peak_result peak = {.threads = 1, .sgemm_gflops = 10, .stream_gbs = 1e6, .fma_gflops = 1e6, .bf16_gflops = 1e-3};
    bench_job j = small_job("flash", 64, 16);
    csvw_row r;
    j.args.dtype = ATTN_DT_BF16;
    run_row(&j, &peak, &r);
    cr_assert(strstr(r.cell[ATTN_COL_STATUS], "error:above the compute roof") &&
                  strstr(r.cell[ATTN_COL_STATUS], "bf16 dot roof"),
              "%s", r.cell[ATTN_COL_STATUS]);
    j.args.dtype = ATTN_DT_FP32;
    run_row(&j, &peak, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok");
    peak.bf16_gflops = 0;
    j.args.dtype = ATTN_DT_BF16;
    run_row(&j, &peak, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_STATUS], "ok", "no bf16 roof: the FMA roof judges the row");
    cr_assert_eq(peak_compute_roof(&peak, 1), peak.fma_gflops);
}

/* The probe measures the bf16 roof exactly where the CPU executes the
 * instruction; elsewhere the peak row says NA and why, never 0. */
Test(roofline, the_bf16_roof_is_measured_where_the_cpu_has_it_and_na_elsewhere, .timeout = 60)
{
    peak_result peak;
    cr_assert_eq(peak_measure_sized(1, 256, (size_t)3 << 20, &peak), 0, "%s", attn_last_error());
    csvw_row rows[BENCH_PEAK_ROWS];
    bench_peak_rows(&peak, rows);
    cr_assert_str_eq(rows[3].cell[ATTN_COL_KERNEL], "bf16_dot_roof");
    cr_assert_str_eq(rows[3].cell[ATTN_COL_DTYPE], "bf16");
    if (bf16_roof_available()) {
        /* one vdpbf16ps does twice the FLOPs of one fp32 FMA of the same width */
        cr_assert_gt(peak.bf16_gflops, peak.fma_gflops, "bf16 %g vs FMA %g", peak.bf16_gflops, peak.fma_gflops);
        cr_assert_gt(strtod(rows[3].cell[ATTN_COL_GFLOPS], NULL), 0);
    } else {
        cr_assert_eq(peak.bf16_gflops, 0);
        cr_assert(!strcmp(rows[3].cell[ATTN_COL_GFLOPS], "NA:no AVX512_BF16 on this CPU"), "'%s'",
                  rows[3].cell[ATTN_COL_GFLOPS]);
    }
}

static void fake_proc(const char *load, int running)
{
    char path[128];
    snprintf(path, sizeof path, "%s/loadavg", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "%s 1.00 1.00 %d/300 12345\n", load, running);
    fclose(f);
    snprintf(path, sizeof path, "%s/stat", dir);
    f = fopen(path, "w");
    fprintf(f, "cpu  1 2 3 4 5 6 7 0 0 0\nctxt 99\nprocs_running %d\nprocs_blocked 0\n", running);
    fclose(f);
    sysload_set_proc_dir(dir);
}

/* A small job's row (no same-run peaks) timed while /proc says `load` and `running`. */
static void row_under_load(const char *load, int running, csvw_row *r)
{
    fake_proc(load, running);
    bench_job j = small_job("naive", 64, 16);
    run_row(&j, NULL, r);
}

Test(roofline, other_runnable_work_marks_the_row_noisy)
{
    csvw_row r;
    row_under_load("7.25", 40, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_LOAD_AVG_1M], "7.25");
    int others = atoi(r.cell[ATTN_COL_RUNNABLE_OTHERS]);
    cr_assert(others >= 30 && others < 40, "runnable_others %d", others); /* 40 less this process's running threads */
    cr_assert(!strncmp(r.cell[ATTN_COL_NOISE], "yes:", 4) && strstr(r.cell[ATTN_COL_NOISE], "other runnable"), "%s",
              r.cell[ATTN_COL_NOISE]);
    cr_assert_str_eq(r.cell[ATTN_COL_PCT_ROOFLINE], "NA:no same-run peak");
}

Test(roofline, a_quiet_machine_leaves_the_row_unmarked)
{
    csvw_row r;
    row_under_load("0.05", 1, &r);
    cr_assert_str_eq(r.cell[ATTN_COL_RUNNABLE_OTHERS], "0");
    cr_assert_str_eq(r.cell[ATTN_COL_NOISE], "no");
}

Test(roofline, probes_that_moved_more_than_15_percent_mark_the_row)
{
    sysload_sample quiet = {1, 0.1, 0};
    char cell[128];
    sysload_noise_cell(&quiet, 0.14, cell, sizeof cell);
    cr_assert_str_eq(cell, "no");
    sysload_noise_cell(&quiet, 0.30, cell, sizeof cell);
    cr_assert_str_eq(cell, "yes:probes moved 30%");
}

/* ---- the earlier header */

/* A cell quoted as CSV (every cell quoted: the reader accepts it). */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        *s == '"' ? fputs("\"\"", f) : fputc(*s, f);
    fputc('"', f);
}

/* rows written with the V1 header: the columns it lacks are left out. */
static void write_v1(const char *path, const csvw_row *rows, int n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    int nc = schema_header_ncols(SCHEMA_HEADER_V1);
    for (int c = 0; c < nc; c++)
        fprintf(f, "%s%s", c ? "," : "", schema_col_name(schema_header_col(SCHEMA_HEADER_V1, c)));
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < nc; c++) {
            if (c)
                fputc(',', f);
            put_quoted(f, rows[i].cell[schema_header_col(SCHEMA_HEADER_V1, c)]);
        }
        fputc('\n', f);
    }
    fclose(f);
}

static void timed_row(csvw_row *r, int n)
{
    csvw_row_init(r);
    csvw_row_set(r, ATTN_COL_THREADS, "1");
    csvw_row_set(r, ATTN_COL_SUITE, "kernels");
    csvw_row_set(r, ATTN_COL_KERNEL, "flash");
    csvw_row_set(r, ATTN_COL_N, "%d", n);
    csvw_row_set(r, ATTN_COL_PARAMS, "a=1;b=\"q, r\"");
    csvw_row_set(r, ATTN_COL_TIME_MS_MEDIAN, "%d.5", n);
    csvw_row_set(r, ATTN_COL_GFLOPS, "12.5");
    csvw_row_set(r, ATTN_COL_STATUS, "ok");
    char id[17];
    csvw_row_job_id(r, id);
    csvw_row_set(r, ATTN_COL_JOB_ID, "%s", id);
}

Test(roofline, the_header_has_every_column_once_and_v1_lacks_exactly_the_new_ones)
{
    cr_assert_eq(schema_header_ncols(SCHEMA_HEADER_V1), ATTN_COL__COUNT - SCHEMA_V1_NEW_COLUMNS);
    int seen[ATTN_COL__COUNT] = {0};
    for (int f = 0; f < schema_header_ncols(SCHEMA_HEADER_V1); f++)
        seen[schema_header_col(SCHEMA_HEADER_V1, f)]++;
    const schema_col added[] = {ATTN_COL_LOAD_AVG_1M, ATTN_COL_RUNNABLE_OTHERS, ATTN_COL_NOISE, ATTN_COL_HOST_RANKS,
                                ATTN_COL_PCT_ROOFLINE};
    for (int i = 0; i < SCHEMA_V1_NEW_COLUMNS; i++)
        cr_assert_eq(seen[added[i]], 0, "%s", schema_col_name(added[i]));
    int total = 0;
    for (int c = 0; c < ATTN_COL__COUNT; c++)
        total += seen[c];
    cr_assert_eq(total, ATTN_COL__COUNT - SCHEMA_V1_NEW_COLUMNS);
}

Test(roofline, a_v1_file_is_read_with_the_new_columns_na_and_refused_for_appending)
{
    char path[128];
    snprintf(path, sizeof path, "%s/kernels.csv", dir);
    csvw_row rows[2];
    timed_row(&rows[0], 64);
    csvw_row_init(&rows[1]); /* an untimed row: the new columns do not apply */
    csvw_row_set(&rows[1], ATTN_COL_SUITE, "kernels");
    csvw_row_set(&rows[1], ATTN_COL_STATUS, "skipped:no backward");
    write_v1(path, rows, 2);
    test_rows got = {0};
    cr_assert_eq(csvw_read_rows(path, test_rows_collect, &got), 2, "%s", attn_last_error());
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_PARAMS], rows[0].cell[ATTN_COL_PARAMS]);
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_JOB_ID], rows[0].cell[ATTN_COL_JOB_ID]);
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_STATUS], "ok");
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_PCT_ROOFLINE], "NA:written before the column existed");
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_NOISE], "NA:written before the column existed");
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_HOST_RANKS], "NA:written before the column existed");
    cr_assert_str_eq(got.rows[1].cell[ATTN_COL_NOISE], "");
    cr_assert_str_eq(got.rows[1].cell[ATTN_COL_HOST_RANKS], "");
    cr_assert_str_eq(got.rows[1].cell[ATTN_COL_STATUS], "skipped:no backward");
    /* the report's table reads it too */
    summary_spec s = {"kernels", NULL, {ATTN_COL_KERNEL}, 1, {ATTN_COL_N, ATTN_COL_GFLOPS}, 2, 0, NULL};
    char md[2048] = "";
    FILE *f = fmemopen(md, sizeof md - 1, "w");
    cr_assert_eq(summary_table(path, &s, f), 1, "%s", attn_last_error());
    fclose(f);
    cr_assert(strstr(md, "| flash | 64 | 12.5 |"), "%s", md);
    csvw w;
    cr_assert_neq(csvw_open(&w, path), 0);
    cr_assert(strstr(attn_last_error(), "run 'attnbench migrate "), "%s", attn_last_error());
    cr_assert_neq(csvw_check_appendable(path), 0);
}

/* A migrated file: the current header and its n rows, into got. */
static void read_migrated(const char *path, int n, test_rows *got)
{
    schema_header h;
    cr_assert_eq(csvw_file_header(path, &h), 0);
    cr_assert_eq(h, SCHEMA_HEADER_CURRENT);
    cr_assert_eq(csvw_read_rows(path, test_rows_collect, got), n, "%s", attn_last_error());
}

Test(roofline, migrate_keeps_every_row_and_value_and_is_idempotent)
{
    char path[128];
    snprintf(path, sizeof path, "%s/kernels.csv", dir);
    csvw_row rows[3];
    for (int i = 0; i < 3; i++)
        timed_row(&rows[i], 64 << i);
    write_v1(path, rows, 3);
    cr_assert_eq(cmd_migrate(2, ARGV("migrate", path)), 0, "%s", attn_last_error());
    test_rows got = {0};
    read_migrated(path, 3, &got);
    for (int i = 0; i < 3; i++)
        for (int f = 0; f < schema_header_ncols(SCHEMA_HEADER_V1); f++) {
            schema_col c = schema_header_col(SCHEMA_HEADER_V1, f);
            cr_assert_str_eq(got.rows[i].cell[c], rows[i].cell[c], "row %d %s", i, schema_col_name(c));
        }
    cr_assert_str_eq(got.rows[2].cell[ATTN_COL_LOAD_AVG_1M], "NA:written before the column existed");
    results_migrate_stats st;
    cr_assert_eq(results_migrate(path, &st), 0);
    cr_assert_eq(st.from, SCHEMA_HEADER_CURRENT, "a current file is left alone");
    csvw w;
    cr_assert_eq(csvw_open(&w, path), 0, "%s", attn_last_error());
    cr_assert_eq(w.rows, 3);
    csvw_close(&w);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.migrate.%ld", path, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0, "the temporary copy is gone");
}

/* Rewrites a current-header file as the earlier header (what an old run left). */
static int v1_copy(const char *path)
{
    test_rows got = {0};
    int n = csvw_read_rows(path, test_rows_collect, &got);
    cr_assert(n > 0 && n <= TEST_ROWS_MAX, "%d: %s", n, attn_last_error());
    write_v1(path, got.rows, n);
    return n;
}

/* A results directory of the earlier header, one job of two done: --resume
 * is refused naming migrate and changes nothing; after migrate it runs the
 * missing job only, the old row intact and the new one with every new column. */
Test(roofline, an_old_results_dir_resumes_after_migrate_without_losing_a_row, .timeout = 300)
{
    char cfg[96], res[96], kern[128], peak[128];
    snprintf(cfg, sizeof cfg, "%s/c.json", dir);
    snprintf(res, sizeof res, "%s/res", dir);
    snprintf(kern, sizeof kern, "%s/k.csv", res);
    snprintf(peak, sizeof peak, "%s/peak.csv", res);
    FILE *f = fopen(cfg, "w");
    fputs("{\"name\":\"m\",\"threads\":[1],\"measure\":{\"warmup\":0,\"min_reps\":1,\"min_time_s\":0,\"max_reps\":1},"
          "\"suites\":[{\"suite\":\"k\",\"kernels\":[\"naive\"],\"H\":[1],\"N\":[32],\"D\":[16]}]}", f);
    fclose(f);
    cr_assert_eq(cmd_sweep(5, ARGV("sweep", "--config", cfg, "--results", res)), 0, "%s", attn_last_error());
    test_rows first = {0};
    cr_assert_eq(csvw_read_rows(kern, test_rows_collect, &first), 1);
    cr_assert_eq(v1_copy(kern), 1);
    v1_copy(peak);
    /* a second job joins the config */
    f = fopen(cfg, "w");
    fputs("{\"name\":\"m\",\"threads\":[1],\"measure\":{\"warmup\":0,\"min_reps\":1,\"min_time_s\":0,\"max_reps\":1},"
          "\"suites\":[{\"suite\":\"k\",\"kernels\":[\"naive\"],\"H\":[1],\"N\":[32,48],\"D\":[16]}]}", f);
    fclose(f);
    struct stat before, after;
    stat(kern, &before);
    cr_assert_neq(cmd_sweep(6, ARGV("sweep", "--config", cfg, "--results", res, "--resume")), 0);
    stat(kern, &after);
    cr_assert_eq(before.st_size, after.st_size, "the refused resume changed the file");
    cr_assert_eq(cmd_migrate(2, ARGV("migrate", res)), 0, "%s", attn_last_error()); /* what ./run.sh does */
    cr_assert_eq(cmd_sweep(6, ARGV("sweep", "--config", cfg, "--results", res, "--resume")), 0, "%s",
                 attn_last_error());
    test_rows got = {0};
    cr_assert_eq(csvw_read_rows(kern, test_rows_collect, &got), 2, "%s", attn_last_error());
    for (int f2 = 0; f2 < schema_header_ncols(SCHEMA_HEADER_V1); f2++) {
        schema_col c = schema_header_col(SCHEMA_HEADER_V1, f2);
        cr_assert_str_eq(got.rows[0].cell[c], first.rows[0].cell[c], "old row, %s", schema_col_name(c));
    }
    const csvw_row *fresh = &got.rows[1];
    cr_assert_str_eq(fresh->cell[ATTN_COL_N], "48");
    char *end;
    cr_assert(strtod(fresh->cell[ATTN_COL_PCT_ROOFLINE], &end) > 0 && *end == '\0', "%s",
              fresh->cell[ATTN_COL_PCT_ROOFLINE]);
    cr_assert(strtod(fresh->cell[ATTN_COL_LOAD_AVG_1M], &end) >= 0 && *end == '\0', "%s",
              fresh->cell[ATTN_COL_LOAD_AVG_1M]);
    cr_assert(!strcmp(fresh->cell[ATTN_COL_NOISE], "no") || !strncmp(fresh->cell[ATTN_COL_NOISE], "yes:", 4), "%s",
              fresh->cell[ATTN_COL_NOISE]);
    cr_assert_str_eq(fresh->cell[ATTN_COL_HOST_RANKS], "1", "a single-process sweep");
    cr_assert_str_eq(got.rows[0].cell[ATTN_COL_HOST_RANKS], "NA:written before the column existed");
}

/* migrate on a directory: its files of the earlier header are rewritten,
 * the current ones and what is not a .csv are left byte for byte. */
Test(roofline, migrate_on_a_directory_rewrites_only_its_old_header_files)
{
    char old[128], cur[128], other[128];
    snprintf(old, sizeof old, "%s/kernels.csv", dir);
    snprintf(cur, sizeof cur, "%s/decode.csv", dir);
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    csvw_row rows[2];
    timed_row(&rows[0], 64);
    timed_row(&rows[1], 128);
    write_v1(old, rows, 2);
    write_v1(other, rows, 1);
    csvw w;
    cr_assert_eq(csvw_open(&w, cur), 0, "%s", attn_last_error());
    cr_assert_eq(csvw_write_rows(&w, rows, 1), 0);
    csvw_close(&w);
    struct stat cur_before, other_before, cur_after, other_after;
    stat(cur, &cur_before), stat(other, &other_before);
    cr_assert_eq(cmd_migrate(2, ARGV("migrate", dir)), 0, "%s", attn_last_error());
    test_rows got = {0};
    read_migrated(old, 2, &got);
    cr_assert_str_eq(got.rows[1].cell[ATTN_COL_JOB_ID], rows[1].cell[ATTN_COL_JOB_ID]);
    stat(cur, &cur_after), stat(other, &other_after);
    cr_assert_eq(cur_before.st_ino, cur_after.st_ino, "the current file was rewritten");
    cr_assert_eq(cur_before.st_size, cur_after.st_size);
    cr_assert_eq(other_before.st_ino, other_after.st_ino, "a file that is not a .csv was touched");
    char names[256];
    int files = -1;
    cr_assert_eq(results_migrate_dir(dir, names, sizeof names, &files), 0, "%s", attn_last_error());
    cr_assert_eq(files, 0, "a second run has nothing to do: %s", names);
}

/* host_ranks says where the process ran, not what ran: the row carries it,
 * its job_id does not depend on it. */
Test(roofline, host_ranks_is_in_the_row_and_out_of_the_job_id)
{
    cr_assert(ATTN_COL_HOST_RANKS < ATTN_COL_IDENTITY_FIRST || ATTN_COL_HOST_RANKS > ATTN_COL_IDENTITY_LAST);
    csvw_row one, two;
    row_under_load("0.05", 1, &one);
    sysload_set_host_ranks(3);
    row_under_load("0.05", 1, &two);
    sysload_set_host_ranks(1);
    cr_assert_str_eq(one.cell[ATTN_COL_HOST_RANKS], "1");
    cr_assert_str_eq(two.cell[ATTN_COL_HOST_RANKS], "3");
    char a[17], b[17];
    csvw_row_job_id(&one, a);
    csvw_row_job_id(&two, b);
    cr_assert_str_eq(a, b);
    cr_assert_str_eq(one.cell[ATTN_COL_PARAMS], two.cell[ATTN_COL_PARAMS]);
}

/* ---- sweeps: STREAM probed around memory-bound groups */

#include "harness/cli/sweep_probe.h"

Test(roofline, one_query_decode_is_memory_bound_and_long_flash_is_not)
{
    peak_result peak = {.threads = 1, .sgemm_gflops = 80, .stream_gbs = 15, .fma_gflops = 100};
    bench_job dec = small_job("decode", 1, 64);
    dec.args.Nk = 4096;
    cr_assert(sweep_job_memory_bound(&dec, &peak));
    bench_job fl = small_job("flash", 1024, 64);
    cr_assert_not(sweep_job_memory_bound(&fl, &peak));
    cr_assert_not(sweep_job_memory_bound(&dec, NULL), "without probes nothing is grouped");
}

typedef struct {
    int jobs;
    csvw_row first;
} held_rows;

static int take_rows(void *ud, const csvw_row *rows, int n)
{
    held_rows *h = ud;
    if (!h->jobs++)
        h->first = rows[0];
    cr_assert_eq(n, 1);
    return 0;
}

/* A group whose probe before read far more than the probe after: its held
 * rows come out marked with how far the probes moved. */
Test(roofline, a_group_whose_probes_moved_marks_its_rows, .timeout = 60)
{
    sweep_group g;
    cr_assert_eq(sweep_group_init(&g), 0);
    g.threads = 1, g.before_gbs = 1e6; /* as if the probe before had read 1 PB/s */
    strcpy(g.suite, "decode");
    csvw_row row;
    timed_row(&row, 64);
    csvw_row_set(&row, ATTN_COL_NOISE, "no");
    bench_result res = {.measured = 1, .load = {1, 0.5, 0}};
    sweep_group_hold(&g, &row, 1, &res);
    held_rows h = {0};
    cr_assert_eq(sweep_group_close(&g, take_rows, &h), 0, "%s", attn_last_error());
    cr_assert_eq(h.jobs, 1);
    cr_assert(!strncmp(h.first.cell[ATTN_COL_NOISE], "yes:probes moved", 16), "%s", h.first.cell[ATTN_COL_NOISE]);
    cr_assert_eq(g.threads, 0, "the group is closed");
    cr_assert_gt(g.last_gbs, 0, "its closing probe is kept for the next group");
    sweep_group_free(&g);
}
