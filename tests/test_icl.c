/* In-context linear regression (tasks/icl.h): the generator's format and
 * reproducibility, the closed-form baselines on hand-solved 2-d prompts,
 * and the baselines' curves on generated prompts against their expected
 * values (the zero predictor's E[y^2]/d = 1, exact recovery from d examples
 * without noise, ridge never worse than least squares with noise). */
#include "common/attn_error.h"
#include "harness/cli/cli.h"
#include "harness/results/csvw.h"
#include "harness/results/icl_rows.h"
#include "tasks/icl.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static task_data make(const char *d, const char *points, const char *sigma, task_split split, uint64_t seed,
                      int64_t n)
{
    param_bag p = {0};
    char kv[64];
    snprintf(kv, sizeof kv, "d=%s", d), param_bag_add(&p, kv);
    snprintf(kv, sizeof kv, "points=%s", points), param_bag_add(&p, kv);
    snprintf(kv, sizeof kv, "sigma=%s", sigma), param_bag_add(&p, kv);
    task_data t;
    int rc = task_icl_linreg.make(&p, split, seed, n, NULL, &t);
    cr_assert_eq(rc, 0, "%s", attn_last_error());
    return t;
}

static double predict(icl_baseline b, const double *X, const double *y, int64_t k, double lambda, const double *xq)
{
    double scratch[64], pred = NAN;
    int rc = icl_baseline_predict(b, X, y, k, 2, lambda, xq, scratch, &pred);
    cr_assert_eq(rc, 0, "%s", attn_last_error());
    return pred;
}

Test(icl, prompt_layout_is_x_then_y_token_with_every_x_scored)
{
    task_data t = make("3", "4", "0", TASK_TEST, 7, 5);
    cr_assert_eq(t.kind, TASK_REGRESS);
    cr_assert_eq(t.len, 7);
    cr_assert_eq(t.dim, 3);
    for (int64_t c = 0; c < t.n * t.len; c++)
        cr_assert_eq(t.tokens[c], 0, "one token everywhere: the read-in's bias");
    for (int64_t i = 0; i < t.n; i++) {
        const float *in = task_inputs(&t, i), *val = task_values(&t, i);
        const uint8_t *sc = task_scored(&t, i);
        for (int64_t p = 0; p < t.len; p++) {
            cr_assert_eq(sc[p], p % 2 == 0, "position %lld", (long long)p);
            if (p % 2 == 1) { /* the y token (y_j, 0, 0), y_j the value scored at x_j just before */
                cr_assert_eq(in[p * 3], val[p - 1]);
                cr_assert_eq(in[p * 3 + 1], 0.0f);
                cr_assert_eq(in[p * 3 + 2], 0.0f);
            }
        }
    }
    task_data_free(&t);
}

Test(icl, prompt_i_depends_on_seed_split_and_index_only)
{
    task_data a = make("4", "5", "0.5", TASK_TEST, 11, 3), b = make("4", "5", "0.5", TASK_TEST, 11, 8);
    task_data c = make("4", "5", "0.5", TASK_TEST, 12, 3), v = make("4", "5", "0.5", TASK_VALID, 11, 3);
    size_t bytes = sizeof(float) * (size_t)(3 * a.len * a.dim);
    cr_assert_eq(memcmp(a.inputs, b.inputs, bytes), 0, "the first 3 prompts of a longer split are the same");
    cr_assert_eq(memcmp(a.values, b.values, sizeof(float) * (size_t)(3 * a.len)), 0);
    cr_assert_neq(memcmp(a.inputs, c.inputs, bytes), 0, "another seed gives other prompts");
    cr_assert_neq(memcmp(a.inputs, v.inputs, bytes), 0, "another split gives other prompts");
    cr_assert_neq(memcmp(a.inputs, a.inputs + a.len * a.dim, sizeof(float) * (size_t)(a.len * a.dim)), 0,
                  "two prompts of a split differ");
    task_data_free(&a), task_data_free(&b), task_data_free(&c), task_data_free(&v);
}

Test(icl, unknown_parameter_and_data_dir_are_refused)
{
    param_bag p = {0};
    param_bag_add(&p, "dims=8");
    task_data t;
    cr_assert_neq(task_icl_linreg.make(&p, TASK_TEST, 1, 2, NULL, &t), 0);
    cr_assert(strstr(attn_last_error(), "dims"), "%s", attn_last_error());
    param_bag q = {0};
    cr_assert_neq(task_icl_linreg.make(&q, TASK_TEST, 1, 2, "/tmp", &t), 0);
}

/* x_1 = (1, 0), x_2 = (0, 2), y = (3, 4): w = (3, 2) is the only solution. */
static const double X2[] = {1, 0, 0, 2}, Y2[] = {3, 4}, Q11[] = {1, 1};

