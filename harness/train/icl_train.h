/* Training a causal model on in-context linear regression (docs/icl.md) and
 * measuring its error curve on held-out prompts: the model is the lm variant
 * with the regress head (models/model.h: a linear read-in of the d-wide
 * inputs, a linear read-out at the x positions, mean squared error),
 * trained by the engine's loop (models/train.h) on a fixed train split. */
#ifndef ATTN_ICL_TRAIN_H
#define ATTN_ICL_TRAIN_H

#include "models/model.h"
#include "tasks/icl.h"

typedef struct {
    char kernel[32];           /* every layer's kernel */
    int64_t layers, d_model, heads, mlp;
    int64_t steps, batch, train_n;
    double lr;
    uint64_t seed;             /* weights and batch order */
    int threads;
    int progress;              /* a line on stderr every tenth of the steps */
} icl_train_opts;

/* The defaults of `attnbench icl --kernel`: 2 layers, d_model 64, 2 heads,
 * MLP 128, 2000 steps of 64 prompts from 16384, AdamW lr 1e-3 (cosine,
 * 10 % warm-up), seed 1, 2 threads. */
void icl_train_defaults(icl_train_opts *o);

/* The model config of o for prompts of task t (max_len their length). */
void icl_model_cfg(const icl_train_opts *o, const icl_linreg_cfg *t, nn_model_cfg *c);

/* The squared error of m at every scored position of d, by k, into curve
 * (initialised by the caller for d's points). */
int icl_model_curve(nn_model *m, const task_data *d, int64_t batch, int threads, icl_curve *curve);

/* Trains a model of o on o->train_n prompts of the train split of
 * (t, data_seed), then its curve on test (initialised here: free it, also on
 * error); desc: the model's description (nn_model_describe). */
int icl_train_curve(const icl_train_opts *o, const icl_linreg_cfg *t, const param_bag *task_params, uint64_t data_seed,
                    const task_data *test, icl_curve *curve, char *desc, size_t desc_n);

#endif
