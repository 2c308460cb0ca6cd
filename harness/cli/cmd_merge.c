/* attnbench merge: the part directories of a sharded sweep into one
 * results directory (harness/results/merge.h). */
#include "cli.h"

#include "common/attn_error.h"
#include "harness/results/merge.h"

#include <getopt.h>
#include <stdio.h>

static const char usage[] =
    "usage: attnbench merge --out DIR PART_DIR...\n"
    "Joins the results directories of a sharded sweep (sweep --shard i/n, one per shard) into\n"
    "the ordinary results files of DIR: every PART_DIR/<suite>.csv is appended to DIR/<suite>.csv\n"
    "(created when absent) through the results reader and writer, every row kept. A row whose\n"
    "job_id DIR or an earlier part already has is dropped when all its cells are the same (a\n"
    "part merged twice) and is an error naming both file:line when they differ; a file whose\n"
    "header is not the results schema's is refused. peak.csv keeps every distinct row (each\n"
    "sweep run appends its own peaks). Checkpoints and kv dumps stay in the parts.\n"
    "Exit 0 merged, 2 bad usage or a file refused (nothing of that file written).\n"
    "  --out DIR   the results directory to merge into (default results)\n";

int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = "results";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_unknown_option("merge", argc, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("merge", "expected at least one part directory");
    results_merge_stats st;
    if (results_merge((const char *const *)argv + optind, argc - optind, out, &st) != 0)
        return cli_report("merge");
    fprintf(stderr, "merge: %zu files, %zu rows read from %d parts, %zu appended to %s, %zu already there\n",
            st.files, st.rows_read, argc - optind, st.written, out, st.duplicates);
    return 0;
}
