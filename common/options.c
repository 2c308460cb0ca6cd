/* The option engine (options.h): values from text and JSON, config objects,
 * the canonical JSON and parameter bags; --help, list lines and the command
 * line are in options_cli.c. */
#include "options.h"

#include "attn_error.h"
#include "options_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* JSON numbers are doubles: integers beyond 2^53 do not round-trip. */
#define JSON_INT_MAX 9007199254740992.0

/* Value i of a list row, as a scalar row of its own. */
static opt_def list_element(const opt_def *d, int i)
{
    opt_def e = *d;
    e.type = d->type == OPT_INT_LIST ? OPT_INT : OPT_DOUBLE;
    e.offset = d->offset + (size_t)i * (d->type == OPT_INT_LIST ? sizeof(int64_t) : sizeof(double));
    return e;
}

static int *list_count(void *target, const opt_def *d) { return (int *)((char *)target + d->count_offset); }
static int list_n(const void *target, const opt_def *d) { return *(const int *)((const char *)target + d->count_offset); }

const opt_def *opt_find(const opt_def *rows, const char *name)
{
    for (; rows && rows->name; rows++)
        if (!strcmp(rows->name, name))
            return rows;
    return NULL;
}

/* Stores a checked number in the row's C type. */
static void store_number(const opt_def *d, void *target, double v, long long iv)
{
    void *p = field(target, d);
    switch (d->type) {
    case OPT_INT: *(int64_t *)p = iv; break;
    case OPT_UINT: *(uint64_t *)p = (uint64_t)iv; break;
    case OPT_INT32: case OPT_BOOL: case OPT_ENUM: *(int *)p = (int)iv; break;
    case OPT_DOUBLE: *(double *)p = v; break;
    case OPT_FLOAT: *(float *)p = (float)v; break;
    default: break;
    }
}

static double load_number(const opt_def *d, const void *target)
{
    const void *p = cfield(target, d);
    switch (d->type) {
    case OPT_INT: return (double)*(const int64_t *)p;
    case OPT_UINT: return (double)*(const uint64_t *)p;
    case OPT_INT32: case OPT_BOOL: case OPT_ENUM: return (double)*(const int *)p;
    case OPT_DOUBLE: return *(const double *)p;
    case OPT_FLOAT: return (double)*(const float *)p;
    default: return 0;
    }
}

void opt_defaults(const opt_def *rows, void *target)
{
    for (const opt_def *d = rows; d->name; d++) {
        if (d->type == OPT_STRING)
            snprintf((char *)field(target, d), d->size, "%s", d->def_str ? d->def_str : "");
        else if (d->type == OPT_ARG)
            *(const char **)field(target, d) = NULL;
        else if (is_list(d->type)) {
            opt_def e = list_element(d, 0);
            store_number(&e, target, d->def, as_ll(d->def));
            *list_count(target, d) = 1;
        } else if (d->type != OPT_PARAMS && d->type != OPT_CUSTOM)
            store_number(d, target, d->def, as_ll(d->def));
    }
}

/* "a, b, c": the names an enum accepts (the unset "" left out). */
void opt_enum_names(const opt_def *d, const char *sep, char *buf, size_t n)
{
    buf[0] = '\0';
    for (const char *const *s = d->names; *s; s++)
        if ((*s)[0])
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? sep : "", *s);
}

static int enum_index(const opt_def *d, const char *s)
{
    for (int i = 0; d->names[i]; i++)
        if (d->names[i][0] && !strcmp(d->names[i], s))
            return i;
    return -1;
}

