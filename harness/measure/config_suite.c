/* One "suites" entry of a sweep config: its lists read into typed values
 * (masks parsed, passes and batch lengths as enums and numbers, kernel
 * parameters as bags) and checked against each other. */
#include "config_suite.h"
#include "bench_opts.h"

#include "common/attn_error.h"
#include "kernels/core/mask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_kernel(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    int rc = cfg_json_name(w, v, canon);
    if (rc == 0 && strcmp(canon, "oracle") == 0)
        return attn_fail(ATTN_EINVAL, "%s: %s: expected a benchmark kernel, found \"oracle\" (the fp64 "
                         "correctness reference: `attnbench check` runs it, sweeps do not)", w->file, w->path);
    strcpy(out, canon);
    return rc;
}

static int read_mask(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    attn_mask *m = out;
    if (!cJSON_IsString(v))
        return cfg_json_bad(w, "a mask spec string", v);
    if (attn_mask_parse(v->valuestring, m) != 0) {
        char why[256];   /* a copy: attn_fail writes the buffer attn_last_error reads */
        snprintf(why, sizeof why, "%s", attn_last_error());
        return attn_fail(ATTN_EINVAL, "%s: %s: %s", w->file, w->path, why);
    }
    attn_mask_format(m, canon, CFG_SPEC_MAX);   /* two spellings of one mask are one value */
    return 0;
}

/* One of an enum's names (its one NULL-terminated list): its index into *out. */
static int read_enum_name(const cfg_where *w, const cJSON *v, const char *const *names, int *out,
                          char canon[CFG_SPEC_MAX])
{
    for (int i = 0; cJSON_IsString(v) && names[i]; i++)
        if (strcmp(v->valuestring, names[i]) == 0) {
            *out = i;
            strcpy(canon, v->valuestring);
            return 0;
        }
    char list[128] = "";
    for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? ", " : "", names[i]);
    char what[160];
    snprintf(what, sizeof what, "one of %s", list);
    return cfg_json_bad(w, what, v);
}

static int read_pass(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    int i = 0, rc = read_enum_name(w, v, bench_pass_names, &i, canon);
    *(bench_pass *)out = (bench_pass)i;
    return rc;
}

static int read_kv_dtype(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    int i = 0, rc = read_enum_name(w, v, attn_kv_dtype_names, &i, canon);
    *(attn_kv_dtype *)out = (attn_kv_dtype)i;
    return rc;
}

static int read_dtype(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    int i = 0, rc = read_enum_name(w, v, attn_dtype_names, &i, canon);
    *(attn_dtype *)out = (attn_dtype)i;
    return rc;
}

static int read_inputs(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    if (!cJSON_IsString(v))
        return cfg_json_bad(w, "an input family or cache:FILE[@LAYER]", v);
    char where[512];
    snprintf(where, sizeof where, "%s: %s", w->file, w->path);
    int rc = bench_inputs_parse(v->valuestring, out, where);
    if (!rc)
        bench_inputs_format(out, canon, CFG_SPEC_MAX);
    return rc;
}

