/* attnbench report all|lra|recall|fidelity|longctx: summary tables (Markdown) and plot data. */
#include "cli.h"
#include "common/atomic_file.h"
#include "common/attn_error.h"
#include "harness/results/fidelity_report.h"
#include "harness/results/lra_report.h"
#include "harness/results/longctx_evals.h"
#include "harness/results/longctx_report.h"
#include "harness/results/lra_speed.h"
#include "harness/results/recall_report.h"
#include "harness/results/report_all.h"

#include "common/attn_error.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: attnbench report all [--results DIR] [--md FILE]\n"
    "       attnbench report lra [--csv FILE] [--md FILE] [--data FILE] [--speed FILE]\n"
    "       attnbench report recall [--csv FILE] [--md FILE] [--data FILE]\n"
    "       attnbench report fidelity [--csv FILE] [--md FILE] [--data FILE]\n"
    "       attnbench report longctx [--csv FILE] [--md FILE] [--data FILE] [--evals FILE]\n"
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
    "plots/plot.sh draws as lra_bubbles.png. With the rows of 'bench --suite lra_speed' in --speed\n"
    "(default results/lra_speed.csv, skipped when absent) LRA.md also gets Table 2's analogue: training\n"
    "steps/s and peak RSS per model at each length, as ratios to flash beside the paper's ratios,\n"
    "and the bubbles take speed and memory from those rows at their longest length (as the paper's\n"
    "chart does from its 4K benchmark) instead of from the task trainings.\n"
    "recall: best of the learning-rate grid (Zoology) from the final test rows of the\n"
    "trainings in --csv (default results/recall.csv): per (task, task parameters, kernel,\n"
    "model) the learning rate with the best mean test accuracy over seeds. Writes --md\n"
    "(default results/RECALL.md: one table per task setting, widths as columns) and --data\n"
    "(default results/recall_best.csv, with each model's state bytes, for the MQAR-lines\n"
    "and recall-vs-state plots).\n"
    "fidelity: error against softmax attention vs time from the fidelity rows (bench jobs\n"
    "with inputs other than uniform) of --csv (default results/fidelity.csv): per (N, D,\n"
    "input family, mask) every configuration's time, rel_fro_err, cosine, KL and top-k recall,\n"
    "its Pareto front, and per approximate kernel at the largest N on peaked inputs whether\n"
    "one of its configurations is faster than flash with rel_fro_err <= 0.1. Writes --md\n"
    "(default results/FIDELITY.md) and --data (default results/fidelity_pareto.csv, drawn\n"
    "by plots/plot.sh as fidelity.png). Decode shapes (a few queries against a longer cache)\n"
    "are their own groups and stay out of the plot data.\n"
    "longctx: the decode shapes of the same kind of rows (default results/longctx.csv, from\n"
    "configs/longctx.json): per (N_kv, queries, heads, D, input family, mask) every\n"
    "configuration's time and bytes read per token, each beside exact decode's in the same run,\n"
    "its top-k recall and rel_fro_err; and at N_kv = 131072 on peaked inputs, per selecting\n"
    "kernel, whether one configuration reads <= 10% of decode's bytes, is >= 3x faster and keeps\n"
    "top-k recall >= 0.9. With extrapolation rows in --evals (default results/niah.csv, skipped\n"
    "when absent) it adds, per checkpoint and length, the generated-answer score of every\n"
    "kernel swapped into the trained weights beside exact decode's, and whether each\n"
    "approximate decode kernel stays within 0.02 of it at the trained length. Writes --md\n"
    "(default results/LONGCTX.md) and --data (default results/longctx_points.csv, drawn by\n"
    "plots/plot.sh as longctx.png).\n"
    "With --md and no --data, the data file goes beside --md under its default name.\n"
    "all: every suite report above whose CSV is in DIR (default results), then DIR/REPORT.md\n"
    "(or --md): where the numbers come from (files, runs, commits, machines, counters, data\n"
    "sources), the same-run roofs of peak.csv, a summary table per suite (kernels, masks,\n"
    "decode, scaling, NIAH), the suite reports inline, and every plot already drawn in\n"
    "DIR/plots. Built from the CSVs alone; links are relative to DIR.\n";

