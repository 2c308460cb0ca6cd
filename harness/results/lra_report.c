/* results/LRA.md from results/lra.csv: tasks as columns, kernels as
 * rows, the average over the five LRA tasks (Path-X excluded, as the paper),
 * and the published LRA Table 1 rows of the same models beside them. Every
 * cell names its data source when it is not official: stand-in numbers are
 * never comparable with the published ones. A (kernel, task) cell keeps
 * the runs of each setting apart (a 200-step and a 400-step run are not
 * averaged) and shows one setting, saying which (pick()); every setting is
 * listed under the table. Also writes the bubble-chart data (steps/s
 * relative to flash, average accuracy, peak RSS) of the shown settings. */
#include "lra_report.h"

#include "csvw.h"
#include "common/attn_error.h"
#include "tasks/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tasks[LRA_TASKS] = {"listops", "text", "retrieval", "image", "pathfinder", "pathx"};

/* LRA Table 1 (Tay et al., ICLR 2021; repo leaderboard of 8 Nov 2020), NAN =
 * FAIL, by the table row (kernel, or kernel+mask kind) that stands for each
 * model (docs/tasks.md "The LRA table"). */
static const struct {
    const char *row, *model;
    double acc[LRA_TASKS], avg;
} published[] = {
    {"flash", "Transformer", {36.37, 64.27, 57.46, 42.44, 71.40, NAN}, 54.39},
    {"flash+block", "Local Attention", {15.82, 52.98, 53.39, 41.46, 66.63, NAN}, 46.06},
    {"flash+fixed", "Sparse Trans.", {17.07, 63.58, 59.59, 44.24, 71.71, NAN}, 51.24},
    {"flash+global", "Longformer", {35.63, 62.85, 56.89, 42.22, 69.71, NAN}, 53.46},
    {"linformer", "Linformer", {35.70, 53.94, 52.27, 38.56, 76.34, NAN}, 51.36},
    {"reformer", "Reformer", {37.27, 56.10, 53.40, 38.07, 68.50, NAN}, 50.67},
    {"sinkhorn", "Sinkhorn Trans.", {33.67, 61.20, 53.83, 41.23, 67.45, NAN}, 51.29},
    {"synthesizer", "Synthesizer", {36.99, 61.68, 54.67, 41.61, 69.45, NAN}, 52.88},
    {"flash+bigbird", "BigBird", {36.05, 64.02, 59.29, 40.83, 74.87, NAN}, 55.01},
    {"linear", "Linear Trans.", {16.13, 65.90, 53.09, 42.34, 75.30, NAN}, 50.55},
    {"performer", "Performer", {18.01, 65.40, 53.82, 42.77, 77.05, NAN}, 51.41},
};

void lra_row_label(const char *kernel, const char *mask, char *out, size_t n)
{
    size_t kind = strcspn(mask, ":");
    if (!mask[0] || !strcmp(mask, "full") || !strcmp(mask, "causal"))
        snprintf(out, n, "%.63s", kernel);
    else
        snprintf(out, n, "%.63s+%.*s", kernel, (int)(kind < 64 ? kind : 64), mask);
}

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

/* The params of a row without the keys that differ between the evaluations
 * of one run (step, split) or between its test rows (best_step, weights):
 * what remains (task parameters, lr, wd, steps, n) is the run's setting.
 * *steps: the steps= value (0 if absent). */
static void setting_params(const char *params, char *out, size_t n, int64_t *steps)
{
    static const char *const per_eval[] = {"step=", "split=", "best_step=", "weights=", NULL};
    char buf[ATTN_CELL_MAX], *save = NULL;
    snprintf(buf, sizeof buf, "%s", params);
    out[0] = '\0';
    *steps = 0;
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        int skip = 0;
        for (int i = 0; per_eval[i] && !skip; i++)
            skip = !strncmp(kv, per_eval[i], strlen(per_eval[i]));
        if (!strncmp(kv, "steps=", 6))
            *steps = strtoll(kv + 6, NULL, 10);
        if (!skip)
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ";" : "", kv);
    }
}

