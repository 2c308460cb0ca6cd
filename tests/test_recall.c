/* Associative-recall generators (docs/tasks.md): MQAR against the Zoology
 * specification, determinism of the per-example streams, the power-law
 * query placement, trivial oracles that prove the classic tasks solvable
 * with correct labels, and the scoring conventions. */
#include "common/attn_error.h"
#include "tasks/metrics.h"
#include "tasks/recall.h"
#include "task_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rows_equal(const task_data *a, const task_data *b, int64_t i)
{
    size_t k = (size_t)a->len * sizeof(int32_t);
    return memcmp(task_tokens(a, i), task_tokens(b, i), k) == 0 &&
           memcmp(task_targets(a, i), task_targets(b, i), k) == 0;
}

/* The predictions of an oracle at the scored positions, -1 elsewhere. */
typedef int32_t (*oracle_fn)(const int32_t *tok, int64_t len, int64_t t, int32_t V);

static task_lm_metrics score_oracle(const task_data *d, oracle_fn f)
{
    int32_t *pred = malloc((size_t)(d->n * d->len) * sizeof *pred);
    for (int64_t i = 0; i < d->n; i++)
        for (int64_t t = 0; t < d->len; t++)
            pred[i * d->len + t] =
                task_targets(d, i)[t] == TASK_IGNORE ? -1 : f(task_tokens(d, i), d->len, t, d->vocab);
    task_lm_metrics m;
    cr_assert_eq(task_lm_metrics_compute(d, pred, -1, &m), 0, "%s", attn_last_error());
    free(pred);
    return m;
}

/* --- MQAR ---------------------------------------------------------------- */

Test(recall, mqar_matches_the_zoology_spec, .timeout = 60)
{
    task_data d;
    make_task(&task_mqar, "", TASK_TRAIN, 7, 200, &d);
    const int64_t L = 256, D = 16, V = 8192, K = V / 2, c = 2 * D;
    cr_assert_eq(d.len, L);
    cr_assert_eq(d.vocab, V);
    cr_assert_eq(d.kind, TASK_LM);
    cr_assert_str_eq(d.data_source, "generated");
    cr_assert_str_eq(d.meta, "L=256;D=16;V=8192;a=0.01;passes=1");
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        int queried[16] = {0}, scored = 0;
        for (int64_t j = 0; j < D; j++) {
            cr_assert(x[2 * j] >= 1 && x[2 * j] < K, "key %d outside [1, K)", x[2 * j]);
            cr_assert(x[2 * j + 1] >= K && x[2 * j + 1] < V, "value %d outside [K, V)", x[2 * j + 1]);
            for (int64_t q = 0; q < j; q++)
                cr_assert_neq(x[2 * q], x[2 * j], "keys repeat in example %lld", (long long)i);
        }
        for (int64_t t = 0; t < c; t++)
            cr_assert_eq(y[t], TASK_IGNORE, "context position %lld is scored", (long long)t);
        for (int64_t t = c; t < L; t++) {
            if (y[t] == TASK_IGNORE) {
                cr_assert_eq(x[t], 0, "filler at %lld is %d, expected 0", (long long)t, x[t]);
                continue;
            }
            scored++;
            cr_assert_eq((t - c) % 2, 0, "query at odd offset %lld", (long long)(t - c));
            int64_t j = 0;
            while (j < D && x[2 * j] != x[t])
                j++;
            cr_assert(j < D, "query token %d is not a key of the context", x[t]);
            cr_assert_eq(y[t], x[2 * j + 1], "target of key %d is %d, its value is %d", x[t], y[t], x[2 * j + 1]);
            queried[j]++;
        }
        cr_assert_eq(scored, D);
        for (int64_t j = 0; j < D; j++)
            cr_assert_eq(queried[j], 1, "key %lld queried %d times", (long long)j, queried[j]);
    }
    task_data_free(&d);
}

Test(recall, mqar_two_passes_repeat_the_context, .timeout = 60)
{
    task_data d;
    make_task(&task_mqar, "L=128 D=8 passes=2 V=512", TASK_TRAIN, 3, 50, &d);
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        cr_assert_eq(memcmp(x, x + 16, 16 * sizeof *x), 0, "second pass differs in example %lld", (long long)i);
        int scored = 0;
        for (int64_t t = 0; t < 128; t++) {
            cr_assert(y[t] == TASK_IGNORE || t >= 32, "scored position %lld inside the context", (long long)t);
            scored += y[t] != TASK_IGNORE;
        }
        cr_assert_eq(scored, 8);
    }
    task_data_free(&d);
}

