#include "sweep_eta.h"

#include "harness/measure/measure.h"

/* Below this much estimated work done, the ratio real/estimated is mostly
 * start-up noise: the ETA is the plain estimate. */
#define ETA_JUDGE_S 30.0

void sweep_eta_start(sweep_eta *e, double total_s)
{
    e->total_s = total_s, e->done_est_s = 0, e->t0 = measure_now_s();
}

double sweep_eta_remaining(const sweep_eta *e)
{
    double left = e->total_s - e->done_est_s, elapsed = measure_now_s() - e->t0;
    if (left < 0)
        left = 0;
    if (e->done_est_s >= ETA_JUDGE_S)
        left *= elapsed / e->done_est_s;
    return left;
}

void sweep_eta_print(FILE *f, const sweep_eta *e)
{
    long eta = (long)(sweep_eta_remaining(e) + 0.5);
    fprintf(f, " (elapsed %.0fs, ETA %ldm%02lds)", measure_now_s() - e->t0, eta / 60, eta % 60);
}