Test(icl, least_squares_solves_a_determined_2d_prompt)
{
    cr_assert_float_eq(predict(ICL_LSTSQ, X2, Y2, 2, 0, Q11), 5.0, 1e-12); /* (3, 2) . (1, 1) */
    cr_assert_float_eq(predict(ICL_RIDGE, X2, Y2, 2, 0, Q11), 5.0, 1e-12, "lambda 0 is least squares");
}

Test(icl, least_squares_below_d_examples_is_the_minimum_norm_solution)
{
    /* one example x = (1, 1), y = 2: the solutions of w1 + w2 = 2, the shortest is (1, 1) */
    const double X[] = {1, 1}, y[] = {2}, q[] = {2, 0};
    cr_assert_float_eq(predict(ICL_LSTSQ, X, y, 1, 0, q), 2.0, 1e-12);
    /* ridge lambda 1: w = x y / (|x|^2 + 1) = (2/3, 2/3) */
    cr_assert_float_eq(predict(ICL_RIDGE, X, y, 1, 1, q), 4.0 / 3.0, 1e-12);
}

Test(icl, ridge_on_a_determined_2d_prompt_matches_its_normal_equations)
{
    /* X'X + I = diag(2, 5), X'y = (3, 8): w = (1.5, 1.6) */
    cr_assert_float_eq(predict(ICL_RIDGE, X2, Y2, 2, 1, Q11), 3.1, 1e-12);
}

Test(icl, averaging_is_the_mean_of_y_x)
{
    /* w = ((3, 0) + (0, 8)) / 2 = (1.5, 4) */
    cr_assert_float_eq(predict(ICL_AVG, X2, Y2, 2, 0, Q11), 5.5, 1e-12);
    cr_assert_float_eq(predict(ICL_AVG, X2, Y2, 1, 0, Q11), 3.0, 1e-12, "one example: w = 3 (1, 0)");
}

Test(icl, nearest_neighbours_average_the_three_closest_y)
{
    const double X[] = {0, 0, 1, 0, 5, 5, 0, 1}, y[] = {1, 2, 3, 4}, q[] = {0.1, 0.1};
    cr_assert_float_eq(predict(ICL_KNN3, X, y, 4, 0, q), 7.0 / 3.0, 1e-12);
    cr_assert_float_eq(predict(ICL_KNN3, X, y, 2, 0, q), 1.5, 1e-12, "fewer than 3 examples: all of them");
}

Test(icl, every_baseline_predicts_zero_without_examples)
{
    for (int b = 0; b < ICL_BASELINES; b++)
        cr_assert_eq(predict((icl_baseline)b, X2, Y2, 0, 1, Q11), 0.0, "%s", icl_baseline_names[b]);
}

Test(icl, curve_statistics_are_mean_and_normal_interval_over_d)
{
    icl_curve c;
    cr_assert_eq(icl_curve_init(&c, 2), 0);
    icl_curve_add(&c, 1, 1.0), icl_curve_add(&c, 1, 3.0); /* mean 2, sd sqrt(2), se 1 */
    double m, lo, hi;
    icl_curve_stat(&c, 1, 2, &m, &lo, &hi);
    cr_assert_float_eq(m, 1.0, 1e-12);
    cr_assert_float_eq(lo, (2 - 1.96) / 2, 1e-12);
    cr_assert_float_eq(hi, (2 + 1.96) / 2, 1e-12);
    icl_curve_free(&c);
}

static void curves_of(const task_data *t, double lambda, icl_curve *curves)
{
    cr_assert_eq(icl_baseline_curves(t, lambda, curves), 0, "%s", attn_last_error());
}

static void curves_free(icl_curve *curves)
{
    for (int b = 0; b < ICL_BASELINES; b++)
        icl_curve_free(&curves[b]);
}

/* Every baseline's curve over n test prompts of (d, points, sigma, seed), ridge at lambda. */
typedef struct {
    task_data t;
    icl_curve c[ICL_BASELINES];
} baselines;

static void baselines_of(baselines *b, const char *d, const char *points, const char *sigma, uint64_t seed, int64_t n,
                         double lambda)
{
    b->t = make(d, points, sigma, TASK_TEST, seed, n);
    curves_of(&b->t, lambda, b->c);
}

static void baselines_free(baselines *b)
{
    curves_free(b->c);
    task_data_free(&b->t);
}

static double mean_at(const icl_curve *c, int64_t k, int64_t d)
{
    double m, lo, hi;
    icl_curve_stat(c, k, d, &m, &lo, &hi);
    return m;
}

