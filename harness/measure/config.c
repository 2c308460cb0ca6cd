/* Sweep config files: strict cJSON-based parsing, validation with JSON-path
 * messages, and expansion into a flat job list (format in config.h). */
#include "config.h"
#include "harness/train/config_train.h"

#include "kernels/core/attn.h"
#include "common/attn_error.h"
#include "kernels/core/mask.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EXACT_MAX 9007199254740992LL   /* 2^53: larger JSON numbers are not exact doubles */

/* Where a value sits, for messages: the file and the JSON path. */
typedef struct {
    const char *file;
    char path[192];
} where;

/* A path deeper than the buffer (only with absurd keys) is cut short. */
__attribute__((format(printf, 2, 3))) static where at(const where *w, const char *fmt, ...)
{
    where r = {w->file, ""};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.path, sizeof r.path, fmt, ap);
    va_end(ap);
    return r;
}

static where at_key(const where *w, const char *key) { return at(w, "%s.%s", w->path, key); }

static where at_index(const where *w, size_t i) { return at(w, "%s[%zu]", w->path, i); }

/* "expected <what>, found <the value as JSON, shortened>" */
static int bad(const where *w, const char *expected, const cJSON *v)
{
    char found[64] = "nothing";
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    if (s)
        snprintf(found, sizeof found, "%.40s%s", s, strlen(s) > 40 ? "..." : "");
    cJSON_free(s);
    return attn_fail(ATTN_EINVAL, "%s: %s: expected %s, found %s", w->file, w->path, expected, found);
}

static int missing(const where *w, const char *key)
{
    return attn_fail(ATTN_EINVAL, "%s: %s: expected the required key \"%s\", found none",
                     w->file, w->path, key);
}

/* Appends name to a ", "-separated list unless it is there already. */
static void list_add(char *list, size_t cap, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 2 : 0))
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return;
    snprintf(list + strlen(list), cap - strlen(list), "%s%s", list[0] ? ", " : "", name);
}

/* Unknown and repeated keys are errors: a typo must not silently fall back
 * to a default. */
static int check_keys(const where *w, const cJSON *obj, const char *const *keys)
{
    if (!cJSON_IsObject(obj))
        return bad(w, "an object", obj);
    for (const cJSON *c = obj->child; c; c = c->next) {
        where kw = at_key(w, c->string);
        int known = 0;
        for (const char *const *k = keys; *k; k++)
            known |= strcmp(*k, c->string) == 0;
        if (!known) {
            char list[256] = "";
            for (const char *const *k = keys; *k; k++)
                list_add(list, sizeof list, *k);
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

static const cJSON *item(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* ---------------------------------------------------------------- scalars */

/* "a positive integer" or, for a list's elements, "positive integers" */
static void describe_range(int64_t lo, int64_t hi, int plural, char *buf, size_t n)
{
    if (hi == EXACT_MAX && (lo == 0 || lo == 1))
        snprintf(buf, n, "%s%s integer%s", plural ? "" : "a ", lo ? "positive" : "non-negative", plural ? "s" : "");
    else
        snprintf(buf, n, "%s in [%lld, %lld]", plural ? "integers" : "an integer", (long long)lo, (long long)hi);
}

static int get_int(const where *w, const cJSON *v, int64_t lo, int64_t hi, int64_t *out)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d == floor(d) && d >= (double)lo && d <= (double)hi)) {
        char what[96];
        describe_range(lo, hi, 0, what, sizeof what);
        return bad(w, what, v);
    }
    *out = (int64_t)d;
    return 0;
}

/* Optional integer member; *out keeps its default when absent. */
static int opt_int(const where *w, const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = item(obj, key);
    where kw = at_key(w, key);
    return v ? get_int(&kw, v, lo, hi, out) : 0;
}

static int get_string(const where *w, const cJSON *v, size_t cap, char *out)
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
        char what[64];
        snprintf(what, sizeof what, "a string of at most %zu characters", cap - 1);
        return bad(w, what, v);
    }
    strcpy(out, v->valuestring);
    return 0;
}

/* Suite and kernel names become file names and CSV cells: keep them plain. */
static int get_name(const where *w, const cJSON *v, char *out)
{
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= CFG_NAME_MAX ||
        v->valuestring[strspn(v->valuestring, allowed)] != '\0')
        return bad(w, "a name of 1-31 characters from [A-Za-z0-9_-]", v);
    strcpy(out, v->valuestring);
    return 0;
}

