#include "recall_report.h"

#include "common/attn_error.h"

#include "csvw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row parameters that vary inside one cell (optimiser settings, run
 * bookkeeping); everything else in `params` is a task parameter and part of
 * the cell's setting. */
static int is_run_param(const char *kv)
{
    static const char *const run[] = {"lr=", "wd=", "steps=", "n=", "step=", "split=", "best_step=", "weights=", NULL};
    for (int i = 0; run[i]; i++)
        if (!strncmp(kv, run[i], strlen(run[i])))
            return 1;
    return 0;
}

/* setting = the task parameters of `params`; *lr from "lr=". */
static void split_params(const char *params, char *setting, size_t n, double *lr)
{
    char buf[ATTN_CELL_MAX], *save = NULL;
    snprintf(buf, sizeof buf, "%s", params);
    setting[0] = '\0';
    *lr = NAN;
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        if (!strncmp(kv, "lr=", 3))
            *lr = strtod(kv + 3, NULL);
        if (is_run_param(kv))
            continue;
        snprintf(setting + strlen(setting), n - strlen(setting), "%s%s", setting[0] ? ";" : "", kv);
    }
}

/* The model's width from its description "lm(L=2,d=64,...)"; 0 if absent. */
static int width_of(const char *model)
{
    const char *d = strstr(model, ",d=");
    return d ? atoi(d + 3) : 0;
}

static recall_cell *cell_of(recall_table *t, const csvw_row *r, const char *setting)
{
    const char *task = r->cell[ATTN_COL_TASK], *kernel = r->cell[ATTN_COL_KERNEL], *model = r->cell[ATTN_COL_MODEL];
    for (int i = 0; i < t->n; i++) {
        recall_cell *c = &t->cell[i];
        if (!strcmp(c->task, task) && !strcmp(c->kernel, kernel) && !strcmp(c->model, model) &&
            !strcmp(c->setting, setting))
            return c;
    }
    if (t->n == RECALL_MAX_CELLS)
        return NULL;
    recall_cell *c = &t->cell[t->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->task, sizeof c->task, "%.*s", (int)sizeof c->task - 1, task);
    snprintf(c->kernel, sizeof c->kernel, "%.*s", (int)sizeof c->kernel - 1, kernel);
    snprintf(c->model, sizeof c->model, "%.*s", (int)sizeof c->model - 1, model);
    snprintf(c->setting, sizeof c->setting, "%s", setting);
    c->d_model = width_of(model);
    c->state_bytes = NAN;
    return c;
}

static int add_row(const csvw_row *r, void *ud)
{
    recall_table *t = ud;
    const char *params = r->cell[ATTN_COL_PARAMS];
    /* the final test row of a training; evaluations at other lengths or
     * depths (eval_len=, depth=) and checkpoint reloads are not grid results */
    if (strcmp(r->cell[ATTN_COL_STATUS], "ok") || strcmp(r->cell[ATTN_COL_METRIC], "accuracy") ||
        !strstr(params, "split=test") || strstr(params, "split=test-") || strstr(params, "eval_len=") ||
        strstr(params, "depth="))
        return 0;
    char setting[160];
    double lr;
    split_params(params, setting, sizeof setting, &lr);
    recall_cell *c = cell_of(t, r, setting);
    if (!c)
        return t->dropped++, 0;
    int i = 0;
    while (i < c->n_lr && c->lr[i] != lr && !(isnan(lr) && isnan(c->lr[i])))
        i++;
    if (i == RECALL_MAX_LRS)
        return t->dropped++, 0;
    if (i == c->n_lr)
        c->lr[c->n_lr++] = lr;
    c->acc_sum[i] += strtod(r->cell[ATTN_COL_VALUE], NULL);
    c->lo_sum[i] += strtod(r->cell[ATTN_COL_CI_LOW], NULL);
    c->hi_sum[i] += strtod(r->cell[ATTN_COL_CI_HIGH], NULL);
    c->runs[i]++;
    char *end;
    double sb = strtod(r->cell[ATTN_COL_STATE_BYTES], &end);
    if (end != r->cell[ATTN_COL_STATE_BYTES])
        c->state_bytes = sb;
    snprintf(c->source, sizeof c->source, "%.*s", (int)sizeof c->source - 1, r->cell[ATTN_COL_DATA_SOURCE]);
    return 0;
}

int recall_table_load(const char *path, recall_table *t)
{
    memset(t, 0, sizeof *t);
    int rc = csvw_read_rows(path, add_row, t);
    if (rc >= 0 && !t->n) /* an empty table would pass for a grid that trained nothing */
        return attn_fail(ATTN_EINVAL, "%s: expected final test rows of trainings (metric accuracy, split=test, "
                         "status ok), found none in %d rows", path, rc);
    return rc < 0 ? rc : 0;
}

int recall_best_lr(const recall_cell *c)
{
    int best = -1;
    for (int i = 0; i < c->n_lr; i++)
        if (c->runs[i] && (best < 0 || c->acc_sum[i] / c->runs[i] > c->acc_sum[best] / c->runs[best]))
            best = i;
    return best;
}

