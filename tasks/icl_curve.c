/* Error curves of in-context regression (tasks/icl.h): accumulation by k and
 * the baselines evaluated over a dataset's prompts. */
#include "icl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int icl_curve_init(icl_curve *c, int64_t points)
{
    memset(c, 0, sizeof *c);
    c->points = points;
    c->count = calloc((size_t)points, sizeof *c->count);
    c->sum = calloc((size_t)points, sizeof *c->sum);
    c->sum2 = calloc((size_t)points, sizeof *c->sum2);
    if (!c->count || !c->sum || !c->sum2) {
        icl_curve_free(c);
        return attn_fail(ATTN_ENOMEM, "icl curve: no memory for %lld points", (long long)points);
    }
    return 0;
}

void icl_curve_free(icl_curve *c)
{
    free(c->count), free(c->sum), free(c->sum2);
    memset(c, 0, sizeof *c);
}

void icl_curve_add(icl_curve *c, int64_t k, double sq_err)
{
    c->count[k]++;
    c->sum[k] += sq_err;
    c->sum2[k] += sq_err * sq_err;
}

void icl_curve_stat(const icl_curve *c, int64_t k, int64_t d, double *mean, double *lo, double *hi)
{
    double n = (double)c->count[k], m = n > 0 ? c->sum[k] / n : NAN;
    double var = n > 1 ? fmax(0, (c->sum2[k] - n * m * m) / (n - 1)) : 0;
    double half = 1.96 * sqrt(var / (n > 0 ? n : 1));
    *mean = m / (double)d, *lo = (m - half) / (double)d, *hi = (m + half) / (double)d;
}

/* Prompt i's squared errors of every baseline at every k into curves. */
static int prompt_errors(const task_data *t, int64_t i, double lambda, double *X, double *y, double *scratch,
                         icl_curve *curves)
{
    int64_t d = t->dim, points = curves[0].points;
    icl_prompt_pairs(t, i, X, y);
    for (int64_t k = 0; k < points; k++)
        for (int b = 0; b < ICL_BASELINES; b++) {
            double pred;
            int rc = icl_baseline_predict((icl_baseline)b, X, y, k, d, lambda, X + k * d, scratch, &pred);
            if (rc)
                return rc;
            icl_curve_add(&curves[b], k, (pred - y[k]) * (pred - y[k]));
        }
    return 0;
}

int icl_baseline_curves(const task_data *t, double lambda, icl_curve curves[ICL_BASELINES])
{
    int64_t d = t->dim, points = (t->len + 1) / 2;
    int rc = 0;
    for (int b = 0; b < ICL_BASELINES; b++)
        memset(&curves[b], 0, sizeof curves[b]);
    if (t->kind != TASK_REGRESS)
        return attn_fail(ATTN_EINVAL, "icl baselines: expected a regression dataset, found task %s", t->name);
    for (int b = 0; !rc && b < ICL_BASELINES; b++)
        rc = icl_curve_init(&curves[b], points);
    double *X = malloc(sizeof *X * (size_t)(points * d)), *y = malloc(sizeof *y * (size_t)points);
    double *scratch = malloc(sizeof *scratch * (size_t)icl_scratch_len(d, points));
    if (!rc && (!X || !y || !scratch))
        rc = attn_fail(ATTN_ENOMEM, "icl baselines: no memory for %lld points of d=%lld", (long long)points,
                       (long long)d);
    for (int64_t i = 0; !rc && i < t->n; i++)
        rc = prompt_errors(t, i, lambda, X, y, scratch, curves);
    free(X), free(y), free(scratch);
    return rc;
}