static int req_name(const where *w, const cJSON *obj, const char *key, char *out)
{
    where kw = at_key(w, key);
    return item(obj, key) ? get_name(&kw, item(obj, key), out) : missing(w, key);
}

static int opt_string(const where *w, const cJSON *obj, const char *key, size_t cap, char *out)
{
    where kw = at_key(w, key);
    return item(obj, key) ? get_string(&kw, item(obj, key), cap, out) : 0;
}

/* ---------------------------------------------------------------- lists */

/* The non-empty array at obj.key; NULL when absent (an error if required,
 * which *rc then holds) or malformed. */
static const cJSON *array_at(const where *w, const cJSON *obj, const char *key, int required,
                             const char *what, int *rc)
{
    const cJSON *a = item(obj, key);
    where kw = at_key(w, key);
    *rc = 0;
    if (!a && required)
        *rc = missing(w, key);
    else if (a && (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0))
        *rc = bad(&kw, what, a);
    return *rc ? NULL : a;
}

static int get_ints(const where *w, const cJSON *obj, const char *key, int required,
                    int64_t lo, int64_t hi, cfg_ints *out)
{
    char what[128], elems[96];
    describe_range(lo, hi, 1, elems, sizeof elems);
    snprintf(what, sizeof what, "a non-empty array of %s", elems);
    int rc;
    const cJSON *a = array_at(w, obj, key, required, what, &rc);
    where kw = at_key(w, key);
    if (!a)
        return rc;
    out->v = calloc((size_t)cJSON_GetArraySize(a), sizeof *out->v);
    if (!out->v)
        return attn_fail(ATTN_ENOMEM, "%s: %s: out of memory", w->file, kw.path);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        where ew = at_index(&kw, out->n);
        if ((rc = get_int(&ew, e, lo, hi, &out->v[out->n])))
            return rc;
        for (size_t j = 0; j < out->n; j++)
            if (out->v[j] == out->v[out->n])
                return attn_fail(ATTN_EINVAL, "%s: %s: expected distinct values, found %lld again (as at [%zu])",
                                 w->file, ew.path, (long long)out->v[j], j);
        out->n++;
    }
    return 0;
}

/* Validates one string list element and writes its canonical form; ctx is
 * the entry being parsed. */
typedef int (*str_check)(const where *w, const cJSON *v, const cfg_suite *ctx, char out[CFG_SPEC_MAX]);

static int get_strs(const where *w, const cJSON *obj, const char *key, int required,
                    str_check check, const cfg_suite *ctx, cfg_strs *out)
{
    int rc;
    const cJSON *a = array_at(w, obj, key, required, "a non-empty array of strings", &rc);
    where kw = at_key(w, key);
    if (!a)
        return rc;
    out->v = calloc((size_t)cJSON_GetArraySize(a), sizeof *out->v);
    if (!out->v)
        return attn_fail(ATTN_ENOMEM, "%s: %s: out of memory", w->file, kw.path);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        where ew = at_index(&kw, out->n);
        if ((rc = check(&ew, e, ctx, out->v[out->n])))
            return rc;
        for (size_t j = 0; j < out->n; j++)
            if (strcmp(out->v[j], out->v[out->n]) == 0)
                return attn_fail(ATTN_EINVAL, "%s: %s: expected distinct values, found \"%s\" again (as at [%zu])",
                                 w->file, ew.path, out->v[j], j);
        out->n++;
    }
    return 0;
}

static int check_kernel(const where *w, const cJSON *v, const cfg_suite *ctx, char out[CFG_SPEC_MAX])
{
    (void)ctx;
    int rc = get_name(w, v, out);
    if (rc == 0 && strcmp(out, "oracle") == 0)
        return attn_fail(ATTN_EINVAL, "%s: %s: expected a benchmark kernel, found \"oracle\" (the fp64 "
                         "correctness reference: `attnbench check` runs it, sweeps do not)", w->file, w->path);
    return rc;
}

static int check_mask(const where *w, const cJSON *v, const cfg_suite *ctx, char out[CFG_SPEC_MAX])
{
    (void)ctx;
    attn_mask m;
    if (!cJSON_IsString(v))
        return bad(w, "a mask spec string", v);
    if (attn_mask_parse(v->valuestring, &m) != 0) {
        char why[256];   /* a copy: attn_fail writes the buffer attn_last_error reads */
        snprintf(why, sizeof why, "%s", attn_last_error());
        return attn_fail(ATTN_EINVAL, "%s: %s: %s", w->file, w->path, why);
    }
    attn_mask_format(&m, out, CFG_SPEC_MAX);   /* one spelling per mask: one job_id per job */
    return 0;
}

