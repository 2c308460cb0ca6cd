/* The context-parallel kernels `ring` and `ulysses` are benchmarked under
 * mpirun by a runner that needs MPI (harness/mpi/, in the attncp library
 * that CMake builds only when it finds MPI), and their cost model's link
 * probe needs it too. main() of a build with MPI points cli_cp_bench and
 * cli_cp_probe at them; without MPI they stay NULL and `attnbench bench
 * --kernel ring` (or `cpmodel` without a given link) says that the build
 * has no MPI. */
#ifndef ATTN_CP_HOOK_H
#define ATTN_CP_HOOK_H

#include "harness/measure/bench_opts.h"

#include <stdio.h>

/* Benchmarks `kernel` over the grid of *o on the ranks of MPI_COMM_WORLD;
 * returns the exit code (0 ok, 1 a job failed, 2 bad usage). */
typedef int (*cli_cp_runner)(const bench_opts *o, const char *kernel);
extern cli_cp_runner cli_cp_bench;

/* The cost model's link probe (harness/mpi/cp_probe.h, cp_probe_run):
 * ping-pong between ranks 0 and 1; NULL in a build without MPI. */
typedef int (*cli_cp_prober)(int *is_root, double *latency_s, double *bandwidth_Bps, FILE *log);
extern cli_cp_prober cli_cp_probe;

/* 1 for the names of the context-parallel kernels. */
int cli_is_cp_kernel(const char *name);

#endif