Test(recall, mqar_is_deterministic_per_example_and_split, .timeout = 60)
{
    task_data a, b, small, test, other;
    make_task(&task_mqar, "L=64 D=4", TASK_TRAIN, 11, 40, &a);
    make_task(&task_mqar, "L=64 D=4", TASK_TRAIN, 11, 40, &b);
    make_task(&task_mqar, "L=64 D=4", TASK_TRAIN, 11, 5, &small);
    make_task(&task_mqar, "L=64 D=4", TASK_TEST, 11, 40, &test);
    make_task(&task_mqar, "L=64 D=4", TASK_TRAIN, 12, 40, &other);
    int same_test = 0, same_other = 0;
    for (int64_t i = 0; i < 40; i++) {
        cr_assert(rows_equal(&a, &b, i), "same seed, example %lld differs", (long long)i);
        if (i < 5)
            cr_assert(rows_equal(&a, &small, i), "example %lld depends on n", (long long)i);
        same_test += rows_equal(&a, &test, i);
        same_other += rows_equal(&a, &other, i);
    }
    cr_assert_eq(same_test, 0, "train and test share %d examples", same_test);
    cr_assert_eq(same_other, 0, "seeds 11 and 12 share %d examples", same_other);
    task_data_free(&a), task_data_free(&b), task_data_free(&small), task_data_free(&test), task_data_free(&other);
}

/* Mean query slot g over all queries of n examples. */
static double mean_query_slot(const char *params, int64_t n)
{
    task_data d;
    make_task(&task_mqar, params, TASK_TEST, 5, n, &d);
    double sum = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 32; t < d.len; t++)
            if (task_targets(&d, i)[t] != TASK_IGNORE)
                sum += (double)(t - 32) / 2, k++;
    task_data_free(&d);
    return sum / (double)k;
}

Test(recall, mqar_power_law_puts_queries_early, .timeout = 60)
{
    /* S = 112 slots, 16 queries: uniform placement (a = 1) has mean slot
     * 55.5 (sd of the mean over 32000 queries ~0.2); a = 0.01 weights slot
     * g by (g+1)^-0.99, so queries crowd right after the context: an
     * independent Python simulation of numpy's successive weighted sampling
     * (2000 x 16 draws) gives a mean slot of 28.06. */
    double low = mean_query_slot("L=256 D=16 a=0.01", 2000), flat = mean_query_slot("L=256 D=16 a=1", 2000);
    cr_assert(fabs(flat - 55.5) < 1.5, "a=1 mean slot %.2f, expected 55.5 (uniform)", flat);
    cr_assert(fabs(low - 28.06) < 1.0, "a=0.01 mean slot %.2f, expected 28.06 (reference sampler)", low);
    cr_assert(low < 0.7 * flat, "a=0.01 mean slot %.2f is not much earlier than uniform %.2f", low, flat);
}

Test(recall, mqar_rejects_impossible_configs, .timeout = 60)
{
    cr_assert(make_fails(&task_mqar, "L=255", "even L"));
    cr_assert(make_fails(&task_mqar, "L=256 V=200", "V > L"));
    cr_assert(make_fails(&task_mqar, "L=64 D=17", "2*D*passes + 2*D <= L"));
    cr_assert(make_fails(&task_mqar, "L=64 D=4 pairs=3", "pairs"));
    cr_assert(make_fails(&task_mqar, "a=zero", "param a"));
}

/* --- classic tasks: trivial oracles reading the input --------------------
 * ar and induction here in their last_only form (safari's default form:
 * tests/test_classic_recall.c). */

static int32_t ar_oracle(const int32_t *x, int64_t len, int64_t t, int32_t V)
{
    (void)V, (void)t;
    for (int64_t j = 0; 2 * j + 1 < len - 1; j++)
        if (x[2 * j] == x[len - 1])
            return x[2 * j + 1];
    return -1;
}

