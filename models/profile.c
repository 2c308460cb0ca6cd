#include "profile.h"

#include <time.h>

static int enabled;
static double secs[NN_PROF__COUNT], flops[NN_PROF__COUNT];

void nn_prof_enable(int on) { enabled = on; }
int nn_prof_enabled(void) { return enabled; }

void nn_prof_reset(void)
{
    for (int k = 0; k < NN_PROF__COUNT; k++)
        secs[k] = flops[k] = 0;
}

double nn_prof_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void nn_prof_add(nn_prof_kind k, double seconds, double f)
{
    if (enabled)
        secs[k] += seconds, flops[k] += f;
}

double nn_prof_seconds(nn_prof_kind k) { return secs[k]; }
double nn_prof_flops(nn_prof_kind k) { return flops[k]; }
