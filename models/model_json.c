#include "model_json.h"

#include <stdio.h>
#include <string.h>

cJSON *nn_model_cfg_to_json(const nn_model_cfg *c)
{
    cJSON *o = cJSON_CreateObject(), *k = cJSON_CreateArray(), *p = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "variant", c->variant);
    cJSON_AddNumberToObject(o, "head", c->head);
    const struct {
        const char *key;
        int64_t v;
    } ints[] = {{"vocab", c->vocab},   {"n_classes", c->n_classes}, {"max_len", c->max_len},
                {"layers", c->layers}, {"d_model", c->d_model},     {"heads", c->heads},
                {"heads_kv", c->heads_kv}, {"mlp", c->mlp},         {"causal", c->causal},
                {"rms", c->rms},       {"loops", c->loops},         {"tower_mlp", c->tower_mlp},
                {"short_conv", c->short_conv}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        cJSON_AddNumberToObject(o, ints[i].key, (double)ints[i].v);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    cJSON_AddStringToObject(o, "pos", c->pos);
    cJSON_AddStringToObject(o, "pool", c->pool);
    for (int i = 0; i < c->n_kernels; i++)
        cJSON_AddItemToArray(k, cJSON_CreateString(c->kernels[i]));
    cJSON_AddItemToObject(o, "kernels", k);
    for (int i = 0; i < c->kparams.n; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s=%s", c->kparams.key[i], c->kparams.val[i]);
        cJSON_AddItemToArray(p, cJSON_CreateString(kv));
    }
    cJSON_AddItemToObject(o, "kernel_params", p);
    return o;
}

static int get_num(const cJSON *o, const char *where, const char *key, double *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x))
        return attn_fail(ATTN_EINVAL, "%s: model.%s: expected a number", where, key);
    *v = x->valuedouble;
    return 0;
}

static int get_str(const cJSON *o, const char *where, const char *key, char *out, size_t n)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(x) || strlen(x->valuestring) >= n)
        return attn_fail(ATTN_EINVAL, "%s: model.%s: expected a string of at most %zu bytes", where, key, n - 1);
    strcpy(out, x->valuestring);
    return 0;
}

int nn_model_cfg_from_json(const cJSON *o, const char *where, nn_model_cfg *c)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(o))
        return attn_fail(ATTN_EINVAL, "%s: model: expected an object", where);
    double v = 0;
    int rc = get_str(o, where, "variant", c->variant, sizeof c->variant);
    if (!rc && !(rc = get_num(o, where, "head", &v)))
        c->head = (nn_head_kind)v;
    int64_t *ints[] = {&c->vocab, &c->n_classes, &c->max_len, &c->layers, &c->d_model, &c->heads,
                       &c->heads_kv, &c->mlp, &c->tower_mlp};
    const char *names[] = {"vocab", "n_classes", "max_len", "layers", "d_model", "heads", "heads_kv", "mlp",
                           "tower_mlp"};
    for (int i = 0; !rc && i < 9; i++)
        if (!(rc = get_num(o, where, names[i], &v)))
            *ints[i] = (int64_t)v;
    if (!rc && !(rc = get_num(o, where, "causal", &v)))
        c->causal = (int)v;
    if (!rc && !(rc = get_num(o, where, "rms", &v)))
        c->rms = (int)v;
    if (!rc && !(rc = get_num(o, where, "loops", &v)))
        c->loops = (int)v;
    /* optional: checkpoints written before the short convolution existed have none */
    if (!rc && cJSON_GetObjectItemCaseSensitive(o, "short_conv") && !(rc = get_num(o, where, "short_conv", &v)))
        c->short_conv = (int)v;
    if (!rc && !(rc = get_num(o, where, "dropout", &v)))
        c->dropout = (float)v;
    if (!rc)
        rc = get_str(o, where, "pos", c->pos, sizeof c->pos);
    if (!rc)
        rc = get_str(o, where, "pool", c->pool, sizeof c->pool);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kernels"), *x;
    if (!rc && (!cJSON_IsArray(k) || cJSON_GetArraySize(k) < 1 || cJSON_GetArraySize(k) > NN_MAX_LAYERS))
        rc = attn_fail(ATTN_EINVAL, "%s: model.kernels: expected 1..%d names", where, NN_MAX_LAYERS);
    cJSON_ArrayForEach(x, k)
    {
        if (rc)
            break;
        if (!cJSON_IsString(x) || strlen(x->valuestring) >= sizeof c->kernels[0])
            rc = attn_fail(ATTN_EINVAL, "%s: model.kernels[%d]: expected a kernel name", where, c->n_kernels);
        else
            strcpy(c->kernels[c->n_kernels++], x->valuestring);
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "kernel_params");
    if (!rc && !cJSON_IsArray(p))
        rc = attn_fail(ATTN_EINVAL, "%s: model.kernel_params: expected an array of \"key=value\"", where);
    cJSON_ArrayForEach(x, p)
    {
        if (rc)
            break;
        rc = cJSON_IsString(x) ? param_bag_add(&c->kparams, x->valuestring)
                               : attn_fail(ATTN_EINVAL, "%s: model.kernel_params: expected strings", where);
    }
    return rc;
}
