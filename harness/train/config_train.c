#include "config_train.h"

#include "kernels/core/registry.h"
#include "tasks/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    size_t index;
} at;

static int bad(const at *w, const char *key, const char *expected, const cJSON *found)
{
    const char *what = !found ? "nothing" : cJSON_IsString(found) ? "a string" : cJSON_IsNumber(found) ? "a number"
                       : cJSON_IsArray(found) ? "an array" : cJSON_IsObject(found) ? "an object" : "another value";
    return attn_fail(ATTN_EINVAL, "%s: $.trainings[%zu].%s: expected %s, found %s", w->path, w->index, key,
                     expected, what);
}

/* Prefixes the last recorded error with the JSON path (copied first: the
 * message buffer is the one attn_fail writes). */
static int with_path(const at *w, const char *key)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", attn_last_error());
    return attn_fail(ATTN_EINVAL, "%s: $.trainings[%zu].%s: %s", w->path, w->index, key, msg);
}

static int get_str(const at *w, const cJSON *o, const char *key, char *out, size_t n, const char *const *allowed)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x)
        return 0;
    int ok = cJSON_IsString(x) && strlen(x->valuestring) < n;
    for (const char *const *a = allowed; ok && a && *a; a++)
        if (!strcmp(*a, x->valuestring))
            break;
        else if (!a[1])
            ok = 0;
    if (!ok) {
        char e[64];
        snprintf(e, sizeof e, "a string of at most %zu characters", n - 1);
        return bad(w, key, allowed ? "one of the documented names" : e, x);
    }
    strcpy(out, x->valuestring);
    return 0;
}

/* A list of "key=value" strings x (at JSON path key) into p. */
static int params_from(const at *w, const cJSON *x, const char *key, param_bag *p)
{
    const cJSON *e;
    if (!cJSON_IsArray(x))
        return bad(w, key, "a list of \"key=value\" strings", x);
    cJSON_ArrayForEach(e, x)
    {
        if (!cJSON_IsString(e))
            return bad(w, key, "a list of \"key=value\" strings", e);
        if (param_bag_add(p, e->valuestring))
            return with_path(w, key);
    }
    return 0;
}

/* Whether object x has only the keys of the NULL-terminated list; else the
 * error names the first other key, at JSON path `where`. */
static int only_keys(const at *w, const cJSON *x, const char *where, const char *const *keys, const char *expected)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, x)
    {
        const char *const *k = keys;
        while (*k && strcmp(*k, e->string))
            k++;
        if (!*k)
            return attn_fail(ATTN_EINVAL, "%s: $.trainings[%zu].%s: unknown key \"%s\" (expected %s)", w->path,
                             w->index, where, e->string, expected);
    }
    return 0;
}

/* extrapolate.kernels[i]: {"kernel": "streaming", "params": ["mode=decode"],
 * "mask": "sink:n=4,w=192", "kv_dtype": "q8_0"}, a kernel swapped into every
 * layer for the grid (as 'attnbench eval --kernel K --param k=v --mask SPEC
 * --kv-dtype T'). */
