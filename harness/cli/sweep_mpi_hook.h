/* `mpirun -n P attnbench sweep`: rank r runs shard r/P of the sweep into
 * DIR/part-r/ and rank 0 merges the parts into DIR once every rank is done.
 * The rank runner needs MPI (harness/mpi/sweep_ranks.c, in the attncp
 * library CMake builds only when it finds MPI); main() of a build with MPI
 * points cli_sweep_ranks at it, and without MPI it stays NULL and a sweep
 * started by an MPI launcher says that the build has no MPI. */
#ifndef ATTN_SWEEP_MPI_HOOK_H
#define ATTN_SWEEP_MPI_HOOK_H

#include "sweep_opts.h"

/* Runs `run` (one process's sweep, returning its exit code) as shard r/P on
 * every rank, then merges on rank 0; returns the exit code. */
typedef int (*cli_sweep_ranks_runner)(const sweep_opts *o, int (*run)(const sweep_opts *o));
extern cli_sweep_ranks_runner cli_sweep_ranks;

/* The world size an MPI launcher (mpirun, srun) announced in the
 * environment: OMPI_COMM_WORLD_SIZE (Open MPI) or PMI_SIZE (Slurm's PMI,
 * MPICH); 0 when the process was not started by one. */
int cli_mpi_launched_size(void);

#endif
