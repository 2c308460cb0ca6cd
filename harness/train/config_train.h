/* Training entries of a sweep config ("trainings": [...], configs/README.md):
 * a task, its data sizes, a model and an optimiser, over a grid of kernels
 * (a "a+b" entry is a hybrid, one kernel per layer), widths, learning rates
 * and seeds. Parsed strictly: unknown keys and wrong types are errors with
 * the JSON path. */
#ifndef ATTN_CONFIG_TRAIN_H
#define ATTN_CONFIG_TRAIN_H

#include "train_run.h"

#include <cjson/cJSON.h>

#define CFG_TRAIN_GRID 16

typedef struct cfg_training {
    char suite[32], description[512];
    train_run_opts base;                     /* everything but the grid */
    char kernels[CFG_TRAIN_GRID][160];       /* "flash" or "linear+flash" (per layer) */
    int n_kernels;
    int64_t d_model[CFG_TRAIN_GRID];
    int n_d;
    double lr[CFG_TRAIN_GRID];
    int n_lr;
    int64_t seeds[CFG_TRAIN_GRID];
    int n_seeds;
} cfg_training;

/* Parses the "trainings" array (path names the file in messages). */
int cfg_trainings_parse(const char *path, const cJSON *arr, cfg_training **out, size_t *n);

/* The job grid: kernels x d_model x lr x seeds of every entry, in that order,
 * selected by suite / task / kernel names (NULL: all); *jobs is malloc'ed. */
int cfg_trainings_expand(const cfg_training *t, size_t n, const char *suite, const char *task,
                         const char *const *kernels, size_t n_kernels, train_run_opts **jobs, size_t *n_jobs);

#endif