static int get_swap(const at *w, const cJSON *x, int i, train_kernel_swap *sw)
{
    static const char *const keys[] = {"kernel", "params", "mask", "kv_dtype", NULL};
    char where[64], key[80];
    snprintf(where, sizeof where, "extrapolate.kernels[%d]", i);
    memset(sw, 0, sizeof *sw);
    if (!cJSON_IsObject(x))
        return bad(w, where, "an object {\"kernel\": K, \"params\": [\"k=v\"], \"mask\": SPEC}", x);
    int rc = only_keys(w, x, where, keys, "kernel, params, mask, kv_dtype");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(x, "kernel");
    snprintf(key, sizeof key, "%s.kernel", where);
    if (!rc && (!cJSON_IsString(k) || strlen(k->valuestring) >= sizeof sw->kernel))
        rc = bad(w, key, "a kernel name", k);
    const attn_kernel *kd = NULL;
    if (!rc && !(kd = attn_find_kernel(k->valuestring)))
        rc = with_path(w, key);
    if (!rc)
        strcpy(sw->kernel, k->valuestring);
    snprintf(key, sizeof key, "%s.params", where);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(x, "params");
    if (!rc && p)
        rc = params_from(w, p, key, &sw->params);
    snprintf(key, sizeof key, "%s.mask", where);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(x, "mask");
    attn_mask mk;
    if (!rc && m && (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof sw->mask))
        rc = bad(w, key, "a mask spec (e.g. \"sink:n=4,w=192\")", m);
    else if (!rc && m && attn_mask_parse(m->valuestring, &mk))
        rc = with_path(w, key);
    else if (!rc && m && !(kd->masks & ATTN_MASK_BIT(mk.kind)))
        rc = attn_fail(ATTN_EINVAL, "%s: $.trainings[%zu].%s: kernel '%s' does not support mask '%s'", w->path,
                       w->index, key, kd->name, m->valuestring);
    if (!rc && m)
        strcpy(sw->mask, m->valuestring);
    snprintf(key, sizeof key, "%s.kv_dtype", where);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "kv_dtype");
    if (!rc && t && !cJSON_IsString(t))
        rc = bad(w, key, "a KV format name (fp32, bf16, fp16, q8_0, q4_0)", t);
    else if (!rc && t && attn_kv_dtype_parse(t->valuestring, &sw->kv_dtype))
        rc = with_path(w, key);
    else if (!rc && sw->kv_dtype && !(kd->kv_dtypes & ATTN_KV_BIT(sw->kv_dtype)))
        rc = attn_fail(ATTN_EINVAL, "%s: $.trainings[%zu].%s: kernel '%s' does not read a %s KV cache", w->path,
                       w->index, key, kd->name, t->valuestring);
    return rc;
}

static const opt_def extrapolate_rows[] = {
    {.name = "scale", .type = OPT_INT_LIST, .offset = offsetof(train_run_opts, scale), .size = CFG_TRAIN_GRID,
     .count_offset = offsetof(train_run_opts, n_scales), .lo = 1, .hi = 1024, .help = "multiples of the trained length"},
    {.name = "depths", .type = OPT_INT32, .offset = offsetof(train_run_opts, depths), .lo = 0, .hi = 101,
     .help = "needle depths (0: as trained)"},
    {.name = "mem_budgets", .type = OPT_INT_LIST, .offset = offsetof(train_run_opts, mem_budget), .size = 16,
     .count_offset = offsetof(train_run_opts, n_budgets), .lo = 1, .hi = 1e18,
     .help = "each grid again under these memory budgets in bytes (eval --mem-budget)"},
    {0},
};

/* "extrapolate": {"scale": [1, 2, 4, 8], "depths": 5, "kernels": [...],
 * "mem_budgets": [65536, ...], "dump_kv": "NAME.kv"}: evaluate the trained
 * checkpoint at these multiples of its length (and needle depths), then the
 * same grid with each listed kernel swapped in, each of them again under
 * each memory budget, then write its attention inputs at the largest scale. */
