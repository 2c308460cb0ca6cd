/* `attnbench sweep`'s command line (sweep_opts.h). */
#include "sweep_opts.h"

#include "common/attn_error.h"
#include "harness/measure/bench_opts.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench sweep --config FILE [options]\n"
    "Expands the config's job grid (configs/README.md) and runs each job as 'bench' does,\n"
    "appending one row per job to DIR/<suite>.csv; the run's sgemm/STREAM/FMA-roof peaks go\n"
    "to DIR/peak.csv. Rows are written whole and synced, so an interrupted sweep loses at\n"
    "most the job in flight; --resume then skips every job already in the file. Memory-bound\n"
    "jobs run in groups of up to 8 with a STREAM probe before and after (their rows are\n"
    "written after the closing probe: a kill loses at most one group); rows whose probes\n"
    "moved more than 15 %, or that ran beside other work, say so in the noise column.\n"
    "Results files of the earlier header are refused before any job runs: 'attnbench\n"
    "migrate FILE...' rewrites them (every row kept).\n"
    "Before the first job it prints its estimated total: each kind of kernel job is probed\n"
    "once at a short length (its efficiency then scales its analytic work), each training\n"
    "takes two steps and makes two batches of data (its schedule then scales them); every\n"
    "progress line ends with an ETA corrected by how the jobs done so far met theirs.\n"
    "  --config FILE       sweep description (configs/: quick.json, default.json, full.json, ...)\n"
    "  --suite S           only this suite of the config\n"
    "  --kernel K[,K...]   only these kernels\n"
    "  --task T            only the training jobs of this task (\"trainings\" entries: a model\n"
    "                      with each kernel trained and evaluated; rows per evaluation)\n"
    "  --resume            skip jobs whose job_id is already in the results file (a finished\n"
    "                      training: only its extrapolation cells not yet there are evaluated)\n"
    "  --shard i/n         run only shard i of n (Slurm arrays, several machines): jobs go longest\n"
    "                      first to the least loaded shard by their analytic cost, computed alike\n"
    "                      by every shard (docs/scale-out.md); --dry-run prints every shard's total\n"
    "  --dry-run           print the resolved config and the jobs with their estimates (the\n"
    "                      peaks and probes run; no job runs, nothing is written)\n"
    "  --max-time S        a job whose time estimate is longer is a skipped:<estimate> row, not\n"
    "                      run (every call at the analytic FLOPs and bytes over the same-run\n"
    "                      peaks; default the config's max_time_s, else 3600; 0: no limit)\n"
    "  --max-mem BYTES     likewise for the tensors and kernel workspace a job needs, judged\n"
    "                      before allocating (default the config's max_mem_bytes, else 80% of\n"
    "                      the memory available at start)\n"
    "  --results DIR       output folder (default results)\n"
    "Under mpirun or srun (a build with MPI), rank r runs shard r/P into DIR/part-r/ and rank 0\n"
    "merges every part in DIR when all ranks are done; resume a run a rank died in with\n"
    "--resume and any number of ranks (the rows of every part present count as done).\n"
    "Parts of --shard runs: 'attnbench merge'.\n";

/* --max-time / --max-mem through the bench option table's rows (one range
 * and one message for bench, sweep and the config keys). */
static int limit_set(sweep_opts *o, const char *row, double *field, const char *text)
{
    opt_def d = *bench_opt(row);
    char where[32];
    snprintf(where, sizeof where, "--%s", d.cli);
    d.offset = (size_t)((char *)field - (char *)o);
    return opt_set_text(&d, o, text, where);
}

static int parse_shard(const char *s, sweep_opts *o)
{
    const char *slash = strchr(s, '/');
    char i[32];
    if (!slash || (size_t)(slash - s) >= sizeof i)
        return attn_fail(ATTN_EINVAL, "--shard: expected i/n (e.g. 0/4), found '%s'", s);
    memcpy(i, s, (size_t)(slash - s));
    i[slash - s] = '\0';
    int rc = cli_int64("--shard n", slash + 1, 1, 1 << 20, &o->shard_n);
    if (!rc)
        rc = cli_int64("--shard i", i, 0, o->shard_n - 1, &o->shard_i);
    return rc;
}

int sweep_parse_opts(int argc, char **argv, sweep_opts *o)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"suite", required_argument, 0, 's'},
        {"kernel", required_argument, 0, 'k'}, {"task", required_argument, 0, 't'},
        {"resume", no_argument, 0, 'r'},       {"shard", required_argument, 0, 'S'},
        {"dry-run", no_argument, 0, 'd'},      {"results", required_argument, 0, 'o'},
        {"max-time", required_argument, 0, 'T'}, {"max-mem", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c, rc = 0, idx = -1;
    const char *given[128] = {0}; /* by option letter: its first value ("" for a flag) */
    memset(o, 0, sizeof *o);
    o->results = "results";
    o->limits = (bench_limits){-1, -1}; /* the config's */
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "+h", opts, &idx)) != -1) {
        /* a repeat is an error, as for every option table (common/options.h) */
        if (c > 0 && c < 128 && c != 'h' && idx >= 0 && given[c])
            return optarg ? attn_fail(ATTN_EINVAL, "--%s: given twice ('%s', then '%s')", opts[idx].name, given[c], optarg)
                          : attn_fail(ATTN_EINVAL, "--%s: given twice", opts[idx].name);
        if (c > 0 && c < 128)
            given[c] = optarg ? optarg : "";
        idx = -1;
        switch (c) {
        case 'c': o->config = optarg; break;
        case 's': o->suite = optarg; break;
        case 'k': rc = cli_split("--kernel", optarg, o->kernels, 32, &o->n_kernels); break;
        case 't': o->task = optarg; break;
        case 'r': o->resume = 1; break;
        case 'S': rc = parse_shard(optarg, o); break;
        case 'd': o->dry_run = 1; break;
        case 'o': o->results = optarg; break;
        case 'T': rc = limit_set(o, "max_time_s", &o->limits.max_time_s, optarg); break;
        case 'M': rc = limit_set(o, "max_mem_bytes", &o->limits.max_mem_bytes, optarg); break;
        case 'h': fputs(usage, stdout); return 1;
        default:
            return attn_fail(ATTN_EINVAL, "unknown option or missing value: '%s' (see 'attnbench sweep --help')",
                             optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return attn_fail(ATTN_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!o->config)
        return attn_fail(ATTN_EINVAL, "--config FILE is required");
    return 0;
}
void sweep_kernel_names(const sweep_opts *o, const char *names[])
{
    for (int i = 0; i < o->n_kernels; i++)
        names[i] = o->kernels[i];
}