/* "an integer in [1, 16]" / "a number in [0, 10]" / "one of a, b" ... */
static void expected(const opt_def *d, int json, char *buf, size_t n)
{
    char names[256];
    double hi = json && is_int_type(d->type) && d->hi > JSON_INT_MAX ? JSON_INT_MAX : d->hi;
    int ints = d->type == OPT_INT_LIST;
    char range[96];
    if (ints)
        snprintf(range, sizeof range, "[%lld, %lld]", as_ll(d->lo), as_ll(hi));
    else
        snprintf(range, sizeof range, "[%g, %g]", d->lo, d->hi);
    if (is_list(d->type))
        snprintf(buf, n, "%s1..%zu %s in %s", json ? (ints ? "an integer or a list of " : "a number or a list of ")
                 : "a comma-separated list of ", d->size, ints ? "integers" : "numbers", range);
    else if (is_int_type(d->type))
        snprintf(buf, n, "an integer in [%lld, %lld]", as_ll(d->lo), as_ll(hi));
    else if (d->type == OPT_DOUBLE || d->type == OPT_FLOAT)
        snprintf(buf, n, "a number in [%g, %g]", d->lo, d->hi);
    else if (d->type == OPT_BOOL)
        snprintf(buf, n, "0 or 1");
    else if (d->type == OPT_ENUM)
        opt_enum_names(d, ", ", names, sizeof names), snprintf(buf, n, "one of %s", names);
    else if (d->type == OPT_STRING)
        snprintf(buf, n, "%s of at most %zu characters", json ? "a string" : "a value", d->size - 1);
    else
        snprintf(buf, n, "a list of \"key=value\" strings");
}

static int bad_text(const opt_def *d, const char *text, const char *where)
{
    char e[300];
    expected(d, 0, e, sizeof e);
    return attn_fail(ATTN_EINVAL, "%s: expected %s, found '%s'", where, e, text);
}

static int set_number_text(const opt_def *d, void *target, const char *text, const char *where)
{
    char *end;
    errno = 0;
    if (is_int_type(d->type) || d->type == OPT_BOOL) {
        long long v = strtoll(text, &end, 10);
        double lo = d->type == OPT_BOOL ? 0 : d->lo, hi = d->type == OPT_BOOL ? 1 : d->hi;
        if (!*text || *end || errno || v < as_ll(lo) || v > as_ll(hi))
            return bad_text(d, text, where);
        store_number(d, target, (double)v, v);
        return 0;
    }
    double v = strtod(text, &end);
    if (!*text || *end || !(v >= d->lo && v <= d->hi))
        return bad_text(d, text, where);
    store_number(d, target, v, 0);
    return 0;
}

static int set_list_text(const opt_def *d, void *target, const char *text, const char *where)
{
    int n = 0, rc = 0;
    for (const char *p = text; !rc; n++) {
        const char *comma = strchr(p, ',');
        char item[64];
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if ((size_t)n >= d->size || len == 0 || len >= sizeof item)
            return bad_text(d, text, where);
        memcpy(item, p, len), item[len] = '\0';
        opt_def e = list_element(d, n);
        rc = set_number_text(&e, target, item, where);
        if (!comma)
            break;
        p = comma + 1;
    }
    *list_count(target, d) = n + 1;
    return rc;
}

int opt_set_text(const opt_def *d, void *target, const char *text, const char *where)
{
    switch (d->type) {
    case OPT_ENUM: {
        int i = enum_index(d, text);
        return i < 0 ? bad_text(d, text, where) : (*(int *)field(target, d) = i, 0);
    }
    case OPT_STRING:
        if (strlen(text) >= d->size)
            return bad_text(d, text, where);
        memcpy(field(target, d), text, strlen(text) + 1);
        return 0;
    case OPT_ARG: *(const char **)field(target, d) = text; return 0;
    case OPT_PARAMS: return param_bag_add((param_bag *)field(target, d), text);
    case OPT_CUSTOM: return d->set_text(target, text, where);
    case OPT_INT_LIST: case OPT_DOUBLE_LIST: return set_list_text(d, target, text, where);
    default: return set_number_text(d, target, text, where);
    }
}

/* ---------------------------------------------------------------- JSON values */

static const char *json_what(const cJSON *x)
{
    return !x ? "nothing" : cJSON_IsString(x) ? "a string" : cJSON_IsNumber(x) ? "a number"
           : cJSON_IsArray(x) ? "an array" : cJSON_IsObject(x) ? "an object" : cJSON_IsBool(x) ? "a boolean"
           : "another value";
}

static int bad_json(const opt_def *d, const cJSON *x, const char *where, int checked)
{
    char e[300];
    if (checked || d->type == OPT_ENUM || d->type == OPT_STRING || d->type == OPT_PARAMS)
        expected(d, 1, e, sizeof e);
    else
        snprintf(e, sizeof e, "a number");
    if (d->type == OPT_ENUM && cJSON_IsString(x)) /* the word itself: the reader sees which one is wrong */
        return attn_fail(ATTN_EINVAL, "%s: expected %s, found '%.80s'", where, e, x->valuestring);
    return attn_fail(ATTN_EINVAL, "%s: expected %s, found %s", where, e, json_what(x));
}