static int get_extrapolate(const at *w, const cJSON *o, train_run_opts *r)
{
    static const char *const keys[] = {"scale", "depths", "kernels", "mem_budgets", "dump_kv", NULL};
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "extrapolate"), *e;
    if (!x)
        return 0;
    if (!cJSON_IsObject(x))
        return bad(w, "extrapolate", "an object {\"scale\": [...], \"depths\": K, \"kernels\": [...]}", x);
    if (only_keys(w, x, "extrapolate", keys, "scale, depths, kernels, mem_budgets, dump_kv"))
        return ATTN_EINVAL;
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(x, "dump_kv");
    r->dump_kv[0] = '\0';
    if (kv && (!cJSON_IsString(kv) || !kv->valuestring[0] || strchr(kv->valuestring, '/') ||
               strlen(kv->valuestring) >= sizeof r->dump_kv))
        return bad(w, "extrapolate.dump_kv", "a file name (no directory: it is written into the results directory)", kv);
    if (kv)
        strcpy(r->dump_kv, kv->valuestring);
    const cJSON *ks = cJSON_GetObjectItemCaseSensitive(x, "kernels");
    if (ks && (!cJSON_IsArray(ks) || cJSON_GetArraySize(ks) < 1 || cJSON_GetArraySize(ks) > ATTN_TRAIN_MAX_SWAPS)) {
        char what[96];
        snprintf(what, sizeof what, "a list of 1..%d kernel objects {\"kernel\": K, ...}", ATTN_TRAIN_MAX_SWAPS);
        return bad(w, "extrapolate.kernels", what, ks);
    }
    r->n_swaps = 0;
    cJSON_ArrayForEach(e, ks)
    {
        if (get_swap(w, e, r->n_swaps, &r->swap[r->n_swaps]))
            return ATTN_EINVAL;
        r->n_swaps++;
    }
    char where[1100];
    snprintf(where, sizeof where, "%s: $.trainings[%zu].extrapolate", w->path, w->index);
    r->n_scales = 0, r->depths = 0, r->n_budgets = 0;
    int rc = cJSON_GetObjectItemCaseSensitive(x, "scale") ? opt_read_config(extrapolate_rows, r, x, where)
                                                          : bad(w, "extrapolate.scale", "a list of 1..16 length multiples", NULL);
    if (!rc && r->depths == 1)
        rc = bad(w, "extrapolate.depths", "0 (the trained depth) or 2..101 depths", cJSON_GetObjectItemCaseSensitive(x, "depths"));
    if (rc)
        r->n_scales = 0;
    return rc;
}

/* The grid of an entry: every job of it takes one value of each list. */
#define GRID(f) offsetof(cfg_training, f)
static const opt_def grid_rows[] = {
    {.name = "d_model", .type = OPT_INT_LIST, .offset = GRID(d_model), .size = CFG_TRAIN_GRID,
     .count_offset = GRID(n_d), NN_D_MODEL_RANGE, .help = "model widths"},
    {.name = "lr", .type = OPT_DOUBLE_LIST, .offset = GRID(lr), .size = CFG_TRAIN_GRID, .count_offset = GRID(n_lr),
     TRAIN_LR_RANGE, .help = "peak learning rates"},
    {.name = "seeds", .type = OPT_INT_LIST, .offset = GRID(seeds), .size = CFG_TRAIN_GRID,
     .count_offset = GRID(n_seeds), .def = 1, .lo = 0, .hi = 1e15, .help = "seeds of the weights and batches"},
    {0},
};

/* "kernels": ["flash", "linear+flash"] (one entry per job; "a+b": one per layer). */
static int get_kernels(const at *w, const cJSON *o, cfg_training *t)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kernels"), *e;
    if (!cJSON_IsArray(k) || cJSON_GetArraySize(k) < 1 || cJSON_GetArraySize(k) > CFG_TRAIN_GRID)
        return bad(w, "kernels", "a list of 1..16 kernel names (\"a+b\": one per layer)", k);
    cJSON_ArrayForEach(e, k)
    {
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= sizeof t->kernels[0])
            return bad(w, "kernels", "kernel names", e);
        char names[160], *save = NULL;
        strcpy(names, e->valuestring);
        int per_layer = 0;
        for (char *n = strtok_r(names, "+", &save); n; n = strtok_r(NULL, "+", &save), per_layer++)
            if (!attn_find_kernel(n))
                return with_path(w, "kernels");
        if (per_layer > NN_MAX_LAYERS)
            return bad(w, "kernels", "at most 16 kernels per \"a+b+...\" entry (one per layer)", e);
        strcpy(t->kernels[t->n_kernels++], e->valuestring);
    }
    return 0;
}

/* The keys of an entry that are not options of the run or the model: its
 * name and text, the grid, and what runs after the training. */
static const char *const entry_keys[] = {"suite", "description", "kernels", "extrapolate", NULL};

