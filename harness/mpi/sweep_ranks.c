#include "sweep_ranks.h"

#include "common/attn_error.h"
#include "harness/results/merge.h"

#include <errno.h>
#include <stdlib.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rank 0 joins the parts into o->results; 0, or 2 with the error printed. */
static int merge_parts(const sweep_opts *o, int nranks)
{
    char (*paths)[1100] = calloc((size_t)nranks, sizeof *paths);
    const char **dirs = calloc((size_t)nranks, sizeof *dirs);
    int rc = paths && dirs ? 0 : attn_fail(ATTN_ENOMEM, "sweep: out of memory for %d parts", nranks);
    int n = 0;
    for (int r = 0; !rc && r < nranks; r++) {
        snprintf(paths[n], sizeof paths[n], "%s/part-%d", o->results, r);
        if (access(paths[n], F_OK) == 0) /* a rank that stopped before its first job has no part */
            dirs[n] = paths[n], n++;
    }
    results_merge_stats st;
    if (!rc && n && (rc = results_merge(dirs, n, o->results, &st)) == 0)
        fprintf(stderr, "sweep: merged %d parts into %s: %zu rows read, %zu appended, %zu already there\n", n,
                o->results, st.rows_read, st.written, st.duplicates);
    free(paths), free(dirs);
    if (rc)
        fprintf(stderr, "attnbench sweep: merge: %s\n", attn_last_error());
    return rc ? 2 : 0;
}

int sweep_ranks_run(const sweep_opts *o, int (*run)(const sweep_opts *o))
{
    int inited, rank, nranks;
    MPI_Initialized(&inited);
    if (!inited)
        MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    char part[1100];
    snprintf(part, sizeof part, "%s/part-%d", o->results, rank);
    sweep_opts mine = *o;
    mine.shard_i = rank, mine.shard_n = nranks, mine.results = part;
    int rc;
    if (o->shard_n) {
        attn_fail(ATTN_EINVAL, "--shard %lld/%lld under mpirun: the %d ranks are the shards (drop --shard, or run "
                  "without mpirun)", (long long)o->shard_i, (long long)o->shard_n, nranks);
        rc = rank == 0 ? (fprintf(stderr, "attnbench sweep: %s\n", attn_last_error()), 2) : 2;
    } else if (!o->dry_run && mkdir(o->results, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "attnbench sweep: %s: cannot create the directory: %s\n", o->results, strerror(errno));
        rc = 2;
    } else
        rc = run(&mine);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); /* every rank done: the parts are whole */
    if (rank == 0 && !o->dry_run && !o->shard_n) {
        int m = merge_parts(o, nranks);
        worst = m ? m : worst;
    }
    MPI_Finalize();
    return rank == 0 ? worst : rc;
}