static int set_params_json(const opt_def *d, void *target, const cJSON *x, const char *where)
{
    const cJSON *e;
    if (!cJSON_IsArray(x))
        return bad_json(d, x, where, 1);
    cJSON_ArrayForEach(e, x)
    {
        if (!cJSON_IsString(e))
            return bad_json(d, e, where, 1);
        if (param_bag_add((param_bag *)field(target, d), e->valuestring)) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", attn_last_error());
            return attn_fail(ATTN_EINVAL, "%s: %s", where, msg);
        }
    }
    return 0;
}

static int set_string_json(const opt_def *d, void *target, const cJSON *x, const char *where, int checked)
{
    char *p = field(target, d);
    if (d->type == OPT_STRING && (d->flags & OPT_JSON_NULL_EMPTY) && cJSON_IsNull(x))
        return p[0] = '\0', 0;
    if (!cJSON_IsString(x))
        return bad_json(d, x, where, checked);
    if (d->type == OPT_STRING) {
        if (strlen(x->valuestring) >= d->size)
            return bad_json(d, x, where, checked);
        memcpy(p, x->valuestring, strlen(x->valuestring) + 1);
        return 0;
    }
    int i = enum_index(d, x->valuestring);
    if (i < 0 && !checked && !x->valuestring[0] && d->names[0] && !d->names[0][0])
        i = 0; /* the unset value, as written */
    return i < 0 ? bad_json(d, x, where, checked) : (*(int *)p = i, 0);
}

static int set_number_json(const opt_def *d, void *target, const cJSON *x, const char *where, int checked)
{
    double v;
    if (d->type == OPT_BOOL && cJSON_IsBool(x))
        v = cJSON_IsTrue(x);
    else if (cJSON_IsNumber(x))
        v = x->valuedouble;
    else
        return bad_json(d, x, where, checked);
    int integral = is_int_type(d->type) || d->type == OPT_BOOL;
    double lo = d->type == OPT_BOOL ? 0 : d->lo, hi = d->type == OPT_BOOL ? 1 : d->hi;
    if (integral && hi > JSON_INT_MAX)
        hi = JSON_INT_MAX;
    if (checked && ((integral && v != floor(v)) || !(v >= lo && v <= hi)))
        return bad_json(d, x, where, checked);
    store_number(d, target, v, (long long)v);
    return 0;
}

/* A number, or a list of 1..size numbers. */
static int set_list_json(const opt_def *d, void *target, const cJSON *x, const char *where, int checked)
{
    int n = 0, rc = 0;
    const cJSON *e;
    if (cJSON_IsNumber(x)) {
        opt_def el = list_element(d, 0);
        rc = set_number_json(&el, target, x, where, checked);
        n = 1;
    } else if (!cJSON_IsArray(x) || cJSON_GetArraySize(x) < 1 || (size_t)cJSON_GetArraySize(x) > d->size)
        return bad_json(d, x, where, 1);
    const cJSON *items = cJSON_IsArray(x) ? x : NULL;
    cJSON_ArrayForEach(e, items)
    {
        opt_def el = list_element(d, n++);
        if (!rc && !cJSON_IsNumber(e))
            rc = bad_json(d, e, where, 1);
        else if (!rc)
            rc = set_number_json(&el, target, e, where, checked);
    }
    *list_count(target, d) = n;
    return rc;
}

static int set_json(const opt_def *d, void *target, const cJSON *x, const char *where, int checked)
{
    switch (d->type) {
    case OPT_ENUM: case OPT_STRING: return set_string_json(d, target, x, where, checked);
    case OPT_PARAMS: return set_params_json(d, target, x, where);
    case OPT_CUSTOM: return d->from_json(target, x, where);
    case OPT_ARG: return attn_fail(ATTN_EINVAL, "%s: a command-line option only", where);
    case OPT_INT_LIST: case OPT_DOUBLE_LIST: return set_list_json(d, target, x, where, checked);
    default: return set_number_json(d, target, x, where, checked);
    }
}

