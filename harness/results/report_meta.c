/* Provenance of the full report's numbers (report_meta.h). */
#include "report_meta.h"

#include "csvw.h"

#include <stddef.h>
#include <string.h>

static void count(meta_values *v, const char *value)
{
    for (int i = 0; i < v->n; i++)
        if (!strncmp(v->value[i], value, sizeof v->value[i] - 1)) {
            v->count[i]++;
            return;
        }
    if (v->n == META_MAX_VALUES) {
        v->more++;
        return;
    }
    snprintf(v->value[v->n], sizeof v->value[v->n], "%.159s", value);
    v->count[v->n++] = 1;
}

/* The counters of a row: its papi_status up to the first ';' or '(' (the
 * reason's details vary by preset). */
static void counter_kind(const char *status, char *out, size_t n)
{
    int len = (int)strcspn(status, ";(");
    while (len > 0 && status[len - 1] == ' ')
        len--;
    snprintf(out, n, "%.*s", len, status);
}

static int add_row(const csvw_row *r, void *ud)
{
    meta_file *m = ud;
    const char *utc = r->cell[ATTN_COL_UTC];
    m->rows++;
    m->ok += !strcmp(r->cell[ATTN_COL_STATUS], "ok");
    if (utc[0] && (!m->first_utc[0] || strcmp(utc, m->first_utc) < 0))
        snprintf(m->first_utc, sizeof m->first_utc, "%.31s", utc);
    if (strcmp(utc, m->last_utc) > 0)
        snprintf(m->last_utc, sizeof m->last_utc, "%.31s", utc);
    count(&m->runs, r->cell[ATTN_COL_RUN_ID]);
    count(&m->shas, r->cell[ATTN_COL_GIT_SHA]);
    count(&m->cpus, r->cell[ATTN_COL_CPU]);
    count(&m->threads, r->cell[ATTN_COL_THREADS]);
    if (r->cell[ATTN_COL_PAPI_STATUS][0]) {
        char kind[160];
        counter_kind(r->cell[ATTN_COL_PAPI_STATUS], kind, sizeof kind);
        count(&m->counters, kind);
    }
    if (r->cell[ATTN_COL_TASK][0]) {
        char src[160];
        snprintf(src, sizeof src, "%.60s: %.90s", r->cell[ATTN_COL_TASK], r->cell[ATTN_COL_DATA_SOURCE]);
        count(&m->sources, src);
    }
    return 0;
}

int meta_scan(const char *path, meta_file *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = csvw_read_rows(path, add_row, m);
    return rc < 0 ? rc : 0;
}

/* "a (3), b (1)" */
static void list(FILE *md, const meta_values *v)
{
    for (int i = 0; i < v->n; i++)
        fprintf(md, "%s`%s` (%d)", i ? ", " : "", v->value[i][0] ? v->value[i] : "—", v->count[i]);
    if (v->more)
        fprintf(md, ", and %d rows of other values", v->more);
    if (!v->n)
        fputs("—", md);
}

/* One list over every file: the union of their values with summed counts. */
static void merged(FILE *md, const meta_file *files, int n, size_t offset)
{
    meta_values all;
    memset(&all, 0, sizeof all);
    for (int f = 0; f < n; f++) {
        const meta_values *v = (const meta_values *)((const char *)&files[f] + offset);
        for (int i = 0; i < v->n; i++)
            for (int c = 0; c < v->count[i]; c++)
                count(&all, v->value[i]);
        all.more += v->more;
    }
    list(md, &all);
    fputs("\n", md);
}

void meta_markdown(const meta_file *files, int n, FILE *md)
{
    fputs("| file | rows (ok) | runs | first and last row (UTC) | commits |\n|---|---|---|---|---|\n", md);
    for (int f = 0; f < n; f++) {
        const meta_file *m = &files[f];
        const char *base = strrchr(m->path, '/');
        fprintf(md, "| `%s` | %d (%d) | %d | %s … %s | ", base ? base + 1 : m->path, m->rows, m->ok,
                m->runs.n + m->runs.more, m->first_utc, m->last_utc);
        list(md, &m->shas);
        fputs(" |\n", md);
    }
    fputs("\n**Machines** (cpu column): ", md);
    merged(md, files, n, offsetof(meta_file, cpus));
    fputs("\n**Threads**: ", md);
    merged(md, files, n, offsetof(meta_file, threads));
    fputs("\n**Counters** (papi_status, rows): ", md);
    merged(md, files, n, offsetof(meta_file, counters));
    fputs("`ok`: hardware presets counted; `NA:…`: not available here, with the reason in every "
          "cell; `sim:cachegrind`: simulated by valgrind (`bench --counters cachegrind`), never "
          "mixed with hardware counts. The kernels' own counters (`sde_*`) are in every kernel row.\n",
          md);
    fputs("\n**Data** (task: data_source, rows): ", md);
    merged(md, files, n, offsetof(meta_file, sources));
    fputs("`official`: the task's published files; `generated`: made by attnbench's generator; "
          "`stand-in:<name>`: a named substitute, not comparable with published numbers "
          "(docs/tasks.md).\n",
          md);
}
