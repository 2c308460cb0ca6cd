/* The resolved sweep config (defaults filled in) back as JSON that the
 * reader accepts: `sweep --dry-run` prints it. */
#include "config.h"

#include "kernels/core/mask.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static cJSON *ints_json(const cfg_ints *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v->v[i]));
    return a;
}

/* The typed lists back in the spelling the config reader takes: each
 * element through its formatter. */
typedef void (*elem_text)(const void *elem, char *buf, size_t n);

static cJSON *texts_json(const void *v, size_t n, size_t size, elem_text text)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        char buf[BENCH_LENS_MAX * 21];   /* the longest: 64 lengths */
        text((const char *)v + i * size, buf, sizeof buf);
        cJSON_AddItemToArray(a, cJSON_CreateString(buf));
    }
    return a;
}

static void name_text(const void *name, char *buf, size_t n) { snprintf(buf, n, "%s", (const char *)name); }

static void mask_text(const void *m, char *buf, size_t n) { attn_mask_format(m, buf, (int)n); }

static void pass_text(const void *p, char *buf, size_t n)
{
    snprintf(buf, n, "%s", bench_pass_name(*(const bench_pass *)p));
}

static void inputs_text(const void *p, char *buf, size_t n)
{
    bench_inputs_format(p, buf, n);
}

static void kv_dtype_text(const void *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s", attn_kv_dtype_names[*(const attn_kv_dtype *)t]);
}

static void dtype_text(const void *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s", attn_dtype_names[*(const attn_dtype *)t]);
}

static void kparams_text(const void *kp, char *buf, size_t n) { cfg_kparams_format(kp, buf, n); }

static void lens_text(const void *l, char *buf, size_t n) { bench_lens_format(l, buf, n); }

#define LIST_JSON(list, text) texts_json((list).v, (list).n, sizeof *(list).v, text)

static cJSON *suite_json(const cfg_suite *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "suite", s->name);
    if (s->description[0])
        cJSON_AddStringToObject(o, "description", s->description);
    cJSON_AddItemToObject(o, "kernels", LIST_JSON(s->kernels, name_text));
    cJSON_AddItemToObject(o, "masks", LIST_JSON(s->masks, mask_text));
    cJSON_AddItemToObject(o, "pass", LIST_JSON(s->passes, pass_text));
    cJSON_AddItemToObject(o, "inputs", LIST_JSON(s->inputs, inputs_text));
    cJSON_AddItemToObject(o, "kv_dtype", LIST_JSON(s->kv_dtypes, kv_dtype_text));
    cJSON_AddItemToObject(o, "dtype", LIST_JSON(s->dtypes, dtype_text));
    const struct { const char *key; const cfg_ints *v; } ints[] = {
        {"B", &s->B}, {"H", &s->H}, {"H_kv", &s->H_kv}, {"N", &s->N}, {"N_kv", &s->N_kv}, {"D", &s->D},
        {"Dv", &s->Dv}, {"threads", &s->threads}, {"mem_budget_bytes", &s->mem_budget},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].v->n && !(s->lens.n && ints[i].v == &s->B))   /* empty H_kv / N_kv: equal to H / N;
                                                                     a batch of lengths sets B */
            cJSON_AddItemToObject(o, ints[i].key, ints_json(ints[i].v));
    if (s->params.n)
        cJSON_AddItemToObject(o, "params", LIST_JSON(s->params, kparams_text));
    if (s->lens.n)
        cJSON_AddItemToObject(o, bench_lens_key(&s->lens.v[0]), LIST_JSON(s->lens, lens_text));
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
    cJSON_AddNumberToObject(o, "max_time_s", cfg->max_time_s);
    cJSON_AddNumberToObject(o, "max_mem_bytes", cfg->max_mem_bytes);
    cJSON *a = cJSON_AddArrayToObject(o, "suites");
    for (size_t i = 0; i < cfg->n_suites; i++)
        cJSON_AddItemToArray(a, suite_json(&cfg->suites[i]));
    char *text = cJSON_Print(o);
    if (text)
        fprintf(f, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
}
