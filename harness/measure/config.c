/* Sweep config files: strict cJSON-based parsing, validation with JSON-path
 * messages, and expansion into a flat job list (format in config.h). */
#include "config.h"
#include "harness/train/config_train.h"

#include "kernels/core/attn.h"
#include "kernels/core/registry.h"
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

/* Reads one list element into its typed slot `out` and writes its canonical
 * text to `canon` (what distinctness is judged on); ctx is the entry being
 * parsed. */
typedef int (*elem_read)(const where *w, const cJSON *v, const cfg_suite *ctx, void *out, char canon[CFG_SPEC_MAX]);

/* A non-empty list of distinct elements of `size` bytes each, read by `read`
 * into *out (calloc'ed, *n of them). */
static int get_list(const where *w, const cJSON *obj, const char *key, int required, elem_read read, size_t size,
                    const cfg_suite *ctx, void **out, size_t *n)
{
    int rc;
    const cJSON *a = array_at(w, obj, key, required, "a non-empty array of strings", &rc);
    where kw = at_key(w, key);
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
        where ew = at_index(&kw, *n);
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

static int read_kernel(const where *w, const cJSON *v, const cfg_suite *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    int rc = get_name(w, v, canon);
    if (rc == 0 && strcmp(canon, "oracle") == 0)
        return attn_fail(ATTN_EINVAL, "%s: %s: expected a benchmark kernel, found \"oracle\" (the fp64 "
                         "correctness reference: `attnbench check` runs it, sweeps do not)", w->file, w->path);
    strcpy(out, canon);
    return rc;
}

static int read_mask(const where *w, const cJSON *v, const cfg_suite *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    attn_mask *m = out;
    if (!cJSON_IsString(v))
        return bad(w, "a mask spec string", v);
    if (attn_mask_parse(v->valuestring, m) != 0) {
        char why[256];   /* a copy: attn_fail writes the buffer attn_last_error reads */
        snprintf(why, sizeof why, "%s", attn_last_error());
        return attn_fail(ATTN_EINVAL, "%s: %s: %s", w->file, w->path, why);
    }
    attn_mask_format(m, canon, CFG_SPEC_MAX);   /* two spellings of one mask are one value */
    return 0;
}

static int read_pass(const where *w, const cJSON *v, const cfg_suite *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    if (!cJSON_IsString(v) || bench_pass_parse(v->valuestring, out) != 0)
        return bad(w, "one of \"fwd\", \"bwd\", \"fwdbwd\"", v);
    strcpy(canon, v->valuestring);
    return 0;
}

/* A one-element list holding *value when the entry gave none. */
static int default_one(void **v, size_t *n, const void *value, size_t size)
{
    if (*n)
        return 0;
    if (!(*v = malloc(size)))
        return attn_fail(ATTN_ENOMEM, "config: out of memory");
    memcpy(*v, value, size);
    *n = 1;
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
static int read_kparams(const where *w, const cJSON *v, const cfg_suite *s, void *out, char canon[CFG_SPEC_MAX])
{
    cfg_kparams *kp = out;
    const char *shape = "\"kernel:key=value,...\" naming one of this entry's kernels";
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CFG_SPEC_MAX || !strchr(v->valuestring, ':'))
        return bad(w, shape, v);
    char buf[CFG_SPEC_MAX];
    strcpy(buf, v->valuestring);
    char *params = strchr(buf, ':');
    *params++ = '\0';
    int listed = 0;
    for (size_t k = 0; k < s->kernels.n; k++)
        listed |= strcmp(s->kernels.v[k], buf) == 0;
    if (!listed || (params[0] && (params[0] == ',' || strstr(params, ",,") || params[strlen(params) - 1] == ',')))
        return bad(w, shape, v);
    strcpy(kp->kernel, buf);
    param_bag *p = &kp->params;
    for (char *save = NULL, *kv = strtok_r(params, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        if (param_bag_add(p, kv) != 0)
            return attn_fail(ATTN_EINVAL, "%s: %s: expected key=value pairs (keys < 32, values < 64 "
                             "characters, at most %d), found \"%s\"", w->file, w->path, PARAM_BAG_MAX, kv);
        for (int j = 0; j < p->n - 1; j++)
            if (strcmp(p->key[j], p->key[p->n - 1]) == 0)
                return attn_fail(ATTN_EINVAL, "%s: %s: expected each key once, found \"%s\" again",
                                 w->file, w->path, p->key[j]);
    }
    strcpy(canon, v->valuestring);
    return 0;
}

/* "L+L+...": a batch's lengths, each an integer >= 0, at most 64. The kind
 * (ragged or padded) is set by the caller from the key. */
static int read_lens(const where *w, const cJSON *v, const cfg_suite *s, void *out, char canon[CFG_SPEC_MAX])
{
    (void)s;
    bench_lens *l = out;
    const char *shape = "a ragged batch \"L+L+...\" (1 to 64 KV lengths >= 0, at least one > 0)";
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CFG_SPEC_MAX)
        return bad(w, shape, v);
    if ((l->n = cfg_parse_kv_lens(v->valuestring, l->len, BENCH_LENS_MAX)) <= 0)
        return bad(w, shape, v);
    strcpy(canon, v->valuestring);
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

/* "kv_lens" (ragged batches) or "seq_lens" (padded ones, no longer than any
 * N); either sets B and N_kv, so neither may be given beside it. */
static int parse_lens(const where *w, const cJSON *o, cfg_suite *s)
{
    int padded = item(o, "seq_lens") != NULL, rc;
    const char *key = padded ? "seq_lens" : "kv_lens";
    where kw = at_key(w, key);
    if (padded && item(o, "kv_lens"))
        return attn_fail(ATTN_EINVAL, "%s: %s: expected padded batches or ragged ones (\"kv_lens\"), found both",
                         w->file, kw.path);
    if ((rc = get_list(w, o, key, 0, read_lens, sizeof *s->lens.v, s, (void **)&s->lens.v, &s->lens.n)))
        return rc;
    for (size_t i = 0; i < s->lens.n; i++) {
        bench_lens *l = &s->lens.v[i];
        l->kind = padded ? BENCH_LENS_PADDED_SEQ : BENCH_LENS_RAGGED_KV;
        int64_t longest = 0;
        for (int b = 0; b < l->n; b++)
            longest = l->len[b] > longest ? l->len[b] : longest;
        for (size_t k = 0; padded && k < s->N.n; k++)
            if (s->N.v[k] < longest) {
                where iw = at_index(&kw, i);
                return attn_fail(ATTN_EINVAL, "%s: %s: expected lengths <= every N (the padded length), found "
                                 "%lld > N = %lld", w->file, iw.path, (long long)longest, (long long)s->N.v[k]);
            }
    }
    if (s->lens.n && (s->B.n || s->N_kv.n))
        return attn_fail(ATTN_EINVAL, "%s: %s: expected no \"B\" or \"N_kv\" beside it (a %s batch sets "
                         "both), found %s", w->file, kw.path, padded ? "padded" : "ragged",
                         s->B.n ? "\"B\"" : "\"N_kv\"");
    return 0;
}

static int check_gqa(const where *w, const cfg_suite *s)
{
    for (size_t i = 0; i < s->H_kv.n; i++)
        for (size_t j = 0; j < s->H.n; j++)
            if (s->H.v[j] % s->H_kv.v[i] != 0) {
                where kw_hkv = at_key(w, "H_kv"), hw = at_index(&kw_hkv, i);
                return attn_fail(ATTN_EINVAL, "%s: %s: expected a divisor of every H (GQA groups), found %lld "
                                 "(H = %lld)", w->file, hw.path, (long long)s->H_kv.v[i], (long long)s->H.v[j]);
            }
    return 0;
}

static int parse_suite(const where *w, const cJSON *o, const cfg_config *cfg, cfg_suite *s)
{
    static const char *const keys[] = {"suite", "description", "kernels", "masks", "pass", "B", "H", "H_kv",
                                       "N", "N_kv", "D", "Dv", "params", "threads", "seed", "kv_lens",
                                       "seq_lens", NULL};
    int64_t seed = 1;
    int rc;
    if ((rc = check_keys(w, o, keys)) || (rc = req_name(w, o, "suite", s->name)) ||
        (rc = opt_string(w, o, "description", sizeof s->description, s->description)) ||
        (rc = get_list(w, o, "kernels", 1, read_kernel, sizeof *s->kernels.v, s, (void **)&s->kernels.v,
                       &s->kernels.n)) ||
        (rc = get_list(w, o, "masks", 0, read_mask, sizeof *s->masks.v, s, (void **)&s->masks.v, &s->masks.n)) ||
        (rc = get_list(w, o, "pass", 0, read_pass, sizeof *s->passes.v, s, (void **)&s->passes.v, &s->passes.n)) ||
        (rc = get_ints(w, o, "B", 0, 1, EXACT_MAX, &s->B)) || (rc = get_ints(w, o, "H", 1, 1, EXACT_MAX, &s->H)) ||
        (rc = get_ints(w, o, "H_kv", 0, 1, EXACT_MAX, &s->H_kv)) ||
        (rc = get_ints(w, o, "N", 1, 1, EXACT_MAX, &s->N)) ||
        (rc = get_ints(w, o, "N_kv", 0, 1, EXACT_MAX, &s->N_kv)) ||
        (rc = get_ints(w, o, "D", 1, 1, EXACT_MAX, &s->D)) ||
        (rc = get_ints(w, o, "Dv", 0, 1, EXACT_MAX, &s->Dv)) ||
        (rc = get_ints(w, o, "threads", 0, 1, 4096, &s->threads)) ||
        (rc = get_list(w, o, "params", 0, read_kparams, sizeof *s->params.v, s, (void **)&s->params.v,
                       &s->params.n)) ||
        (rc = parse_lens(w, o, s)) || (rc = opt_int(w, o, "seed", 0, EXACT_MAX, &seed)) || (rc = check_gqa(w, s)))
        return rc;
    s->seed = (uint64_t)seed;
    const int64_t one = 1;
    const attn_mask full = attn_mask_default(ATTN_MASK_FULL);
    const bench_pass_set fwd = ATTN_RUN_FWD;
    if ((rc = default_one((void **)&s->masks.v, &s->masks.n, &full, sizeof full)) ||
        (rc = default_one((void **)&s->passes.v, &s->passes.n, &fwd, sizeof fwd)) ||
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
    free(s->lens.v);
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
    const attn_kernel *kernel;
    const param_bag *params;    /* NULL: the kernel's defaults */
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
 * kernel, or the kernel's defaults when none does. Kernels are resolved in
 * the registry here. */
static int suite_variants(const cfg_config *cfg, const cfg_suite *s, const cfg_filter *f, variant *out, size_t *n)
{
    *n = 0;
    for (size_t k = 0; k < s->kernels.n; k++) {
        if (!kernel_selected(s->kernels.v[k], f))
            continue;
        const attn_kernel *kernel = attn_find_kernel(s->kernels.v[k]);
        if (!kernel)
            return attn_fail(ATTN_EINVAL, "%s: suite '%s': %s", cfg->path, s->name, attn_last_error());
        size_t before = *n;
        for (size_t p = 0; p < s->params.n; p++)
            if (strcmp(s->params.v[p].kernel, s->kernels.v[k]) == 0)
                out[(*n)++] = (variant){kernel, &s->params.v[p].params};
        if (*n == before)
            out[(*n)++] = (variant){kernel, NULL};
    }
    return 0;
}

/* The settings every job of the config shares. */
static bench_job job_base(const cfg_config *cfg, const cfg_suite *s)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.suite, sizeof j.suite, "%s", s->name);
    j.seed = s->seed;
    j.max_workspace_bytes = (size_t)cfg->max_workspace_bytes;
    j.measure = (measure_opts){(int)cfg->measure.warmup, (int)cfg->measure.min_reps, (int)cfg->measure.max_reps,
                               cfg->measure.min_time_s};
    return j;
}

/* A batch of its own lengths sets B; a ragged one's longest sets N_kv, a
 * padded one is N long (self-attention). */
static void apply_lens(const bench_lens *l, bench_job *j)
{
    j->lens = *l;
    j->args.B = l->n;
    j->args.Nk = l->kind == BENCH_LENS_PADDED_SEQ ? j->args.Nq : 0;
    for (int i = 0; l->kind == BENCH_LENS_RAGGED_KV && i < l->n; i++)
        j->args.Nk = l->len[i] > j->args.Nk ? l->len[i] : j->args.Nk;
}

/* Job number t of the entry's grid (dims as in expand_suite). */
static void grid_job(const cfg_config *cfg, const cfg_suite *s, const variant *vars, const size_t dim[G__COUNT],
                     size_t t, bench_job *j)
{
    size_t ix[G__COUNT];
    for (int d = G__COUNT - 1; d >= 0; d--) {
        ix[d] = t % dim[d];
        t /= dim[d];
    }
    const variant *v = &vars[ix[G_VARIANT]];
    *j = job_base(cfg, s);
    j->kernel = v->kernel;
    attn_args *a = &j->args;
    if (v->params)
        a->params = *v->params;
    a->mask = s->masks.v[ix[G_MASK]];
    j->pass = s->passes.v[ix[G_PASS]];
    a->threads = (int)s->threads.v[ix[G_THREADS]];
    a->B = s->B.v[ix[G_B]];
    a->H = s->H.v[ix[G_H]];
    a->H_kv = s->H_kv.n ? s->H_kv.v[ix[G_HKV]] : a->H;
    a->D = s->D.v[ix[G_D]];
    a->Dv = s->Dv.n ? s->Dv.v[ix[G_DV]] : a->D;
    a->Nq = s->N.v[ix[G_N]];
    a->Nk = s->N_kv.n ? s->N_kv.v[ix[G_NKV]] : a->Nq;
    if (s->lens.n)
        apply_lens(&s->lens.v[ix[G_KVL]], j);
}

/* Counts the entry's jobs into *count and writes them to out (unless NULL). */
static int expand_suite(const cfg_config *cfg, size_t entry, const cfg_filter *f, cfg_job *out, size_t *count)
{
    const cfg_suite *s = &cfg->suites[entry];
    variant *vars = malloc((s->kernels.n + s->params.n) * sizeof *vars);
    if (!vars)
        return attn_fail(ATTN_ENOMEM, "suite %s: out of memory", s->name);
    size_t n_vars;
    int rc = suite_variants(cfg, s, f, vars, &n_vars);
    size_t dim[G__COUNT] = {
        [G_THREADS] = s->threads.n, [G_VARIANT] = n_vars, [G_MASK] = s->masks.n,
        [G_PASS] = s->passes.n, [G_B] = s->B.n, [G_H] = s->H.n, [G_HKV] = s->H_kv.n ? s->H_kv.n : 1,
        [G_D] = s->D.n, [G_DV] = s->Dv.n ? s->Dv.n : 1, [G_N] = s->N.n, [G_NKV] = s->N_kv.n ? s->N_kv.n : 1,
        [G_KVL] = s->lens.n ? s->lens.n : 1,
    };
    size_t total = 1;
    for (int d = 0; d < G__COUNT; d++)
        total *= dim[d];
    for (size_t t = 0; !rc && out && t < total; t++) {
        grid_job(cfg, s, vars, dim, t, &out[t].job);
        out[t].entry = entry;
    }
    free(vars);
    *count = total;
    return rc;
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
    size_t total = 0, count = 0;
    for (size_t i = 0; i < cfg->n_suites; i++) {
        if (suite_selected(&cfg->suites[i], f) && (rc = expand_suite(cfg, i, f, NULL, &count)))
            return rc;
        total += suite_selected(&cfg->suites[i], f) ? count : 0;
    }
    cfg_job *out = malloc((total ? total : 1) * sizeof *out);
    if (!out)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory expanding %zu jobs", cfg->path, total);
    for (size_t i = 0; i < cfg->n_suites && !rc; i++)
        if (suite_selected(&cfg->suites[i], f) && !(rc = expand_suite(cfg, i, f, out + *n, &count)))
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

static int bag_cmp(const param_bag *a, const param_bag *b)
{
    int c = a->n - b->n;
    for (int i = 0; !c && i < a->n; i++)
        if (!(c = strcmp(a->key[i], b->key[i])))
            c = strcmp(a->val[i], b->val[i]);
    return c;
}

/* Orders jobs by every field: 0 means the same job. Masks and parameters
 * compare by their canonical text, which is what tells two of them apart. */
static int job_key_cmp(const cfg_job *ja, const cfg_job *jb)
{
    const bench_job *a = &ja->job, *b = &jb->job;
    char ma[128], mb[128];
    attn_mask_format(&a->args.mask, ma, sizeof ma);
    attn_mask_format(&b->args.mask, mb, sizeof mb);
    int c;
    if ((c = strcmp(a->suite, b->suite)) || (c = strcmp(a->kernel->name, b->kernel->name)) || (c = strcmp(ma, mb)) ||
        (c = (int)a->pass - (int)b->pass) || (c = bag_cmp(&a->args.params, &b->args.params)) ||
        (c = (int)a->lens.kind - (int)b->lens.kind) || (c = a->lens.n - b->lens.n) ||
        (c = memcmp(a->lens.len, b->lens.len, (size_t)a->lens.n * sizeof *a->lens.len)))
        return c;
    const attn_args *x = &a->args, *y = &b->args;
    const int64_t u[] = {x->B, x->H, x->H_kv, x->Nq, x->Nk, x->D, x->Dv, x->threads, (int64_t)a->seed};
    const int64_t v[] = {y->B, y->H, y->H_kv, y->Nq, y->Nk, y->D, y->Dv, y->threads, (int64_t)b->seed};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++)
        if (u[i] != v[i])
            return u[i] < v[i] ? -1 : 1;
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
        const bench_job *j = &b->job;
        char mask[128];
        attn_mask_format(&j->args.mask, mask, sizeof mask);
        rc = attn_fail(ATTN_EINVAL, "%s: $.suites[%zu]: expected jobs distinct from $.suites[%zu], found kernel "
                       "%s mask %s pass %s N %lld D %lld threads %d in both", cfg->path, b->entry, a->entry,
                       j->kernel->name, mask, bench_pass_name(j->pass), (long long)j->args.Nq, (long long)j->args.D,
                       j->args.threads);
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

/* The typed lists back in the spelling the config reader takes. */
static cJSON *masks_json(const cfg_masks *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++) {
        char spec[CFG_SPEC_MAX];
        attn_mask_format(&v->v[i], spec, sizeof spec);
        cJSON_AddItemToArray(a, cJSON_CreateString(spec));
    }
    return a;
}

static cJSON *passes_json(const cfg_passes *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(bench_pass_name(v->v[i])));
    return a;
}

static cJSON *kparams_json(const cfg_kparams_list *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++) {
        char text[CFG_SPEC_MAX * 2];
        const param_bag *p = &v->v[i].params;
        snprintf(text, sizeof text, "%s:", v->v[i].kernel);
        for (int k = 0; k < p->n; k++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s=%s", k ? "," : "", p->key[k], p->val[k]);
        cJSON_AddItemToArray(a, cJSON_CreateString(text));
    }
    return a;
}

static cJSON *lens_json(const cfg_lens_list *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++) {
        char text[BENCH_LENS_MAX * 21] = "";
        for (int b = 0; b < v->v[i].n; b++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%lld", b ? "+" : "",
                     (long long)v->v[i].len[b]);
        cJSON_AddItemToArray(a, cJSON_CreateString(text));
    }
    return a;
}

