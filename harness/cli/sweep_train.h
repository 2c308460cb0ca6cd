/* The training entries of a sweep: expanded into runs, each probed for its
 * estimate before the sweep starts, then trained (with its extrapolation
 * grid) after the kernel jobs. With --resume a run whose test row exists is
 * not trained again, and only its missing extrapolation cells are evaluated. */
#ifndef ATTN_SWEEP_TRAIN_H
#define ATTN_SWEEP_TRAIN_H

#include "harness/measure/config.h"
#include "harness/train/train_run.h"
#include "sweep_eta.h"
#include "sweep_opts.h"

typedef struct sweep_trainings_s {
    train_run_opts *jobs;
    size_t n;
    char (*dirs)[1100];   /* each run's directory: the results, or the part holding its state */
    char (*paths)[1100];  /* each run's results file, in its directory */
    char (*ids)[17];      /* each run's test row job_id ("" when it cannot make its test split) */
    unsigned char *done;  /* its test row is in the results already */
    double *est_s;        /* the probe's estimate (0 when done, or not probed) */
} sweep_trainings;

/* The config's training runs the options select (--suite, --task, --kernel),
 * their results files and which are done. Free with sweep_trainings_free. */
int sweep_trainings_load(const sweep_opts *o, const cfg_config *cfg, sweep_trainings *t);
void sweep_trainings_free(sweep_trainings *t);

/* Keeps the runs j with keep[j] != 0, in order (before sweep_trainings_check_done). */
void sweep_trainings_keep(sweep_trainings *t, const unsigned char *keep);

/* Which runs are done (their test rows are in the results); without
 * --resume a done run is an error naming it. A run with no state in the
 * results but its test row or a checkpoint in one of o->parts moves there
 * (its rows, checkpoint and kv dump stay together). */
int sweep_trainings_check_done(const sweep_opts *o, sweep_trainings *t);

/* Probes every run not done yet (train_probe.h) into est_s; a probe that
 * fails leaves 0 (the run itself will report the failure). Returns the sum. */
double sweep_trainings_estimate(sweep_trainings *t);

/* One line per run, as --dry-run prints them. */
void sweep_trainings_print(const sweep_trainings *t);

/* Trains the runs in order (their rows, checkpoints and grids); eta is
 * advanced by each run's estimate. *failed: some run failed (its error is
 * printed, the others still run). */
int sweep_trainings_run(sweep_trainings *t, sweep_eta *eta, int *failed);

#endif
