/* attnbench migrate: results files of an earlier schema rewritten to the current one. */
#include "cli.h"

#include "common/attn_error.h"
#include "harness/results/migrate.h"

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: attnbench migrate FILE|DIR...\n"
    "Rewrites results CSVs written before the pct_roofline, load_avg_1m, runnable_others,\n"
    "noise and host_ranks columns existed to the current header, so bench, sweep --resume and\n"
    "merge can append to them again (report and merge read them as they are). Every row is\n"
    "kept with every value; the new columns read NA:written before the column existed on\n"
    "timed rows, empty on others.\n"
    "The copy is written beside FILE and renamed over it: FILE is either the old or the new one.\n"
    "A file already current is left alone. A directory: each of its *.csv with the earlier\n"
    "header, in one line naming them (none when every file is current; ./run.sh does this to\n"
    "results/ before a sweep). Exit 0 done, 2 a file refused (that file unchanged).\n";

static int migrate_dir(const char *dir)
{
    char names[4096];
    int files;
    if (results_migrate_dir(dir, names, sizeof names, &files) != 0)
        return cli_report("migrate");
    if (files)
        fprintf(stderr, "migrate: %s: %d file%s written before the current header rewritten with it: %s\n", dir,
                files, files > 1 ? "s" : "", names);
    return 0;
}

int cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return fputs(usage, stdout), 0;
        return cli_unknown_option("migrate", argc, argv);
    }
    if (optind >= argc)
        return cli_usage_error("migrate", "expected at least one results file");
    for (int i = optind; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            int rc = migrate_dir(argv[i]);
            if (rc)
                return rc;
            continue;
        }
        results_migrate_stats st;
        if (results_migrate(argv[i], &st) != 0)
            return cli_report("migrate");
        if (st.from == SCHEMA_HEADER_CURRENT)
            fprintf(stderr, "migrate: %s has the current header already: unchanged\n", argv[i]);
        else
            fprintf(stderr, "migrate: %s: %ld rows rewritten with the current header\n", argv[i], st.rows);
    }
    return 0;
}
