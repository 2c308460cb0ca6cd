/* The training loop: AdamW with decoupled weight decay (no decay on
 * norms, biases, embeddings), warm-up then cosine/linear decay, global-norm
 * clipping, gradient accumulation, evaluation every k steps with an optional
 * early stop, deterministic batches from the seed (epoch-wise shuffles), and
 * the accuracy conventions of the suites: classification top-1, and for LM
 * tasks the mean over examples of the per-example accuracy on scored
 * positions (Zoology's compute_metrics) plus the pooled per-position rate. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include "checkpoint.h"
#include "model.h"
#include "optim.h"
#include "tasks/task.h"

typedef struct {
    int64_t steps, batch, accum;      /* optimizer steps, examples per micro-batch, micro-batches per step */
    int64_t eval_every, eval_n;       /* evaluate every k steps on eval_n validation examples (0: all) */
    int64_t patience;                 /* early stop after this many evals without a better accuracy (0: off) */
    int64_t warmup;                   /* warm-up steps */
    double lr, min_lr_ratio, weight_decay, clip;   /* clip 0: off */
    optim_sched_kind sched;
    uint64_t seed;                    /* batches (and dropout) */
    int threads;
    int progress;                     /* the caller prints a progress line per evaluation */
    int64_t halt_after;               /* tests: fail after this many steps of one call, as a crash
                                         would (0: off); not part of a run's identity */
} nn_train_cfg;

/* Accuracy of a model on a dataset. */
typedef struct {
    double loss;                      /* mean of the batch losses */
    double accuracy;                  /* classify: top-1; LM: mean over examples of per-example accuracy */
    double ci_low, ci_high;           /* 95 %: Wilson (classify), normal over examples (LM) */
    double pooled;                    /* LM: scored positions correct / scored positions; classify: = accuracy */
    double exact;                     /* LM: examples with every scored position right; classify: = accuracy */
    int64_t examples, positions;
    /* LM tasks with references (task_data.answer_rule): the answers decoded
     * greedily (generate.h), scored by the task's rule (tasks/answer.h), with
     * their 95 % interval; the headline of such a task. */
    int has_answer;
    double answer, answer_lo, answer_hi;
    int64_t answer_forwards;          /* forward passes the decoding took */
    int has_ponder;                   /* halting act: ponder_steps, the mean over the evaluation's batches
                                         of the mean steps of their positions (nn_model_halting_stats) */
    double ponder_steps;
} nn_eval_result;

/* The number an evaluation is judged by (best step, early stop): the
 * generated-answer score where the task has one, else the accuracy. */
static inline double nn_eval_headline(const nn_eval_result *r)
{
    return r->has_answer ? r->answer : r->accuracy;
}

/* One evaluation during training, passed to the caller (CSV rows, progress). */
typedef struct {
    int64_t step;
    double train_loss;                /* mean over the steps since the last evaluation */
    nn_eval_result valid;
    double train_time_s, tokens_per_s;
    double elapsed_s, eta_s;          /* wall time of this call so far; estimate to cfg.steps */
    size_t peak_rss_bytes;
} nn_eval_point;

typedef int (*nn_eval_cb)(const nn_eval_point *pt, void *ud);

/* Trains m (planned here for (batch, train->len)) and calls cb after every
 * evaluation (and once at the end). *best_step: the step of the best
 * validation accuracy. The model keeps its final weights. */
int nn_train(nn_model *m, const task_data *train, const task_data *valid, const nn_train_cfg *cfg, nn_eval_cb cb,
             void *ud, int64_t *best_step);

/* ---- resumable training: the loop above as an object whose whole state
 * can be checkpointed at every evaluation and restored after a crash.
 * Batches (epoch-wise shuffles keyed by (seed, epoch)) and dropout (keyed by
 * the step) are pure functions of the seed and the step, so the weights, the
 * AdamW moments, the step and the counters below are the whole state: a run
 * resumed at an evaluation step continues bitwise as the uninterrupted run. */
typedef struct {
    int64_t step;                     /* optimizer steps done */
    int64_t best_step;                /* step of the best validation accuracy (0: no evaluation yet) */
    int64_t stale;                    /* evaluations since then without a better accuracy */
    int64_t stopped;                  /* 1: early stop (patience reached) */
    double best;                      /* the best validation accuracy (-1: none yet) */
    double train_time_s;              /* time in training steps so far, evaluations excluded */
    int64_t tokens;                   /* tokens trained on so far */
} nn_train_state;

typedef struct nn_trainer {
    nn_model *m;
    const task_data *train, *valid;
    nn_train_cfg cfg;
    optim opt;
    float *best;                      /* [m->n_params]: the weights at st.best_step; kept only with
                                         cfg.patience > 0 (early stop selects them), else NULL */
    nn_train_state st;
    optim_range *ranges;
    int nranges;
    int64_t rows;                     /* scored positions per batch the plan needs */
} nn_trainer;

/* Validates cfg, plans m, sets up AdamW and the best copy; state at step 0. */
int nn_trainer_init(nn_trainer *t, nn_model *m, const task_data *train, const task_data *valid, const nn_train_cfg *cfg);
void nn_trainer_fini(nn_trainer *t);

/* Called after every evaluation once the best/patience state includes it:
 * the moment to write a resumable checkpoint (nn_trainer_save). */
typedef int (*nn_save_cb)(nn_trainer *t, void *ud);

/* Trains from t->st.step until cfg.steps or the early stop. After each
 * evaluation: on_eval (rows), then the best/patience update (copying the
 * weights into t->best when better), then on_save. Either callback may be
 * NULL. */
int nn_trainer_run(nn_trainer *t, nn_eval_cb on_eval, nn_save_cb on_save, void *ud);

/* The generator of the epoch the next batch is drawn from (the data-order
 * state a checkpoint records and a resumed run must agree with). */
void nn_trainer_rng(const nn_trainer *t, attn_rng *r);

/* Atomic resumable checkpoint (models/checkpoint.h): weights, AdamW moments
 * and step, training step and data-order RNG, the best copy when kept, and
 * run_json (a JSON object) with the counters of nn_train_state added under
 * "state". */
int nn_trainer_save(nn_trainer *t, const char *path, const char *run_json);

/* Restores what nn_trainer_save wrote into an initialised trainer of the same
 * model and config; *run_json (malloc'd, may be NULL) is the file's JSON.
 * The file is validated (CRC, tensor table, flags, state) before anything is
 * read into the trainer; a failure after that (steps or data-order RNG that
 * disagree) leaves the trainer unusable: fini it. */
int nn_trainer_load(nn_trainer *t, const char *path, char **run_json);

/* The checkpoint tensor table of m (names and shapes of its parameters);
 * *t and *info are malloc'd (the names point into *info). */
int nn_ckpt_tensors(const nn_model *m, ckpt_tensor **t, nn_param_info **info, int *n);

/* Evaluates on the first `limit` examples of d (0: all), batch size b:
 * teacher-forced accuracy, and for tasks with references the generated answers. */
int nn_evaluate(nn_model *m, const task_data *d, int64_t limit, int64_t batch, int threads, nn_eval_result *r);

/* The scored LM positions of the densest `batch` examples of d (an upper
 * bound per batch, for nn_model_plan's rows_max). */
int64_t nn_rows_max(const task_data *d, int64_t batch);

#endif
