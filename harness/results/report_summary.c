/* Summary tables of the full report (report_summary.h). */
#include "report_summary.h"

#include "csvw.h"
#include "common/attn_error.h"

#include <stdlib.h>
#include <string.h>

#define SUMMARY_MAX_GROUPS 512
#define NOISE_MARK "(noisy)"

/* One group: its key cells and the cells of its chosen row. */
typedef struct {
    char key[SUMMARY_MAX_COLS][96];
    char show[SUMMARY_MAX_COLS][128];
    double N, N_kv;
    double sum;
    int rows;
    int noisy; /* the chosen row's noise cell says yes */
} group;

typedef struct {
    const summary_spec *spec;
    group *g;
    int n, dropped;
} collect;

static int same_key(const group *g, const csvw_row *r, const summary_spec *s)
{
    for (int c = 0; c < s->n_group; c++)
        if (strncmp(g->key[c], r->cell[s->group[c]], sizeof g->key[c] - 1))
            return 0;
    return 1;
}

static int add_row(const csvw_row *r, void *ud)
{
    collect *c = ud;
    const summary_spec *s = c->spec;
    if (strcmp(r->cell[ATTN_COL_SUITE], s->suite) || strcmp(r->cell[ATTN_COL_STATUS], "ok") ||
        (s->metric && strcmp(r->cell[ATTN_COL_METRIC], s->metric)) ||
        (s->skip_params && strstr(r->cell[ATTN_COL_PARAMS], s->skip_params)))
        return 0;
    double N = strtod(r->cell[ATTN_COL_N], NULL), Nk = strtod(r->cell[ATTN_COL_N_KV], NULL);
    int i = 0;
    while (i < c->n && !same_key(&c->g[i], r, s))
        i++;
    if (i == c->n) {
        if (c->n == SUMMARY_MAX_GROUPS)
            return c->dropped++, 0;
        c->n++;
        for (int k = 0; k < s->n_group; k++)
            snprintf(c->g[i].key[k], sizeof c->g[i].key[k], "%.95s", r->cell[s->group[k]]);
        c->g[i].N = -1;
    }
    group *g = &c->g[i];
    g->sum += strtod(r->cell[ATTN_COL_VALUE], NULL), g->rows++;
    if (N > g->N || (N == g->N && Nk >= g->N_kv)) { /* a later row of a size replaces an earlier one */
        g->N = N, g->N_kv = Nk;
        for (int k = 0; k < s->n_show; k++)
            snprintf(g->show[k], sizeof g->show[k], "%.127s", r->cell[s->show[k]]);
        g->noisy = !strncmp(r->cell[ATTN_COL_NOISE], "yes", 3);
    }
    return 0;
}

/* A cell for a table: '|' would split it. */
static void cell(FILE *md, const char *text)
{
    fputs(" ", md);
    for (const char *p = text; *p; p++)
        *p == '|' ? fputs("\\|", md) : fputc(*p, md);
    fputs(" |", md);
}

/* A shown cell; a noisy row's last one carries the mark the note under the
 * table explains (after the figures, so the columns read as before). */
static void cell_marked(FILE *md, const char *text, int noisy)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s%s", text, noisy ? " " NOISE_MARK : "");
    cell(md, buf);
}

static void note_noisy(const collect *c, FILE *md)
{
    int noisy = 0;
    for (int i = 0; i < c->n; i++)
        noisy += !c->spec->mean_value && c->g[i].noisy;
    if (noisy)
        fprintf(md, "\n" NOISE_MARK " %d of these %d rows were timed beside other runnable work or between "
                "probes that moved more than 15 %% (their `noise` cell): not a quiet machine's figures.\n",
                noisy, c->n);
}

int summary_table(const char *path, const summary_spec *spec, FILE *md)
{
    collect c = {.spec = spec, .g = calloc(SUMMARY_MAX_GROUPS, sizeof(group))};
    if (!c.g)
        return attn_fail(ATTN_ENOMEM, "report: out of memory for %s", path);
    int rc = csvw_read_rows(path, add_row, &c);
    if (rc >= 0 && c.n > 0) {
        fputs("|", md);
        for (int k = 0; k < spec->n_group; k++)
            cell(md, schema_col_name(spec->group[k]));
        for (int k = 0; !spec->mean_value && k < spec->n_show; k++)
            cell(md, schema_col_name(spec->show[k]));
        if (spec->mean_value)
            cell(md, "mean value"), cell(md, "rows");
        fputs("\n|", md);
        for (int k = 0; k < spec->n_group + (spec->mean_value ? 2 : spec->n_show); k++)
            fputs("---|", md);
        fputs("\n", md);
        for (int i = 0; i < c.n; i++) {
            fputs("|", md);
            for (int k = 0; k < spec->n_group; k++)
                cell(md, c.g[i].key[k]);
            for (int k = 0; !spec->mean_value && k < spec->n_show; k++)
                cell_marked(md, c.g[i].show[k], k == spec->n_show - 1 && c.g[i].noisy);
            if (spec->mean_value)
                fprintf(md, " %.3f | %d |", c.g[i].sum / c.g[i].rows, c.g[i].rows);
            fputs("\n", md);
        }
        note_noisy(&c, md);
        if (c.dropped)
            fprintf(md, "\n%d more groups are left out (the table holds %d).\n", c.dropped, SUMMARY_MAX_GROUPS);
        rc = c.n;
    }
    free(c.g);
    return rc;
}
