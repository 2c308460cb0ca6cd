/* Reading a sweep config's JSON strictly: typed values out of cJSON items,
 * each error one line naming the file and the JSON path (config_json.h). */
#include "config_json.h"

#include "common/attn_error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A path deeper than the buffer (only with absurd keys) is cut short. */
__attribute__((format(printf, 2, 3))) static cfg_where at(const cfg_where *w, const char *fmt, ...)
{
    cfg_where r = {w->file, ""};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.path, sizeof r.path, fmt, ap);
    va_end(ap);
    return r;
}

cfg_where cfg_json_key(const cfg_where *w, const char *key) { return at(w, "%s.%s", w->path, key); }

cfg_where cfg_json_index(const cfg_where *w, size_t i) { return at(w, "%s[%zu]", w->path, i); }

int cfg_json_bad(const cfg_where *w, const char *expected, const cJSON *v)
{
    char found[64] = "nothing";
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    if (s)
        snprintf(found, sizeof found, "%.40s%s", s, strlen(s) > 40 ? "..." : "");
    cJSON_free(s);
    return attn_fail(ATTN_EINVAL, "%s: %s: expected %s, found %s", w->file, w->path, expected, found);
}

int cfg_json_missing(const cfg_where *w, const char *key)
{
    return attn_fail(ATTN_EINVAL, "%s: %s: expected the required key \"%s\", found none",
                     w->file, w->path, key);
}

void cfg_list_add(char *list, size_t cap, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 2 : 0))
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return;
    snprintf(list + strlen(list), cap - strlen(list), "%s%s", list[0] ? ", " : "", name);
}

int cfg_json_check_keys(const cfg_where *w, const cJSON *obj, const char *const *keys)
{
    if (!cJSON_IsObject(obj))
        return cfg_json_bad(w, "an object", obj);
    for (const cJSON *c = obj->child; c; c = c->next) {
        cfg_where kw = cfg_json_key(w, c->string);
        int known = 0;
        for (const char *const *k = keys; *k; k++)
            known |= strcmp(*k, c->string) == 0;
        if (!known) {
            char list[256] = "";
            for (const char *const *k = keys; *k; k++)
                cfg_list_add(list, sizeof list, *k);
            return attn_fail(ATTN_EINVAL, "%s: %s: expected one of the keys %s, found the unknown key \"%s\"",
                             w->file, kw.path, list, c->string);
        }
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (strcmp(d->string, c->string) == 0)
                return attn_fail(ATTN_EINVAL, "%s: %s: expected each key once, found \"%s\" again",
                                 w->file, kw.path, c->string);
    }
    return 0;
}

const cJSON *cfg_json_item(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* ---------------------------------------------------------------- scalars */

/* "a positive integer" or, for a list's elements, "positive integers" */
static void describe_range(int64_t lo, int64_t hi, int plural, char *buf, size_t n)
{
    if (hi == CFG_EXACT_MAX && (lo == 0 || lo == 1))
        snprintf(buf, n, "%s%s integer%s", plural ? "" : "a ", lo ? "positive" : "non-negative", plural ? "s" : "");
    else
        snprintf(buf, n, "%s in [%lld, %lld]", plural ? "integers" : "an integer", (long long)lo, (long long)hi);
}

int cfg_json_int(const cfg_where *w, const cJSON *v, int64_t lo, int64_t hi, int64_t *out)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d == floor(d) && d >= (double)lo && d <= (double)hi)) {
        char what[96];
        describe_range(lo, hi, 0, what, sizeof what);
        return cfg_json_bad(w, what, v);
    }
    *out = (int64_t)d;
    return 0;
}

int cfg_json_opt_int(const cfg_where *w, const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = cfg_json_item(obj, key);
    cfg_where kw = cfg_json_key(w, key);
    return v ? cfg_json_int(&kw, v, lo, hi, out) : 0;
}

static int64_t row_lo(const opt_def *d) { return (int64_t)d->lo; }
static int64_t row_hi(const opt_def *d) { return d->hi >= (double)CFG_EXACT_MAX ? CFG_EXACT_MAX : (int64_t)d->hi; }

int cfg_json_opt_int_row(const cfg_where *w, const cJSON *obj, const opt_def *d, int64_t *out)
{
    return cfg_json_opt_int(w, obj, d->name, row_lo(d), row_hi(d), out);
}

int cfg_json_ints_row(const cfg_where *w, const cJSON *obj, const opt_def *d, int required, cfg_ints *out)
{
    return cfg_json_ints(w, obj, d->name, required, row_lo(d), row_hi(d), out);
}

int cfg_json_opt_double_row(const cfg_where *w, const cJSON *obj, const opt_def *d, const char *what, double *out)
{
    const cJSON *v = cfg_json_item(obj, d->name);
    cfg_where kw = cfg_json_key(w, d->name);
    if (v && (!cJSON_IsNumber(v) || !(v->valuedouble >= d->lo && v->valuedouble <= d->hi))) {
        char expected[96];
        snprintf(expected, sizeof expected, "a number of %s in [%g, %g]", what, d->lo, d->hi);
        return cfg_json_bad(&kw, expected, v);
    }
    if (v)
        *out = v->valuedouble;
    return 0;
}

