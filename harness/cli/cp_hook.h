/* The context-parallel kernels `ring` and `ulysses` are benchmarked under
 * mpirun by a runner that needs MPI (harness/mpi/, in the attncp library
 * that CMake builds only when it finds MPI). main() of a build with MPI
 * points cli_cp_bench at that runner; without MPI it stays NULL and
 * `attnbench bench --kernel ring` says that the build has no MPI. */
#ifndef ATTN_CP_HOOK_H
#define ATTN_CP_HOOK_H

#include "harness/measure/bench_opts.h"

/* Benchmarks `kernel` over the grid of *o on the ranks of MPI_COMM_WORLD;
 * returns the exit code (0 ok, 1 a job failed, 2 bad usage). */
typedef int (*cli_cp_runner)(const bench_opts *o, const char *kernel);
extern cli_cp_runner cli_cp_bench;

/* 1 for the names of the context-parallel kernels. */
int cli_is_cp_kernel(const char *name);

#endif