void cfg_kparams_format(const cfg_kparams *kp, char *buf, size_t n)
{
    const param_bag *p = &kp->params;
    snprintf(buf, n, "%s:", kp->kernel);
    for (int k = 0; k < p->n; k++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%s", k ? "," : "", p->key[k], p->val[k]);
}

/* "kernel:key=value,...": the kernel must be one of the entry's kernels;
 * the shape and the limits of param_bag are checked here, keys and values
 * against the kernel's table when the jobs are built (config_expand.c). */
static int read_kparams(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    const cfg_suite *s = ctx;
    cfg_kparams *kp = out;
    const char *shape = "\"kernel:key=value,...\" naming one of this entry's kernels";
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CFG_SPEC_MAX || !strchr(v->valuestring, ':'))
        return cfg_json_bad(w, shape, v);
    char buf[CFG_SPEC_MAX];
    strcpy(buf, v->valuestring);
    char *params = strchr(buf, ':');
    *params++ = '\0';
    int listed = 0;
    for (size_t k = 0; k < s->kernels.n; k++)
        listed |= strcmp(s->kernels.v[k], buf) == 0;
    if (!listed || (params[0] && (params[0] == ',' || strstr(params, ",,") || params[strlen(params) - 1] == ',')))
        return cfg_json_bad(w, shape, v);
    strcpy(kp->kernel, buf);
    param_bag *p = &kp->params;
    for (char *save = NULL, *kv = strtok_r(params, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        int repeat = param_bag_has_key_of(p, kv);
        if (param_bag_add(p, kv) == 0)
            continue;
        if (repeat) /* the bag's message, as for a repeat in every option set */
            return attn_fail(ATTN_EINVAL, "%s: %s: %s", w->file, w->path, attn_last_error());
        return attn_fail(ATTN_EINVAL, "%s: %s: expected key=value pairs (keys < 32, values < 64 "
                         "characters, at most %d), found \"%s\"", w->file, w->path, PARAM_BAG_MAX, kv);
    }
    cfg_kparams_format(kp, canon, CFG_SPEC_MAX);   /* two spellings of one bag are one value */
    return 0;
}

/* "L+L+..." into at most `max` lengths; the count, or -1 if malformed (no
 * lengths, a negative one, or all zero). */
static int parse_lengths(const char *text, int64_t *lens, int max)
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

/* "L+L+...": a batch's lengths, each an integer >= 0, at most 64. The kind
 * (ragged or padded) is set by the caller from the key. */
static int read_lens(const cfg_where *w, const cJSON *v, const void *ctx, void *out, char canon[CFG_SPEC_MAX])
{
    (void)ctx;
    bench_lens *l = out;
    const char *shape = "a ragged batch \"L+L+...\" (1 to 64 KV lengths >= 0, at least one > 0)";
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CFG_SPEC_MAX)
        return cfg_json_bad(w, shape, v);
    if ((l->n = parse_lengths(v->valuestring, l->len, BENCH_LENS_MAX)) <= 0)
        return cfg_json_bad(w, shape, v);
    bench_lens_format(l, canon, CFG_SPEC_MAX);   /* "+5" and "5" are one length */
    return 0;
}

/* "kv_lens" (ragged batches) or "seq_lens" (padded ones, no longer than any
 * N); either sets B and N_kv, so neither may be given beside it. */