void cfg_json_keys_of(const char *const *extra, const opt_def *rows, const char *group, const char **keys,
                      size_t max)
{
    size_t n = 0;
    for (; extra && *extra && n + 1 < max; extra++)
        keys[n++] = *extra;
    for (const opt_def *d = rows; d->name && n + 1 < max; d++)
        if (d->group && !strcmp(d->group, group) && !(d->flags & OPT_NO_CONFIG))
            keys[n++] = d->name;
    keys[n] = NULL;
}

static int get_string(const cfg_where *w, const cJSON *v, size_t cap, char *out)
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
        char what[64];
        snprintf(what, sizeof what, "a string of at most %zu characters", cap - 1);
        return cfg_json_bad(w, what, v);
    }
    strcpy(out, v->valuestring);
    return 0;
}

int cfg_json_name(const cfg_where *w, const cJSON *v, char *out)
{
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= CFG_NAME_MAX ||
        v->valuestring[strspn(v->valuestring, allowed)] != '\0')
        return cfg_json_bad(w, "a name of 1-31 characters from [A-Za-z0-9_-]", v);
    strcpy(out, v->valuestring);
    return 0;
}

int cfg_json_req_name(const cfg_where *w, const cJSON *obj, const char *key, char *out)
{
    cfg_where kw = cfg_json_key(w, key);
    return cfg_json_item(obj, key) ? cfg_json_name(&kw, cfg_json_item(obj, key), out) : cfg_json_missing(w, key);
}

int cfg_json_opt_string(const cfg_where *w, const cJSON *obj, const char *key, size_t cap, char *out)
{
    cfg_where kw = cfg_json_key(w, key);
    return cfg_json_item(obj, key) ? get_string(&kw, cfg_json_item(obj, key), cap, out) : 0;
}

/* ---------------------------------------------------------------- lists */

const cJSON *cfg_json_array(const cfg_where *w, const cJSON *obj, const char *key, int required,
                             const char *what, int *rc)
{
    const cJSON *a = cfg_json_item(obj, key);
    cfg_where kw = cfg_json_key(w, key);
    *rc = 0;
    if (!a && required)
        *rc = cfg_json_missing(w, key);
    else if (a && (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0))
        *rc = cfg_json_bad(&kw, what, a);
    return *rc ? NULL : a;
}

int cfg_json_ints(const cfg_where *w, const cJSON *obj, const char *key, int required,
                    int64_t lo, int64_t hi, cfg_ints *out)
{
    char what[128], elems[96];
    describe_range(lo, hi, 1, elems, sizeof elems);
    snprintf(what, sizeof what, "a non-empty array of %s", elems);
    int rc;
    const cJSON *a = cfg_json_array(w, obj, key, required, what, &rc);
    cfg_where kw = cfg_json_key(w, key);
    if (!a)
        return rc;
    out->v = calloc((size_t)cJSON_GetArraySize(a), sizeof *out->v);
    if (!out->v)
        return attn_fail(ATTN_ENOMEM, "%s: %s: out of memory", w->file, kw.path);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        cfg_where ew = cfg_json_index(&kw, out->n);
        if ((rc = cfg_json_int(&ew, e, lo, hi, &out->v[out->n])))
            return rc;
        for (size_t j = 0; j < out->n; j++)
            if (out->v[j] == out->v[out->n])
                return attn_fail(ATTN_EINVAL, "%s: %s: expected distinct values, found %lld again (as at [%zu])",
                                 w->file, ew.path, (long long)out->v[j], j);
        out->n++;
    }
    return 0;
}

int cfg_json_list(const cfg_where *w, const cJSON *obj, const char *key, int required, cfg_elem_read read, size_t size,
                    const void *ctx, void **out, size_t *n)
{
    int rc;
    const cJSON *a = cfg_json_array(w, obj, key, required, "a non-empty array of strings", &rc);
    cfg_where kw = cfg_json_key(w, key);
    if (!a)
        return rc;
    size_t count = (size_t)cJSON_GetArraySize(a);
    char (*canon)[CFG_SPEC_MAX] = calloc(count, sizeof *canon);
    *out = calloc(count, size);
    if (!canon || !*out) {
        free(canon);
        return attn_fail(ATTN_ENOMEM, "%s: %s: out of memory", w->file, kw.path);
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        cfg_where ew = cfg_json_index(&kw, *n);
        if ((rc = read(&ew, e, ctx, (char *)*out + *n * size, canon[*n])))
            break;
        for (size_t j = 0; !rc && j < *n; j++)
            if (strcmp(canon[j], canon[*n]) == 0)
                rc = attn_fail(ATTN_EINVAL, "%s: %s: expected distinct values, found \"%s\" again (as at [%zu])",
                               w->file, ew.path, canon[j], j);
        if (rc)
            break;
        (*n)++;
    }
    free(canon);
    return rc;
}

int cfg_default_one(void **v, size_t *n, const void *value, size_t size)
{
    if (*n)
        return 0;
    if (!(*v = malloc(size)))
        return attn_fail(ATTN_ENOMEM, "config: out of memory");
    memcpy(*v, value, size);
    *n = 1;
    return 0;
}

int cfg_default_ints(cfg_ints *dst, const int64_t *v, size_t n)
{
    if (dst->n)
        return 0;
    dst->v = malloc(n * sizeof *dst->v);
    if (!dst->v)
        return attn_fail(ATTN_ENOMEM, "config: out of memory");
    memcpy(dst->v, v, n * sizeof *v);
    dst->n = n;
    return 0;
}