static int check_pass(const where *w, const cJSON *v, const cfg_suite *ctx, char out[CFG_SPEC_MAX])
{
    (void)ctx;
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, "fwd") && strcmp(v->valuestring, "bwd") &&
                               strcmp(v->valuestring, "fwdbwd")))
        return bad(w, "one of \"fwd\", \"bwd\", \"fwdbwd\"", v);
    strcpy(out, v->valuestring);
    return 0;
}

static int default_str(cfg_strs *s, const char *value)
{
    if (s->n)
        return 0;
    s->v = calloc(1, sizeof *s->v);
    if (!s->v)
        return attn_fail(ATTN_ENOMEM, "config: out of memory");
    strcpy(s->v[0], value);
    s->n = 1;
    return 0;
}

static int copy_ints(cfg_ints *dst, const int64_t *v, size_t n)
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

/* ---------------------------------------------------------------- params */

/* "kernel:key=value,...": the kernel must be one of the entry's kernels;
 * keys are the kernel's business (its init checks them), the shape and the
 * limits of param_bag are checked here. */
static int check_kparams(const where *w, const cJSON *v, const cfg_suite *s, char out[CFG_SPEC_MAX])
{
    const char *shape = "\"kernel:key=value,...\" naming one of this entry's kernels";
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CFG_SPEC_MAX || !strchr(v->valuestring, ':'))
        return bad(w, shape, v);
    strcpy(out, v->valuestring);
    char *params = strchr(out, ':');
    *params++ = '\0';
    int listed = 0;
    for (size_t k = 0; k < s->kernels.n; k++)
        listed |= strcmp(s->kernels.v[k], out) == 0;
    if (!listed || (params[0] && (params[0] == ',' || strstr(params, ",,") || params[strlen(params) - 1] == ',')))
        return bad(w, shape, v);

    param_bag p = {0};
    char buf[CFG_SPEC_MAX];
    strcpy(buf, params);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        if (param_bag_add(&p, kv) != 0) {
            if (strstr(attn_last_error(), "given twice")) /* a repeat: the one message of every option set */
                return attn_fail(ATTN_EINVAL, "%s: %s: %s", w->file, w->path, attn_last_error());
            return attn_fail(ATTN_EINVAL, "%s: %s: expected key=value pairs (keys < 32, values < 64 "
                             "characters, at most %d), found \"%s\"", w->file, w->path, PARAM_BAG_MAX, kv);
        }
    }
    params[-1] = ':';
    return 0;
}

/* "L+L+...": a ragged batch's KV lengths, each an integer >= 0, at most 64. */
static int check_kv_lens(const where *w, const cJSON *v, const cfg_suite *s, char out[CFG_SPEC_MAX])
{
    (void)s;
    const char *shape = "a ragged batch \"L+L+...\" (1 to 64 KV lengths >= 0, at least one > 0)";
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CFG_SPEC_MAX)
        return bad(w, shape, v);
    int64_t lens[64];
    int n = cfg_parse_kv_lens(v->valuestring, lens, 64);
    if (n <= 0)
        return bad(w, shape, v);
    strcpy(out, v->valuestring);
    return 0;
}

int cfg_parse_kv_lens(const char *text, int64_t *lens, int max)
{
    int n = 0, any = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 0 || n >= max || (*end && *end != '+') || (*end == '+' && !end[1]))
            return -1;
        lens[n++] = x;
        any |= x > 0;
        p = *end ? end + 1 : end;
    }
    return n && any ? n : -1;
}

/* ---------------------------------------------------------------- objects */

