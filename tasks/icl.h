/* In-context linear regression (docs/icl.md): Garg, Tsipras, Liang and
 * Valiant's prompts, "What Can Transformers Learn In-Context?" (2022).
 *
 * A prompt draws w ~ N(0, I_d) and points x_1..x_n ~ N(0, I_d) with
 * y_i = <w, x_i> + sigma * eps_i, eps_i ~ N(0, 1), all from (seed, split,
 * prompt index), so prompt i is the same whatever n the split holds. Its
 * 2n - 1 positions are x_1, y_1, x_2, y_2, ..., y_{n-1}, x_n: an x position
 * is the vector x_i, a y position the vector (y_i, 0, ..., 0). The value at
 * x_i's position is y_i, scored: a causal model predicts it from the i - 1
 * pairs before it (k = i - 1 in-context examples, 0..n-1). The last y is
 * never an input: nothing follows it.
 *
 * The closed-form baselines (icl_baseline_predict) read the same prompts,
 * in double, through icl_prompt_pairs. */
#ifndef ATTN_TASKS_ICL_H
#define ATTN_TASKS_ICL_H

#include "task.h"

extern const task_def task_icl_linreg;

typedef struct {
    int64_t d;      /* dimension of x and w */
    int64_t points; /* (x, y) pairs per prompt, n */
    double sigma;   /* standard deviation of the label noise */
} icl_linreg_cfg;

/* The task's parameters d, points, sigma from p (strict: unknown keys are errors). */
int icl_linreg_cfg_read(const param_bag *p, icl_linreg_cfg *c);

/* Positions of a prompt of n points: 2n - 1. */
static inline int64_t icl_prompt_len(int64_t points) { return 2 * points - 1; }
/* Position of x_{k+1}, the query after k examples. */
static inline int64_t icl_query_pos(int64_t k) { return 2 * k; }

/* Prompt i of t as doubles: X (points x d, row j = x_{j+1}) and y (points). */
void icl_prompt_pairs(const task_data *t, int64_t i, double *X, double *y);

/* The closed-form predictors, in double. */
typedef enum {
    ICL_ZERO = 0, /* y = 0 (error E[y^2] / d = (d + sigma^2) / d) */
    ICL_LSTSQ,    /* least squares, the minimum-norm solution below d examples */
    ICL_RIDGE,    /* (X'X + lambda I)^-1 X'y, lambda = sigma^2: the posterior mean under the prior */
    ICL_AVG,      /* w = (1/k) sum_j y_j x_j */
    ICL_KNN3,     /* the mean y of the 3 nearest x (L2), of all k when k < 3 */
    ICL_BASELINES
} icl_baseline;

/* "baseline_zero", "baseline_lstsq", ...: the kernel column of their rows. */
extern const char *const icl_baseline_names[ICL_BASELINES];

/* Baseline b's prediction of y at xq from k pairs X (k x d) and y (k);
 * lambda is the ridge's. k = 0 predicts 0 for every baseline. scratch holds
 * at least icl_scratch_len(d, k) doubles. */
static inline int64_t icl_scratch_len(int64_t d, int64_t k) { return (d > k ? d : k) * ((d > k ? d : k) + 2); }
int icl_baseline_predict(icl_baseline b, const double *X, const double *y, int64_t k, int64_t d, double lambda,
                         const double *xq, double *scratch, double *pred);

/* Squared errors by number of in-context examples k = 0..points-1, summed
 * over prompts: one curve per predictor (a baseline or a trained model). */
typedef struct {
    int64_t points;
    int64_t *count;     /* [points] prompts added at k */
    double *sum, *sum2; /* [points] of the squared errors and of their squares */
} icl_curve;

int icl_curve_init(icl_curve *c, int64_t points);
void icl_curve_free(icl_curve *c);
void icl_curve_add(icl_curve *c, int64_t k, double sq_err);
/* At k: the mean of sq_err / d and its 95 % interval (normal approximation,
 * mean +- 1.96 standard errors; the mean itself when one prompt was added). */
void icl_curve_stat(const icl_curve *c, int64_t k, int64_t d, double *mean, double *lo, double *hi);

/* Every baseline's curve over all prompts of t (an icl_linreg dataset) with
 * ridge's lambda; curves are initialised here (free them, also on error). */
int icl_baseline_curves(const task_data *t, double lambda, icl_curve curves[ICL_BASELINES]);

#endif
