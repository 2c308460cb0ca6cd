#include "fidelity_report.h"

#include "csvw.h"
#include "harness/measure/fidelity.h"
#include "kernels/core/registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* params without its inputs=... item (the family is a column of its own);
 * the family into fam. 0 if params has no inputs item (not a fidelity row). */
static int split_inputs(const char *params, char *rest, size_t n, char *fam, size_t nf)
{
    char buf[ATTN_CELL_MAX], *save = NULL;
    int found = 0;
    snprintf(buf, sizeof buf, "%s", params);
    rest[0] = '\0';
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        if (!strncmp(kv, "inputs=", 7)) {
            snprintf(fam, nf, "%s", kv + 7);
            found = 1;
        } else
            snprintf(rest + strlen(rest), n - strlen(rest), "%s%s", rest[0] ? ";" : "", kv);
    }
    return found;
}

/* One problem shape: query rows, keys, head dimension, batch and heads. */
static int same_shape(const fidrep_point *a, const fidrep_point *b)
{
    return a->N == b->N && a->Nk == b->Nk && a->D == b->D && a->B == b->B && a->H == b->H && a->H_kv == b->H_kv;
}

static int same_config(const fidrep_point *p, const fidrep_point *key)
{
    return same_shape(p, key) && !strcmp(p->kernel, key->kernel) && !strcmp(p->params, key->params) &&
           !strcmp(p->mask, key->mask) && !strcmp(p->family, key->family);
}

static fidrep_point *point_of(fidrep *r, const csvw_row *row, const char *params, const char *fam)
{
    fidrep_point key;
    memset(&key, 0, sizeof key);
    snprintf(key.kernel, sizeof key.kernel, "%.*s", (int)sizeof key.kernel - 1, row->cell[ATTN_COL_KERNEL]);
    snprintf(key.params, sizeof key.params, "%s", params);
    snprintf(key.mask, sizeof key.mask, "%.*s", (int)sizeof key.mask - 1, row->cell[ATTN_COL_MASK]);
    snprintf(key.family, sizeof key.family, "%s", fam);
    key.N = atoll(row->cell[ATTN_COL_N]), key.D = atoll(row->cell[ATTN_COL_D]);
    key.Nk = row->cell[ATTN_COL_N_KV][0] ? atoll(row->cell[ATTN_COL_N_KV]) : key.N; /* self-attention */
    key.B = atoll(row->cell[ATTN_COL_B]), key.H = atoll(row->cell[ATTN_COL_H]), key.H_kv = atoll(row->cell[ATTN_COL_H_KV]);
    for (int i = 0; i < r->n; i++)
        if (same_config(&r->p[i], &key))
            return &r->p[i];
    if (r->n == FIDREP_MAX_POINTS)
        return r->dropped++, NULL;
    fidrep_point *p = &r->p[r->n++];
    *p = key;
    const attn_kernel *k = attn_find_kernel(key.kernel);
    p->exact = k && (k->flags & ATTN_EXACT);
    p->rel_fro = p->cos_mean = p->kl = p->recall = p->bytes_read = NAN;
    return p;
}

/* A numeric cell: its number, NAN for NA:<why> or empty. */
static double number_of(const char *v)
{
    return strncmp(v, "NA", 2) && v[0] ? strtod(v, NULL) : NAN;
}

static int add_row(const csvw_row *row, void *ud)
{
    fidrep *r = ud;
    char params[ATTN_CELL_MAX], fam[ATTN_CELL_MAX];
    if (strcmp(row->cell[ATTN_COL_STATUS], "ok") ||
        !split_inputs(row->cell[ATTN_COL_PARAMS], params, sizeof params, fam, sizeof fam))
        return 0;
    snprintf(r->cpu, sizeof r->cpu, "%.127s", row->cell[ATTN_COL_CPU]);
    snprintf(r->threads, sizeof r->threads, "%.15s", row->cell[ATTN_COL_THREADS]);
    int m = 0;
    while (m < FID_MEASURES && strcmp(row->cell[ATTN_COL_METRIC], fid_measure_names[m]))
        m++;
    fidrep_point *p = m < FID_MEASURES ? point_of(r, row, params, fam) : NULL;
    if (!p)
        return 0;
    /* in fid_measure_names' order; the report leaves out cosine_min */
    double *dst[FID_MEASURES] = {&p->rel_fro, &p->cos_mean, NULL, &p->kl, &p->recall};
    if (dst[m])
        *dst[m] = number_of(row->cell[ATTN_COL_VALUE]);
    p->time_ms = strtod(row->cell[ATTN_COL_TIME_MS_MEDIAN], NULL);
    p->bytes_read = number_of(row->cell[ATTN_COL_SDE_BYTES_READ]);
    return 0;
}

/* A group: one shape, input family and mask (a causal kernel's time is
 * compared with causal flash's, not with the full mask's). */
int fidrep_same_group(const fidrep_point *a, const fidrep_point *b)
{
    return same_shape(a, b) && !strcmp(a->family, b->family) && !strcmp(a->mask, b->mask);
}