/* Writes the two outputs of a loaded report. */
typedef void (*report_writer)(const void *table, FILE *md, FILE *data);

/* The LRA report: the accuracy table and, when its rows exist, the speed section. */
typedef struct {
    lra_table table;
    lra_speed speed;
} lra_report;

static void write_lra(const void *t, FILE *md, FILE *data)
{
    const lra_report *r = t;
    lra_table_markdown(&r->table, md);
    lra_speed_markdown(&r->speed, md);
    lra_table_bubbles(&r->table, &r->speed, data);
}

static void write_recall(const void *t, FILE *md, FILE *data)
{
    recall_table_markdown(t, md);
    recall_table_csv(t, data);
}

static void write_fidelity(const void *t, FILE *md, FILE *data)
{
    fidrep_markdown(t, md);
    fidrep_csv(t, data);
}

/* The long-context report: the decode-shape fidelity rows and, when
 * they exist, the trained models evaluated with decode kernels swapped in. */
typedef struct {
    fidrep rows;
    longctx_evals evals;
} longctx_report;

static void write_longctx(const void *t, FILE *md, FILE *data)
{
    const longctx_report *r = t;
    longctx_markdown(&r->rows, md);
    longctx_evals_markdown(&r->evals, md);
    longctx_csv(&r->rows, data);
}

/* Each output is written aside and renamed over its path: a report killed
 * or failing half-way leaves the earlier files whole, never a prefix. */
static int write_outputs(const void *table, report_writer w, const char *md, const char *data)
{
    atomic_file f, g;
    int rc = atomic_file_open(&f, md, "w");
    if (!rc && (rc = atomic_file_open(&g, data, "w")))
        atomic_file_abort(&f);
    if (!rc) {
        w(table, f.f, g.f);
        if ((rc = atomic_file_commit(&f, 0)))
            atomic_file_abort(&g);
        else
            rc = atomic_file_commit(&g, 0);
    }
    if (rc) {
        fprintf(stderr, "attnbench report: %s\n", attn_last_error());
        return 2;
    }
    printf("%s\n%s\n", md, data);
    return 0;
}

/* Each report's name and its default input and outputs (under results/). */
static const struct {
    const char *name, *csv, *md, *data;
} reports[] = {{"lra", "lra.csv", "LRA.md", "lra_bubbles.csv"},
               {"recall", "recall.csv", "RECALL.md", "recall_best.csv"},
               {"fidelity", "fidelity.csv", "FIDELITY.md", "fidelity_pareto.csv"},
               {"longctx", "longctx.csv", "LONGCTX.md", "longctx_points.csv"}};
#define N_REPORTS (int)(sizeof reports / sizeof *reports)

/* One suite report from csv into md and data (speed: lra's speed rows,
 * evals: longctx's swapped evaluations). */
static int run_report(int which, const char *csv, const char *md, const char *data, const char *speed,
                      const char *evals)
{
    if (which == 0) {
        static lra_report t;
        return lra_table_load(csv, &t.table) || lra_speed_load(speed, &t.speed) ? cli_report("report")
                                                                               : write_outputs(&t, write_lra, md, data);
    }
    if (which == 2) {
        fidrep r;
        int rc = fidrep_load(csv, &r) ? cli_report("report") : write_outputs(&r, write_fidelity, md, data);
        fidrep_free(&r);
        return rc;
    }
    if (which == 3) {
        static longctx_report r;
        int rc = fidrep_load(csv, &r.rows) || longctx_evals_load(evals, &r.evals) ? cli_report("report")
                                                                                : write_outputs(&r, write_longctx, md, data);
        fidrep_free(&r.rows);
        return rc;
    }
    static recall_table t;
    return recall_table_load(csv, &t) ? cli_report("report") : write_outputs(&t, write_recall, md, data);
}

