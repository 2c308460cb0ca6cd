/* ar and induction in their default form against safari's generator
 * (HazyResearch/safari src/dataloaders/synthetics.py, docs/tasks.md): the
 * vocabulary layout, the "=>" separator, the sequence layout, which
 * positions carry a training target and which the metric scores, and the
 * distributions of keys, values, queries and trigger positions over
 * thousands of examples, against values computed from safari's rules.
 * The last_only form is pinned in tests/test_recall.c. */
#include "common/attn_error.h"
#include "models/train.h"
#include "tasks/metrics.h"
#include "tasks/recall.h"
#include "task_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pearson's statistic of counts[k] against a uniform expectation. */
static double chi_square_uniform(const int64_t *counts, int k)
{
    int64_t total = 0;
    for (int j = 0; j < k; j++)
        total += counts[j];
    double e = (double)total / k, s = 0;
    for (int j = 0; j < k; j++)
        s += ((double)counts[j] - e) * ((double)counts[j] - e) / e;
    return s;
}

/* Critical values of the chi-square distribution at p = 0.001. */
#define CHI2_DF8_P001 26.12
#define CHI2_DF17_P001 40.79
#define CHI2_DF27_P001 55.48

/* safari's targets: the training split's are the next tokens (loss on every
 * position), valid's and test's only the answer at the last position. */
static void check_safari_targets(const int32_t *x, const int32_t *y, int64_t L, task_split split, int32_t answer)
{
    for (int64_t t = 0; t + 1 < L; t++) {
        int32_t want = split == TASK_TRAIN ? x[t + 1] : TASK_IGNORE;
        cr_assert_eq(y[t], want, "target at %lld: %d, expected %d", (long long)t, y[t], want);
    }
    cr_assert_eq(y[L - 1], answer, "the last target is the answer");
}

/* The default parameters' slice keys name the form. */
static void check_default_meta(const task_def *t, const char *meta)
{
    task_data d;
    make_task(t, "", TASK_TRAIN, 1, 1, &d);
    cr_assert_str_eq(d.meta, meta);
    task_data_free(&d);
}

/* --- ar ------------------------------------------------------------------ */

/* The value an ar example's context gives key k, or -1 when k is absent. */
static int32_t ar_context_value(const int32_t *x, int64_t pairs, int32_t k)
{
    for (int64_t j = 0; j < pairs; j++)
        if (x[2 * j] == k)
            return x[2 * j + 1];
    return -1;
}

/* safari with vocab_size V: Vocab(V - 2 content strings) plus "." and "=>",
 * sorted as text: "." = 0, content 1..V-2 (keys the first (V-2)/2 of them),
 * "=>" = V-1. Checks one split's examples token by token. */
static void check_ar_layout(const char *params, int64_t L, int32_t V, task_split split)
{
    task_data d;
    make_task(&task_ar, params, split, 3, 400, &d);
    const int64_t pairs = (L - 2) / 2, N = V - 2, K = N / 2;
    cr_assert_eq(d.len, L);
    cr_assert_eq(d.vocab, V);
    cr_assert_str_eq(d.data_source, "generated");
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        for (int64_t j = 0; j < pairs; j++) {
            cr_assert(x[2 * j] >= 1 && x[2 * j] <= K, "key %d outside [1, %lld]", x[2 * j], (long long)K);
            cr_assert(x[2 * j + 1] > K && x[2 * j + 1] <= N, "value %d outside [%lld, %lld]", x[2 * j + 1],
                      (long long)K + 1, (long long)N);
            cr_assert_eq(ar_context_value(x, pairs, x[2 * j]), x[2 * j + 1], "key %d has two values", x[2 * j]);
        }
        cr_assert_eq(x[L - 2], V - 1, "'=>' expected at %lld", (long long)(L - 2));
        int32_t answer = ar_context_value(x, pairs, x[L - 1]);
        cr_assert(answer > 0, "query key %d absent from the context (safari's allow_dot=False)", x[L - 1]);
        check_safari_targets(x, y, L, split, answer);
    }
    task_data_free(&d);
}

