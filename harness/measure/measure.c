/* Timing loop and order statistics (measure.h). */
#include "measure.h"

#include "common/attn_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double measure_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation at rank p*(n-1) of sorted samples. */
static double percentile_sorted(const double *s, int n, double p)
{
    double rank = p * (n - 1);
    int lo = (int)floor(rank);
    int hi = lo + 1 < n ? lo + 1 : n - 1;
    return s[lo] + (rank - lo) * (s[hi] - s[lo]);
}

/* Statistics of n >= 1 already sorted samples. */
static void stats_sorted(const double *s, int n, measure_stats *out)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    double mean = sum / n, ss = 0;
    for (int i = 0; i < n; i++)
        ss += (s[i] - mean) * (s[i] - mean);
    /* Sample (n-1) stddev, as google/benchmark reports it. */
    double sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
    *out = (measure_stats){
        .reps = n,
        .warmup = 0,
        .median_ms = percentile_sorted(s, n, 0.5),
        .p10_ms = percentile_sorted(s, n, 0.1),
        .p90_ms = percentile_sorted(s, n, 0.9),
        .mean_ms = mean,
        .min_ms = s[0],
        .max_ms = s[n - 1],
        .cv = mean > 0 ? sd / mean : 0,
    };
}

void measure_stats_from(const double *samples_ms, int n, measure_stats *out)
{
    double *s = n > 0 ? malloc((size_t)n * sizeof *s) : NULL;
    if (!s) {
        double nan = NAN;
        *out = (measure_stats){0, 0, nan, nan, nan, nan, nan, nan, nan};
        return;
    }
    memcpy(s, samples_ms, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    stats_sorted(s, n, out);
    free(s);
}

int measure_run(int (*fn)(void *), void *arg, const measure_opts *opts, measure_stats *out)
{
    measure_opts o = opts ? *opts : MEASURE_OPTS_DEFAULT;
    if (o.warmup < 0 || o.min_reps < 1 || o.max_reps < o.min_reps || !(o.min_time_s >= 0))
        return attn_fail(ATTN_EINVAL,
                         "measure: expected warmup >= 0, 1 <= min_reps <= max_reps, min_time_s >= 0; "
                         "found warmup=%d min_reps=%d max_reps=%d min_time_s=%g",
                         o.warmup, o.min_reps, o.max_reps, o.min_time_s);
    /* One allocation before timing starts; nothing allocates inside the loop. */
    double *samples = malloc((size_t)o.max_reps * sizeof *samples);
    if (!samples)
        return attn_fail(ATTN_ENOMEM, "measure: cannot allocate %d samples", o.max_reps);
    for (int i = 0; i < o.warmup; i++) {
        int rc = fn(arg);
        if (rc) {
            free(samples);
            return rc;
        }
    }
    int n = 0;
    double total_s = 0;
    while (n < o.max_reps && (n < o.min_reps || total_s < o.min_time_s)) {
        double t0 = measure_now_s();
        int rc = fn(arg);
        double dt = measure_now_s() - t0;
        if (rc) {
            free(samples);
            return rc;
        }
        samples[n++] = 1e3 * dt;
        total_s += dt;
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    stats_sorted(samples, n, out);
    out->warmup = o.warmup;
    free(samples);
    return 0;
}
