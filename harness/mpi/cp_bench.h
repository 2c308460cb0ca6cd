/* `attnbench bench --kernel ring|ulysses` under mpirun (docs/scale-out.md):
 * the runner main() hands to cmd_bench in a build with MPI (cli_cp_hook.h). */
#ifndef ATTN_CP_BENCH_H
#define ATTN_CP_BENCH_H

#include "harness/measure/bench_opts.h"

/* Every N x D job of *o for `kernel` on the ranks of MPI_COMM_WORLD (MPI is
 * initialised here and finalised at the end). Each rank holds N/P rows of a
 * U(-1,1) problem of its own seed; rank 0 gates the output on sampled rows of
 * the first head against the oracle, prints the table and writes the rows.
 * Returns the exit code: 0 ok, 1 a job failed, 2 bad usage. */
int cp_bench_run(const bench_opts *o, const char *kernel);

#endif
