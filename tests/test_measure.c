/* Timing statistics, the adaptive repetition loop, RSS and the machine peak
 * probe (harness/measure/measure.h, rss.h, peak.h, sysinfo.h). */
#include "common/attn_error.h"
#include "harness/measure/measure.h"
#include "harness/measure/peak.h"
#include "common/rss.h"
#include "harness/measure/sysinfo.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EPS 1e-12

Test(measure, stats_of_known_samples_are_exact)
{
    /* Sorted 1..5: rank p*(n-1) gives p10 at 0.4 -> 1.4, p90 at 3.6 -> 4.6. */
    const double s[] = {5, 1, 4, 2, 3};
    measure_stats st;
    measure_stats_from(s, 5, &st);
    cr_assert_eq(st.reps, 5);
    cr_assert_float_eq(st.median_ms, 3.0, EPS);
    cr_assert_float_eq(st.p10_ms, 1.4, EPS);
    cr_assert_float_eq(st.p90_ms, 4.6, EPS);
    cr_assert_float_eq(st.mean_ms, 3.0, EPS);
    cr_assert_float_eq(st.min_ms, 1.0, EPS);
    cr_assert_float_eq(st.max_ms, 5.0, EPS);
    /* sample stddev sqrt(10/4) over mean 3 */
    cr_assert_float_eq(st.cv, sqrt(2.5) / 3.0, EPS);
}

Test(measure, median_of_even_count_interpolates_middle_pair)
{
    const double s[] = {4, 1, 3, 2};
    measure_stats st;
    measure_stats_from(s, 4, &st);
    cr_assert_float_eq(st.median_ms, 2.5, EPS);
    cr_assert_float_eq(st.p10_ms, 1.3, EPS);   /* rank 0.3 */
    cr_assert_float_eq(st.p90_ms, 3.7, EPS);   /* rank 2.7 */
}

Test(measure, stats_do_not_reorder_the_callers_samples)
{
    const double s[] = {3, 1, 2};
    measure_stats st;
    measure_stats_from(s, 3, &st);
    cr_assert(s[0] == 3 && s[1] == 1 && s[2] == 2);
}

Test(measure, single_sample_has_zero_cv_and_equal_percentiles)
{
    const double s[] = {7.5};
    measure_stats st;
    measure_stats_from(s, 1, &st);
    cr_assert_eq(st.reps, 1);
    cr_assert_float_eq(st.cv, 0.0, EPS);
    cr_assert_float_eq(st.p10_ms, 7.5, EPS);
    cr_assert_float_eq(st.p90_ms, 7.5, EPS);
}

Test(measure, no_samples_give_nan_not_zero)
{
    measure_stats st;
    measure_stats_from(NULL, 0, &st);
    cr_assert_eq(st.reps, 0);
    cr_assert(isnan(st.median_ms) && isnan(st.cv));
}

typedef struct {
    int calls, fail_at;      /* fail_at: 1-based call that returns an error, 0 = never */
    long sleep_us;
} fake_kernel;

static int fake_call(void *arg)
{
    fake_kernel *k = arg;
    k->calls++;
    if (k->sleep_us) {
        struct timespec ts = {0, k->sleep_us * 1000};
        nanosleep(&ts, NULL);
    }
    if (k->calls == k->fail_at)
        return attn_fail(ATTN_EUNSUPPORTED, "fake kernel: call %d failed", k->calls);
    return 0;
}

Test(measure, runs_warmup_then_exactly_min_reps_when_time_is_met)
{
    fake_kernel k = {0};
    measure_opts o = {2, 7, 100, 0.0};
    measure_stats st;
    cr_assert_eq(measure_run(fake_call, &k, &o, &st), 0);
    cr_assert_eq(k.calls, 9);
    cr_assert_eq(st.reps, 7);
    cr_assert_eq(st.warmup, 2);
}

Test(measure, keeps_sampling_until_min_time)
{
    fake_kernel k = {.sleep_us = 2000};
    measure_opts o = {0, 1, 1000, 0.05};
    measure_stats st;
    cr_assert_eq(measure_run(fake_call, &k, &o, &st), 0);
    double total_ms = st.mean_ms * st.reps;
    cr_assert_geq(total_ms, 50.0 - 1e-9, "stopped after %.3f ms", total_ms);
    /* It stops at the first sample that reaches the target. */
    cr_assert_lt(total_ms - st.max_ms, 50.0, "overshot: %.3f ms", total_ms);
    cr_assert_gt(st.reps, 1);
    cr_assert_geq(st.min_ms, 2.0, "a 2 ms sleep timed as %.3f ms", st.min_ms);
}

Test(measure, max_reps_caps_a_long_min_time)
{
    fake_kernel k = {0};
    measure_opts o = {0, 1, 5, 30.0};
    measure_stats st;
    cr_assert_eq(measure_run(fake_call, &k, &o, &st), 0);
    cr_assert_eq(st.reps, 5);
    cr_assert_eq(k.calls, 5);
}

