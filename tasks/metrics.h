/* Scoring of TASK_LM predictions (docs/tasks.md, "Metrics").
 *
 * A prediction is one token id per position (the argmax of the model's
 * output at that position), [n][len], compared with task_data.targets at
 * every position whose target is not TASK_IGNORE. Reported together:
 *   acc_mean_over_examples  mean over examples of the per-example fraction
 *                           of scored positions right (Zoology compute_metrics);
 *   acc_pooled              right / scored positions over the whole set
 *                           (per-query accuracy; NIAH's per-digit accuracy);
 *   exact_match             fraction of examples with every scored position
 *                           right (NIAH whole-value exact match), with its
 *                           Wilson 95 % interval over the examples;
 *   value_acc               fraction of answer values right as a whole: a
 *                           value is a maximal run of consecutive scored
 *                           positions, cut at targets equal to `sep` (which
 *                           are scored but belong to no value); sep < 0 =
 *                           no separator (RULER string_match_all analogue).
 * Examples without any scored position are left out of every mean. */
#ifndef ATTN_TASK_METRICS_H
#define ATTN_TASK_METRICS_H

#include "task.h"

#include <stdint.h>

typedef struct {
    int64_t n_examples;   /* examples with >= 1 scored position */
    int64_t n_positions;  /* scored positions */
    int64_t n_right;      /* scored positions predicted right */
    int64_t n_exact;      /* examples entirely right */
    int64_t n_values, n_values_right;
    double acc_mean_over_examples, acc_pooled, exact_match, value_acc;
    double exact_lo, exact_hi; /* Wilson 95 % interval of exact_match */
} task_lm_metrics;

/* pred [n][len] token ids; d a TASK_LM dataset. */
int task_lm_metrics_compute(const task_data *d, const int32_t *pred, int32_t sep, task_lm_metrics *m);

/* Wilson score interval of k successes in n trials at normal quantile z
 * (1.959963984540054 for 95 %); n = 0 gives [0, 1]. */
void task_wilson(int64_t k, int64_t n, double z, double *lo, double *hi);

/* Normal-approximation interval of the mean of n per-example scores given
 * their sum and sum of squares: mean -+ z s / sqrt(n) with s the sample
 * standard deviation, clamped to [0, 1]; n = 0 gives [0, 1]. */
void task_normal_interval(double sum, double sum2, int64_t n, double z, double *lo, double *hi);

#define TASK_Z95 1.959963984540054

#endif
