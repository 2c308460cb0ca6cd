/* The training loop (issue 6): AdamW with decoupled weight decay (no decay on
 * norms, biases, embeddings), warm-up then cosine/linear decay, global-norm
 * clipping, gradient accumulation, evaluation every k steps with an optional
 * early stop, deterministic batches from the seed (epoch-wise shuffles), and
 * the accuracy conventions of the suites: classification top-1, and for LM
 * tasks the mean over examples of the per-example accuracy on scored
 * positions (Zoology's compute_metrics) plus the pooled per-position rate. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include "model.h"
#include "optim.h"
#include "task.h"

typedef struct {
    int64_t steps, batch, accum;      /* optimizer steps, examples per micro-batch, micro-batches per step */
    int64_t eval_every, eval_n;       /* evaluate every k steps on eval_n validation examples (0: all) */
    int64_t patience;                 /* early stop after this many evals without a better accuracy (0: off) */
    int64_t warmup;                   /* warm-up steps */
    double lr, min_lr_ratio, weight_decay, clip;   /* clip 0: off */
    optim_sched_kind sched;
    uint64_t seed;                    /* batches (and dropout) */
    int threads;
    int progress;                     /* print progress with an ETA to stderr */
} nn_train_cfg;

/* Accuracy of a model on a dataset. */
typedef struct {
    double loss;                      /* mean of the batch losses */
    double accuracy;                  /* classify: top-1; LM: mean over examples of per-example accuracy */
    double ci_low, ci_high;           /* 95 %: Wilson (classify), normal over examples (LM) */
    double pooled;                    /* LM: scored positions correct / scored positions; classify: = accuracy */
    double exact;                     /* LM: examples with every scored position right; classify: = accuracy */
    int64_t examples, positions;
} nn_eval_result;

/* One evaluation during training, passed to the caller (CSV rows, progress). */
typedef struct {
    int64_t step;
    double train_loss;                /* mean over the steps since the last evaluation */
    nn_eval_result valid;
    double train_time_s, tokens_per_s;
    size_t peak_rss_bytes;
} nn_eval_point;

typedef int (*nn_eval_cb)(const nn_eval_point *pt, void *ud);

/* Trains m (planned here for (batch, train->len)) and calls cb after every
 * evaluation (and once at the end). *best_step: the step of the best
 * validation accuracy. The model keeps its final weights. */
int nn_train(nn_model *m, const task_data *train, const task_data *valid, const nn_train_cfg *cfg, nn_eval_cb cb,
             void *ud, int64_t *best_step);

/* Evaluates on the first `limit` examples of d (0: all), batch size b. */
int nn_evaluate(nn_model *m, const task_data *d, int64_t limit, int64_t batch, int threads, nn_eval_result *r);

/* The scored LM positions of the densest `batch` examples of d (an upper
 * bound per batch, for nn_model_plan's rows_max). */
int64_t nn_rows_max(const task_data *d, int64_t batch);

#endif