static int parse_suite(const where *w, const cJSON *o, const cfg_config *cfg, cfg_suite *s)
{
    static const char *const keys[] = {"suite", "description", "kernels", "masks", "pass", "B", "H", "H_kv",
                                       "N", "N_kv", "D", "Dv", "params", "threads", "seed", "kv_lens",
                                       "seq_lens", NULL};
    int64_t seed = 1;
    int rc;
    if ((rc = check_keys(w, o, keys)) || (rc = req_name(w, o, "suite", s->name)) ||
        (rc = opt_string(w, o, "description", sizeof s->description, s->description)) ||
        (rc = get_strs(w, o, "kernels", 1, check_kernel, s, &s->kernels)) ||
        (rc = get_strs(w, o, "masks", 0, check_mask, s, &s->masks)) ||
        (rc = get_strs(w, o, "pass", 0, check_pass, s, &s->passes)) ||
        (rc = get_ints(w, o, "B", 0, 1, EXACT_MAX, &s->B)) || (rc = get_ints(w, o, "H", 1, 1, EXACT_MAX, &s->H)) ||
        (rc = get_ints(w, o, "H_kv", 0, 1, EXACT_MAX, &s->H_kv)) ||
        (rc = get_ints(w, o, "N", 1, 1, EXACT_MAX, &s->N)) ||
        (rc = get_ints(w, o, "N_kv", 0, 1, EXACT_MAX, &s->N_kv)) ||
        (rc = get_ints(w, o, "D", 1, 1, EXACT_MAX, &s->D)) ||
        (rc = get_ints(w, o, "Dv", 0, 1, EXACT_MAX, &s->Dv)) ||
        (rc = get_ints(w, o, "threads", 0, 1, 4096, &s->threads)) ||
        (rc = get_strs(w, o, "params", 0, check_kparams, s, &s->params)) ||
        (rc = get_strs(w, o, "kv_lens", 0, check_kv_lens, s, &s->kv_lens)) ||
        (rc = opt_int(w, o, "seed", 0, EXACT_MAX, &seed)))
        return rc;
    const char *lens_key = "kv_lens";
    if (cJSON_GetObjectItemCaseSensitive(o, "seq_lens")) { /* padded batches: the same lists, flagged */
        where kw = at_key(w, "seq_lens");
        if (s->kv_lens.n)
            return attn_fail(ATTN_EINVAL, "%s: %s: expected padded batches or ragged ones (\"kv_lens\"), found both",
                             w->file, kw.path);
        if ((rc = get_strs(w, o, "seq_lens", 0, check_kv_lens, s, &s->kv_lens)) != 0)
            return rc;
        s->lens_padded = 1, lens_key = "seq_lens";
        for (size_t i = 0; i < s->kv_lens.n; i++) {
            int64_t lens[64], longest = 0;
            int nl = cfg_parse_kv_lens(s->kv_lens.v[i], lens, 64);
            for (int b = 0; b < nl; b++)
                longest = lens[b] > longest ? lens[b] : longest;
            for (size_t k = 0; k < s->N.n; k++)
                if (s->N.v[k] < longest) {
                    where iw = at_index(&kw, i);
                    return attn_fail(ATTN_EINVAL, "%s: %s: expected lengths <= every N (the padded length), found "
                                     "%lld > N = %lld", w->file, iw.path, (long long)longest, (long long)s->N.v[k]);
                }
        }
    }
    if (s->kv_lens.n && (s->B.n || s->N_kv.n)) {
        where kw = at_key(w, lens_key);
        return attn_fail(ATTN_EINVAL, "%s: %s: expected no \"B\" or \"N_kv\" beside it (a %s batch sets "
                         "both), found %s", w->file, kw.path, s->lens_padded ? "padded" : "ragged",
                         s->B.n ? "\"B\"" : "\"N_kv\"");
    }
    s->seed = (uint64_t)seed;

    for (size_t i = 0; i < s->H_kv.n; i++)
        for (size_t j = 0; j < s->H.n; j++)
            if (s->H.v[j] % s->H_kv.v[i] != 0) {
                where kw_hkv = at_key(w, "H_kv"), hw = at_index(&kw_hkv, i);
                return attn_fail(ATTN_EINVAL, "%s: %s: expected a divisor of every H (GQA groups), found %lld "
                                 "(H = %lld)", w->file, hw.path, (long long)s->H_kv.v[i], (long long)s->H.v[j]);
            }
    const int64_t one = 1;
    if ((rc = default_str(&s->masks, "full")) || (rc = default_str(&s->passes, "fwd")) ||
        (rc = copy_ints(&s->B, &one, 1)) || (rc = copy_ints(&s->threads, cfg->threads.v, cfg->threads.n)))
        return rc;
    return 0;
}