static lra_setting *setting_of(lra_cell *c, const csvw_row *r)
{
    char params[ATTN_CELL_MAX];
    int64_t steps, batch = strtoll(r->cell[ATTN_COL_B], NULL, 10);
    setting_params(r->cell[ATTN_COL_PARAMS], params, sizeof params, &steps);
    for (int i = 0; i < c->n; i++) {
        lra_setting *s = &c->set[i];
        if (s->batch == batch && !strcmp(s->params, params) && !strcmp(s->model, r->cell[ATTN_COL_MODEL]) &&
            !strcmp(s->source, r->cell[ATTN_COL_DATA_SOURCE]) && !strcmp(s->mask, r->cell[ATTN_COL_MASK]))
            return s;
    }
    if (c->n == LRA_MAX_SETTINGS)
        return NULL;
    lra_setting *s = &c->set[c->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->params, params, sizeof params);
    memcpy(s->model, r->cell[ATTN_COL_MODEL], sizeof s->model);
    memcpy(s->source, r->cell[ATTN_COL_DATA_SOURCE], sizeof s->source);
    memcpy(s->mask, r->cell[ATTN_COL_MASK], sizeof s->mask);
    s->batch = batch, s->steps = steps;
    return s;
}

static int add_row(const csvw_row *r, void *ud)
{
    lra_table *t = ud;
    int task = task_index(r->cell[ATTN_COL_TASK]);
    const char *params = r->cell[ATTN_COL_PARAMS];
    int test = strstr(params, "split=test") && !strstr(params, "split=test-"), valid = strstr(params, "split=valid") != NULL;
    if (task < 0 || strcmp(r->cell[ATTN_COL_STATUS], "ok") || strcmp(r->cell[ATTN_COL_METRIC], "accuracy") ||
        !(test || valid))
        return 0; /* reloads and extrapolations are not runs */
    char label[192];
    lra_row_label(r->cell[ATTN_COL_KERNEL], r->cell[ATTN_COL_MASK], label, sizeof label);
    t->runs++;
    snprintf(t->cpu, sizeof t->cpu, "%.127s", r->cell[ATTN_COL_CPU]);
    snprintf(t->threads, sizeof t->threads, "%.15s", r->cell[ATTN_COL_THREADS]);
    lra_cell *c = cell_of(t, label, task);
    lra_setting *s = c ? setting_of(c, r) : NULL;
    if (!s)
        return t->dropped++, 0;
    if (test) {
        s->acc_sum += strtod(r->cell[ATTN_COL_VALUE], NULL), s->runs++;
        double rss = strtod(r->cell[ATTN_COL_PEAK_RSS_BYTES], NULL);
        s->peak_rss = rss > s->peak_rss ? rss : s->peak_rss;
    } else { /* the last evaluation row has the run's step time */
        double ms = strtod(r->cell[ATTN_COL_TIME_MS_MEDIAN], NULL);
        if (ms > 0)
            s->step_ms = ms;
    }
    return 0;
}

static double set_acc(const lra_setting *s) { return s->runs ? 100 * s->acc_sum / s->runs : NAN; }

/* The setting a cell shows: the largest budget (steps x batch examples) with
 * a test row, then the best mean test accuracy (best of the grid, as
 * `report recall`), then the first in the file. */
static int pick(const lra_cell *c)
{
    int best = -1;
    for (int i = 0; i < c->n; i++) {
        const lra_setting *s = &c->set[i], *b = best >= 0 ? &c->set[best] : NULL;
        if (!s->runs)
            continue;
        double budget = (double)s->steps * (double)s->batch, bb = b ? (double)b->steps * (double)b->batch : -1;
        if (!b || budget > bb || (budget == bb && set_acc(s) > set_acc(b)))
            best = i;
    }
    return best;
}

int lra_table_load(const char *path, lra_table *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->csv, sizeof t->csv, "%s", path);
    int rc = csvw_read_rows(path, add_row, t);
    if (rc >= 0 && !t->runs)
        return attn_fail(ATTN_EINVAL, "%s: expected LRA training rows (metric accuracy, split=valid or test, "
                         "status ok), found none in %d rows", path, rc);
    for (int k = 0; k < t->n_kernels; k++)
        for (int i = 0; i < LRA_TASKS; i++)
            t->cell[k][i].shown = pick(&t->cell[k][i]);
    return rc < 0 ? rc : 0;
}

static const lra_setting *shown(const lra_cell *c) { return c->shown >= 0 ? &c->set[c->shown] : NULL; }

static double mean_acc(const lra_cell *c) { return shown(c) ? set_acc(shown(c)) : NAN; }

/* The task parameters a setting was trained with ("difficulty=easy"): the
 * leading key=value items of its params that are rows of the task's table.
 * A headline cell must say when it is not the task's reference setting. */
static void task_settings(const char *task, const char *params, char *out, size_t n)
{
    const task_def *def = task_find(task);
    attn_clear_error(); /* an unknown task only means: nothing to name */
    out[0] = '\0';
    for (const char *p = params; def && *p;) {
        size_t len = strcspn(p, ";"), key = strcspn(p, "=");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(key < len ? key : len), p);
        if (key < len && def->params && opt_find(def->params, name))
            snprintf(out + strlen(out), n - strlen(out), "%.*s; ", (int)len, p);
        p += len + (p[len] == ';');
    }
}

