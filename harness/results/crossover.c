#include "crossover.h"

#include "common/attn_error.h"
#include "csvw.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *suite;
    crossover_points *xs;
} load_ctx;

static int add_row(const csvw_row *r, void *ud)
{
    load_ctx *c = ud;
    if (strcmp(r->cell[ATTN_COL_STATUS], "ok") != 0 || (c->suite && strcmp(r->cell[ATTN_COL_SUITE], c->suite)))
        return 0;
    double ms = strtod(r->cell[ATTN_COL_TIME_MS_MEDIAN], NULL);
    long long n = strtoll(r->cell[ATTN_COL_N_KV], NULL, 10);
    if (!(ms > 0) || n <= 0)
        return 0;
    crossover_points *xs = c->xs;
    if (xs->n == xs->cap) {
        size_t cap = xs->cap ? 2 * xs->cap : 64;
        crossover_point *p = realloc(xs->p, cap * sizeof *p);
        if (!p)
            return attn_fail(ATTN_ENOMEM, "crossover: out of memory at %zu rows", xs->n);
        xs->p = p, xs->cap = cap;
    }
    crossover_point *x = &xs->p[xs->n++];
    snprintf(x->series, sizeof x->series, "%s|%s|D=%s|Dv=%s|B=%s|H=%s|H_kv=%s|threads=%s%s%s",
             r->cell[ATTN_COL_MASK], r->cell[ATTN_COL_PASS], r->cell[ATTN_COL_D], r->cell[ATTN_COL_DV],
             r->cell[ATTN_COL_B], r->cell[ATTN_COL_H], r->cell[ATTN_COL_H_KV], r->cell[ATTN_COL_THREADS],
             strcmp(r->cell[ATTN_COL_N], r->cell[ATTN_COL_N_KV]) ? "|N=" : "",
             strcmp(r->cell[ATTN_COL_N], r->cell[ATTN_COL_N_KV]) ? r->cell[ATTN_COL_N] : "");
    snprintf(x->kernel, sizeof x->kernel, "%s%s%s%s", r->cell[ATTN_COL_KERNEL], r->cell[ATTN_COL_PARAMS][0] ? "[" : "",
             r->cell[ATTN_COL_PARAMS], r->cell[ATTN_COL_PARAMS][0] ? "]" : "");
    x->n_kv = n, x->ms = ms;
    return 0;
}

int crossover_points_load(const char *path, const char *suite, crossover_points *xs)
{
    memset(xs, 0, sizeof *xs);
    load_ctx c = {suite, xs};
    int rc = csvw_read_rows(path, add_row, &c);
    return rc < 0 ? rc : 0;
}

void crossover_points_free(crossover_points *xs)
{
    free(xs->p);
    memset(xs, 0, sizeof *xs);
}

/* The latest time of (series, kernel) at length n, or 0. */
static double time_at(const crossover_points *xs, const char *series, const char *kernel, int64_t n)
{
    double t = 0;
    for (size_t i = 0; i < xs->n; i++)
        if (xs->p[i].n_kv == n && !strcmp(xs->p[i].series, series) && !strcmp(xs->p[i].kernel, kernel))
            t = xs->p[i].ms;
    return t;
}

static int is_ref(const char *label, const char *ref)
{
    size_t n = strlen(ref);
    return !strncmp(label, ref, n) && (label[n] == '\0' || label[n] == '[');
}

/* The reference's fastest time (over its params) in the series at length n, or 0. */
static double ref_time(const crossover_points *xs, const char *series, const char *ref, int64_t n)
{
    double t = 0;
    for (size_t r = 0; r < xs->n; r++)
        if (xs->p[r].n_kv == n && !strcmp(xs->p[r].series, series) && is_ref(xs->p[r].kernel, ref) &&
            (t == 0 || xs->p[r].ms < t))
            t = xs->p[r].ms;
    return t;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* 1 if point i is the first of its (series, kernel) pair. */
static int first_of_pair(const crossover_points *xs, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(xs->p[j].series, xs->p[i].series) && !strcmp(xs->p[j].kernel, xs->p[i].kernel))
            return 0;
    return 1;
}


static void emit(FILE *out, int as_csv, const crossover_point *x, const char *cross, const char *ns, const char *verdict)
{
    if (!as_csv) {
        fprintf(out, "%-28s %-58s %-10s %s (%s)\n", x->kernel, x->series, cross, verdict, ns);
        return;
    }
    const char *cells[] = {x->series, x->kernel, cross, ns, verdict};
    for (int c = 0; c < 5; c++) {
        if (c)
            fputc(',', out);
        csv_fwrite(out, cells[c], strlen(cells[c]));
    }
    fputc('\n', out);
}

int crossover_check(const crossover_points *xs, const char *path, const char *suite, const char *ref)
{
    if (!xs->n)
        return attn_fail(ATTN_EINVAL, "%s: expected status=ok rows%s%s%s, found none", path, suite ? " of --suite '" : "",
                         suite ? suite : "", suite ? "'" : "");
    for (size_t i = 0; i < xs->n; i++)
        if (is_ref(xs->p[i].kernel, ref))
            return 0;
    return attn_fail(ATTN_EINVAL, "%s: --ref %s: expected status=ok rows of the reference kernel, found none (kernels "
                     "in the file: %s%s)", path, ref, xs->p[0].kernel, xs->n > 1 ? ", ..." : "");
}

int crossover_print(const crossover_points *xs, const char *ref, int as_csv, FILE *out)
{
    int lines = 0;
    if (as_csv)
        fprintf(out, "series,kernel,crossover_n,common_ns,verdict\n");
    else
        fprintf(out, "%-28s %-58s %-10s %s\n", "kernel", "series", "crossover", "verdict (common N_kv)");
    int64_t *ns = malloc((xs->n ? xs->n : 1) * sizeof *ns);
    for (size_t i = 0; ns && i < xs->n; i++) {
        const crossover_point *x = &xs->p[i];
        if (is_ref(x->kernel, ref) || !first_of_pair(xs, i))
            continue;
        /* the lengths both were measured at, ascending */
        size_t m = 0;
        for (size_t j = i; j < xs->n; j++) {
            const crossover_point *y = &xs->p[j];
            if (strcmp(y->series, x->series) || strcmp(y->kernel, x->kernel))
                continue;
            int dup = 0;
            for (size_t k = 0; k < m; k++)
                dup |= ns[k] == y->n_kv;
            if (!dup && ref_time(xs, x->series, ref, y->n_kv) > 0)
                ns[m++] = y->n_kv;
        }
        qsort(ns, m, sizeof *ns, cmp_i64);
        char list[512] = "", cross[32] = "";
        for (size_t k = 0; k < m; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", k ? " " : "", (long long)ns[k]);
        const char *verdict;
        if (!m) {
            verdict = "no common lengths with the reference";
        } else {
            /* from the largest common length down, while the kernel stays faster */
            size_t k = m;
            while (k > 0) {
                double tk = time_at(xs, x->series, x->kernel, ns[k - 1]);
                if (!(tk < ref_time(xs, x->series, ref, ns[k - 1])))
                    break;
                k--;
            }
            if (k == m)
                verdict = "not faster at the largest common length";
            else if (k == 0)
                verdict = "faster at every common length", snprintf(cross, sizeof cross, "<=%lld", (long long)ns[0]);
            else
                verdict = "faster from here on", snprintf(cross, sizeof cross, "%lld", (long long)ns[k]);
        }
        emit(out, as_csv, x, cross[0] ? cross : "none", list, verdict);
        lines++;
    }
    free(ns);
    return lines;
}