static int parse_one(const at *w, const cJSON *o, cfg_training *t)
{
    static const opt_def *const tables[] = {train_run_opts_table, nn_model_opts, grid_rows, NULL};
    char where[1100];
    snprintf(where, sizeof where, "%s: $.trainings[%zu]", w->path, w->index);
    if (!cJSON_IsObject(o))
        return attn_fail(ATTN_EINVAL, "%s: expected an object", where);
    memset(t, 0, sizeof *t);
    train_run_opts *r = &t->base;
    train_run_defaults(r);
    int rc = opt_check_keys(tables, entry_keys, o, where);
    if (!rc)
        rc = get_str(w, o, "suite", t->suite, sizeof t->suite, NULL);
    if (!rc)
        rc = get_str(w, o, "description", t->description, sizeof t->description, NULL);
    if (!rc)
        rc = opt_read_config(train_run_opts_table, r, o, where);
    if (!rc && !r->task[0])
        rc = bad(w, "task", "a task name", NULL);
    if (!rc && !task_find(r->task))
        rc = with_path(w, "task");
    if (!rc)
        rc = opt_read_config(nn_model_opts, &r->model, o, where);
    opt_defaults(grid_rows, t);
    if (!rc)
        rc = opt_read_config(grid_rows, t, o, where);
    if (!rc)
        rc = get_extrapolate(w, o, r);
    if (!rc)
        rc = get_kernels(w, o, t);
    if (!rc && !t->suite[0])
        snprintf(t->suite, sizeof t->suite, "%s", task_find(r->task)->suite);
    return rc;
}

int cfg_trainings_parse(const char *path, const cJSON *arr, cfg_training **out, size_t *n)
{
    *out = NULL, *n = 0;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1)
        return attn_fail(ATTN_EINVAL, "%s: $.trainings: expected a non-empty array of training objects", path);
    *out = calloc((size_t)cJSON_GetArraySize(arr), sizeof **out);
    if (!*out)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory", path);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        at w = {path, *n};
        int rc = parse_one(&w, e, &(*out)[*n]);
        if (rc)
            return rc;
        (*n)++;
    }
    return 0;
}

static int kernel_selected(const char *entry, const char *const *kernels, size_t n)
{
    if (!kernels)
        return 1;
    char names[160], *save = NULL;
    strcpy(names, entry);
    for (char *k = strtok_r(names, "+", &save); k; k = strtok_r(NULL, "+", &save))
        for (size_t i = 0; i < n; i++)
            if (!strcmp(k, kernels[i]))
                return 1;
    return 0;
}

int cfg_trainings_expand(const cfg_training *t, size_t n, const char *suite, const char *task,
                         const char *const *kernels, size_t n_kernels, train_run_opts **jobs, size_t *n_jobs)
{
    size_t cap = 0;
    for (size_t e = 0; e < n; e++)
        cap += (size_t)(t[e].n_kernels * t[e].n_d * t[e].n_lr * t[e].n_seeds);
    *jobs = calloc(cap ? cap : 1, sizeof **jobs);
    *n_jobs = 0;
    if (!*jobs)
        return attn_fail(ATTN_ENOMEM, "trainings: out of memory");
    for (size_t e = 0; e < n; e++) {
        const cfg_training *c = &t[e];
        if ((suite && strcmp(suite, c->suite)) || (task && strcmp(task, c->base.task)))
            continue;
        for (int k = 0; k < c->n_kernels; k++) {
            if (!kernel_selected(c->kernels[k], kernels, n_kernels))
                continue;
            for (int d = 0; d < c->n_d; d++)
                for (int l = 0; l < c->n_lr; l++)
                    for (int s = 0; s < c->n_seeds; s++) {
                        train_run_opts *j = &(*jobs)[(*n_jobs)++];
                        *j = c->base;
                        j->model.d_model = c->d_model[d], j->train.lr = c->lr[l], j->train.seed = (uint64_t)c->seeds[s];
                        char names[160], *save = NULL;
                        strcpy(names, c->kernels[k]);
                        j->model.n_kernels = 0;
                        for (char *kn = strtok_r(names, "+", &save); kn; kn = strtok_r(NULL, "+", &save))
                            snprintf(j->model.kernels[j->model.n_kernels++], sizeof j->model.kernels[0], "%s", kn);
                        if (j->model.n_kernels > 1 && j->model.variant == NN_VARIANT_TASK)
                            j->model.variant = NN_VARIANT_HYBRID;
                    }
        }
    }
    return 0;
}