Test(classic_recall, ar_default_is_safari_layout_with_separator_and_next_token_targets, .timeout = 60)
{
    check_default_meta(&task_ar, "L=42;V=20;pairs=20;form=safari");
    check_ar_layout("", 42, 20, TASK_TRAIN);
    /* safari's vocab_size_10 experiment: input_seq_len 20, keys 1..4, values 5..8 */
    check_ar_layout("L=22 V=10", 22, 10, TASK_TRAIN);
    /* an odd number of content strings: the values get the extra one (5..9) */
    check_ar_layout("L=22 V=11", 22, 11, TASK_TRAIN);
}

Test(classic_recall, ar_valid_and_test_carry_only_the_answer_target, .timeout = 60)
{
    check_ar_layout("", 42, 20, TASK_TEST);
    check_ar_layout("", 42, 20, TASK_VALID);
}

static int32_t *ar_oracle_predictions(const task_data *d, int wrong)
{
    int32_t *pred = malloc((size_t)(d->n * d->len) * sizeof *pred);
    for (int64_t i = 0; i < d->n; i++)
        for (int64_t t = 0; t < d->len; t++) {
            const int32_t *x = task_tokens(d, i);
            /* right: the query's value read from the context; wrong: the last pair's value */
            pred[i * d->len + t] = wrong ? x[d->len - 3] : ar_context_value(x, (d->len - 2) / 2, x[d->len - 1]);
        }
    return pred;
}

Test(classic_recall, ar_metric_scores_one_answer_per_test_example, .timeout = 60)
{
    task_data d;
    make_task(&task_ar, "", TASK_TEST, 5, 500, &d);
    task_lm_metrics m;
    int32_t *pred = ar_oracle_predictions(&d, 0);
    cr_assert_eq(task_lm_metrics_compute(&d, pred, -1, &m), 0, "%s", attn_last_error());
    cr_assert_eq(m.n_positions, 500, "scored positions %lld, expected one per example", (long long)m.n_positions);
    cr_assert_eq(m.acc_mean_over_examples, 1.0);
    free(pred);
    pred = ar_oracle_predictions(&d, 1);
    cr_assert_eq(task_lm_metrics_compute(&d, pred, -1, &m), 0);
    cr_assert(m.acc_pooled < 0.5, "the last pair's value scores %.2f: the query does not matter", m.acc_pooled);
    free(pred);
    task_data_free(&d);
}

/* safari draws each pair's key uniformly with replacement and each key's
 * value uniformly with replacement, per example. */
Test(classic_recall, ar_keys_and_values_are_drawn_with_replacement_as_safari, .timeout = 60)
{
    task_data d;
    make_task(&task_ar, "", TASK_TRAIN, 11, 4000, &d);
    int64_t keys[9] = {0}, same = 0, key_pairs = 0;
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i);
        for (int64_t j = 0; j < 20; j++)
            keys[x[2 * j] - 1]++;
        /* pairs of distinct present keys: equal values with probability 1/9 */
        for (int32_t a = 1; a <= 9; a++)
            for (int32_t b = a + 1; b <= 9; b++) {
                int32_t va = ar_context_value(x, 20, a), vb = ar_context_value(x, 20, b);
                if (va > 0 && vb > 0)
                    key_pairs++, same += va == vb;
            }
    }
    double chi = chi_square_uniform(keys, 9), share = (double)same / (double)key_pairs;
    cr_assert(chi < CHI2_DF8_P001, "key frequencies chi-square %.1f (8 df): not uniform over the 9 keys", chi);
    /* the indicators are pairwise independent: binomial standard error */
    double se = sqrt(1.0 / 9 * 8.0 / 9 / (double)key_pairs);
    cr_assert(fabs(share - 1.0 / 9) < 4 * se, "two keys share a value in %.4f of pairs, expected 1/9 (se %.4f)",
              share, se);
    task_data_free(&d);

    /* 5 pairs over 9 keys with replacement: E distinct = 9 (1 - (8/9)^5) =
     * 4.0056, sd 0.7375 (occupancy variance); distinct keys would give 5 */
    make_task(&task_ar, "L=12", TASK_TRAIN, 12, 4000, &d);
    double distinct = 0;
    for (int64_t i = 0; i < d.n; i++) {
        int seen[10] = {0};
        for (int64_t j = 0; j < 5; j++)
            distinct += !seen[task_tokens(&d, i)[2 * j]]++;
    }
    distinct /= (double)d.n;
    cr_assert(fabs(distinct - 4.0056) < 4 * 0.7375 / sqrt(4000.0),
              "mean distinct keys among 5 pairs %.4f, expected 4.0056", distinct);
    task_data_free(&d);
}