/* "36.40 (generated; 600 steps × 32)", with the task parameters given
 * ("60.05 (generated; difficulty=easy; 2000 steps × 64)") and "; 1 of 2
 * settings" when the cell has others. */
static void cell_text(const lra_cell *c, const char *task, FILE *f)
{
    const lra_setting *s = shown(c);
    int official = !strcmp(s->source, "official"), tested = 0;
    for (int i = 0; i < c->n; i++)
        tested += c->set[i].runs > 0;
    char given[ATTN_CELL_MAX];
    task_settings(task, s->params, given, sizeof given);
    fprintf(f, " %.2f (%s%s%s%lld steps × %lld", set_acc(s), official ? "" : s->source, official ? "" : "; ", given,
            (long long)s->steps, (long long)s->batch);
    if (tested > 1)
        fprintf(f, "; 1 of %d settings", tested);
    fprintf(f, ") |");
}

/* Every setting with a test row, the shown one marked. */
static void settings_list(const lra_table *t, FILE *f)
{
    fprintf(f, "\n## Every setting\n\n"
               "| model | task | setting | steps × batch | runs | test accuracy | shown |\n"
               "|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < t->n_kernels; k++)
        for (int i = 0; i < LRA_TASKS; i++)
            for (int j = 0; j < t->cell[k][i].n; j++) {
                const lra_setting *s = &t->cell[k][i].set[j];
                if (s->runs)
                    fprintf(f, "| `%s` | %s | %s %s%s%s%s (%s) | %lld × %lld | %d | %.2f | %s |\n", t->kernel[k],
                            tasks[i], s->model, strchr(s->mask, ':') ? "mask=" : "", strchr(s->mask, ':') ? s->mask : "",
                            strchr(s->mask, ':') ? " " : "", s->params, s->source, (long long)s->steps, (long long)s->batch, s->runs,
                            set_acc(s), j == t->cell[k][i].shown ? "yes" : "");
            }
    if (t->dropped)
        fprintf(f, "\n%d rows did not fit the table (more than %d kernels or %d settings per cell).\n", t->dropped,
                LRA_MAX_KERNELS, LRA_MAX_SETTINGS);
}

/* The published row a table row stands for, or -1. */
static int published_of(const char *row)
{
    for (size_t p = 0; p < sizeof published / sizeof *published; p++)
        if (!strcmp(published[p].row, row))
            return (int)p;
    return -1;
}

const char *lra_published_model(const char *row)
{
    int p = published_of(row);
    return p >= 0 ? published[p].model : NULL;
}

/* Average over the five tasks of row k, NAN unless all five have a shown setting. */
static double row_avg(const lra_table *t, int k)
{
    double sum = 0;
    for (int i = 0; i < 5; i++) {
        if (!shown(&t->cell[k][i]))
            return NAN;
        sum += mean_acc(&t->cell[k][i]);
    }
    return sum / 5;
}

/* Rank (1 = best) of v among the values of `all` (n of them, NAN skipped). */
static int rank_of(double v, const double *all, int n)
{
    int r = 1;
    for (int i = 0; i < n; i++)
        r += !isnan(all[i]) && all[i] > v;
    return r;
}

/* Where the ranking differs from the paper's: the rows with all five tasks
 * and a published counterpart, ranked by average among themselves both ways. */
static void ranking(const lra_table *t, FILE *f)
{
    double ours[LRA_MAX_KERNELS], theirs[LRA_MAX_KERNELS];
    int n = 0, rows[LRA_MAX_KERNELS];
    for (int k = 0; k < t->n_kernels; k++) {
        int p = published_of(t->kernel[k]);
        double avg = row_avg(t, k);
        if (p < 0 || isnan(avg))
            continue;
        rows[n] = k, ours[n] = avg, theirs[n] = published[p].avg, n++;
    }
    if (n < 2)
        return;
    fprintf(f, "\n## Ranking against the paper's\n\n"
               "The rows above with all five tasks and a published counterpart, ranked by their average "
               "among themselves, here and in the paper. A different place is expected where budgets and data "
               "differ: each cell above names its steps × batch (the paper trains for thousands of steps at "
               "batch 32 or more on the official data) and its data source (stand-ins and generated data are "
               "other tasks than the paper's).\n\n"
               "| model | attnbench avg | rank | published avg | rank | |\n|---|---|---|---|---|---|\n");
    int moved = 0;
    for (int i = 0; i < n; i++) {
        int ra = rank_of(ours[i], ours, n), rp = rank_of(theirs[i], theirs, n);
        moved += ra != rp;
        fprintf(f, "| `%s` (%s) | %.2f | %d | %.2f | %d | %s |\n", t->kernel[rows[i]],
                published[published_of(t->kernel[rows[i]])].model, ours[i], ra, theirs[i], rp,
                ra == rp ? "same place" : ra < rp ? "higher here" : "lower here");
    }
    fprintf(f, "\n%d of %d models rank differently than in the paper.\n", moved, n);
}

void lra_table_markdown(const lra_table *t, FILE *f)
{
    fprintf(f, "# Long Range Arena: attnbench results beside the published table\n\n"
               "Test accuracy (%%), mean over the seeds of one setting in %s; Avg over the five "
               "tasks without Path-X (as the LRA paper). Runs of different settings (model, batch, learning "
               "rate, steps, task parameters or data source) are never averaged together: when a cell has "
               "several, it shows the one with the largest training budget (steps × batch), among equal "
               "budgets the best mean test accuracy (best of the grid, as `report recall`), and says so; every "
               "setting is listed below the table. Each cell names its budget and, unless `official`, its data "
               "source: stand-in or generated data is **not comparable** with the published numbers. Published "
               "rows: Tay et al., \"Long Range Arena: A Benchmark for Efficient Transformers\", ICLR 2021, "
               "Table 1 (FAIL = chance on Path-X).\n\n"
               "| model | ListOps | Text | Retrieval | Image | Pathfinder | Path-X | Avg |\n"
               "|---|---|---|---|---|---|---|---|\n", t->csv);
    for (int k = 0; k < t->n_kernels; k++) {
        fprintf(f, "| attnbench `%s` |", t->kernel[k]);
        double sum = 0;
        int n = 0;
        for (int i = 0; i < LRA_TASKS; i++) {
            const lra_cell *c = &t->cell[k][i];
            if (!shown(c)) {
                fprintf(f, " — |");
                continue;
            }
            cell_text(c, tasks[i], f);
            if (i < 5)
                sum += mean_acc(c), n++;
        }
        if (n == 5)
            fprintf(f, " %.2f |\n", sum / 5);
        else
            fprintf(f, " — (%d of 5 tasks) |\n", n);
        for (size_t p = 0; p < sizeof published / sizeof *published; p++) {
            if (strcmp(published[p].row, t->kernel[k]))
                continue;
            fprintf(f, "| *published: %s* |", published[p].model);
            for (int i = 0; i < LRA_TASKS; i++)
                isnan(published[p].acc[i]) ? fprintf(f, " *FAIL* |") : fprintf(f, " *%.2f* |", published[p].acc[i]);
            fprintf(f, " *%.2f* |\n", published[p].avg);
        }
    }
    ranking(t, f);
    settings_list(t, f);
}

int lra_table_bubbles(const lra_table *t, const lra_speed *speed, FILE *f)
{
    int ref = -1;
    for (int k = 0; k < t->n_kernels; k++)
        if (!strcmp(t->kernel[k], "flash"))
            ref = k;
    /* a comment line plots/plot.sh passes to the chart's title: the machine of the rates */
    int from_speed = speed && speed->n;
    fprintf(f, "# machine: %s, %s threads\n", from_speed ? speed->cpu : t->cpu, from_speed ? speed->threads : t->threads);
    fprintf(f, "kernel,steps_per_s_rel,avg_accuracy,peak_rss_mib,tasks,speed_at_N\n");
    for (int k = 0; k < t->n_kernels; k++) {
        double rel = 0, acc = 0, rss = 0;
        int n = 0, nrel = 0;
        for (int i = 0; i < 5; i++) {
            const lra_setting *c = shown(&t->cell[k][i]), *r = ref >= 0 ? shown(&t->cell[ref][i]) : NULL;
            if (!c)
                continue;
            acc += set_acc(c), rss = c->peak_rss > rss ? c->peak_rss : rss, n++;
            if (r && r->step_ms > 0 && c->step_ms > 0)
                rel += r->step_ms / c->step_ms, nrel++;
        }
        if (!n)
            continue;
        rel = nrel ? rel / nrel : NAN;
        int64_t at = 0;
        if (from_speed && !lra_speed_at_longest(speed, t->kernel[k], &rel, &rss, &at))
            rel = rss = NAN;
        fprintf(f, "%s,%.4f,%.3f,%.1f,%d,%lld\n", t->kernel[k], rel, acc / n, rss / 1048576.0, n, (long long)at);
    }
    return 0;
}