static int parse_lens(const cfg_where *w, const cJSON *o, cfg_suite *s)
{
    int padded = cfg_json_item(o, "seq_lens") != NULL, rc;
    const char *key = padded ? "seq_lens" : "kv_lens";
    cfg_where kw = cfg_json_key(w, key);
    if (padded && cfg_json_item(o, "kv_lens"))
        return attn_fail(ATTN_EINVAL, "%s: %s: expected padded batches or ragged ones (\"kv_lens\"), found both",
                         w->file, kw.path);
    if ((rc = cfg_json_list(w, o, key, 0, read_lens, sizeof *s->lens.v, s, (void **)&s->lens.v, &s->lens.n)))
        return rc;
    for (size_t i = 0; i < s->lens.n; i++) {
        bench_lens *l = &s->lens.v[i];
        l->kind = padded ? BENCH_LENS_PADDED_SEQ : BENCH_LENS_RAGGED_KV;
        int64_t longest = 0;
        for (int b = 0; b < l->n; b++)
            longest = l->len[b] > longest ? l->len[b] : longest;
        for (size_t k = 0; padded && k < s->N.n; k++)
            if (s->N.v[k] < longest) {
                cfg_where iw = cfg_json_index(&kw, i);
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

static int check_gqa(const cfg_where *w, const cfg_suite *s)
{
    for (size_t i = 0; i < s->H_kv.n; i++)
        for (size_t j = 0; j < s->H.n; j++)
            if (s->H.v[j] % s->H_kv.v[i] != 0) {
                cfg_where kw_hkv = cfg_json_key(w, "H_kv"), hw = cfg_json_index(&kw_hkv, i);
                return attn_fail(ATTN_EINVAL, "%s: %s: expected a divisor of every H (GQA groups), found %lld "
                                 "(H = %lld)", w->file, hw.path, (long long)s->H_kv.v[i], (long long)s->H.v[j]);
            }
    return 0;
}

/* The entry's lists of numbers, each under the key and in the range of its
 * bench option row; H, N and D are required. */
static int parse_ints(const cfg_where *w, const cJSON *o, cfg_suite *s)
{
    const struct {
        const char *key;
        int required;
        cfg_ints *list;
    } lists[] = {{"B", 0, &s->B}, {"H", 1, &s->H}, {"H_kv", 0, &s->H_kv}, {"N", 1, &s->N}, {"N_kv", 0, &s->N_kv},
                 {"D", 1, &s->D}, {"Dv", 0, &s->Dv}, {"threads", 0, &s->threads},
                 {"mem_budget_bytes", 0, &s->mem_budget}};
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof lists / sizeof *lists; i++)
        rc = cfg_json_ints_row(w, o, bench_opt(lists[i].key), lists[i].required, lists[i].list);
    return rc;
}

int cfg_suite_parse(const cfg_where *w, const cJSON *o, const cfg_config *cfg, cfg_suite *s)
{
    static const char *const own[] = {"suite", "description", NULL}; /* the entry's, not a job's */
    const char *keys[32];
    cfg_json_keys_of(own, bench_opts_table, BENCH_OPTS_JOB, keys, 32);
    int64_t seed = (int64_t)bench_opt("seed")->def;
    int rc;
    if ((rc = cfg_json_check_keys(w, o, keys)) || (rc = cfg_json_req_name(w, o, "suite", s->name)) ||
        (rc = cfg_json_opt_string(w, o, "description", sizeof s->description, s->description)) ||
        (rc = cfg_json_list(w, o, "kernels", 1, read_kernel, sizeof *s->kernels.v, s, (void **)&s->kernels.v,
                            &s->kernels.n)) ||
        (rc = cfg_json_list(w, o, "masks", 0, read_mask, sizeof *s->masks.v, s, (void **)&s->masks.v,
                            &s->masks.n)) ||
        (rc = cfg_json_list(w, o, "pass", 0, read_pass, sizeof *s->passes.v, s, (void **)&s->passes.v,
                            &s->passes.n)) ||
        (rc = cfg_json_list(w, o, "inputs", 0, read_inputs, sizeof *s->inputs.v, s, (void **)&s->inputs.v,
                            &s->inputs.n)) ||
        (rc = cfg_json_list(w, o, "kv_dtype", 0, read_kv_dtype, sizeof *s->kv_dtypes.v, s,
                            (void **)&s->kv_dtypes.v, &s->kv_dtypes.n)) ||
        (rc = cfg_json_list(w, o, "dtype", 0, read_dtype, sizeof *s->dtypes.v, s, (void **)&s->dtypes.v,
                            &s->dtypes.n)) ||
        (rc = parse_ints(w, o, s)) ||
        (rc = cfg_json_list(w, o, "params", 0, read_kparams, sizeof *s->params.v, s, (void **)&s->params.v,
                            &s->params.n)) ||
        (rc = parse_lens(w, o, s)) || (rc = cfg_json_opt_int_row(w, o, bench_opt("seed"), &seed)) ||
        (rc = check_gqa(w, s)))
        return rc;
    s->seed = (uint64_t)seed;
    const int64_t one = 1;
    const attn_mask full = attn_mask_default(ATTN_MASK_FULL);
    const bench_pass fwd = BENCH_PASS_FWD;
    const bench_inputs uniform = {.family = FID_UNIFORM, .kv_layer = -1};
    const attn_kv_dtype fp32 = ATTN_KV_FP32;
    const attn_dtype op32 = ATTN_DT_FP32;
    if ((rc = cfg_default_one((void **)&s->masks.v, &s->masks.n, &full, sizeof full)) ||
        (rc = cfg_default_one((void **)&s->passes.v, &s->passes.n, &fwd, sizeof fwd)) ||
        (rc = cfg_default_one((void **)&s->inputs.v, &s->inputs.n, &uniform, sizeof uniform)) ||
        (rc = cfg_default_one((void **)&s->kv_dtypes.v, &s->kv_dtypes.n, &fp32, sizeof fp32)) ||
        (rc = cfg_default_one((void **)&s->dtypes.v, &s->dtypes.n, &op32, sizeof op32)) ||
        (rc = cfg_default_ints(&s->B, &one, 1)) || (rc = cfg_default_ints(&s->threads, cfg->threads.v, cfg->threads.n)))
        return rc;
    return 0;
}

void cfg_suite_free(cfg_suite *s)
{
    free(s->kernels.v);
    free(s->masks.v);
    free(s->passes.v);
    free(s->inputs.v);
    free(s->kv_dtypes.v);
    free(s->dtypes.v);
    free(s->params.v);
    free(s->lens.v);
    cfg_ints *ints[] = {&s->B, &s->H, &s->H_kv, &s->N, &s->N_kv, &s->D, &s->Dv, &s->threads, &s->mem_budget};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        free(ints[i]->v);
}
