/* Sweep config files: the top-level object read strictly with cJSON (its
 * suites entries in config_suite.c, the JSON helpers in config_json.c),
 * validated with JSON-path messages (format in config.h). */
#include "config.h"
#include "config_suite.h"
#include "bench_opts.h"
#include "harness/train/config_train.h"

#include "common/attn_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The "measure" object: the measure rows of the bench option table. */
static int parse_measure(const cfg_where *w, const cJSON *o, cfg_measure *m)
{
    const char *keys[8];
    cfg_json_keys_of(NULL, bench_opts_table, BENCH_OPTS_MEASURE, keys, 8);
    int rc = cfg_json_check_keys(w, o, keys);
    if (rc || (rc = cfg_json_opt_int_row(w, o, bench_opt("warmup"), &m->warmup)) ||
        (rc = cfg_json_opt_int_row(w, o, bench_opt("min_reps"), &m->min_reps)) ||
        (rc = cfg_json_opt_int_row(w, o, bench_opt("max_reps"), &m->max_reps)) ||
        (rc = cfg_json_opt_double_row(w, o, bench_opt("min_time_s"), "seconds", &m->min_time_s)))
        return rc;
    if (m->max_reps < m->min_reps) {
        cfg_where mw = cfg_json_key(w, cfg_json_item(o, "max_reps") ? "max_reps" : "min_reps");
        return attn_fail(ATTN_EINVAL, "%s: %s: expected max_reps >= min_reps, found max_reps %lld < min_reps %lld",
                         w->file, mw.path, (long long)m->max_reps, (long long)m->min_reps);
    }
    return 0;
}

/* The measure rows' defaults. */
static cfg_measure measure_defaults(void)
{
    return (cfg_measure){.warmup = (int64_t)bench_opt("warmup")->def, .min_reps = (int64_t)bench_opt("min_reps")->def,
                         .min_time_s = bench_opt("min_time_s")->def, .max_reps = (int64_t)bench_opt("max_reps")->def};
}

static int parse_config(const cJSON *root, cfg_config *cfg)
{
    static const char *const keys[] = {"name", "description", "threads", "measure",
                                       "max_workspace_bytes", "max_time_s", "max_mem_bytes", "suites",
                                       "trainings", NULL};
    cfg_where w = {cfg->path, "$"};
    const int64_t one = 1;
    int rc;
    if ((rc = cfg_json_check_keys(&w, root, keys)) || (rc = cfg_json_req_name(&w, root, "name", cfg->name)) ||
        (rc = cfg_json_opt_string(&w, root, "description", sizeof cfg->description, cfg->description)) ||
        (rc = cfg_json_ints_row(&w, root, bench_opt("threads"), 0, &cfg->threads)) ||
        (rc = cfg_default_ints(&cfg->threads, &one, 1)))
        return rc;
    cfg->measure = measure_defaults();
    cfg_where kw = cfg_json_key(&w, "measure");
    if (cfg_json_item(root, "measure") && (rc = parse_measure(&kw, cfg_json_item(root, "measure"), &cfg->measure)))
        return rc;
    cfg->max_time_s = bench_opt("max_time_s")->def, cfg->max_mem_bytes = bench_opt("max_mem_bytes")->def;
    if ((rc = cfg_json_opt_int_row(&w, root, bench_opt("max_workspace_bytes"), &cfg->max_workspace_bytes)) ||
        (rc = cfg_json_opt_double_row(&w, root, bench_opt("max_time_s"), "seconds", &cfg->max_time_s)) ||
        (rc = cfg_json_opt_double_row(&w, root, bench_opt("max_mem_bytes"), "bytes", &cfg->max_mem_bytes)))
        return rc;

    if (cfg_json_item(root, "trainings") &&
        (rc = cfg_trainings_parse(cfg->path, cfg_json_item(root, "trainings"), &cfg->trainings, &cfg->n_trainings)))
        return rc;
    if (!cfg_json_item(root, "suites") && cfg->n_trainings)
        return 0; /* a config of training jobs only */
    const cJSON *suites = cfg_json_array(&w, root, "suites", 1, "a non-empty array of suite objects", &rc);
    kw = cfg_json_key(&w, "suites");
    if (!suites)
        return rc;
    cfg->suites = calloc((size_t)cJSON_GetArraySize(suites), sizeof *cfg->suites);
    if (!cfg->suites)
        return attn_fail(ATTN_ENOMEM, "%s: out of memory", cfg->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, suites)
    {
        cfg_where sw = cfg_json_index(&kw, cfg->n_suites);
        rc = cfg_suite_parse(&sw, e, cfg, &cfg->suites[cfg->n_suites++]);
        if (rc)
            return rc;
    }
    return cfg_check_distinct_jobs(cfg);
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

void cfg_free(cfg_config *cfg)
{
    for (size_t i = 0; i < cfg->n_suites; i++)
        cfg_suite_free(&cfg->suites[i]);
    free(cfg->suites);
    free(cfg->trainings);
    free(cfg->threads.v);
    memset(cfg, 0, sizeof *cfg);
}
