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
        cfg_kparams_format(&v->v[i], text, sizeof text);
        cJSON_AddItemToArray(a, cJSON_CreateString(text));
    }
    return a;
}

static cJSON *lens_json(const cfg_lens_list *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->n; i++) {
        char text[BENCH_LENS_MAX * 21];
        bench_lens_format(&v->v[i], text, sizeof text);
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
        cJSON_AddItemToObject(o, bench_lens_key(&s->lens.v[0]), lens_json(&s->lens));
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
