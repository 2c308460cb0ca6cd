/* attnbench report lra|recall|fidelity|longctx: summary tables (Markdown) and plot data. */
#include "cli.h"
#include "harness/results/fidelity_report.h"
#include "harness/results/lra_report.h"
#include "harness/results/longctx_evals.h"
#include "harness/results/longctx_report.h"
#include "harness/results/lra_speed.h"
#include "harness/results/recall_report.h"

#include "common/attn_error.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: attnbench report lra [--csv FILE] [--md FILE] [--data FILE] [--speed FILE]\n"
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
    "With --md and no --data, the data file goes beside --md under its default name.\n";

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

/* Closes f, which held path's new content as tmp: 0 when every byte got
 * there (a full disk or a quota shows as a write error here). */
static int close_written(FILE *f, const char *path, const char *tmp)
{
    int bad = ferror(f), e = errno;
    if (fclose(f) != 0 && !bad)
        bad = 1, e = errno;
    if (bad)
        attn_fail(ATTN_EIO, "%s: cannot write %s: %s", path, tmp, strerror(e));
    return bad;
}

/* Both outputs go to temporaries renamed over the old files only once both
 * are written whole: a report that cannot be written leaves the previous
 * one as it was. */
static int write_outputs(const void *table, report_writer w, const char *md, const char *data)
{
    char tmp[2][1200];
    const char *path[2] = {md, data};
    FILE *f[2] = {NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        snprintf(tmp[i], sizeof tmp[i], "%s.tmp", path[i]);
        if (!(f[i] = fopen(tmp[i], "w")))
            rc = attn_fail(ATTN_EIO, "%s: cannot open %s for writing: %s", path[i], tmp[i], strerror(errno));
    }
    if (!rc)
        w(table, f[0], f[1]);
    for (int i = 0; i < 2; i++)
        if (f[i] && close_written(f[i], path[i], tmp[i]) && !rc)
            rc = ATTN_EIO;
    for (int i = 0; i < 2 && !rc; i++)
        if (rename(tmp[i], path[i]) != 0)
            rc = attn_fail(ATTN_EIO, "%s: cannot replace it with %s: %s", path[i], tmp[i], strerror(errno));
    for (int i = 0; i < 2 && rc; i++)
        if (f[i])
            unlink(tmp[i]);
    if (rc)
        return cli_report("report");
    printf("%s\n%s\n", md, data);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"csv", 1, 0, 'c'},     {"md", 1, 0, 'm'},   {"data", 1, 0, 'b'},
                                         {"bubbles", 1, 0, 'b'}, {"speed", 1, 0, 's'}, {"evals", 1, 0, 'e'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *speed = "results/lra_speed.csv", *evals = "results/niah.csv";
    /* Each report's name and its default input and outputs. */
    static const struct {
        const char *name, *csv, *md, *data;
    } reports[] = {{"lra", "results/lra.csv", "results/LRA.md", "results/lra_bubbles.csv"},
                   {"recall", "results/recall.csv", "results/RECALL.md", "results/recall_best.csv"},
                   {"fidelity", "results/fidelity.csv", "results/FIDELITY.md", "results/fidelity_pareto.csv"},
                   {"longctx", "results/longctx.csv", "results/LONGCTX.md", "results/longctx_points.csv"}};
    int which = -1;
    for (int i = 0; argc > 1 && i < 4; i++)
        if (!strcmp(argv[1], reports[i].name))
            which = i;
    const char *csv = "", *md = "", *data = "";
    int c, md_given = 0, data_given = 0;
    if (which >= 0) { /* the report's name comes first, options after it */
        csv = reports[which].csv, md = reports[which].md, data = reports[which].data;
        argc--, argv++;
    } else if (argc < 2 || (strcmp(argv[1], "--help") && strcmp(argv[1], "-h"))) {
        attn_fail(ATTN_EINVAL, "expected 'lra', 'recall', 'fidelity' or 'longctx', found %s%s%s", argc < 2 ? "nothing" : "'",
                  argc < 2 ? "" : argv[1], argc < 2 ? "" : "'");
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
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_unknown_option("report", argc, argv);
    }
    if (optind != argc)
        return cli_usage_error("report", "unexpected argument after the options");
    static char beside_md[1100];
    if (md_given && !data_given) { /* --md elsewhere must not need a results/ directory for the data */
        const char *slash = strrchr(md, '/'), *name = strrchr(data, '/') + 1;
        snprintf(beside_md, sizeof beside_md, "%.*s%s", slash ? (int)(slash - md + 1) : 0, md, name);
        data = beside_md;
    }
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