static int parse_measure(const where *w, const cJSON *o, cfg_measure *m)
{
    static const char *const keys[] = {"warmup", "min_reps", "min_time_s", "max_reps", NULL};
    int rc = check_keys(w, o, keys);
    if (rc || (rc = opt_int(w, o, "warmup", 0, 1000000, &m->warmup)) ||
        (rc = opt_int(w, o, "min_reps", 1, 1000000, &m->min_reps)) ||
        (rc = opt_int(w, o, "max_reps", 1, 1000000, &m->max_reps)))
        return rc;
    const cJSON *t = item(o, "min_time_s");
    where tw = at_key(w, "min_time_s");
    if (t && (!cJSON_IsNumber(t) || !(t->valuedouble >= 0 && t->valuedouble <= 86400)))
        return bad(&tw, "a number of seconds in [0, 86400]", t);
    if (t)
        m->min_time_s = t->valuedouble;
    if (m->max_reps < m->min_reps) {
        where mw = at_key(w, item(o, "max_reps") ? "max_reps" : "min_reps");
        return attn_fail(ATTN_EINVAL, "%s: %s: expected max_reps >= min_reps, found max_reps %lld < min_reps %lld",
                         w->file, mw.path, (long long)m->max_reps, (long long)m->min_reps);
    }
    return 0;
}

static int check_unique_jobs(const cfg_config *cfg);

static int parse_config(const cJSON *root, cfg_config *cfg)
{
    static const char *const keys[] = {"name", "description", "threads", "measure",
                                       "max_workspace_bytes", "suites", "trainings", NULL};
    where w = {cfg->path, "$"};
    const int64_t one = 1;
    int rc;
    if ((rc = check_keys(&w, root, keys)) || (rc = req_name(&w, root, "name", cfg->name)) ||
        (rc = opt_string(&w, root, "description", sizeof cfg->description, cfg->description)) ||
        (rc = get_ints(&w, root, "threads", 0, 1, 4096, &cfg->threads)) ||
        (rc = copy_ints(&cfg->threads, &one, 1)))
        return rc;
    cfg->measure = (cfg_measure){.warmup = 3, .min_reps = 10, .min_time_s = 1.0, .max_reps = 1000};
    where kw = at_key(&w, "measure");
    if (item(root, "measure") && (rc = parse_measure(&kw, item(root, "measure"), &cfg->measure)))
        return rc;
    if ((rc = opt_int(&w, root, "max_workspace_bytes", 0, EXACT_MAX, &cfg->max_workspace_bytes)))
        return rc;

    if (item(root, "trainings") &&
        (rc = cfg_trainings_parse(cfg->path, item(root, "trainings"), &cfg->trainings, &cfg->n_trainings)))
        return rc;
    if (!item(root, "suites") && cfg->n_trainings)
        return 0; /* a config of training jobs only */
    const cJSON *suites = array_at(&w, root, "suites", 1, "a non-empty array of suite objects", &rc);
    kw = at_key(&w, "suites");
    if (!suites)
        return rc;
    cfg->suites = calloc((size_t)cJSON_GetArraySize(suites), sizeof *cfg->suites);
    if (!cfg->suites)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory", cfg->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, suites)
    {
        where sw = at_index(&kw, cfg->n_suites);
        rc = parse_suite(&sw, e, cfg, &cfg->suites[cfg->n_suites++]);
        if (rc)
            return rc;
    }
    return check_unique_jobs(cfg);
}

/* cJSON reports where it stopped; turn that into line:column. */
static int json_syntax_error(const char *name, const char *text, const char *stop)
{
    int line = 1, col = 1;
    if (!stop)
        stop = text + strlen(text);
    for (const char *p = text; p < stop && *p; p++) {
        if (*p == '\n')
            line++, col = 1;
        else
            col++;
    }
    char near[32] = "the end of the file";
    if (*stop) {
        size_t n = strcspn(stop, "\r\n");
        snprintf(near, sizeof near, "'%.*s'", (int)(n < 20 ? n : 20), stop);
    }
    return attn_fail(ATTN_EINVAL, "%s:%d:%d: expected well-formed JSON, found %s", name, line, col, near);
}

int cfg_parse(const char *name, const char *text, cfg_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "%s", name);
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &stop, 1);
    if (!root)
        return json_syntax_error(cfg->path, text, stop ? stop : cJSON_GetErrorPtr());
    int rc = parse_config(root, cfg);
    cJSON_Delete(root);
    if (rc)
        cfg_free(cfg);
    return rc;
}

