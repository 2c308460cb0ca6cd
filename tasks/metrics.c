/* Scoring of TASK_LM predictions: see metrics.h for the conventions. */
#include "metrics.h"

#include <math.h>
#include <string.h>

void task_wilson(int64_t k, int64_t n, double z, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    /* Wilson (1927): centre (p + z^2/2n) / (1 + z^2/n), half-width
     * z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) */
    double nn = (double)n, p = (double)k / nn, z2 = z * z, den = 1 + z2 / nn;
    double centre = (p + z2 / (2 * nn)) / den;
    double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / den;
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
}

void task_normal_interval(double sum, double sum2, int64_t n, double z, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double nn = (double)n, mean = sum / nn;
    double var = n > 1 ? (sum2 - nn * mean * mean) / (nn - 1) : 0;
    double half = z * sqrt(var > 0 ? var : 0) / sqrt(nn);
    *lo = fmax(0, mean - half);
    *hi = fmin(1, mean + half);
}

/* Counts of one example: scored positions, right ones, values and right
 * values. tgt, pred [len]. */
static void example_counts(const int32_t *tgt, const int32_t *pred, int64_t len, int32_t sep, int64_t *c)
{
    int in_value = 0, value_ok = 1;
    for (int64_t t = 0; t <= len; t++) {
        int scored = t < len && tgt[t] != TASK_IGNORE;
        int is_sep = scored && sep >= 0 && tgt[t] == sep;
        if (scored) {
            c[0]++;
            c[1] += pred[t] == tgt[t];
        }
        if (in_value && (!scored || is_sep)) { /* a value ends */
            c[2]++;
            c[3] += value_ok;
            in_value = 0;
        }
        if (scored && !is_sep) {
            value_ok = in_value ? value_ok && pred[t] == tgt[t] : pred[t] == tgt[t];
            in_value = 1;
        }
    }
}

int task_lm_metrics_compute(const task_data *d, const int32_t *pred, int32_t sep, task_lm_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (d->kind != TASK_LM || !d->targets)
        return attn_fail(ATTN_EINVAL, "metrics: expected a TASK_LM dataset with targets, found task %s kind %d",
                         d->name, (int)d->kind);
    if (!pred)
        return attn_fail(ATTN_EINVAL, "metrics: expected predictions [%lld][%lld], found NULL", (long long)d->n,
                         (long long)d->len);
    double sum_acc = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t c[4] = {0, 0, 0, 0};
        example_counts(task_targets(d, i), pred + i * d->len, d->len, sep, c);
        if (c[0] == 0)
            continue;
        m->n_examples++;
        m->n_positions += c[0];
        m->n_right += c[1];
        m->n_exact += c[1] == c[0];
        m->n_values += c[2];
        m->n_values_right += c[3];
        sum_acc += (double)c[1] / (double)c[0];
    }
    if (m->n_examples) {
        m->acc_mean_over_examples = sum_acc / (double)m->n_examples;
        m->acc_pooled = (double)m->n_right / (double)m->n_positions;
        m->exact_match = (double)m->n_exact / (double)m->n_examples;
    }
    if (m->n_values)
        m->value_acc = (double)m->n_values_right / (double)m->n_values;
    task_wilson(m->n_exact, m->n_examples, TASK_Z95, &m->exact_lo, &m->exact_hi);
    return 0;
}