Test(measure, defaults_follow_suites_4_3)
{
    measure_opts d = MEASURE_OPTS_DEFAULT;
    cr_assert(d.warmup == 3 && d.min_reps == 10 && d.max_reps == 1000 && d.min_time_s == 1.0);
}

Test(measure, kernel_error_is_returned_and_stats_untouched)
{
    for (int fail_at = 1; fail_at <= 4; fail_at += 3) {   /* in warm-up, then while timing */
        fake_kernel k = {.fail_at = fail_at};
        measure_opts o = {2, 5, 10, 0.0};
        measure_stats st = {.reps = -42};
        cr_assert_eq(measure_run(fake_call, &k, &o, &st), ATTN_EUNSUPPORTED);
        cr_assert_eq(k.calls, fail_at, "kept calling after the error");
        cr_assert_eq(st.reps, -42);
        cr_assert(strstr(attn_last_error(), "fake kernel") != NULL);
    }
}

Test(measure, rejects_inconsistent_options_with_a_message)
{
    fake_kernel k = {0};
    measure_stats st;
    measure_opts bad[] = {{-1, 1, 1, 0}, {0, 0, 1, 0}, {0, 5, 4, 0}, {0, 1, 1, -1}, {0, 1, 1, NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(measure_run(fake_call, &k, &bad[i], &st), ATTN_EINVAL, "case %zu", i);
        cr_assert(strstr(attn_last_error(), "min_reps") != NULL);
    }
    cr_assert_eq(k.calls, 0);
}

Test(measure, monotonic_clock_measures_a_sleep_in_milliseconds)
{
    fake_kernel k = {.sleep_us = 5000};
    measure_opts o = {0, 3, 3, 0.0};
    measure_stats st;
    cr_assert_eq(measure_run(fake_call, &k, &o, &st), 0);
    cr_assert_geq(st.median_ms, 5.0);
    cr_assert_lt(st.median_ms, 100.0, "5 ms sleep measured as %.3f ms", st.median_ms);
    double t0 = measure_now_s();
    cr_assert_geq(measure_now_s(), t0);
}

/* 64 MiB: above glibc's mmap threshold, so free() returns it to the kernel. */
#define BIG ((size_t)64 << 20)

/* Writes every page through a volatile pointer: a memset before free() may be
 * removed by the compiler as a dead store. */
static void touch_pages(char *p, size_t n)
{
    volatile char *v = p;
    for (size_t i = 0; i < n; i += 4096)
        v[i] = 1;
}

Test(measure, rss_peak_grows_after_touching_64_mib)
{
    rss_region r;
    rss_region_begin(&r);
    size_t before = rss_current_bytes();
    cr_assert_gt(before, 0, "VmRSS unreadable");
    char *p = malloc(BIG);
    cr_assert_not_null(p);
    touch_pages(p, BIG);
    cr_assert_geq(rss_current_bytes(), before + BIG * 15 / 16);
    cr_assert_geq(rss_peak_bytes(), before + BIG * 15 / 16);
    free(p);
    size_t grew = rss_region_peak_bytes(&r);
    cr_assert_geq(grew, BIG * 15 / 16, "region peak grew by %zu bytes", grew);
    cr_assert_lt(grew, BIG * 2, "region peak grew by %zu bytes", grew);
}

Test(measure, rss_reset_drops_an_earlier_peak)
{
    /* mmap, not malloc: pages free() keeps (ASan's quarantine holds freed
     * blocks) would stay resident and hold the peak up after the reset. */
    char *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    touch_pages(p, BIG);
    munmap(p, BIG);
    size_t high = rss_peak_bytes();
    if (rss_reset_peak() != 0)
        cr_skip_test("peak RSS reset unsupported here: %s", attn_last_error());
    cr_assert_lt(rss_peak_bytes() + BIG / 2, high, "peak stayed at %zu", rss_peak_bytes());
    /* A region after the reset does not see the earlier 64 MiB. */
    rss_region r;
    rss_region_begin(&r);
    cr_assert(r.exact);
    cr_assert_lt(rss_region_peak_bytes(&r), BIG / 4);
}

Test(measure, sysinfo_reports_machine_and_run)
{
    cr_assert_geq(sysinfo_ncpu(), 1);
    cr_assert_gt(strlen(sysinfo_cpu()), 0);
    char utc[32];
    sysinfo_utc_iso8601(utc, sizeof utc);
    cr_assert_eq(strlen(utc), 20, "%s", utc);
    cr_assert(utc[4] == '-' && utc[10] == 'T' && utc[19] == 'Z', "%s", utc);
    const char *id = sysinfo_run_id();
    cr_assert_eq(strlen(id), 12);
    cr_assert_eq(strspn(id, "0123456789abcdef"), 12, "%s", id);
    cr_assert_str_eq(sysinfo_run_id(), id, "run id changed within a process");
    cr_assert(strncmp(sysinfo_compiler(), "gcc ", 4) == 0 || strncmp(sysinfo_compiler(), "clang ", 6) == 0);
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    sysinfo_print(f);
    fclose(f);
    cr_assert(strstr(buf, sysinfo_cpu()) && strstr(buf, "CPU Caches:") && strstr(buf, id), "%s", buf);
}

Test(peak, small_probe_returns_positive_finite_peaks_quickly)
{
    peak_result p;
    double t0 = measure_now_s();
    cr_assert_eq(peak_measure_sized(1, 128, (size_t)3 << 20, &p), 0, "%s", attn_last_error());
    cr_assert_lt(measure_now_s() - t0, 5.0);
    cr_assert_eq(p.threads, 1);
    cr_assert_eq(p.sgemm_n, 128);
    cr_assert_eq(p.stream_bytes, (size_t)3 << 20);
    /* Positive, finite, and not off by a unit prefix (no CPU core does a
     * PFLOP/s or a PB/s). */
    cr_assert(isfinite(p.sgemm_gflops) && p.sgemm_gflops > 0.1 && p.sgemm_gflops < 1e5, "%g", p.sgemm_gflops);
    cr_assert(isfinite(p.stream_gbs) && p.stream_gbs > 0.1 && p.stream_gbs < 1e4, "%g", p.stream_gbs);
    cr_assert(isfinite(p.fma_gflops) && p.fma_gflops > 0.1 && p.fma_gflops < 1e5, "%g", p.fma_gflops);
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    peak_print(f, &p);
    fclose(f);
    cr_assert(strstr(buf, "GFLOP/s") && strstr(buf, "GB/s") && strstr(buf, "FMA roof"), "%s", buf);
}

Test(peak, rejects_bad_sizes_with_a_message)
{
    peak_result p;
    cr_assert_eq(peak_measure_sized(0, 128, (size_t)3 << 20, &p), ATTN_EINVAL);
    cr_assert_eq(peak_measure_sized(1, 8, (size_t)3 << 20, &p), ATTN_EINVAL);
    cr_assert_eq(peak_measure_sized(1, 128, 100, &p), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "stream_bytes") != NULL);
}

