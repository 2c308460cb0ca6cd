/* One training run as the CLI and sweeps describe it: task, data, model and
 * optimiser settings; running it writes one results row per evaluation and a
 * final test row, and optionally a checkpoint that `attnbench eval` reloads. */
#ifndef ATTN_TRAIN_RUN_H
#define ATTN_TRAIN_RUN_H

#include "models/model.h"
#include "tasks/task.h"
#include "models/train.h"
#include "train_result.h"

#define ATTN_TRAIN_MAX_SWAPS 8
/* lr's default and range, for its option row and a config's grid of rates. */
#define TRAIN_LR_RANGE .def = 1e-3, .lo = 0, .hi = 10

/* A kernel evaluated in every layer of a trained model in place of the
 * trained one (extrapolate.h), e.g. StreamingLLM's cache: "streaming",
 * mode=decode, mask "sink:n=4,w=192". */
typedef struct {
    char kernel[32];
    param_bag params;
    char mask[64];                 /* a mask spec replacing causal/full; "" none */
    attn_kv_dtype kv_dtype;        /* the KV format every layer stores for it; fp32: as computed */
} train_kernel_swap;

typedef struct {
    char task[32];
    param_bag task_params;
    char data_dir[1024];           /* official files, or "" for generators / stand-ins */
    uint64_t data_seed;
    int64_t train_n, valid_n, test_n;
    nn_model_cfg model;
    nn_train_cfg train;
    const char *out;               /* results CSV (NULL: results/<suite>.csv) */
    const char *checkpoint;        /* NULL: none */
    /* Sweeps only, not part of the job_id (it does not change the training):
     * after the run, evaluate its checkpoint at these multiples of the
     * trained length and `depths` needle depths (harness/train/extrapolate.h),
     * then the same grid with each swapped kernel in every layer. */
    int n_scales, depths;
    int64_t scale[16];
    int n_swaps;
    train_kernel_swap swap[ATTN_TRAIN_MAX_SWAPS];
    /* Then each of these grids again with every layer's kernel in the
     * memory-budget mode at that many bytes (eval --mem-budget). */
    int n_budgets;
    int64_t mem_budget[16];
    /* Then, unless it exists: the attention inputs of every layer on one test
     * example at the largest scale, written to this kv file in the results
     * directory (eval --dump-kv), for kernel jobs with inputs cache:FILE. */
    char dump_kv[192];
} train_run_opts;

/* The run's options (harness/train/train_opts.c) in the order of the
 * canonical JSON; the model's are nn_model_opts. */
extern const opt_def train_run_opts_table[];

/* Every option of both tables at its default: 2 layers, d 64, 2 heads, MLP
 * 128, learned positions, CLS pooling, 200 steps of batch 16, AdamW lr 1e-3
 * wd 0.1, cosine, clip 1. */
void train_run_defaults(train_run_opts *r);

/* data_dir as the tasks take it: NULL when none was given. */
const char *train_run_data_dir(const train_run_opts *r);

/* n examples of one split of the run's task, from its data seed and data
 * directory. */
int train_run_make_split(const train_run_opts *r, const task_def *t, task_split split, int64_t n, task_data *d);

/* Builds the data and the model, trains, evaluates on the test split, writes
 * the rows (and the checkpoint, saved before the test row: a run whose test
 * row exists has its checkpoint). *res: the evaluations of this call and the
 * test (free it with train_result_free, also on error).
 *
 * The test row evaluates the last weights, or with train.patience > 0 the
 * best-validation ones (kept in memory); its params end in
 * ";best_step=K;weights=best|last" and its train_steps is the step of the
 * weights evaluated.
 *
 * Resume: after every evaluation's row, the whole training state (weights,
 * AdamW moments and step, best weights and patience counter, data-order RNG,
 * the run's JSON with its job_id) is saved atomically to
 * <dir of the CSV>/.train-<test job_id>.ckpt. A run whose test row is not yet
 * in the CSV continues from that file when it exists (bitwise as if never
 * interrupted) and does not write again the rows whose job_id the CSV already
 * holds. The file is removed once the test row (and --checkpoint) are
 * written. A run whose test row is already there starts afresh. */
int train_run_exec(const train_run_opts *r, train_result *res);

/* The job_id of the run's final test row: a sweep that finds it in the
 * results skips the run (--resume). Builds the test split to know N.
 * Training job_ids hash the row identity cells and the canonical JSON of
 * the whole run configuration (task, task params, data dir and seed, split
 * sizes, every optimiser and schedule setting, the model config with its
 * kernel params), so any setting that changes a result changes them. */
int train_run_test_id(const train_run_opts *r, char id[17]);

/* Removes run r's resumable training state (id: its test row's job_id), if
 * any: once the test row is in the results the run is finished, and a state
 * still there was left by a kill between the row and the state's removal. */
void train_run_forget_resume(const train_run_opts *r, const char *id);

/* The run with its model fitted to the task's data, as its --checkpoint
 * header records it (what train_run_checkpoint reads back), without
 * the file; *len: the sequence length. Fitted on the test split, as
 * train_run_test_id. */
int train_run_fitted(const train_run_opts *r, train_run_opts *fitted, int64_t *len);

/* The run with its model fitted to a test split of n examples, and that
 * split in *te (free it with task_data_free; freed on error): a few
 * examples of the run's shape, as the cost probe (train_probe.h) takes them. */
int train_run_fit_sample(const train_run_opts *r, int64_t n, train_run_opts *fitted, task_data *te);

/* Rebuilds the model and test data a checkpoint names, evaluates them and
 * writes a row (split test-reload); *e: the evaluation, *logged: the test
 * accuracy when trained. */
int train_run_eval_checkpoint(const char *path, int64_t test_n, int threads, const char *out, train_eval_result *e,
                               double *logged);

/* The pieces of eval, for re-evaluations under other settings (extrapolate.c).
 * The run a checkpoint names (*len: the trained sequence length, *logged: the
 * test accuracy logged at training time). */
int train_run_checkpoint(const char *path, train_run_opts *r, int64_t *len, double *logged);

/* A model (eval only) from cfg with the weights of checkpoint `path`: cfg is
 * the checkpoint's model config, or it with a longer max_len (positions
 * without parameters) or another kernel in every layer (extrapolate.h).
 * Free m with nn_model_free, also on error. */
int train_run_model_load(const char *path, const nn_model_cfg *cfg, nn_model *m);

/* Evaluates m on d (batch and threads from r) into *e (a CHECKPOINT
 * evaluation) and appends its row to r->out (or results/<suite>.csv) with
 * params "...;split=<split>". */
int train_run_eval_write(const train_run_opts *r, const task_data *d, nn_model *m, const char *split,
                         train_eval_result *e);

/* The job_id of the row train_run_eval_write(r, d, ., split, .) writes,
 * without evaluating (a resumed sweep skips the cells already there). */
int train_run_eval_row_id(const train_run_opts *r, const task_data *d, const char *split, char id[17]);

/* Where r's rows go: r->out, or results/<suite of r->task>.csv. */
void train_run_results_path(const train_run_opts *r, char *out, size_t n);

#endif
