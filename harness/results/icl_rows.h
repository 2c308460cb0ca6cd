/* Results rows of the in-context regression suite (docs/icl.md): one row per
 * (predictor, k) with metric sq_err = E[(y_hat - y)^2] / d and its 95 %
 * interval over the held-out prompts, k in params. */
#ifndef ATTN_ICL_ROWS_H
#define ATTN_ICL_ROWS_H

#include "schema.h"
#include "tasks/icl.h"

/* What every row of one curve shares. */
typedef struct {
    const char *kernel;      /* "baseline_ridge", or the model's kernel(s) */
    const char *model;       /* the model description; "" for a baseline */
    const char *pass;        /* "eval" for a baseline, "train" for a trained model */
    const char *dtype;       /* "fp64" for a baseline (computed in double), "fp32" for a model */
    const icl_linreg_cfg *task;
    const char *settings;    /* the predictor's own params before k: "lambda=0.25" (baselines),
                                "steps=..;lr=..;batch=..;n=..;model_seed=.." (trained models) */
    int64_t prompts;         /* held-out prompts averaged */
    uint64_t seed;           /* the data seed */
    int threads;
} icl_rows_id;

/* Row k of the curve (k = 0..points-1). */
void icl_row(const icl_rows_id *id, const icl_curve *c, int64_t k, csvw_row *row);

/* The rows of n curves (ids[i] names curves[i]) appended to path in one
 * write, but those whose job_id the file holds already (the same setting
 * computed before: the baselines are deterministic, a training is seeded);
 * *written: how many were new. */
int icl_rows_write(const char *path, const icl_rows_id *ids, const icl_curve *curves, int n, int *written);

#endif