int opt_set_json(const opt_def *d, void *target, const cJSON *x, const char *where)
{
    return set_json(d, target, x, where, 1);
}

int opt_read_config(const opt_def *rows, void *target, const cJSON *obj, const char *where)
{
    for (const opt_def *d = rows; d->name; d++) {
        const cJSON *x = (d->flags & OPT_NO_CONFIG) ? NULL : cJSON_GetObjectItemCaseSensitive(obj, d->name);
        char at[256];
        snprintf(at, sizeof at, "%s.%s", where, d->name);
        int rc = x ? opt_set_json(d, target, x, at) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int config_key(const opt_def *const *tables, const char *const *extra, const char *key)
{
    for (const opt_def *const *t = tables; *t; t++) {
        const opt_def *d = opt_find(*t, key);
        if (d && !(d->flags & OPT_NO_CONFIG))
            return 1;
    }
    for (const char *const *e = extra; e && *e; e++)
        if (!strcmp(*e, key))
            return 1;
    return 0;
}

/* "<where>: given twice ('a', then 'b')": the one message for a repeat. */
int opt_given_twice(const char *where, const char *first, const char *second)
{
    if (!first)
        return attn_fail(ATTN_EINVAL, "%s: given twice", where);
    return attn_fail(ATTN_EINVAL, "%s: given twice ('%s', then '%s')", where, first, second);
}

static int repeated_key(const cJSON *first, const cJSON *again, const char *where)
{
    char at[256], *a = cJSON_PrintUnformatted(first), *b = cJSON_PrintUnformatted(again);
    snprintf(at, sizeof at, "%s.%s", where, first->string);
    int rc = opt_given_twice(at, a ? a : "?", b ? b : "?");
    free(a), free(b);
    return rc;
}

int opt_check_keys(const opt_def *const *tables, const char *const *extra, const cJSON *obj, const char *where)
{
    for (const cJSON *k = obj->child; k; k = k->next) {
        if (!config_key(tables, extra, k->string))
            return attn_fail(ATTN_EINVAL, "%s: unknown key \"%s\"", where, k->string);
        for (const cJSON *j = k->next; j; j = j->next)
            if (!strcmp(j->string, k->string))
                return repeated_key(k, j, where);
    }
    return 0;
}

/* ---------------------------------------------------------------- canonical JSON */

static const char *json_key(const opt_def *d) { return d->json ? d->json : d->name; }

static cJSON *params_json(const param_bag *p)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < p->n; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s=%s", p->key[i], p->val[i]);
        cJSON_AddItemToArray(a, cJSON_CreateString(kv));
    }
    return a;
}

static cJSON *value_json(const opt_def *d, const void *target)
{
    const char *s = cfield(target, d);
    switch (d->type) {
    case OPT_ENUM: {
        int i = *(const int *)s, n = 0;
        while (d->names[n])
            n++;
        return cJSON_CreateString(i >= 0 && i < n ? d->names[i] : "?");
    }
    case OPT_STRING:
        return (d->flags & OPT_JSON_NULL_EMPTY) && !s[0] ? cJSON_CreateNull() : cJSON_CreateString(s);
    case OPT_PARAMS: return params_json((const param_bag *)s);
    case OPT_CUSTOM: return d->to_json(target);
    case OPT_ARG: return cJSON_CreateNull();
    case OPT_INT_LIST: case OPT_DOUBLE_LIST: {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < list_n(target, d); i++) {
            opt_def e = list_element(d, i);
            cJSON_AddItemToArray(a, cJSON_CreateNumber(load_number(&e, target)));
        }
        return a;
    }
    default: return cJSON_CreateNumber(load_number(d, target));
    }
}

/* A numeric or enumerated value at its default, for OPT_JSON_OMIT_DEFAULT. */
static int at_default(const opt_def *d, const void *target)
{
    return d->type <= OPT_ENUM && load_number(d, target) == d->def;
}

/* A json_when row whose condition does not hold (the row it names is a
 * number or an enumeration of the same table). */
static int json_unused(const opt_def *rows, const opt_def *d, const void *target)
{
    const opt_def *x = d->json_when ? opt_find(rows, d->json_when) : NULL;
    return x && load_number(x, target) != d->json_when_is;
}

