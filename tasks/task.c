/* The task dataset container and strict parameter helpers. */
#include "task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int task_data_alloc(task_data *d, const char *name, task_kind kind, int64_t n, int64_t len)
{
    memset(d, 0, sizeof *d);
    if (n < 1 || len < 1)
        return attn_fail(ATTN_EINVAL, "task %s: expected n >= 1 and len >= 1, found n=%lld len=%lld", name,
                         (long long)n, (long long)len);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->data_source, sizeof d->data_source, "generated");
    d->kind = kind, d->n = n, d->len = len, d->pad = -1;
    size_t cells = (size_t)(n * len);
    d->tokens = calloc(cells, sizeof *d->tokens);
    d->lengths = malloc((size_t)n * sizeof *d->lengths);
    int ok = d->tokens && d->lengths;
    if (kind == TASK_PAIR) {
        d->tokens2 = calloc(cells, sizeof *d->tokens2);
        d->lengths2 = malloc((size_t)n * sizeof *d->lengths2);
        ok = ok && d->tokens2 && d->lengths2;
    }
    if (kind == TASK_LM)
        ok = ok && (d->targets = calloc(cells, sizeof *d->targets)) != NULL;
    else
        ok = ok && (d->labels = calloc((size_t)n, sizeof *d->labels)) != NULL;
    if (!ok) {
        task_data_free(d);
        return attn_fail(ATTN_ENOMEM, "task %s: cannot allocate %lld x %lld tokens", name, (long long)n,
                         (long long)len);
    }
    for (int64_t i = 0; i < n; i++) {
        d->lengths[i] = (int32_t)len;
        if (d->lengths2)
            d->lengths2[i] = (int32_t)len;
    }
    return 0;
}

int task_data_alloc_regress(task_data *d, const char *name, int64_t n, int64_t len, int64_t dim)
{
    memset(d, 0, sizeof *d);
    if (n < 1 || len < 1 || dim < 1 || dim > INT32_MAX)
        return attn_fail(ATTN_EINVAL, "task %s: expected n, len, dim >= 1, found n=%lld len=%lld dim=%lld", name,
                         (long long)n, (long long)len, (long long)dim);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->data_source, sizeof d->data_source, "generated");
    d->kind = TASK_REGRESS, d->n = n, d->len = len, d->pad = -1, d->dim = (int32_t)dim;
    size_t cells = (size_t)(n * len);
    d->vocab = 1;
    d->tokens = calloc(cells, sizeof *d->tokens);
    d->inputs = calloc(cells * (size_t)dim, sizeof *d->inputs);
    d->values = calloc(cells, sizeof *d->values);
    d->scored = calloc(cells, sizeof *d->scored);
    d->lengths = malloc((size_t)n * sizeof *d->lengths);
    if (!d->tokens || !d->inputs || !d->values || !d->scored || !d->lengths) {
        task_data_free(d);
        return attn_fail(ATTN_ENOMEM, "task %s: cannot allocate %lld x %lld x %lld inputs", name, (long long)n,
                         (long long)len, (long long)dim);
    }
    for (int64_t i = 0; i < n; i++)
        d->lengths[i] = (int32_t)len;
    return 0;
}

void task_data_free(task_data *d)
{
    free(d->inputs);
    free(d->values);
    free(d->scored);
    free(d->tokens);
    free(d->tokens2);
    free(d->targets);
    free(d->labels);
    free(d->lengths);
    free(d->lengths2);
    free(d->answers);
    memset(d, 0, sizeof *d);
}

/* The text of row d's default. */
static void default_text(const opt_def *d, char *buf, size_t n)
{
    if (d->type == OPT_ENUM)
        snprintf(buf, n, "%s", d->names[(int)d->def]);
    else if (d->def_str)
        snprintf(buf, n, "%s", d->def_str);
    else
        snprintf(buf, n, "%.17g", d->def);
}

void task_settings_text(const task_def *t, const param_bag *p, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (const opt_def *d = t->params; d && d->name && at < n; d++) {
        char def[64];
        const char *v = param_bag_get(p, d->name);
        if (!v)
            default_text(d, def, sizeof def), v = def;
        int k = snprintf(buf + at, n - at, "%s%s=%s", at ? ";" : "", d->name, v);
        at += k > 0 ? (size_t)k : 0;
    }
}

int task_generated_only(const char *task, const char *data_dir)
{
    if (!data_dir)
        return 0;
    return attn_fail(ATTN_EINVAL, "task %s: --data: expected none (the task is generated, it reads no files), "
                     "found '%s'", task, data_dir);
}

int task_params_check(const opt_def *rows, const param_bag *p, const char *task)
{
    char owner[64];
    snprintf(owner, sizeof owner, "task %s", task);
    return opt_bag_check(rows, p, owner);
}

int64_t task_param_int(const opt_def *rows, const param_bag *p, const char *key, int *rc)
{
    return opt_bag_int(rows, p, key, rc);
}

double task_param_double(const opt_def *rows, const param_bag *p, const char *key, int *rc)
{
    return opt_bag_double(rows, p, key, rc);
}

int64_t task_param_int_in(const param_bag *p, const char *key, int64_t def, int64_t lo, int64_t hi, int *rc)
{
    return param_bag_int(p, key, def, lo, hi, rc);
}

double task_param_double_in(const param_bag *p, const char *key, double def, double lo, double hi, int *rc)
{
    const char *s = param_bag_get(p, key);
    if (!s)
        return def;
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        *rc = attn_fail(ATTN_EINVAL, "param %s: expected a number in [%g, %g], found '%s'", key, lo, hi, s);
        return def;
    }
    return v;
}