int cfg_load(const char *path, cfg_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f)
        return attn_fail(ATTN_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (text) {
        len += fread(text + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *bigger = cap < (1u << 24) ? realloc(text, cap *= 2) : NULL;
        if (!bigger)
            free(text);
        text = bigger;
    }
    int err = ferror(f);
    fclose(f);
    if (!text)
        return attn_fail(ATTN_ENOMEM, "%s: cannot read: larger than 16 MiB or out of memory", path);
    if (err) {
        free(text);
        return attn_fail(ATTN_EIO, "%s: read error", path);
    }
    text[len] = '\0';
    int rc = cfg_parse(path, text, cfg);
    free(text);
    return rc;
}

static void free_suite(cfg_suite *s)
{
    free(s->kernels.v);
    free(s->masks.v);
    free(s->passes.v);
    free(s->params.v);
    free(s->kv_lens.v);
    cfg_ints *ints[] = {&s->B, &s->H, &s->H_kv, &s->N, &s->N_kv, &s->D, &s->Dv, &s->threads};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        free(ints[i]->v);
}

void cfg_free(cfg_config *cfg)
{
    for (size_t i = 0; i < cfg->n_suites; i++)
        free_suite(&cfg->suites[i]);
    free(cfg->suites);
    free(cfg->trainings);
    free(cfg->threads.v);
    memset(cfg, 0, sizeof *cfg);
}

/* ---------------------------------------------------------------- expand */

/* The grid of one entry, outermost dimension first (see config.h). The
 * kernel and its params entries form one dimension of "variants". */
enum { G_THREADS, G_VARIANT, G_MASK, G_PASS, G_B, G_H, G_HKV, G_D, G_DV, G_N, G_NKV, G_KVL, G__COUNT };

typedef struct {
    size_t kernel;          /* index into kernels */
    const char *params;
} variant;

static int kernel_selected(const char *kernel, const cfg_filter *f)
{
    if (!f || !f->kernels)
        return 1;
    for (size_t i = 0; i < f->n_kernels; i++)
        if (strcmp(f->kernels[i], kernel) == 0)
            return 1;
    return 0;
}

/* The (kernel, params) pairs of an entry: one per params entry naming the
 * kernel, or the kernel's defaults when none does. */
static size_t suite_variants(const cfg_suite *s, const cfg_filter *f, variant *out)
{
    size_t n = 0;
    for (size_t k = 0; k < s->kernels.n; k++) {
        if (!kernel_selected(s->kernels.v[k], f))
            continue;
        size_t before = n, kl = strlen(s->kernels.v[k]);
        for (size_t p = 0; p < s->params.n; p++)
            if (strncmp(s->params.v[p], s->kernels.v[k], kl) == 0 && s->params.v[p][kl] == ':')
                out[n++] = (variant){k, s->params.v[p] + kl + 1};
        if (n == before)
            out[n++] = (variant){k, ""};
    }
    return n;
}

/* Counts the entry's jobs into *count and writes them to out (unless NULL). */
static int expand_suite(const cfg_suite *s, size_t entry, const cfg_filter *f, cfg_job *out, size_t *count)
{
    variant *vars = malloc((s->kernels.n + s->params.n) * sizeof *vars);
    if (!vars)
        return attn_fail(ATTN_ENOMEM, "suite %s: out of memory", s->name);
    size_t dim[G__COUNT] = {
        [G_THREADS] = s->threads.n, [G_VARIANT] = suite_variants(s, f, vars), [G_MASK] = s->masks.n,
        [G_PASS] = s->passes.n, [G_B] = s->B.n, [G_H] = s->H.n, [G_HKV] = s->H_kv.n ? s->H_kv.n : 1,
        [G_D] = s->D.n, [G_DV] = s->Dv.n ? s->Dv.n : 1, [G_N] = s->N.n, [G_NKV] = s->N_kv.n ? s->N_kv.n : 1,
        [G_KVL] = s->kv_lens.n ? s->kv_lens.n : 1,
    };
    size_t total = 1;
    for (int d = 0; d < G__COUNT; d++)
        total *= dim[d];
    for (size_t t = 0; out && t < total; t++) {
        size_t ix[G__COUNT], r = t;
        for (int d = G__COUNT - 1; d >= 0; d--) {
            ix[d] = r % dim[d];
            r /= dim[d];
        }
        cfg_job *j = &out[t];
        memset(j, 0, sizeof *j);
        const variant *v = &vars[ix[G_VARIANT]];
        strcpy(j->suite, s->name);
        strcpy(j->kernel, s->kernels.v[v->kernel]);
        strcpy(j->params, v->params);
        strcpy(j->mask, s->masks.v[ix[G_MASK]]);
        strcpy(j->pass, s->passes.v[ix[G_PASS]]);
        j->threads = (int)s->threads.v[ix[G_THREADS]];
        j->B = s->B.v[ix[G_B]];
        j->H = s->H.v[ix[G_H]];
        j->H_kv = s->H_kv.n ? s->H_kv.v[ix[G_HKV]] : j->H;
        j->D = s->D.v[ix[G_D]];
        j->Dv = s->Dv.n ? s->Dv.v[ix[G_DV]] : j->D;
        j->N = s->N.v[ix[G_N]];
        j->N_kv = s->N_kv.n ? s->N_kv.v[ix[G_NKV]] : j->N;
        if (s->kv_lens.n) { /* B sequences; a ragged batch's longest sets N_kv, a padded one is N long */
            int64_t lens[64];
            int nl = cfg_parse_kv_lens(s->kv_lens.v[ix[G_KVL]], lens, 64);
            strcpy(j->kv_lens, s->kv_lens.v[ix[G_KVL]]);
            j->lens_padded = s->lens_padded;
            j->B = nl, j->N_kv = s->lens_padded ? j->N : 0;
            for (int i = 0; !s->lens_padded && i < nl; i++)
                j->N_kv = lens[i] > j->N_kv ? lens[i] : j->N_kv;
        }
        j->seed = s->seed;
        j->entry = entry;
    }
    free(vars);
    *count = total;
    return 0;
}

static int suite_selected(const cfg_suite *s, const cfg_filter *f)
{
    return !f || !f->suite || strcmp(f->suite, s->name) == 0;
}

static int check_filter(const cfg_config *cfg, const cfg_filter *f)
{
    if (!f)
        return 0;
    char names[512] = "";
    int any = 0;
    for (size_t i = 0; i < cfg->n_suites; i++) {
        any |= suite_selected(&cfg->suites[i], f);
        list_add(names, sizeof names, cfg->suites[i].name);
    }
    if (!any)
        return attn_fail(ATTN_EINVAL, "suite filter '%s': expected one of %s (the suites of %s)", f->suite, names,
                         cfg->path);
    for (size_t k = 0; f->kernels && k < f->n_kernels; k++) {
        int found = 0;
        names[0] = '\0';
        for (size_t i = 0; i < cfg->n_suites; i++)
            for (size_t j = 0; suite_selected(&cfg->suites[i], f) && j < cfg->suites[i].kernels.n; j++) {
                const char *kn = cfg->suites[i].kernels.v[j];
                found |= strcmp(kn, f->kernels[k]) == 0;
                list_add(names, sizeof names, kn);
            }
        if (!found)
            return attn_fail(ATTN_EINVAL, "kernel filter '%s': expected one of %s (the kernels of the selected "
                             "suites of %s)", f->kernels[k], names, cfg->path);
    }
    return 0;
}

int cfg_expand_filtered(const cfg_config *cfg, const cfg_filter *f, cfg_job **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    int rc = check_filter(cfg, f);
    if (rc)
        return rc;
    size_t total = 0, count;
    for (size_t i = 0; i < cfg->n_suites; i++) {
        if (suite_selected(&cfg->suites[i], f) && (rc = expand_suite(&cfg->suites[i], i, f, NULL, &count)))
            return rc;
        total += suite_selected(&cfg->suites[i], f) ? count : 0;
    }
    cfg_job *out = malloc((total ? total : 1) * sizeof *out);
    if (!out)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory expanding %zu jobs", cfg->path, total);
    for (size_t i = 0; i < cfg->n_suites && !rc; i++)
        if (suite_selected(&cfg->suites[i], f) && !(rc = expand_suite(&cfg->suites[i], i, f, out + *n, &count)))
            *n += count;
    if (rc) {
        free(out);
        *n = 0;
        return rc;
    }
    *jobs = out;
    return 0;
}

int cfg_expand(const cfg_config *cfg, cfg_job **jobs, size_t *n)
{
    return cfg_expand_filtered(cfg, NULL, jobs, n);
}

/* Orders jobs by every field: 0 means the same job. */
static int job_key_cmp(const cfg_job *a, const cfg_job *b)
{
    int c;
    if ((c = strcmp(a->suite, b->suite)) || (c = strcmp(a->kernel, b->kernel)) || (c = strcmp(a->mask, b->mask)) ||
        (c = strcmp(a->pass, b->pass)) || (c = strcmp(a->params, b->params)) ||
        (c = strcmp(a->kv_lens, b->kv_lens)) || (c = a->lens_padded - b->lens_padded))
        return c;
    const int64_t x[] = {a->B, a->H, a->H_kv, a->N, a->N_kv, a->D, a->Dv, a->threads, (int64_t)a->seed};
    const int64_t y[] = {b->B, b->H, b->H_kv, b->N, b->N_kv, b->D, b->Dv, b->threads, (int64_t)b->seed};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static int job_cmp(const void *pa, const void *pb)
{
    const cfg_job *a = *(const cfg_job *const *)pa, *b = *(const cfg_job *const *)pb;
    int c = job_key_cmp(a, b);
    return c ? c : (a > b) - (a < b);   /* equal jobs in file order: the earlier comes first */
}

/* Entries sharing a suite name must not repeat a job: it would run twice and
 * write two rows with one job_id. (Repeats within an entry are impossible:
 * its lists hold distinct values.) */
static int check_unique_jobs(const cfg_config *cfg)
{
    cfg_job *jobs;
    size_t n;
    int rc = cfg_expand(cfg, &jobs, &n);
    const cfg_job **by = rc ? NULL : malloc((n ? n : 1) * sizeof *by);
    if (!rc && !by)
        rc = attn_fail(ATTN_ENOMEM, "%s: out of memory checking %zu jobs", cfg->path, n);
    for (size_t i = 0; by && i < n; i++)
        by[i] = &jobs[i];
    if (by)
        qsort(by, n, sizeof *by, job_cmp);
    for (size_t i = 1; by && !rc && i < n; i++) {
        const cfg_job *a = by[i - 1], *b = by[i];
        if (job_key_cmp(a, b) != 0)
            continue;
        rc = attn_fail(ATTN_EINVAL, "%s: $.suites[%zu]: expected jobs distinct from $.suites[%zu], found kernel "
                       "%s mask %s pass %s N %lld D %lld threads %d in both", cfg->path, b->entry, a->entry,
                       b->kernel, b->mask, b->pass, (long long)b->N, (long long)b->D, b->threads);
    }
    free(by);
    free(jobs);
    return rc;
}

/* ---------------------------------------------------------------- dump */

static cJSON *ints_json(const cfg_ints *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v->v[i]));
    return a;
}