Test(icl, zero_predictor_error_is_one_at_every_k)
{
    /* E[y^2] / d = E[|w|^2 |x|^2 cos^2] / d = 1; sd of y^2/d is 1.66 at d = 8, se 0.037 over 2000 */
    baselines b;
    baselines_of(&b, "8", "9", "0", 3, 2000, 0);
    for (int64_t k = 0; k < 9; k++)
        cr_assert(fabs(mean_at(&b.c[ICL_ZERO], k, 8) - 1.0) < 0.15, "k=%lld: %g", (long long)k,
                  mean_at(&b.c[ICL_ZERO], k, 8));
    baselines_free(&b);
}

Test(icl, least_squares_recovers_w_exactly_from_d_noiseless_examples)
{
    baselines b;
    baselines_of(&b, "4", "8", "0", 5, 300, 0);
    for (int64_t k = 0; k < 8; k++) {
        double e = mean_at(&b.c[ICL_LSTSQ], k, 4);
        if (k >= 4) /* float inputs: exact up to their rounding */
            cr_assert(e < 1e-8, "k=%lld: %g", (long long)k, e);
        else /* below d: the error of the part of w outside the span, (d - k) / d */
            cr_assert(fabs(e - (4.0 - (double)k) / 4.0) < 0.25, "k=%lld: %g", (long long)k, e);
    }
    cr_assert(mean_at(&b.c[ICL_AVG], 7, 4) > 0.1, "averaging does not recover w from 7 examples");
    baselines_free(&b);
}

Test(icl, ridge_at_the_noise_variance_is_never_worse_than_least_squares_or_averaging)
{
    baselines b;
    baselines_of(&b, "4", "9", "0.5", 9, 1000, 0.25);
    for (int64_t k = 1; k < 9; k++) {
        double r = mean_at(&b.c[ICL_RIDGE], k, 4);
        cr_assert(r <= mean_at(&b.c[ICL_LSTSQ], k, 4) + 1e-12, "k=%lld", (long long)k);
        cr_assert(r <= mean_at(&b.c[ICL_AVG], k, 4) + 1e-12, "k=%lld", (long long)k);
    }
    /* at k = d least squares interpolates the noise: its error peaks there */
    cr_assert(mean_at(&b.c[ICL_LSTSQ], 4, 4) > 2 * mean_at(&b.c[ICL_RIDGE], 4, 4));
    baselines_free(&b);
}

static int count_row(const csvw_row *row, void *ud)
{
    int *n = ud;
    *n += !strcmp(row->cell[ATTN_COL_SUITE], "icl") && !strcmp(row->cell[ATTN_COL_METRIC], "sq_err");
    return 0;
}

Test(icl, baseline_rows_are_one_per_baseline_and_k_and_written_once)
{
    char path[] = "/tmp/attnbench_icl_rows_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(path);
    task_data t = make("2", "3", "0", TASK_TEST, 1, 20);
    icl_linreg_cfg c = {.d = 2, .points = 3, .sigma = 0};
    icl_curve curves[ICL_BASELINES];
    curves_of(&t, 0, curves);
    icl_rows_id ids[ICL_BASELINES];
    for (int b = 0; b < ICL_BASELINES; b++)
        ids[b] = (icl_rows_id){.kernel = icl_baseline_names[b], .model = "", .pass = "eval", .dtype = "fp64",
                               .settings = "lambda=0", .task = &c, .prompts = 20, .seed = 1, .threads = 1};
    int written = -1, rows = 0;
    cr_assert_eq(icl_rows_write(path, ids, curves, ICL_BASELINES, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, ICL_BASELINES * 3);
    cr_assert_eq(icl_rows_write(path, ids, curves, ICL_BASELINES, &written), 0, "%s", attn_last_error());
    cr_assert_eq(written, 0, "the same rows are not appended twice");
    cr_assert_eq(csvw_read_rows(path, count_row, &rows), ICL_BASELINES * 3, "%s", attn_last_error());
    cr_assert_eq(rows, ICL_BASELINES * 3);
    unlink(path);
    curves_free(curves);
    task_data_free(&t);
}

/* The command as run.sh runs it: no --kernel means the baselines alone
 * (five predictors at every k), not a kernel named by the option's help. */
Test(icl, the_command_without_a_kernel_writes_the_baselines_only, .timeout = 60)
{
    char dir[] = "/tmp/attn_icl_cmd_XXXXXX", out[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/icl.csv", dir);
    char *argv[] = {"icl", "--task-param", "d=2", "--task-param", "points=5", "--prompts", "20", "--out", out, NULL};
    cr_assert_eq(cmd_icl(9, argv), 0, "%s", attn_last_error());
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    int lines = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        lines += c == '\n';
    fclose(f);
    cr_assert_eq(lines, 1 + 5 * 5, "header + 5 baselines x k = 0..4, found %d lines", lines);
    unlink(out), rmdir(dir);
}
