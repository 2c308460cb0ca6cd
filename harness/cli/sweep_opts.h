/* The options of `attnbench sweep` (its command line; the config file is
 * harness/measure/config.h). */
#ifndef ATTN_SWEEP_OPTS_H
#define ATTN_SWEEP_OPTS_H

#include "cli.h"
#include "harness/measure/bench.h"

#include <stdint.h>

typedef struct {
    const char *config, *suite, *task, *results;
    char kernels[32][CLI_ITEM];
    int n_kernels, resume, dry_run;
    int64_t shard_i, shard_n;
    bench_limits limits;            /* from --max-time / --max-mem; -1: the config's */
    /* Under mpirun: the other part directories present (an earlier run's,
     * maybe with another rank count). Their rows count as done, and a
     * training whose state is in one of them goes on there. */
    const char *const *parts;
    int n_parts;
} sweep_opts;

/* The command line into *o (zeroed first, results "results", the limits
 * the config's); 1 after --help (printed), else 0 or a negative code with
 * the message recorded. */
int sweep_parse_opts(int argc, char **argv, sweep_opts *o);

/* --kernel's names as the config filters take them (names[32]). */
void sweep_kernel_names(const sweep_opts *o, const char *names[]);

#endif