void recall_table_csv(const recall_table *t, FILE *f)
{
    fprintf(f, "task,setting,kernel,model,d_model,best_lr,accuracy,ci_low,ci_high,seeds,lrs_tried,state_bytes,"
               "data_source\n");
    for (int i = 0; i < t->n; i++) {
        const recall_cell *c = &t->cell[i];
        int b = recall_best_lr(c);
        if (b < 0)
            continue;
        double n = c->runs[b];
        fprintf(f, "%s,\"%s\",%s,\"%s\",%d,%g,%.6f,%.6f,%.6f,%d,%d,", c->task, c->setting, c->kernel, c->model,
                c->d_model, c->lr[b], c->acc_sum[b] / n, c->lo_sum[b] / n, c->hi_sum[b] / n, c->runs[b], c->n_lr);
        isnan(c->state_bytes) ? fprintf(f, "NA") : fprintf(f, "%.0f", c->state_bytes);
        fprintf(f, ",%s\n", c->source);
    }
}

/* The model description without its width ("lm(L=2,H=1,...)"): the row label. */
static void model_sans_width(const char *model, char *out, size_t n)
{
    const char *d = strstr(model, ",d=");
    if (!d) {
        snprintf(out, n, "%s", model);
        return;
    }
    const char *rest = strpbrk(d + 1, ",)");
    snprintf(out, n, "%.*s%s", (int)(d - model), model, rest ? rest : "");
}

static int int_cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* One table: the cells of (task, setting). */
static void setting_table(const recall_table *t, const recall_cell *first, FILE *f)
{
    int widths[32], nw = 0;
    for (int i = 0; i < t->n; i++) {
        const recall_cell *c = &t->cell[i];
        if (strcmp(c->task, first->task) || strcmp(c->setting, first->setting))
            continue;
        int seen = 0;
        for (int w = 0; w < nw; w++)
            seen |= widths[w] == c->d_model;
        if (!seen && nw < 32)
            widths[nw++] = c->d_model;
    }
    qsort(widths, (size_t)nw, sizeof *widths, int_cmp);
    fprintf(f, "\n## %s, %s (%s)\n\n| kernel | model |", first->task, first->setting[0] ? first->setting : "defaults",
            first->source);
    for (int w = 0; w < nw; w++)
        fprintf(f, " d_model %d |", widths[w]);
    fprintf(f, "\n|---|---|");
    for (int w = 0; w < nw; w++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    char done[RECALL_MAX_CELLS] = {0};
    for (int i = 0; i < t->n; i++) {
        const recall_cell *c = &t->cell[i];
        char label[160], other[160];
        if (done[i] || strcmp(c->task, first->task) || strcmp(c->setting, first->setting))
            continue;
        model_sans_width(c->model, label, sizeof label);
        fprintf(f, "| `%s` | %s |", c->kernel, label);
        for (int w = 0; w < nw; w++) {
            const recall_cell *hit = NULL;
            for (int j = i; j < t->n && !hit; j++) {
                const recall_cell *x = &t->cell[j];
                model_sans_width(x->model, other, sizeof other);
                if (!done[j] && x->d_model == widths[w] && !strcmp(x->kernel, c->kernel) && !strcmp(other, label) &&
                    !strcmp(x->task, c->task) && !strcmp(x->setting, c->setting))
                    hit = x, done[j] = 1;
            }
            int b = hit ? recall_best_lr(hit) : -1;
            if (b < 0)
                fprintf(f, " — |");
            else
                fprintf(f, " %.3f [%.3f, %.3f] (lr %g, best of %d) |", hit->acc_sum[b] / hit->runs[b],
                        hit->lo_sum[b] / hit->runs[b], hit->hi_sum[b] / hit->runs[b], hit->lr[b], hit->n_lr);
        }
        fprintf(f, "\n");
    }
}

void recall_table_markdown(const recall_table *t, FILE *f)
{
    fprintf(f, "# Associative recall: best of the learning-rate grid\n\n"
               "Test accuracy: the share of an example's query positions whose token is right, averaged "
               "over the test examples (not an exact match of all queries), then over seeds; the interval "
               "is the 95 %% normal-approximation interval of that per-example mean (ci_low, ci_high of "
               "the rows), averaged over seeds. The learning rate is the one with the best mean "
               "(Zoology's protocol, Arora et al. 2023: \"best of grid\"); from the final test rows of "
               "the trainings in the results CSV.\n");
    for (int i = 0; i < t->n; i++) {
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = strcmp(t->cell[j].task, t->cell[i].task) || strcmp(t->cell[j].setting, t->cell[i].setting);
        if (first)
            setting_table(t, &t->cell[i], f);
    }
    if (t->dropped)
        fprintf(f, "\n%d rows did not fit the table (more than %d cells or %d learning rates per cell).\n", t->dropped,
                RECALL_MAX_CELLS, RECALL_MAX_LRS);
}