/* On the front: no point of its group is at least as fast and as close and
 * better in one of the two. */
static void mark_front(fidrep *r)
{
    for (int i = 0; i < r->n; i++) {
        fidrep_point *p = &r->p[i];
        p->pareto = !isnan(p->rel_fro);
        for (int j = 0; p->pareto && j < r->n; j++) {
            const fidrep_point *q = &r->p[j];
            if (j == i || !fidrep_same_group(p, q) || isnan(q->rel_fro))
                continue;
            if (q->time_ms <= p->time_ms && q->rel_fro <= p->rel_fro &&
                (q->time_ms < p->time_ms || q->rel_fro < p->rel_fro))
                p->pareto = 0;
        }
    }
}

static int by_group_then_time(const void *x, const void *y)
{
    const fidrep_point *a = x, *b = y;
    int c;
    const int64_t ka[] = {a->Nk, a->N, a->D, a->B, a->H, a->H_kv}, kb[] = {b->Nk, b->N, b->D, b->B, b->H, b->H_kv};
    for (int i = 0; i < 6; i++)
        if (ka[i] != kb[i])
            return ka[i] < kb[i] ? -1 : 1;
    if ((c = strcmp(a->family, b->family)) != 0 || (c = strcmp(a->mask, b->mask)) != 0)
        return c;
    return (a->time_ms > b->time_ms) - (a->time_ms < b->time_ms);
}

int fidrep_load(const char *path, fidrep *r)
{
    memset(r, 0, sizeof *r);
    r->p = malloc(sizeof *r->p * FIDREP_MAX_POINTS);
    if (!r->p)
        return attn_fail(ATTN_ENOMEM, "%s: no memory for the fidelity report", path);
    int rc = csvw_read_rows(path, add_row, r);
    if (rc < 0)
        return rc;
    if (!r->n) /* an empty report would pass for a run that measured nothing */
        return attn_fail(ATTN_EINVAL, "%s: expected fidelity rows (bench jobs with --inputs other than uniform, "
                         "status ok), found none in %d rows", path, rc);
    qsort(r->p, (size_t)r->n, sizeof *r->p, by_group_then_time);
    mark_front(r);
    return 0;
}

void fidrep_free(fidrep *r)
{
    free(r->p);
    r->p = NULL;
}

void fidrep_cell(FILE *f, double v, const char *fmt)
{
    if (isnan(v))
        fputs(" NA |", f);
    else {
        fputc(' ', f);
        fprintf(f, fmt, v);
        fputs(" |", f);
    }
}

/* The fastest exact configuration of p's group (flash), or NULL. */
static const fidrep_point *exact_of(const fidrep *r, const fidrep_point *p)
{
    const fidrep_point *best = NULL;
    for (int i = 0; i < r->n; i++)
        if (r->p[i].exact && fidrep_same_group(&r->p[i], p) && (!best || r->p[i].time_ms < best->time_ms))
            best = &r->p[i];
    return best;
}

static void group_table(const fidrep *r, int from, int to, FILE *f)
{
    const fidrep_point *g = &r->p[from], *ex = exact_of(r, g);
    fprintf(f, "\n## N = %lld", (long long)g->N);
    if (g->Nk != g->N) /* a decode shape: a few queries against a long cache */
        fprintf(f, " queries against N_kv = %lld keys, H = %lld / H_kv = %lld", (long long)g->Nk, (long long)g->H,
                (long long)g->H_kv);
    fprintf(f, ", D = %lld, inputs `%s`, mask %s\n\n", (long long)g->D, g->family, g->mask);
    fprintf(f, "| kernel | params | mask | time ms | vs exact | rel_fro_err | cosine_mean | kl | topk_recall | front |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = from; i < to; i++) {
        const fidrep_point *p = &r->p[i];
        fprintf(f, "| `%s` | %s | %s |", p->kernel, p->params[0] ? p->params : "defaults", p->mask);
        fidrep_cell(f, p->time_ms, "%.4g");
        fidrep_cell(f, ex && ex->time_ms > 0 ? p->time_ms / ex->time_ms : NAN, "%.3gx");
        fidrep_cell(f, p->rel_fro, "%.3g");
        fidrep_cell(f, p->cos_mean, "%.4f");
        fidrep_cell(f, p->kl, "%.3g");
        fidrep_cell(f, p->recall, "%.3f");
        fprintf(f, " %s |\n", p->pareto ? "yes" : "");
    }
}

