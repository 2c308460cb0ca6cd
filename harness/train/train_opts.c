/* The training run's option table (train_run.h train_run_opts_table), in the
 * order of the canonical JSON: everything that can change a result is a JSON
 * row; threads are in the row identity, and progress, out and checkpoint
 * change no result. The grid keys of a config ("seeds", "lr") are the
 * config's own (config_train.c). */
#include "train_run.h"

#include <stddef.h>
#include <string.h>

#define AT(f) offsetof(train_run_opts, f)
#define DATA "task and data"
#define OPTIM "optimiser"
#define RUN "run"
#define OPT_OLD (OPT_JSON_OPTIONAL) /* absent from checkpoints of older versions: the default */
const opt_def train_run_opts_table[] = {
    {.name = "task", .type = OPT_STRING, .offset = AT(task), .size = sizeof(((train_run_opts *)0)->task),
     .group = DATA, .metavar = "T", .flags = OPT_REQUIRED, .help = "the task (see 'attnbench list tasks')"},
    {.name = "task_params", .cli = "task-param", .type = OPT_PARAMS, .offset = AT(task_params), .group = DATA,
     .help = "task parameter (repeatable; e.g. L=256, D=16 for mqar)"},
    {.name = "data", .json = "data_dir", .type = OPT_STRING, .offset = AT(data_dir),
     .size = sizeof(((train_run_opts *)0)->data_dir), .group = DATA, .metavar = "DIR",
     .flags = OPT_JSON_NULL_EMPTY | OPT_OLD,
     .help = "official files (LRA formats); default: generators / stand-ins"},
    {.name = "data_seed", .type = OPT_UINT, .offset = AT(data_seed), .def = 1, .lo = 0, .hi = (double)INT64_MAX,
     .group = DATA, .metavar = "S", .help = "data seed"},
    {.name = "seed", .type = OPT_UINT, .offset = AT(train.seed), .def = 1, .lo = 0, .hi = (double)INT64_MAX,
     .group = RUN, .metavar = "S", .flags = OPT_NO_CONFIG /* a config's grid: "seeds" */,
     .help = "seed of the weights, batches and dropout"},
    {.name = "train_n", .type = OPT_INT, .offset = AT(train_n), .def = 2000, .lo = 1, .hi = 1 << 30, .group = DATA,
     .help = "training examples"},
    {.name = "valid_n", .type = OPT_INT, .offset = AT(valid_n), .def = 256, .lo = 1, .hi = 1 << 30, .group = DATA,
     .help = "validation examples", .flags = OPT_OLD},
    {.name = "test_n", .type = OPT_INT, .offset = AT(test_n), .def = 512, .lo = 1, .hi = 1 << 30, .group = DATA,
     .help = "test examples"},
    {.name = "batch", .type = OPT_INT, .offset = AT(train.batch), .def = 16, .lo = 1, .hi = 1 << 20, .group = OPTIM,
     .metavar = "B", .help = "examples per micro-batch"},
    {.name = "steps", .type = OPT_INT, .offset = AT(train.steps), .def = 200, .lo = 1, .hi = 1 << 30, .group = OPTIM,
     .metavar = "S", .help = "optimiser steps"},
    {.name = "accum", .type = OPT_INT, .offset = AT(train.accum), .def = 1, .lo = 1, .hi = 1 << 20, .group = OPTIM,
     .metavar = "k", .help = "micro-batches per step", .flags = OPT_OLD},
    {.name = "eval_every", .type = OPT_INT, .offset = AT(train.eval_every), .def = 50, .lo = 1, .hi = 1 << 30,
     .group = OPTIM, .metavar = "k", .help = "evaluate on the validation split every k steps", .flags = OPT_OLD},
    {.name = "eval_n", .type = OPT_INT, .offset = AT(train.eval_n), .flags = OPT_INTERNAL | OPT_OLD},
    {.name = "patience", .type = OPT_INT, .offset = AT(train.patience), .def = 0, .lo = 0, .hi = 1 << 20,
     .group = OPTIM, .metavar = "k", .flags = OPT_OLD,
     .help = "evaluations without a better validation accuracy before stopping (0: no early stop; else the "
             "test row evaluates the best-validation weights, params best_step=K;weights=best)"},
    {.name = "warmup", .type = OPT_INT, .offset = AT(train.warmup), .def = 10, .lo = 0, .hi = 1 << 30,
     .group = OPTIM, .metavar = "n", .help = "linear warm-up steps", .flags = OPT_OLD},
    {.name = "lr", .type = OPT_DOUBLE, .offset = AT(train.lr), TRAIN_LR_RANGE, .group = OPTIM,
     .flags = OPT_NO_CONFIG /* a config's grid */, .help = "peak learning rate (AdamW)"},
    {.name = "min_lr", .type = OPT_DOUBLE, .offset = AT(train.min_lr_ratio), .def = 0.1, .lo = 0, .hi = 1,
     .group = OPTIM, .metavar = "r", .flags = OPT_OLD, .help = "final learning rate as a fraction of --lr"},
    {.name = "wd", .type = OPT_DOUBLE, .offset = AT(train.weight_decay), .def = 0.1, .lo = 0, .hi = 10,
     .group = OPTIM, .help = "decoupled weight decay"},
    {.name = "clip", .type = OPT_DOUBLE, .offset = AT(train.clip), .def = 1, .lo = 0, .hi = 1e6, .group = OPTIM,
     .flags = OPT_OLD, .help = "gradient-norm clip (0: off)"},
    {.name = "sched", .type = OPT_ENUM, .offset = AT(train.sched), .names = optim_sched_names,
     .def = OPTIM_SCHED_COSINE, .group = OPTIM, .flags = OPT_OLD,
     .help = "learning-rate schedule; rsqrt: LRA's constant*linear_warmup*rsqrt_decay with --lr as its peak, "
             "lr * min(1, t/warmup) * sqrt(warmup / max(t, warmup)), no end, no --min-lr"},
    {.name = "threads", .type = OPT_INT32, .offset = AT(train.threads), .def = 1, .lo = 1, .hi = 1024, .group = RUN,
     .metavar = "T", .flags = OPT_NO_JSON, .help = "threads"},
    {.name = "out", .type = OPT_ARG, .offset = AT(out), .group = RUN, .metavar = "FILE",
     .flags = OPT_NO_CONFIG | OPT_NO_JSON, .help = "results CSV", .def_str = "results/<suite>.csv"},
    {.name = "checkpoint", .type = OPT_ARG, .offset = AT(checkpoint), .group = RUN, .metavar = "FILE",
     .flags = OPT_NO_CONFIG | OPT_NO_JSON, .help = "write the weights the test row evaluated, for 'attnbench eval'"},
    {.name = "quiet", .type = OPT_BOOL, .offset = AT(train.progress), .def = 1, .group = RUN,
     .flags = OPT_INVERT | OPT_NO_CONFIG | OPT_NO_JSON, .help = "no progress lines"},
    {0},
};

void train_run_defaults(train_run_opts *r)
{
    memset(r, 0, sizeof *r);
    opt_defaults(train_run_opts_table, r);
    nn_model_cfg_defaults(&r->model);
}

const char *train_run_data_dir(const train_run_opts *r) { return r->data_dir[0] ? r->data_dir : NULL; }

int train_run_make_split(const train_run_opts *r, const task_def *t, task_split split, int64_t n, task_data *d)
{
    return t->make(&r->task_params, split, r->data_seed, n, train_run_data_dir(r), d);
}
