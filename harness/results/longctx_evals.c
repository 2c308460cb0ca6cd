#include "longctx_evals.h"

#include "csvw.h"
#include "kernels/core/registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The value of item key= in a ';'-separated params string (its last
 * occurrence: a depth appears twice), or NULL. */
static const char *item(const char *params, const char *key, char *buf, size_t n)
{
    size_t k = strlen(key);
    const char *found = NULL;
    for (const char *p = params; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL)
        if (!strncmp(p, key, k) && p[k] == '=')
            found = p + k + 1;
    if (!found)
        return NULL;
    size_t len = strcspn(found, ";");
    snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), found);
    return buf;
}

/* The task parameters (before ";lr="), without the depth the grid sets. */
static void setting_of(const char *params, char *out, size_t n)
{
    const char *lr = strstr(params, ";lr=");
    size_t len = lr ? (size_t)(lr - params) : strlen(params);
    out[0] = '\0';
    char buf[ATTN_CELL_MAX], *save = NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)len, params);
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save))
        if (strncmp(kv, "depth=", 6) && strncmp(kv, "len=", 4) && strncmp(kv, "L=", 2))
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ";" : "", kv);
}

/* "kernel_params=..;mask=.." of a swapped kernel; "" when the row has
 * neither (the kernel as trained, or one swapped in at its defaults). */
static void swap_of(const char *params, char *out, size_t n)
{
    char kp[128], mask[96];
    const char *tail = strstr(params, ";trained="); /* a training run's own kernel_params come earlier */
    int has_kp = item(tail ? tail : params, "kernel_params", kp, sizeof kp) != NULL;
    int has_mask = item(params, "mask", mask, sizeof mask) != NULL;
    out[0] = '\0';
    if (has_kp)
        snprintf(out, n, "kernel_params=%.120s", kp);
    if (has_mask)
        snprintf(out + strlen(out), n - strlen(out), "%smask=%.90s", has_kp ? ";" : "", mask);
}

static longctx_eval *entry_of(longctx_evals *t, const longctx_eval *key)
{
    for (int i = 0; i < t->n; i++) {
        const longctx_eval *e = &t->e[i];
        if (!strcmp(e->task, key->task) && !strcmp(e->model, key->model) && !strcmp(e->setting, key->setting) &&
            !strcmp(e->swap, key->swap) && !strcmp(e->kernel, key->kernel) && !strcmp(e->metric, key->metric) &&
            !strcmp(e->trained, key->trained) &&
            e->train_len == key->train_len && e->seed == key->seed)
            return &t->e[i];
    }
    if (t->n == LONGCTX_EVAL_MAX)
        return t->dropped++, NULL;
    t->e[t->n] = *key;
    return &t->e[t->n++];
}

static int add_row(const csvw_row *r, void *ud)
{
    longctx_evals *t = ud;
    const char *params = r->cell[ATTN_COL_PARAMS], *metric = r->cell[ATTN_COL_METRIC];
    char el[32], tl[32];
    if (strcmp(r->cell[ATTN_COL_STATUS], "ok") || !strstr(params, "split=extrap") ||
        (strcmp(metric, "first_integer_match") && strcmp(metric, "string_match_all")) ||
        !item(params, "eval_len", el, sizeof el) || !item(params, "train_len", tl, sizeof tl))
        return 0;
    longctx_eval key;
    memset(&key, 0, sizeof key);
    snprintf(key.task, sizeof key.task, "%.31s", r->cell[ATTN_COL_TASK]);
    snprintf(key.model, sizeof key.model, "%.95s", r->cell[ATTN_COL_MODEL]);
    snprintf(key.kernel, sizeof key.kernel, "%.31s", r->cell[ATTN_COL_KERNEL]);
    snprintf(key.metric, sizeof key.metric, "%.31s", metric);
    setting_of(params, key.setting, sizeof key.setting);
    if (!item(params, "trained", key.trained, sizeof key.trained))
        snprintf(key.trained, sizeof key.trained, "%s", key.kernel);
    swap_of(params, key.swap, sizeof key.swap);
    key.train_len = atoll(tl), key.seed = atoll(r->cell[ATTN_COL_SEED]);
    longctx_eval *e = entry_of(t, &key);
    if (!e)
        return 0;
    int64_t len = atoll(el);
    int i = 0;
    while (i < e->n_len && e->len[i] != len)
        i++;
    if (i == LONGCTX_EVAL_LENS)
        return 0;
    if (i == e->n_len)
        e->len[e->n_len++] = len;
    e->sum[i] += strtod(r->cell[ATTN_COL_VALUE], NULL), e->n[i]++;
    return 0;
}

int longctx_evals_load(const char *path, longctx_evals *t)
{
    memset(t, 0, sizeof *t);
    if (access(path, F_OK) != 0)
        return 0;
    int rc = csvw_read_rows(path, add_row, t);
    return rc < 0 ? rc : 0;
}

static int same_checkpoint(const longctx_eval *a, const longctx_eval *b)
{
    return !strcmp(a->task, b->task) && !strcmp(a->model, b->model) && !strcmp(a->setting, b->setting) &&
           !strcmp(a->metric, b->metric) && !strcmp(a->trained, b->trained) && a->train_len == b->train_len &&
           a->seed == b->seed;
}

