/* attnbench report lra: results/LRA.md and the bubble-chart data. */
#include "cli.h"
#include "lra_report.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench report lra [--csv FILE] [--md FILE] [--bubbles FILE]\n"
    "Builds the LRA table from the training rows of the results CSV (default\n"
    "results/lra.csv): tasks as columns, kernels as rows, the average over the five tasks\n"
    "without Path-X, and the published LRA Table 1 rows for the same models (flash =\n"
    "Transformer, linear = Linear Trans.), marked as published. Cells on stand-in or\n"
    "generated data name their source. Writes --md (default results/LRA.md) and the\n"
    "bubble-chart data --bubbles (default results/lra_bubbles.csv: steps/s relative to\n"
    "flash, average accuracy, peak RSS), which plots/plot.sh draws as lra_bubbles.png.\n";

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"csv", 1, 0, 'c'}, {"md", 1, 0, 'm'}, {"bubbles", 1, 0, 'b'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *csv = "results/lra.csv", *md = "results/LRA.md", *bubbles = "results/lra_bubbles.csv";
    int c;
    if (argc > 1 && !strcmp(argv[1], "lra")) /* the report's name comes first, options after it */
        argc--, argv++;
    else if (argc < 2 || (strcmp(argv[1], "--help") && strcmp(argv[1], "-h")))
        return cli_usage_error("report", "expected 'lra' (the only report so far)");
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'c')
            csv = optarg;
        else if (c == 'm')
            md = optarg;
        else if (c == 'b')
            bubbles = optarg;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_usage_error("report", "unknown option");
    }
    if (optind != argc)
        return cli_usage_error("report", "unexpected argument after the options");
    static lra_table t;
    if (lra_table_load(csv, &t))
        return cli_report("report");
    FILE *f = fopen(md, "w"), *g = fopen(bubbles, "w");
    if (!f || !g) {
        if (f)
            fclose(f);
        if (g)
            fclose(g);
        fprintf(stderr, "attnbench report: cannot write %s or %s\n", md, bubbles);
        return 2;
    }
    lra_table_markdown(&t, f);
    lra_table_bubbles(&t, g);
    fclose(f);
    fclose(g);
    printf("%s\n%s\n", md, bubbles);
    return 0;
}
