/* The ping-pong link probe of the cost model (cp_probe.c); `attnbench
 * cpmodel` reaches it through cli_cp_probe (harness/cli/cp_hook.h). */
#ifndef ATTN_CP_PROBE_H
#define ATTN_CP_PROBE_H

#include <stdio.h>

/* Collective over MPI_COMM_WORLD (MPI initialised here if need be, and
 * finalised before it returns): ranks 0 and 1 ping-pong, every size's
 * one-way time printed to log by rank 0, which alone gets *latency_s and
 * *bandwidth_Bps fitted (*is_root 1 there, 0 elsewhere). Fewer than 2
 * ranks is an error saying how to start it. */
int cp_probe_run(int *is_root, double *latency_s, double *bandwidth_Bps, FILE *log);

#endif