/* A wrong reader: the value of the last pair, whatever the query. */
static int32_t ar_last_value(const int32_t *x, int64_t len, int64_t t, int32_t V)
{
    (void)V, (void)t;
    return x[len - 2];
}

Test(recall, ar_last_only_oracle_reading_the_input_scores_100_percent, .timeout = 60)
{
    task_data d;
    make_task(&task_ar, "form=last_only", TASK_TRAIN, 2, 500, &d);
    cr_assert_eq(d.len, 31);
    cr_assert_str_eq(d.meta, "L=31;V=20;pairs=15;form=last_only");
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        for (int64_t t = 0; t < d.len - 1; t++) {
            cr_assert_eq(y[t], TASK_IGNORE);
            cr_assert(t % 2 ? x[t] >= 10 && x[t] < 20 : x[t] >= 0 && x[t] < 10, "token %d at %lld", x[t],
                      (long long)t);
        }
        cr_assert(y[d.len - 1] >= 10 && y[d.len - 1] < 20);
    }
    task_lm_metrics m = score_oracle(&d, ar_oracle);
    cr_assert_eq(m.n_exact, 500, "oracle exact on %lld of 500", (long long)m.n_exact);
    cr_assert_eq(m.n_positions, 500);
    m = score_oracle(&d, ar_last_value);
    cr_assert(m.acc_pooled < 0.5, "reading the last value scores %.2f: the query does not matter", m.acc_pooled);
    task_data_free(&d);
}

static int32_t induction_oracle(const int32_t *x, int64_t len, int64_t t, int32_t V)
{
    (void)t;
    for (int64_t p = 0; p < len - 1; p++)
        if (x[p] == V - 1)
            return x[p + 1];
    return -1;
}

Test(recall, induction_last_only_oracle_reading_the_input_scores_100_percent, .timeout = 60)
{
    task_data d;
    make_task(&task_induction, "form=last_only L=128", TASK_TEST, 4, 300, &d);
    cr_assert_eq(d.vocab, 16);
    cr_assert_str_eq(d.meta, "L=128;V=16;form=last_only");
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        int triggers = 0;
        for (int64_t t = 0; t < d.len; t++) {
            triggers += x[t] == 15;
            cr_assert(t == d.len - 1 || y[t] == TASK_IGNORE, "scored position %lld", (long long)t);
        }
        cr_assert_eq(triggers, 2);
        cr_assert_eq(x[d.len - 1], 15, "the sequence must end with the trigger");
        cr_assert(y[d.len - 1] >= 0 && y[d.len - 1] < 15);
    }
    task_lm_metrics m = score_oracle(&d, induction_oracle);
    cr_assert_eq(m.exact_match, 1.0, "oracle exact match %.3f", m.exact_match);
    task_data_free(&d);
}

/* Copy oracle: the k-th non-noise, non-marker token of the input, k = the
 * index of marker t among the markers. */
static int32_t copy_oracle(const int32_t *x, int64_t len, int64_t t, int32_t V)
{
    int64_t first_marker = len;
    while (first_marker > 0 && x[first_marker - 1] == V - 1)
        first_marker--;
    int64_t k = t - first_marker;
    for (int64_t p = 0; p < first_marker; p++)
        if (x[p] != 0 && k-- == 0)
            return x[p];
    return -1;
}

static void check_copy_task(const task_def *task, const char *params, int fixed)
{
    task_data d;
    make_task(task, params, TASK_TRAIN, 9, 200, &d);
    const int64_t m = 16, body = d.len - m;
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        int64_t content = 0;
        for (int64_t t = 0; t < body; t++) {
            cr_assert_eq(y[t], TASK_IGNORE);
            cr_assert(x[t] >= 0 && x[t] < 15);
            content += x[t] != 0;
            if (fixed)
                cr_assert_eq(x[t] != 0, t < m, "copy content at %lld", (long long)t);
        }
        cr_assert_eq(content, m);
        for (int64_t t = body; t < d.len; t++) {
            cr_assert_eq(x[t], 15, "marker expected at %lld", (long long)t);
            cr_assert(y[t] >= 1 && y[t] < 15);
        }
    }
    task_lm_metrics m_ = score_oracle(&d, copy_oracle);
    cr_assert_eq(m_.n_exact, d.n, "oracle exact on %lld of %lld", (long long)m_.n_exact, (long long)d.n);
    cr_assert_eq(m_.n_positions, d.n * m);
    task_data_free(&d);
}

