/* attnbench migrate: results files of an earlier schema rewritten to the current one. */
#include "cli.h"

#include "common/attn_error.h"
#include "harness/results/migrate.h"

#include <getopt.h>
#include <stdio.h>

static const char usage[] =
    "usage: attnbench migrate FILE...\n"
    "Rewrites results CSVs written before the pct_roofline, load_avg_1m, runnable_others and\n"
    "noise columns existed to the current header, so bench, sweep --resume and merge can append\n"
    "to them again (report and merge read them as they are). Every row is kept with every value;\n"
    "the new columns read NA:written before the column existed on timed rows, empty on others.\n"
    "The copy is written beside FILE and renamed over it: FILE is either the old or the new one.\n"
    "A file already current is left alone. Exit 0 done, 2 a file refused (that file unchanged).\n";

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