static cJSON *strs_json(const cfg_strs *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v->v[i]));
    return a;
}

static cJSON *suite_json(const cfg_suite *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "suite", s->name);
    if (s->description[0])
        cJSON_AddStringToObject(o, "description", s->description);
    cJSON_AddItemToObject(o, "kernels", strs_json(&s->kernels));
    cJSON_AddItemToObject(o, "masks", strs_json(&s->masks));
    cJSON_AddItemToObject(o, "pass", strs_json(&s->passes));
    const struct { const char *key; const cfg_ints *v; } ints[] = {
        {"B", &s->B}, {"H", &s->H}, {"H_kv", &s->H_kv}, {"N", &s->N}, {"N_kv", &s->N_kv}, {"D", &s->D},
        {"Dv", &s->Dv}, {"threads", &s->threads},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].v->n && !(s->kv_lens.n && ints[i].v == &s->B))   /* empty H_kv / N_kv: equal to H / N;
                                                                         a ragged batch sets B */
            cJSON_AddItemToObject(o, ints[i].key, ints_json(ints[i].v));
    if (s->params.n)
        cJSON_AddItemToObject(o, "params", strs_json(&s->params));
    if (s->kv_lens.n)
        cJSON_AddItemToObject(o, s->lens_padded ? "seq_lens" : "kv_lens", strs_json(&s->kv_lens));
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    return o;
}

void cfg_dump(FILE *f, const cfg_config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", cfg->name);
    if (cfg->description[0])
        cJSON_AddStringToObject(o, "description", cfg->description);
    cJSON_AddItemToObject(o, "threads", ints_json(&cfg->threads));
    cJSON *m = cJSON_AddObjectToObject(o, "measure");
    cJSON_AddNumberToObject(m, "warmup", (double)cfg->measure.warmup);
    cJSON_AddNumberToObject(m, "min_reps", (double)cfg->measure.min_reps);
    cJSON_AddNumberToObject(m, "min_time_s", cfg->measure.min_time_s);
    cJSON_AddNumberToObject(m, "max_reps", (double)cfg->measure.max_reps);
    cJSON_AddNumberToObject(o, "max_workspace_bytes", (double)cfg->max_workspace_bytes);
    cJSON *a = cJSON_AddArrayToObject(o, "suites");
    for (size_t i = 0; i < cfg->n_suites; i++)
        cJSON_AddItemToArray(a, suite_json(&cfg->suites[i]));
    char *text = cJSON_Print(o);
    if (text)
        fprintf(f, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
}
