/* What training runs and evaluations measured, as typed values: one
 * evaluation (of the validation split during training, of the test split at
 * the end, or of a checkpoint reloaded later) and one whole run. The CSV row
 * and the console line are both formatted from these values here, so the
 * numbers a caller gets are the ones the file and the terminal show. */
#ifndef ATTN_TRAIN_RESULT_H
#define ATTN_TRAIN_RESULT_H

#include "harness/results/schema.h"
#include "models/model.h"
#include "models/train.h"
#include "tasks/task.h"

#include <stdint.h>
#include <stdio.h>

typedef enum {
    TRAIN_EVAL_VALID,      /* during training, every eval_every steps */
    TRAIN_EVAL_TEST,       /* the test split once trained */
    TRAIN_EVAL_CHECKPOINT, /* a checkpoint evaluated again (reload, extrapolation cells) */
} train_eval_kind;

typedef enum { TRAIN_EVAL_OK = 0, TRAIN_EVAL_ERROR } train_eval_status;

/* Which weights a test evaluates: the last ones, or with early stopping the
 * best-validation ones. NONE on the other evaluations. */
typedef enum { TRAIN_WEIGHTS_NONE = 0, TRAIN_WEIGHTS_LAST, TRAIN_WEIGHTS_BEST } train_weights;

/* Training progress at a validation evaluation (TRAIN_EVAL_VALID only). */
typedef struct {
    int64_t steps;               /* the run's total steps */
    double train_loss;           /* mean over the steps since the previous evaluation */
    double train_time_s;         /* in training steps so far, evaluations excluded */
    double tokens_per_s;         /* tokens trained on / train_time_s */
    double elapsed_s, eta_s;     /* wall time of this call so far, and the estimate to the end */
} train_progress;

typedef struct {
    train_eval_kind kind;
    char task[32];               /* the run's task (CHECKPOINT: its line names it) */
    char split[256];             /* valid | test | test-reload | extrap;eval_len=..;... */
    int64_t step;                /* the step of the weights evaluated (the train_steps column) */
    const char *metric;          /* the headline: "accuracy", or for a task with generated answers
                                    its rule's name (train_eval_metric) */
    double value, ci_low, ci_high; /* the metric and its 95 % interval */
    const char *metric2;         /* "token_accuracy" (teacher-forced) beside a generated-answer
                                    headline, in a row of its own; NULL: none */
    double value2, ci2_low, ci2_high;
    int has_ponder;              /* halting act: a "ponder_steps" row of its own, the mean steps a
                                    position took (its interval cells repeat the value) */
    double ponder_steps;
    int64_t examples;
    char data_source[64];        /* "generated" | "official" | "stand-in:<name>" */
    size_t peak_rss_bytes;       /* of this training (or evaluation) so far */
    size_t state_bytes;          /* what a causal stream of the model keeps per sequence */
    train_progress progress;     /* TRAIN_EVAL_VALID */
    train_weights weights;       /* TRAIN_EVAL_TEST */
    int64_t best_step;           /* TRAIN_EVAL_TEST: the step of the best validation accuracy */
    train_eval_status status;
    char reason[256];            /* why it failed; "" when ok */
} train_eval_result;

/* A whole run: the validation evaluations this call made (a resumed run has
 * only those after the step it resumed at), then the test. */
typedef struct {
    train_eval_result *evals;
    int n_evals, cap;
    train_eval_result test;
    int64_t best_step;           /* the step of the best validation accuracy */
    train_weights weights;       /* the weights the test evaluated */
} train_result;

void train_result_init(train_result *r);
void train_result_free(train_result *r);
/* Appends a copy of e to r->evals. */
int train_result_add_eval(train_result *r, const train_eval_result *e);

/* An evaluation of model m on data d before its numbers: kind, split, metric,
 * the data source and the model's state size. Task, step, progress, weights
 * and peak RSS are the caller's to set. */
void train_eval_begin(train_eval_result *e, train_eval_kind kind, const char *split, const nn_model *m,
                      const task_data *d);

/* The headline metric of an evaluation of d: "accuracy", or the name of the
 * rule d's generated answers are scored by ("first_integer_match",
 * "string_match_all"). */
const char *train_eval_metric(const task_data *d);

/* The typed numbers of one evaluation from the training loop's. */
void train_eval_from_nn(const nn_eval_result *e, train_eval_result *out);

/* train_eval_begin, then evaluates m on the first `limit` examples of d (0:
 * all) with batch and threads. A failed evaluation returns its code with
 * status ERROR and the message as reason. */
int train_eval_measure(nn_model *m, const task_data *d, int64_t limit, int64_t batch, int threads,
                       train_eval_kind kind, const char *split, train_eval_result *out);

/* Every measured column of a row that holds the evaluation's identity:
 * metric, value and interval, train_steps, training time and rate (VALID),
 * peak RSS, state size, status, and for a TEST the params tail
 * ";best_step=K;weights=best|last". */
void train_eval_fill(const train_eval_result *e, csvw_row *row);

/* The same for the second metric's row (metric2): its metric, value and
 * interval in place of the headline's. */
void train_eval_fill_second(const train_eval_result *e, csvw_row *row);
/* The same for the ponder_steps row (has_ponder). */
void train_eval_fill_ponder(const train_eval_result *e, csvw_row *row);
#define TRAIN_PONDER_METRIC "ponder_steps"

/* The console line of an evaluation: the step line with loss, rate and ETA
 * (VALID), the test line with the weights evaluated (TEST), or the
 * re-evaluation line (CHECKPOINT). */
void train_eval_print(FILE *f, const train_eval_result *e);

#endif