/* The target line of one approximate kernel in group [from, to). */
static void target_line(const fidrep *r, int from, int to, const char *kernel, const fidrep_point *ex, FILE *f)
{
    const fidrep_point *hit = NULL, *closest = NULL, *fastest = NULL;
    for (int i = from; i < to; i++) {
        const fidrep_point *p = &r->p[i];
        if (strcmp(p->kernel, kernel) || isnan(p->rel_fro))
            continue;
        if (p->time_ms < ex->time_ms && p->rel_fro <= FIDREP_TARGET_ERR && (!hit || p->time_ms < hit->time_ms))
            hit = p;
        if (!closest || p->rel_fro < closest->rel_fro)
            closest = p;
        if (!fastest || p->time_ms < fastest->time_ms)
            fastest = p;
    }
    if (!closest)
        return;
    if (hit)
        fprintf(f, "| `%s` | yes | %s: %.4g ms (%.2gx flash), rel_fro_err %.3g |\n", kernel,
                hit->params[0] ? hit->params : "defaults", hit->time_ms, hit->time_ms / ex->time_ms, hit->rel_fro);
    else
        fprintf(f, "| `%s` | **no** | closest: %s, rel_fro_err %.3g at %.4g ms (%.2gx flash); fastest: %s, %.4g ms at rel_fro_err %.3g |\n",
                kernel, closest->params[0] ? closest->params : "defaults", closest->rel_fro, closest->time_ms,
                closest->time_ms / ex->time_ms, fastest->params[0] ? fastest->params : "defaults", fastest->time_ms,
                fastest->rel_fro);
}

/* The target in one group [from, to) (largest N, peaked inputs, one mask). */
static void target_group(const fidrep *r, int from, int to, FILE *f)
{
    const fidrep_point *ex = exact_of(r, &r->p[from]);
    fprintf(f, "\nMask %s: ", r->p[from].mask);
    if (!ex) {
        fprintf(f, "no exact (`flash`) row to compare with.\n");
        return;
    }
    fprintf(f, "`%s` takes %.4g ms.\n\n| kernel | reached | configuration |\n|---|---|---|\n", ex->kernel,
            ex->time_ms);
    for (int i = from; i < to; i++) {
        int first = !r->p[i].exact;
        for (int j = from; first && j < i; j++)
            first = strcmp(r->p[j].kernel, r->p[i].kernel) != 0;
        if (first)
            target_line(r, from, to, r->p[i].kernel, ex, f);
    }
}

static void target_section(const fidrep *r, FILE *f)
{
    int64_t Nmax = 0;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->p[i].family, "peaked") && r->p[i].N == r->p[i].Nk && r->p[i].N > Nmax)
            Nmax = r->p[i].N;
    fprintf(f, "\n## Target: faster than `flash` with rel_fro_err <= %g on `peaked` inputs at N = %lld\n\n"
               "Per mask, each approximate kernel's fastest configuration that reaches it, or a plain **no** with "
               "its closest and its fastest configurations.\n",
            FIDREP_TARGET_ERR, (long long)Nmax);
    for (int from = 0; from < r->n;) {
        int to = from + 1;
        while (to < r->n && fidrep_same_group(&r->p[to], &r->p[from]))
            to++;
        if (r->p[from].N == Nmax && r->p[from].Nk == Nmax && !strcmp(r->p[from].family, "peaked"))
            target_group(r, from, to, f);
        from = to;
    }
}

void fidrep_markdown(const fidrep *r, FILE *f)
{
    fprintf(f, "# Fidelity: error against softmax attention vs time\n\n");
    fprintf(f, "Forward time (median) and fidelity against the double-precision oracle on sampled rows "
               "(docs/fidelity.md) of every configuration in the results file, per shape and input family, "
               "fastest first. `vs exact`: time over the fastest exact kernel's (`flash`) in the same group. "
               "`front`: on the Pareto front of time and rel_fro_err (no configuration is both faster and closer). "
               "Inputs are generated (docs/fidelity.md); times are of the machine and run the rows name.\n");
    if (r->dropped)
        fprintf(f, "\n**%d configurations beyond the report's capacity (%d) are left out.**\n", r->dropped,
                FIDREP_MAX_POINTS);
    for (int from = 0; from < r->n;) {
        int to = from + 1;
        while (to < r->n && fidrep_same_group(&r->p[to], &r->p[from]))
            to++;
        group_table(r, from, to, f);
        from = to;
    }
    target_section(r, f);
}

void fidrep_machine_line(const fidrep *r, FILE *f)
{
    fprintf(f, "# machine: %s, %s threads\n", r->cpu[0] ? r->cpu : "unknown cpu", r->threads[0] ? r->threads : "?");
}

void fidrep_csv(const fidrep *r, FILE *f)
{
    fidrep_machine_line(r, f);
    fprintf(f, "N,D,family,kernel,label,time_ms,rel_fro_err,pareto,exact\n");
    for (int i = 0; i < r->n; i++) {
        const fidrep_point *p = &r->p[i];
        if (i > 0 && !fidrep_same_group(p, &r->p[i - 1]))
            fputc('\n', f); /* a blank line ends a group: gnuplot draws each front on its own */
        if (isnan(p->rel_fro) || p->N != p->Nk) /* decode shapes: the long-context report's */
            continue;
        /* labels have no commas: params separate items with ';' */
        fprintf(f, "%lld,%lld,%s,%s,%s%s%s%s,%.6g,%.6g,%d,%d\n", (long long)p->N, (long long)p->D, p->family,
                p->kernel, p->kernel, p->params[0] ? "[" : "", p->params, p->params[0] ? "]" : "", p->time_ms,
                p->rel_fro, p->pareto, p->exact);
    }
}