/* report all: every suite report whose CSV is in dir, then REPORT.md. */
static int run_all(const char *dir, const char *md)
{
    for (int i = 0; i < N_REPORTS; i++) {
        char csv[1100], out[1100], data[1100], speed[1100], evals[1100];
        snprintf(csv, sizeof csv, "%s/%s", dir, reports[i].csv);
        if (access(csv, R_OK) != 0)
            continue;
        snprintf(out, sizeof out, "%s/%s", dir, reports[i].md);
        snprintf(data, sizeof data, "%s/%s", dir, reports[i].data);
        snprintf(speed, sizeof speed, "%s/lra_speed.csv", dir), snprintf(evals, sizeof evals, "%s/niah.csv", dir);
        int rc = run_report(i, csv, out, data, speed, evals);
        if (rc)
            return rc;
    }
    if (report_all_write(dir, md))
        return cli_report("report");
    if (md)
        printf("%s\n", md);
    else
        printf("%s/REPORT.md\n", dir);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"csv", 1, 0, 'c'},     {"md", 1, 0, 'm'},    {"data", 1, 0, 'b'},
                                         {"bubbles", 1, 0, 'b'}, {"speed", 1, 0, 's'}, {"evals", 1, 0, 'e'},
                                         {"results", 1, 0, 'r'}, {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    const char *speed = "results/lra_speed.csv", *evals = "results/niah.csv", *dir = "results";
    int all = argc > 1 && !strcmp(argv[1], "all"), which = -1;
    for (int i = 0; argc > 1 && i < N_REPORTS; i++)
        if (!strcmp(argv[1], reports[i].name))
            which = i;
    static char csv_d[64], md_d[64], data_d[64];
    const char *csv = "", *md = "", *data = "";
    int c, md_given = 0, data_given = 0;
    if (all)
        argc--, argv++;
    else if (which >= 0) { /* the report's name comes first, options after it */
        snprintf(csv_d, sizeof csv_d, "results/%s", reports[which].csv);
        snprintf(md_d, sizeof md_d, "results/%s", reports[which].md);
        snprintf(data_d, sizeof data_d, "results/%s", reports[which].data);
        csv = csv_d, md = md_d, data = data_d;
        argc--, argv++;
    } else if (argc < 2 || (strcmp(argv[1], "--help") && strcmp(argv[1], "-h"))) {
        attn_fail(ATTN_EINVAL, "expected 'all', 'lra', 'recall', 'fidelity' or 'longctx', found %s%s%s",
                  argc < 2 ? "nothing" : "'", argc < 2 ? "" : argv[1], argc < 2 ? "" : "'");
        return cli_usage_error("report", attn_last_error());
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'c')
            csv = optarg;
        else if (c == 'm')
            md = optarg, md_given = 1;
        else if (c == 'b')
            data = optarg, data_given = 1;
        else if (c == 's' && which == 0)
            speed = optarg;
        else if (c == 'e' && which == 3)
            evals = optarg;
        else if (c == 'r' && all)
            dir = optarg;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_unknown_option("report", argc, argv);
    }
    if (optind != argc)
        return cli_usage_error("report", "unexpected argument after the options");
    if (all)
        return (csv[0] || data_given) ? cli_usage_error("report", "report all takes --results DIR and --md FILE only")
                                      : run_all(dir, md_given ? md : NULL);
    static char beside_md[1100];
    if (md_given && !data_given) { /* --md elsewhere must not need a results/ directory for the data */
        const char *slash = strrchr(md, '/'), *name = strrchr(data, '/') + 1;
        snprintf(beside_md, sizeof beside_md, "%.*s%s", slash ? (int)(slash - md + 1) : 0, md, name);
        data = beside_md;
    }
    return run_report(which, csv, md, data, speed, evals);
}