Test(recall, selective_copy_oracle_reading_the_input_scores_100_percent, .timeout = 60)
{
    check_copy_task(&task_selective_copy, "L=256", 0);
}

Test(recall, copy_puts_content_at_fixed_positions_and_oracle_scores_100_percent, .timeout = 60)
{
    check_copy_task(&task_copy, "L=96", 1);
}

Test(recall, selective_copy_default_length_is_4096, .timeout = 60)
{
    task_data d;
    make_task(&task_selective_copy, "", TASK_TRAIN, 1, 2, &d);
    cr_assert_eq(d.len, 4096);
    cr_assert_str_eq(d.meta, "L=4096;V=16;tokens=16");
    task_data_free(&d);
    cr_assert(make_fails(&task_selective_copy, "L=20 tokens=16", "2*tokens <= L"));
    cr_assert(make_fails(&task_ar, "form=last_only L=30", "odd L"));
}

/* --- metrics ------------------------------------------------------------- */

Test(recall, metrics_wilson_interval_matches_known_values, .timeout = 60)
{
    static const struct {
        int64_t k, n;
        double lo, hi;
    } cases[] = {
        {0, 10, 0.0, 0.2775328}, {5, 10, 0.2365931, 0.7634069}, {10, 10, 0.7224672, 1.0},
        {81, 100, 0.7222115, 0.8748525}, {1, 3, 0.0614919, 0.7923404},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double lo, hi;
        task_wilson(cases[c].k, cases[c].n, TASK_Z95, &lo, &hi);
        cr_assert(fabs(lo - cases[c].lo) < 1e-6 && fabs(hi - cases[c].hi) < 1e-6, "%lld/%lld: [%.7f, %.7f]",
                  (long long)cases[c].k, (long long)cases[c].n, lo, hi);
    }
    double lo, hi;
    task_wilson(0, 0, TASK_Z95, &lo, &hi);
    cr_assert(lo == 0 && hi == 1);
}

Test(recall, metrics_exact_match_conventions_on_a_hand_made_example, .timeout = 60)
{
    /* example 0: 2 scored, both right; example 1: values "12" "34" with the
     * separator ',' (=9 here), one wrong digit; example 2: nothing scored. */
    task_data d;
    cr_assert_eq(task_data_alloc(&d, "hand", TASK_LM, 3, 6), 0);
    const int32_t I = TASK_IGNORE;
    const int32_t tgt[3][6] = {{I, 5, I, 6, I, I}, {I, 1, 2, 9, 3, 4}, {I, I, I, I, I, I}};
    const int32_t pred[3][6] = {{0, 5, 0, 6, 0, 0}, {0, 1, 2, 9, 3, 7}, {0, 0, 0, 0, 0, 0}};
    memcpy(d.targets, tgt, sizeof tgt);
    task_lm_metrics m;
    cr_assert_eq(task_lm_metrics_compute(&d, &pred[0][0], 9, &m), 0);
    cr_assert_eq(m.n_examples, 2, "the example without scored positions counts");
    cr_assert_eq(m.n_positions, 7);
    cr_assert_eq(m.n_right, 6);
    cr_assert(fabs(m.acc_mean_over_examples - (1.0 + 4.0 / 5.0) / 2) < 1e-12, "%g", m.acc_mean_over_examples);
    cr_assert(fabs(m.acc_pooled - 6.0 / 7.0) < 1e-12);
    cr_assert_eq(m.n_exact, 1);
    cr_assert(fabs(m.exact_match - 0.5) < 1e-12);
    /* values: {5}, {6} in example 0 (cut by ignored positions); {1,2}, {3,4} in 1 */
    cr_assert_eq(m.n_values, 4);
    cr_assert_eq(m.n_values_right, 3);
    double lo, hi;
    task_wilson(1, 2, TASK_Z95, &lo, &hi);
    cr_assert(m.exact_lo == lo && m.exact_hi == hi);
    cr_assert_eq(task_lm_metrics_compute(&d, NULL, 9, &m), ATTN_EINVAL);
    task_data_free(&d);
}