/* safari's query: uniform over all keys, redrawn uniformly over the distinct
 * present keys when it missed: in all, uniform over the distinct present keys
 * whatever their multiplicity. Given an example's context, the query key's
 * count c then has mean P/|D| and variance sum(c_k^2)/|D| - (P/|D|)^2; the z
 * score of the sum over examples tells it from a query drawn among the pair
 * positions (mean sum(c_k^2)/P, z about 30 here). */
Test(classic_recall, ar_query_is_uniform_over_the_distinct_present_keys, .timeout = 60)
{
    task_data d;
    make_task(&task_ar, "", TASK_TRAIN, 13, 4000, &d);
    double diff = 0, var = 0;
    int64_t query_keys[9] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i);
        int64_t c[10] = {0}, present = 0;
        double sq = 0;
        for (int64_t j = 0; j < 20; j++)
            c[x[2 * j]]++;
        for (int k = 1; k <= 9; k++)
            present += c[k] > 0, sq += (double)(c[k] * c[k]);
        double mu = 20.0 / (double)present;
        diff += (double)c[x[41]] - mu;
        var += sq / (double)present - mu * mu;
        query_keys[x[41] - 1]++;
    }
    double z = diff / sqrt(var), chi = chi_square_uniform(query_keys, 9);
    cr_assert(fabs(z) < 4, "query multiplicity z = %.2f: not uniform over the distinct present keys", z);
    cr_assert(chi < CHI2_DF8_P001, "query key chi-square %.1f (8 df): not uniform over the keys", chi);
    task_data_free(&d);
}

Test(classic_recall, ar_rejects_the_parity_of_the_other_form, .timeout = 60)
{
    cr_assert(make_fails(&task_ar, "L=41", "even L with form=safari"));
    cr_assert(make_fails(&task_ar, "form=last_only L=42", "odd L with form=last_only"));
    cr_assert(make_fails(&task_ar, "form=sorted", "param form"));
}

/* --- induction ----------------------------------------------------------- */

/* The first trigger's position in the body (tokens 0..L-2), -1 if none. */
static int64_t first_trigger(const int32_t *x, int64_t L, int32_t V)
{
    for (int64_t t = 0; t + 1 < L; t++)
        if (x[t] == V - 1)
            return t;
    return -1;
}

/* safari's induction_head with input_seq_len S = L - 1: S content tokens,
 * "=>" at p in [0, S-3] (the content at p+1 kept), "=>" appended, then the
 * token at p+1; the model reads the first L of those S + 2 tokens. */
static void check_induction_layout(const char *params, int64_t L, int32_t V, task_split split)
{
    task_data d;
    make_task(&task_induction, params, split, 4, 400, &d);
    cr_assert_eq(d.len, L);
    cr_assert_eq(d.vocab, V);
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i), *y = task_targets(&d, i);
        int64_t p = first_trigger(x, L, V), triggers = 0;
        cr_assert(p >= 0 && p <= L - 4, "trigger at %lld, expected in [0, %lld]", (long long)p, (long long)(L - 4));
        for (int64_t t = 0; t + 1 < L; t++) {
            triggers += x[t] == V - 1;
            cr_assert(x[t] >= 1 && x[t] <= V - 1, "token %d at %lld: the no-op 0 is never drawn", x[t],
                      (long long)t);
        }
        cr_assert_eq(triggers, 1, "the body holds %lld triggers, expected 1", (long long)triggers);
        cr_assert_eq(x[L - 1], V - 1, "'=>' expected at the last position");
        check_safari_targets(x, y, L, split, x[p + 1]);
    }
    task_data_free(&d);
}

Test(classic_recall, induction_default_is_safari_layout_with_next_token_targets, .timeout = 60)
{
    check_default_meta(&task_induction, "L=31;V=20;form=safari");
    check_induction_layout("", 31, 20, TASK_TRAIN);
    check_induction_layout("L=4 V=3", 4, 3, TASK_TRAIN); /* the smallest: p = 0, one content token */
    check_induction_layout("L=257 V=16", 257, 16, TASK_TRAIN);
}

