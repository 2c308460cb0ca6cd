/* results/LRA.md from results/lra.csv (issue 8): tasks as columns, kernels as
 * rows, the average over the five LRA tasks (Path-X excluded, as the paper),
 * and the published LRA Table 1 rows of the same models beside them. Every
 * cell names its data source when it is not official: stand-in numbers are
 * never comparable with the published ones. Also writes the bubble-chart
 * data (training steps/s relative to flash, average accuracy, peak RSS). */
#include "lra_report.h"

#include "csvw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tasks[LRA_TASKS] = {"listops", "text", "retrieval", "image", "pathfinder", "pathx"};

/* LRA Table 1 (Tay et al., ICLR 2021; repo leaderboard of 8 Nov 2020), NAN = FAIL. */
static const struct {
    const char *kernel, *model;
    double acc[LRA_TASKS], avg;
} published[] = {
    {"flash", "Transformer", {36.37, 64.27, 57.46, 42.44, 71.40, NAN}, 54.39},
    {"linear", "Linear Trans.", {16.13, 65.90, 53.09, 42.34, 75.30, NAN}, 50.55},
};

static int task_index(const char *t)
{
    for (int i = 0; i < LRA_TASKS; i++)
        if (!strcmp(t, tasks[i]))
            return i;
    return -1;
}

static lra_cell *cell_of(lra_table *t, const char *kernel, int task)
{
    for (int k = 0; k < t->n_kernels; k++)
        if (!strcmp(t->kernel[k], kernel))
            return &t->cell[k][task];
    if (t->n_kernels == LRA_MAX_KERNELS)
        return NULL;
    snprintf(t->kernel[t->n_kernels], sizeof t->kernel[0], "%s", kernel);
    return &t->cell[t->n_kernels++][task];
}

static int add_row(const attn_row *r, void *ud)
{
    lra_table *t = ud;
    int task = task_index(r->cell[ATTN_COL_TASK]);
    if (task < 0 || strcmp(r->cell[ATTN_COL_STATUS], "ok") || strcmp(r->cell[ATTN_COL_METRIC], "accuracy"))
        return 0;
    lra_cell *c = cell_of(t, r->cell[ATTN_COL_KERNEL], task);
    if (!c)
        return 0;
    const char *params = r->cell[ATTN_COL_PARAMS];
    if (strstr(params, "split=test") && !strstr(params, "split=test-reload")) {
        c->acc_sum += strtod(r->cell[ATTN_COL_VALUE], NULL), c->runs++;
        snprintf(c->source, sizeof c->source, "%s", r->cell[ATTN_COL_DATA_SOURCE]);
        double rss = strtod(r->cell[ATTN_COL_PEAK_RSS_BYTES], NULL);
        c->peak_rss = rss > c->peak_rss ? rss : c->peak_rss;
    } else if (strstr(params, "split=valid")) { /* the last evaluation row has the run's step time */
        double ms = strtod(r->cell[ATTN_COL_TIME_MS_MEDIAN], NULL);
        if (ms > 0)
            c->step_ms = ms;
    }
    return 0;
}

int lra_table_load(const char *path, lra_table *t)
{
    memset(t, 0, sizeof *t);
    int rc = csvw_read_rows(path, add_row, t);
    return rc < 0 ? rc : 0;
}

static double mean_acc(const lra_cell *c) { return c->runs ? 100 * c->acc_sum / c->runs : NAN; }

void lra_table_markdown(const lra_table *t, FILE *f)
{
    fprintf(f, "# Long Range Arena: attnbench results beside the published table\n\n"
               "Test accuracy (%%), mean over the runs in results/lra.csv; Avg over the five tasks without "
               "Path-X (as the LRA paper). A cell marked with its data source ran on a stand-in or generated "
               "data and is **not comparable** with the published numbers; `official` cells used the "
               "original files. Published rows: Tay et al., \"Long Range Arena: A Benchmark for Efficient "
               "Transformers\", ICLR 2021, Table 1 (FAIL = chance on Path-X).\n\n"
               "| model | ListOps | Text | Retrieval | Image | Pathfinder | Path-X | Avg |\n"
               "|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < t->n_kernels; k++) {
        fprintf(f, "| attnbench `%s` |", t->kernel[k]);
        double sum = 0;
        int n = 0;
        for (int i = 0; i < LRA_TASKS; i++) {
            const lra_cell *c = &t->cell[k][i];
            double a = mean_acc(c);
            if (isnan(a)) {
                fprintf(f, " — |");
                continue;
            }
            fprintf(f, " %.2f%s%s%s |", a, strcmp(c->source, "official") ? " (" : "",
                    strcmp(c->source, "official") ? c->source : "", strcmp(c->source, "official") ? ")" : "");
            if (i < 5)
                sum += a, n++;
        }
        if (n == 5)
            fprintf(f, " %.2f |\n", sum / 5);
        else
            fprintf(f, " — (%d of 5 tasks) |\n", n);
        for (size_t p = 0; p < sizeof published / sizeof *published; p++) {
            if (strcmp(published[p].kernel, t->kernel[k]))
                continue;
            fprintf(f, "| *published: %s* |", published[p].model);
            for (int i = 0; i < LRA_TASKS; i++)
                isnan(published[p].acc[i]) ? fprintf(f, " *FAIL* |") : fprintf(f, " *%.2f* |", published[p].acc[i]);
            fprintf(f, " *%.2f* |\n", published[p].avg);
        }
    }
}

int lra_table_bubbles(const lra_table *t, FILE *f)
{
    int ref = -1;
    for (int k = 0; k < t->n_kernels; k++)
        if (!strcmp(t->kernel[k], "flash"))
            ref = k;
    fprintf(f, "kernel,steps_per_s_rel,avg_accuracy,peak_rss_mib,tasks\n");
    for (int k = 0; k < t->n_kernels; k++) {
        double rel = 0, acc = 0, rss = 0;
        int n = 0, nrel = 0;
        for (int i = 0; i < 5; i++) {
            const lra_cell *c = &t->cell[k][i], *r = ref >= 0 ? &t->cell[ref][i] : NULL;
            if (!c->runs)
                continue;
            acc += mean_acc(c), rss = c->peak_rss > rss ? c->peak_rss : rss, n++;
            if (r && r->step_ms > 0 && c->step_ms > 0)
                rel += r->step_ms / c->step_ms, nrel++;
        }
        if (!n)
            continue;
        fprintf(f, "%s,%.4f,%.3f,%.1f,%d\n", t->kernel[k], nrel ? rel / nrel : NAN, acc / n, rss / 1048576.0, n);
    }
    return 0;
}
