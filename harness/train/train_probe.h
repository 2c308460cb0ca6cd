/* What a training job will take, before it runs: a probe of the job itself
 * (its task's data, its model, its batch) makes one and two batches of
 * examples (the difference is their cost, the rest a split's fixed cost),
 * takes one untimed and two timed optimizer steps and one evaluation
 * forward, and the job's schedule scales these up: every example of its
 * splits, every step, every validation and test batch, and each cell of
 * its extrapolation grid (longer sequences cost more per batch: the dense
 * layers grow with the length, attention with its square). The sweep prints
 * the total before it starts and corrects its ETA as jobs finish
 * (harness/cli/sweep_eta.h). */
#ifndef ATTN_TRAIN_PROBE_H
#define ATTN_TRAIN_PROBE_H

#include "train_run.h"

typedef struct {
    double split_s; /* making a split: its fixed cost (reading a corpus, ...) */
    double data_s;  /* making a split: each example */
    double step_s;  /* one optimizer step: accum micro-batches forward and backward, AdamW */
    double eval_s;  /* one evaluation batch: forward only */
    int64_t len;    /* the run's sequence length */
} train_probe;

/* Measures run r's probe (a few seconds for the largest default jobs). */
int train_probe_run(const train_run_opts *r, train_probe *p);

/* The whole job's seconds from its probe: data, training steps,
 * evaluations, the extrapolation grid. */
double train_probe_seconds(const train_run_opts *r, const train_probe *p);

#endif
