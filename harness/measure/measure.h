/* Wall-clock timing of one measured call: warm-up, then adaptive repetition
 * until both a minimum count and a minimum total time are reached, reported
 * as median with p10/p90 (google/benchmark-style aggregates).
 *
 * Timer: clock_gettime(CLOCK_MONOTONIC) around each call, so every sample is
 * one call and nothing else (no loop overhead amortized across calls). */
#ifndef ATTN_MEASURE_H
#define ATTN_MEASURE_H

typedef struct {
    int warmup;        /* untimed calls before the first sample (>= 0) */
    int min_reps;      /* at least this many samples (>= 1) */
    int max_reps;      /* never more than this many (>= min_reps) */
    double min_time_s; /* keep sampling until the samples sum to this (>= 0) */
} measure_opts;

/* warmup 3, min_reps 10, max_reps 1000, min_time_s 1.0: at least 3 warm-ups, 10 runs and 1 s per point. */
#define MEASURE_OPTS_DEFAULT ((measure_opts){3, 10, 1000, 1.0})

typedef struct {
    int reps, warmup;          /* samples taken; warm-up calls made */
    double median_ms, p10_ms, p90_ms, mean_ms, min_ms, max_ms;
    double cv;                 /* sample stddev / mean (0 for one sample) */
} measure_stats;

/* Seconds on the monotonic clock (arbitrary origin). */
double measure_now_s(void);

/* Aggregates n >= 1 samples (milliseconds, any order). Percentiles use linear
 * interpolation between order statistics at rank p*(n-1) (numpy's default),
 * so the median of an even count is the mean of the middle two. reps = n,
 * warmup = 0. n <= 0 gives all-NaN statistics and reps = 0. */
void measure_stats_from(const double *samples_ms, int n, measure_stats *out);

/* Calls fn(arg) opts->warmup times untimed, then times single calls until
 * reps >= min_reps and the timed total >= min_time_s, or reps == max_reps.
 * opts NULL means MEASURE_OPTS_DEFAULT. The first non-zero return of fn
 * is returned unchanged (fn records its own message); *out is then untouched.
 * ATTN_EINVAL for inconsistent opts, ATTN_ENOMEM if the sample buffer fails. */
int measure_run(int (*fn)(void *), void *arg, const measure_opts *opts, measure_stats *out);

#endif
