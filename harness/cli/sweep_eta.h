/* The sweep's clock: the estimated total printed before it starts, and the
 * ETA on every progress line. Each job carries its estimate (kernel jobs:
 * bench_cost.h, trainings: train_probe.h); the ETA is the estimate of what
 * remains, scaled by how the jobs done so far compared with theirs (real
 * time / estimated time, once enough has run to judge), so a machine
 * slower or busier than its probes showed is caught up with as it runs. */
#ifndef ATTN_SWEEP_ETA_H
#define ATTN_SWEEP_ETA_H

#include <stdio.h>

typedef struct {
    double total_s;    /* the estimate of every job still to run when the sweep started */
    double done_est_s; /* the estimates of the jobs finished since */
    double t0;         /* when the sweep started running jobs */
} sweep_eta;

void sweep_eta_start(sweep_eta *e, double total_s);

/* A job whose estimate was est_s has finished. */
static inline void sweep_eta_done(sweep_eta *e, double est_s) { e->done_est_s += est_s; }

/* Seconds still to go: the remaining estimate times real/estimated so far. */
double sweep_eta_remaining(const sweep_eta *e);

/* " (elapsed 12s, ETA 38m02s)" */
void sweep_eta_print(FILE *f, const sweep_eta *e);

#endif