Test(peak, cache_hit_returns_stored_values_without_measuring)
{
    char dir[] = "/tmp/attn_peak_XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/peak.txt", dir);
    FILE *f = fopen(path, "w");
    /* Another machine's line, then ours at 3 threads: only ours matches. */
    fprintf(f, "cpu=Some Other CPU (%d cpus)\tthreads=3\tsgemm_n=64\tsgemm_gflops=1.5\tstream_bytes=12288"
               "\tstream_gbs=2.5\tfma_gflops=3\tutc=x\n", sysinfo_ncpu());
    fprintf(f, "cpu=%s (%d cpus)\tthreads=3\tsgemm_n=2048\tsgemm_gflops=123.25\tstream_bytes=402653184"
               "\tstream_gbs=17.5\tfma_gflops=140.5\tbf16_gflops=281\tutc=x\n", sysinfo_cpu(), sysinfo_ncpu());
    fclose(f);
    peak_result p;
    double t0 = measure_now_s();
    cr_assert_eq(peak_load_or_measure(path, 3, &p), 0, "%s", attn_last_error());
    cr_assert_lt(measure_now_s() - t0, 0.1, "measured instead of reading the cache");
    cr_assert(p.threads == 3 && p.sgemm_n == 2048 && p.stream_bytes == 402653184);
    cr_assert_float_eq(p.sgemm_gflops, 123.25, 1e-9);
    cr_assert_float_eq(p.stream_gbs, 17.5, 1e-9);
    cr_assert_float_eq(p.fma_gflops, 140.5, 1e-9);
    cr_assert_float_eq(p.bf16_gflops, 281, 1e-9);
    unlink(path);
    rmdir(dir);
}

Test(peak, cache_miss_measures_once_and_writes_the_file, .timeout = 20)
{
    char dir[] = "/tmp/attn_peak_XXXXXX", path[160];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/results/peak.txt", dir);   /* results/ does not exist yet */
    peak_result a, b;
    cr_assert_eq(peak_load_or_measure(path, 1, &a), 0, "%s", attn_last_error());
    cr_assert(a.sgemm_gflops > 0 && a.stream_gbs > 0 && a.sgemm_n == ATTN_PEAK_SGEMM_N);
    double t0 = measure_now_s();
    cr_assert_eq(peak_load_or_measure(path, 1, &b), 0);
    cr_assert_lt(measure_now_s() - t0, 0.1, "second call measured again");
    cr_assert_float_eq(b.sgemm_gflops, a.sgemm_gflops, 1e-3 + 1e-6 * a.sgemm_gflops);
    cr_assert_float_eq(b.stream_gbs, a.stream_gbs, 1e-3 + 1e-6 * a.stream_gbs);
    cr_assert_float_eq(b.fma_gflops, a.fma_gflops, 1e-3 + 1e-6 * a.fma_gflops);
    cr_assert_eq(b.stream_bytes, a.stream_bytes);
    char tmp_glob[200];
    snprintf(tmp_glob, sizeof tmp_glob, "%s/results/peak.txt.tmp.%ld", dir, (long)getpid());
    cr_assert_neq(access(tmp_glob, F_OK), 0, "temporary file left behind");
    unlink(path);
    snprintf(path, sizeof path, "%s/results", dir);
    rmdir(path);
    rmdir(dir);
}
