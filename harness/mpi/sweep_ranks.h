/* `mpirun -n P attnbench sweep` (harness/cli/sweep_mpi_hook.h): the runner
 * main() hands to cmd_sweep in a build with MPI. */
#ifndef ATTN_SWEEP_RANKS_H
#define ATTN_SWEEP_RANKS_H

#include "harness/cli/sweep_opts.h"

/* MPI is initialised here and finalised at the end. Rank r runs `run` as
 * shard r/P (--shard is refused: the ranks are the shards) into
 * DIR/part-r/, with the other part directories already in DIR (an earlier
 * run's, of any rank count) in sweep_opts.parts: their rows count as done.
 * After all ranks return (MPI_Allreduce of their exit codes, which is also
 * the barrier), rank 0 merges every DIR/part-k present into DIR
 * (harness/results/merge.h). --dry-run: every rank prints its shard, nothing
 * is merged. Returns the exit code: the worst rank's, 2 if the merge fails. */
int sweep_ranks_run(const sweep_opts *o, int (*run)(const sweep_opts *o));

#endif