void opt_write_json(const opt_def *rows, const void *target, cJSON *obj)
{
    for (const opt_def *d = rows; d->name; d++)
        if (!(d->flags & OPT_NO_JSON) && !((d->flags & OPT_JSON_OMIT_DEFAULT) && at_default(d, target)) &&
            !json_unused(rows, d, target))
            cJSON_AddItemToObject(obj, json_key(d), value_json(d, target));
}

int opt_read_json(const opt_def *rows, void *target, const cJSON *obj, const char *where)
{
    for (const opt_def *d = rows; d->name; d++) {
        if (d->flags & OPT_NO_JSON)
            continue;
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, json_key(d));
        if (!x && (d->flags & OPT_JSON_OMIT_DEFAULT)) {
            store_number(d, target, d->def, as_ll(d->def));
            continue;
        }
        if (!x && ((d->flags & OPT_JSON_OPTIONAL) || d->json_when))
            continue;
        char at[256];
        snprintf(at, sizeof at, "%s.%s", where, json_key(d));
        int rc = set_json(d, target, x, at, 0);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- bags */

void opt_names(const opt_def *rows, char *buf, size_t n)
{
    buf[0] = '\0';
    for (const opt_def *d = rows; d && d->name; d++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? ", " : "", d->name);
}

int opt_bag_check(const opt_def *rows, const param_bag *p, const char *owner)
{
    for (int i = 0; i < p->n; i++)
        if (!opt_find(rows, p->key[i])) {
            char list[512];
            opt_names(rows, list, sizeof list);
            return attn_fail(ATTN_EINVAL, "%s: unknown param '%s' (expected %s)", owner, p->key[i],
                             list[0] ? list : "none");
        }
    return 0;
}

int opt_bag_read(const opt_def *rows, void *target, const param_bag *p, const char *owner)
{
    int rc = opt_bag_check(rows, p, owner);
    opt_defaults(rows, target);
    for (const opt_def *d = rows; !rc && d->name; d++) {
        const char *v = param_bag_get(p, d->name);
        char where[64];
        snprintf(where, sizeof where, "param %s", d->name);
        if (v)
            rc = opt_set_text(d, target, v, where);
    }
    return rc;
}

/* One row's value from a bag into a scratch object of its C type. */
static int bag_value(const opt_def *rows, const param_bag *p, const char *name, void *scratch, int *rc)
{
    const opt_def *d = opt_find(rows, name);
    if (!d)
        return *rc = attn_fail(ATTN_EINVAL, "param %s: not declared", name), 0;
    opt_def at = *d;
    at.offset = 0;
    store_number(&at, scratch, d->def, as_ll(d->def));
    const char *v = param_bag_get(p, name);
    char where[64];
    snprintf(where, sizeof where, "param %s", name);
    if (v && opt_set_text(&at, scratch, v, where)) {
        store_number(&at, scratch, d->def, as_ll(d->def));
        *rc = ATTN_EINVAL;
    }
    return 1;
}

int opt_bag_validate(const opt_def *rows, const param_bag *p, const char *owner)
{
    int rc = opt_bag_check(rows, p, owner);
    for (int i = 0; !rc && i < p->n; i++) {
        const opt_def *d = opt_find(rows, p->key[i]);
        union { int64_t i; uint64_t u; int i32; double d; float f; } scratch;
        if (d->type <= OPT_ENUM) /* the numeric types, flags and enumerations */
            bag_value(rows, p, p->key[i], &scratch, &rc);
    }
    return rc;
}

int64_t opt_bag_int(const opt_def *rows, const param_bag *p, const char *name, int *rc)
{
    union { int64_t i; uint64_t u; int i32; double d; float f; } v = {0};
    if (!bag_value(rows, p, name, &v, rc))
        return 0;
    const opt_def *d = opt_find(rows, name);
    return d->type == OPT_INT ? v.i : d->type == OPT_UINT ? (int64_t)v.u : v.i32;
}

double opt_bag_double(const opt_def *rows, const param_bag *p, const char *name, int *rc)
{
    union { double d; float f; } v = {0};
    if (!bag_value(rows, p, name, &v, rc))
        return 0;
    return opt_find(rows, name)->type == OPT_FLOAT ? v.f : v.d;
}