static cJSON *suite_json(const cfg_suite *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "suite", s->name);
    if (s->description[0])
        cJSON_AddStringToObject(o, "description", s->description);
    cJSON_AddItemToObject(o, "kernels", strs_json(&s->kernels));
    cJSON_AddItemToObject(o, "masks", masks_json(&s->masks));
    cJSON_AddItemToObject(o, "pass", passes_json(&s->passes));
    const struct { const char *key; const cfg_ints *v; } ints[] = {
        {"B", &s->B}, {"H", &s->H}, {"H_kv", &s->H_kv}, {"N", &s->N}, {"N_kv", &s->N_kv}, {"D", &s->D},
        {"Dv", &s->Dv}, {"threads", &s->threads},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].v->n && !(s->lens.n && ints[i].v == &s->B))   /* empty H_kv / N_kv: equal to H / N;
                                                                     a batch of lengths sets B */
            cJSON_AddItemToObject(o, ints[i].key, ints_json(ints[i].v));
    if (s->params.n)
        cJSON_AddItemToObject(o, "params", kparams_json(&s->params));
    if (s->lens.n)
        cJSON_AddItemToObject(o, s->lens.v[0].kind == BENCH_LENS_PADDED_SEQ ? "seq_lens" : "kv_lens",
                              lens_json(&s->lens));
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