/* The mean score of e at length len (NAN: not evaluated there). */
static double score(const longctx_eval *e, int64_t len)
{
    for (int i = 0; i < e->n_len; i++)
        if (e->len[i] == len)
            return e->sum[i] / e->n[i];
    return NAN;
}

/* Exact decode in the checkpoint's layers: the reference of every swap. */
static const longctx_eval *decode_of(const longctx_evals *t, const longctx_eval *g)
{
    for (int i = 0; i < t->n; i++)
        if (same_checkpoint(&t->e[i], g) && !strcmp(t->e[i].kernel, "decode"))
            return &t->e[i];
    return NULL;
}

static void checkpoint_table(const longctx_evals *t, int first, FILE *f)
{
    const longctx_eval *g = &t->e[first], *ref = decode_of(t, g);
    int64_t lens[LONGCTX_EVAL_LENS];
    int nl = 0;
    for (int i = first; i < t->n; i++)
        for (int j = 0; same_checkpoint(&t->e[i], g) && j < t->e[i].n_len; j++) {
            int k = 0;
            while (k < nl && lens[k] != t->e[i].len[j])
                k++;
            if (k == nl && nl < LONGCTX_EVAL_LENS) {
                while (k > 0 && lens[k - 1] > t->e[i].len[j]) /* ascending */
                    lens[k] = lens[k - 1], k--;
                lens[k] = t->e[i].len[j], nl++;
            }
        }
    fprintf(f, "\n### `%s`%s%s, %s with `%s`, trained at %lld, seed %lld (`%s`, mean over depths)\n\n"
               "| kernel | parameters, mask |",
            g->task, g->setting[0] ? " " : "", g->setting, g->model, g->trained, (long long)g->train_len,
            (long long)g->seed, g->metric);
    for (int k = 0; k < nl; k++)
        fprintf(f, " %lld |", (long long)lens[k]);
    fputs("\n|---|---|", f);
    for (int k = 0; k < nl; k++)
        fputs("---|", f);
    fputc('\n', f);
    for (int i = first; i < t->n; i++) {
        const longctx_eval *e = &t->e[i];
        if (!same_checkpoint(e, g))
            continue;
        fprintf(f, "| `%s` | %s |", e->kernel, e->swap[0] ? e->swap : "defaults");
        for (int k = 0; k < nl; k++) {
            double s = score(e, lens[k]), r = ref ? score(ref, lens[k]) : NAN;
            if (isnan(s))
                fputs(" — |", f);
            else if (!isnan(r) && e != ref)
                fprintf(f, " %.3f (%+.3f) |", s, s - r);
            else
                fprintf(f, " %.3f |", s);
        }
        fputc('\n', f);
    }
    if (!ref) {
        fprintf(f, "\nNo `decode` swap of this checkpoint: the swaps have no exact reference here.\n");
        return;
    }
    for (int i = first; i < t->n; i++) {
        const longctx_eval *e = &t->e[i];
        const attn_kernel *k = attn_find_kernel(e->kernel);
        if (!same_checkpoint(e, g) || e == ref || !k || !(k->flags & ATTN_APPROX) || !(k->flags & ATTN_DECODE))
            continue;
        double s = score(e, g->train_len), r = score(ref, g->train_len), d = s - r;
        if (isnan(d))
            fprintf(f, "\n- `%s` %s: not evaluated at the trained length.", e->kernel, e->swap);
        else if (fabs(d) <= LONGCTX_EVAL_TOL)
            fprintf(f, "\n- `%s` %s: within %.2f of `decode` at the trained length (%+.3f).", e->kernel, e->swap,
                    LONGCTX_EVAL_TOL, d);
        else
            fprintf(f, "\n- `%s` %s: **misses** by %.3f at the trained length (%.3f vs `decode`'s %.3f).", e->kernel,
                    e->swap, fabs(d) - LONGCTX_EVAL_TOL, s, r);
    }
    fputc('\n', f);
}

void longctx_evals_markdown(const longctx_evals *t, FILE *f)
{
    if (!t->n)
        return;
    fprintf(f, "\n## Trained models with the decode kernels swapped in\n\n"
               "Each checkpoint evaluated at its trained length and longer with a kernel swapped into every layer "
               "(`eval --kernel`, a config's `extrapolate.kernels`); cells: the generated-answer score, mean over "
               "the depths evaluated, and in brackets its difference to exact `decode` swapped into the same "
               "weights. Target: every approximate decode kernel within %.2f of `decode` at the trained length, or "
               "by how much it misses.\n",
            LONGCTX_EVAL_TOL);
    if (t->dropped)
        fprintf(f, "\n**%d configurations beyond the report's capacity (%d) are left out.**\n", t->dropped,
                LONGCTX_EVAL_MAX);
    for (int i = 0; i < t->n; i++) {
        int first = 1;
        for (int j = 0; first && j < i; j++)
            first = !same_checkpoint(&t->e[j], &t->e[i]);
        if (first)
            checkpoint_table(t, i, f);
    }
}
