#include "sweep_ranks.h"

#include "common/attn_error.h"
#include "harness/measure/sysload.h"
#include "harness/results/merge.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The part directories in o->results (part-<k>, any k: an earlier run may
 * have had more ranks), in order of k; *n of them in a malloc'ed array of
 * malloc'ed paths. */
typedef struct {
    char **path;
    int n;
} part_list;

static int by_index(const void *a, const void *b)
{
    const char *x = strrchr(*(char *const *)a, '-'), *y = strrchr(*(char *const *)b, '-');
    long i = strtol(x + 1, NULL, 10), j = strtol(y + 1, NULL, 10);
    return (i > j) - (i < j);
}

static void parts_free(part_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l->path);
    *l = (part_list){0};
}

static int parts_find(const char *dir, part_list *l)
{
    *l = (part_list){0};
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* no results directory yet: no parts */
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "part-", 5) || !isdigit((unsigned char)e->d_name[5]))
            continue;
        (void)strtol(e->d_name + 5, &end, 10);
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char **grown = *end ? NULL : realloc(l->path, sizeof *l->path * (size_t)(l->n + 1));
        if (*end)
            continue;
        if (!grown || !(grown[l->n] = malloc(len))) {
            l->path = grown ? grown : l->path;
            rc = attn_fail(ATTN_ENOMEM, "sweep: the part directories of %s", dir);
            break;
        }
        l->path = grown;
        snprintf(l->path[l->n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (l->n)
        qsort(l->path, (size_t)l->n, sizeof *l->path, by_index);
    return rc;
}

/* Rank 0 joins every part present into o->results (also those of ranks an
 * earlier run had and this one has not); 0, or 2 with the error printed. */
static int merge_parts(const sweep_opts *o)
{
    part_list l;
    int rc = parts_find(o->results, &l);
    results_merge_stats st;
    if (!rc && l.n && (rc = results_merge((const char *const *)l.path, l.n, o->results, &st)) == 0)
        fprintf(stderr, "sweep: merged %d parts into %s: %zu rows read, %zu appended, %zu already there\n", l.n,
                o->results, st.rows_read, st.written, st.duplicates);
    parts_free(&l);
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
    int host_ranks; /* ranks sharing a host: their timings disturb each other */
    MPI_Comm host;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host);
    MPI_Comm_size(host, &host_ranks);
    MPI_Comm_free(&host);
    sysload_set_host_ranks(host_ranks); /* this rank's rows: the ranks on its own host */
    MPI_Allreduce(MPI_IN_PLACE, &host_ranks, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        fprintf(stderr, "sweep: %d ranks, up to %d on one host (they share its cores: their timing rows disturb "
                "each other)\n", nranks, host_ranks);
    char part[1100];
    snprintf(part, sizeof part, "%s/part-%d", o->results, rank);
    sweep_opts mine = *o;
    mine.shard_i = rank, mine.shard_n = nranks, mine.results = part;
    /* the other parts present, this rank's excepted: an earlier run's rows
     * count as done whatever its rank count was (read before any rank writes) */
    part_list others;
    int rc = parts_find(o->results, &others);
    MPI_Barrier(MPI_COMM_WORLD);
    int k = 0;
    for (int i = 0; !rc && i < others.n; i++)
        if (strcmp(others.path[i], part) != 0)
            others.path[k++] = others.path[i];
        else
            free(others.path[i]);
    others.n = rc ? others.n : k;
    mine.parts = (const char *const *)others.path, mine.n_parts = others.n;
    if (o->shard_n) {
        attn_fail(ATTN_EINVAL, "--shard %lld/%lld under mpirun: the %d ranks are the shards (drop --shard, or run "
                  "without mpirun)", (long long)o->shard_i, (long long)o->shard_n, nranks);
        rc = rank == 0 ? (fprintf(stderr, "attnbench sweep: %s\n", attn_last_error()), 2) : 2;
    } else if (!o->dry_run && mkdir(o->results, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "attnbench sweep: %s: cannot create the directory: %s\n", o->results, strerror(errno));
        rc = 2;
    } else if (rc) {
        fprintf(stderr, "attnbench sweep: %s\n", attn_last_error());
        rc = 2;
    } else
        rc = run(&mine);
    parts_free(&others);
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); /* every rank done: the parts are whole */
    if (rank == 0 && !o->dry_run && !o->shard_n) {
        int m = merge_parts(o);
        worst = m ? m : worst;
    }
    MPI_Finalize();
    return rank == 0 ? worst : rc;
}