Test(classic_recall, induction_valid_and_test_carry_only_the_answer_target, .timeout = 60)
{
    check_induction_layout("", 31, 20, TASK_TEST);
    check_induction_layout("", 31, 20, TASK_VALID);
}

/* safari: content uniform over the 18 content tokens, the trigger position
 * rng.integers(S - 2) = uniform over [0, 27] for S = 30. */
Test(classic_recall, induction_trigger_position_and_tokens_are_uniform_as_safari, .timeout = 60)
{
    task_data d;
    make_task(&task_induction, "", TASK_TRAIN, 21, 4000, &d);
    int64_t at[28] = {0}, content[18] = {0}, answers[18] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        const int32_t *x = task_tokens(&d, i);
        int64_t p = first_trigger(x, 31, 20);
        cr_assert(p >= 0 && p < 28);
        at[p]++;
        for (int64_t t = 0; t < 30; t++)
            if (t != p)
                content[x[t] - 1]++;
        answers[task_targets(&d, i)[30] - 1]++;
    }
    double chi_at = chi_square_uniform(at, 28), chi_c = chi_square_uniform(content, 18);
    double chi_a = chi_square_uniform(answers, 18);
    cr_assert(at[0] > 0 && at[27] > 0, "positions 0 and 27 are both possible");
    cr_assert(chi_at < CHI2_DF27_P001, "trigger position chi-square %.1f (27 df): not uniform on [0, 27]", chi_at);
    cr_assert(chi_c < CHI2_DF17_P001, "content chi-square %.1f (17 df): not uniform on ids 1..18", chi_c);
    cr_assert(chi_a < CHI2_DF17_P001, "answer chi-square %.1f (17 df): not uniform on ids 1..18", chi_a);
    task_data_free(&d);
}

Test(classic_recall, induction_metric_scores_one_answer_per_test_example, .timeout = 60)
{
    task_data d;
    make_task(&task_induction, "", TASK_TEST, 6, 300, &d);
    int32_t *pred = malloc((size_t)(d.n * d.len) * sizeof *pred);
    for (int64_t i = 0; i < d.n; i++)
        for (int64_t t = 0; t < d.len; t++)
            pred[i * d.len + t] = task_tokens(&d, i)[first_trigger(task_tokens(&d, i), d.len, 20) + 1];
    task_lm_metrics m;
    cr_assert_eq(task_lm_metrics_compute(&d, pred, -1, &m), 0, "%s", attn_last_error());
    cr_assert_eq(m.n_positions, 300);
    cr_assert_eq(m.exact_match, 1.0);
    free(pred);
    task_data_free(&d);
}

/* --- through the training engine ---------------------------------------- */

/* The loss reads a training batch's targets: every position of a safari
 * example; the evaluation counts the scored positions of the test split:
 * one per example. */
Test(classic_recall, engine_trains_on_every_position_and_scores_one_per_test_example, .timeout = 60)
{
    task_data tr, te;
    make_task(&task_ar, "", TASK_TRAIN, 7, 8, &tr);
    make_task(&task_ar, "", TASK_TEST, 7, 8, &te);
    nn_model_cfg c;
    memset(&c, 0, sizeof c);
    c.variant = NN_VARIANT_LM, c.head = NN_HEAD_LM, c.vocab = tr.vocab, c.max_len = tr.len, c.layers = 1;
    c.d_model = 8, c.heads = 1, c.n_kernels = 1, c.loops = 1, c.causal = 1, c.pos = NN_POS_LEARNED;
    snprintf(c.kernels[0], sizeof c.kernels[0], "flash");
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 1), 0, "%s", attn_last_error());
    nn_eval_result r;
    cr_assert_eq(nn_evaluate(&m, &tr, 0, 4, 1, &r), 0, "%s", attn_last_error());
    cr_assert_eq(r.positions, 8 * 42, "training split: %lld positions with a target, expected 8 x 42",
                 (long long)r.positions);
    cr_assert_eq(nn_evaluate(&m, &te, 0, 4, 1, &r), 0, "%s", attn_last_error());
    cr_assert_eq(r.examples, 8);
    cr_assert_eq(r.positions, 8, "test split: %lld scored positions, expected one per example", (long long)r.positions);
    nn_model_free(&m);
    task_data_free(&tr);
    task_data_free(&te);
}
