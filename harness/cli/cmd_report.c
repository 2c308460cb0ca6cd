/* attnbench report lra|recall: summary tables (Markdown) and plot data. */
#include "cli.h"
#include "harness/results/lra_report.h"
#include "harness/results/recall_report.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench report lra [--csv FILE] [--md FILE] [--data FILE]\n"
    "       attnbench report recall [--csv FILE] [--md FILE] [--data FILE]\n"
    "lra: the LRA table from the training rows of the results CSV (default\n"
    "results/lra.csv): tasks as columns, kernels as rows, the average over the five tasks\n"
    "without Path-X, and the published LRA Table 1 rows for the same models (flash =\n"
    "Transformer, linear = Linear Trans.), marked as published. Cells on stand-in or\n"
    "generated data name their source. A cell averages the seeds of one setting only (same\n"
    "model, batch, task parameters, lr, wd, steps, data): with several, it shows the largest\n"
    "budget (steps x batch), then the best mean test accuracy, names its budget and how many\n"
    "settings it chose from; every setting is listed under the table. Writes --md (default\n"
    "results/LRA.md) and the bubble-chart data --data (default results/lra_bubbles.csv:\n"
    "steps/s relative to flash, average accuracy, peak RSS of the shown settings), which\n"
    "plots/plot.sh draws as lra_bubbles.png.\n"
    "recall: best of the learning-rate grid (Zoology) from the final test rows of the\n"
    "trainings in --csv (default results/recall.csv): per (task, task parameters, kernel,\n"
    "model) the learning rate with the best mean test accuracy over seeds. Writes --md\n"
    "(default results/RECALL.md: one table per task setting, widths as columns) and --data\n"
    "(default results/recall_best.csv, with each model's state bytes, for the MQAR-lines\n"
    "and recall-vs-state plots).\n";

/* Writes the two outputs of a loaded report. */
typedef void (*report_writer)(const void *table, FILE *md, FILE *data);

static void write_lra(const void *t, FILE *md, FILE *data)
{
    lra_table_markdown(t, md);
    lra_table_bubbles(t, data);
}

static void write_recall(const void *t, FILE *md, FILE *data)
{
    recall_table_markdown(t, md);
    recall_table_csv(t, data);
}

static int write_outputs(const void *table, report_writer w, const char *md, const char *data)
{
    FILE *f = fopen(md, "w"), *g = fopen(data, "w");
    if (!f || !g) {
        if (f)
            fclose(f);
        if (g)
            fclose(g);
        fprintf(stderr, "attnbench report: cannot write %s or %s\n", md, data);
        return 2;
    }
    w(table, f, g);
    fclose(f);
    fclose(g);
    printf("%s\n%s\n", md, data);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"csv", 1, 0, 'c'}, {"md", 1, 0, 'm'},    {"data", 1, 0, 'b'},
                                         {"bubbles", 1, 0, 'b'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int lra = argc > 1 && !strcmp(argv[1], "lra"), recall = argc > 1 && !strcmp(argv[1], "recall");
    const char *csv = lra ? "results/lra.csv" : "results/recall.csv", *md = lra ? "results/LRA.md" : "results/RECALL.md",
               *data = lra ? "results/lra_bubbles.csv" : "results/recall_best.csv";
    int c;
    if (lra || recall) /* the report's name comes first, options after it */
        argc--, argv++;
    else if (argc < 2 || (strcmp(argv[1], "--help") && strcmp(argv[1], "-h")))
        return cli_usage_error("report", "expected 'lra' or 'recall'");
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'c')
            csv = optarg;
        else if (c == 'm')
            md = optarg;
        else if (c == 'b')
            data = optarg;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_usage_error("report", "unknown option");
    }
    if (optind != argc)
        return cli_usage_error("report", "unexpected argument after the options");
    if (lra) {
        static lra_table t;
        return lra_table_load(csv, &t) ? cli_report("report") : write_outputs(&t, write_lra, md, data);
    }
    static recall_table t;
    return recall_table_load(csv, &t) ? cli_report("report") : write_outputs(&t, write_recall, md, data);
}
