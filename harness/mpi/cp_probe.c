/* The link probe of the cost model (`attnbench cpmodel`, docs/scale-out.md):
 * ping-pong between ranks 0 and 1 of MPI_COMM_WORLD at message sizes from
 * 1 KiB to 64 MiB (factors of 4). A size's one-way time is the median over
 * round trips of half the round trip; cpm_fit_link fits latency and
 * bandwidth to them. Other ranks take no part. */
#include "cp_probe.h"

#include "common/attn_error.h"
#include "harness/measure/cp_model.h"
#include "harness/measure/measure.h"

#include <mpi.h>
#include <stdlib.h>

enum { PROBE_SIZES = 9, PROBE_MIN_BYTES = 1024, PROBE_MAX_BYTES = 64 << 20 };

/* Round trips at one size: more for small messages (noisy, cheap), at least 5. */
static int round_trips(double bytes)
{
    int n = (int)(256.0 * 1024 * 1024 / bytes);
    return n < 5 ? 5 : n > 200 ? 200 : n;
}

/* Median one-way seconds of `bytes` between ranks 0 and 1 (rank 0's measure). */
static double one_way(char *buf, int bytes, int rank)
{
    int n = round_trips(bytes), peer = 1 - rank;
    double *ms = malloc(sizeof(double) * (size_t)n);
    if (!ms)
        return -1;
    for (int i = -1; i < n; i++) { /* i = -1: a warm-up trip (first touch, connection set-up) */
        double t0 = MPI_Wtime();
        if (rank == 0) {
            MPI_Send(buf, bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(buf, bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
        }
        if (i >= 0)
            ms[i] = (MPI_Wtime() - t0) * 1e3 / 2;
    }
    measure_stats st;
    measure_stats_from(ms, n, &st);
    free(ms);
    return st.median_ms / 1e3;
}

int cp_probe_run(int *is_root, double *latency_s, double *bandwidth_Bps, FILE *log)
{
    int inited, rank, nranks, rc = 0;
    MPI_Initialized(&inited);
    if (!inited)
        MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    *is_root = rank == 0;
    if (nranks < 2) {
        rc = attn_fail(ATTN_EINVAL, "the link probe needs 2 MPI ranks, found %d: run 'mpirun -n 2 attnbench "
                       "cpmodel ...', or give --latency-us and --bandwidth-gbs", nranks);
    } else if (rank < 2) {
        char *buf = calloc(PROBE_MAX_BYTES, 1);
        double bytes[PROBE_SIZES], secs[PROBE_SIZES];
        int ok = buf != NULL, all_ok;
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (!all_ok)
            rc = attn_fail(ATTN_ENOMEM, "link probe: a %d-byte message buffer", PROBE_MAX_BYTES);
        for (int i = 0; !rc && i < PROBE_SIZES; i++) {
            bytes[i] = (double)PROBE_MIN_BYTES * (1 << (2 * i));
            secs[i] = one_way(buf, (int)bytes[i], rank);
            if (rank == 0 && log)
                fprintf(log, "cpmodel: ping-pong %10.0f bytes: %10.3f us one way\n", bytes[i], secs[i] * 1e6);
        }
        free(buf);
        if (!rc && rank == 0)
            rc = cpm_fit_link(bytes, secs, PROBE_SIZES, latency_s, bandwidth_Bps);
    } else {
        int ok = 1, all_ok; /* the allreduce of the buffers' allocation */
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    }
    MPI_Finalize();
    return rc;
}
