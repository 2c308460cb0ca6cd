/* The short causal convolution (models/short_conv.c) and the model option
 * short_conv: the layer's fp32 forward/backward against its double twin and
 * central differences, its causality and finite reach, the attention block
 * with it against the double block (whose backward is checked by central
 * differences), whole-model gradients of lm models with flash and deltanet,
 * thread independence, and the config's JSON round trip. */
#include "kernels/core/registry.h"
#include "layers_check.h"
#include "model_check.h"
#include "models/model_json.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the layer through the layer-check driver */

typedef struct {
    nn_short_conv l;
    int64_t B, N;
    float *z;
} conv_ctx;

static int conv_fwd(lc_case *c, const float *x, float *y)
{
    conv_ctx *d = c->ctx;
    nn_short_conv_forward(&d->l, x, d->z, y, d->B, d->N, 2);
    return 0;
}
static int conv_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    conv_ctx *d = c->ctx;
    size_t n = (size_t)(d->B * d->N * d->l.C);
    float *dz = malloc(sizeof(float) * n);
    nn_short_conv_backward(&d->l, x, d->z, dy, dz, dx, d->B, d->N, 2);
    free(dz);
    return 0;
}
static int conv_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    conv_ctx *d = c->ctx;
    nn_short_conv_forward_ref(&d->l, P, x, y, d->B, d->N);
    return 0;
}
static int conv_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    conv_ctx *d = c->ctx;
    nn_short_conv_backward_ref(&d->l, P, x, dy, dx, dP, d->B, d->N);
    return 0;
}

static void check_conv(int64_t B, int64_t N, int64_t C, int64_t K)
{
    char what[64];
    snprintf(what, sizeof what, "short conv B=%lld N=%lld C=%lld K=%lld", (long long)B, (long long)N, (long long)C,
             (long long)K);
    size_t np = nn_short_conv_param_count(C, K);
    cr_assert_eq(np, (size_t)(C * K), "%s: %zu parameters", what, np);
    nn_blob p;
    lc_blob(&p, np);
    conv_ctx d = {.B = B, .N = N, .z = malloc(sizeof(float) * (size_t)(B * N * C))};
    cr_assert_eq(nn_short_conv_bind(&d.l, C, K, &p), 0, "%s: %s", what, attn_last_error());
    /* p_lo/p_hi: weights large enough that SiLU works away from its linear part */
    lc_case c = {.nx = B * N * C, .ny = B * N * C, .params = p, .ctx = &d, .p_lo = -1.5, .p_hi = 1.5,
                 .fwd = conv_fwd, .bwd = conv_bwd, .fwd_ref = conv_fwd_ref, .bwd_ref = conv_bwd_ref};
    lc_check(&c, 77, what);
    free(d.z);
    lc_blob_free(&p);
}

Test(short_conv, layer_gradients_match_the_double_twin_and_central_differences, .timeout = 60)
{
    check_conv(2, 7, 5, 4);    /* the published width */
    check_conv(1, 5, 3, 1);    /* K = 1: a per-channel scale */
    check_conv(2, 3, 4, 6);    /* K > N: taps reaching before the sequence read zeros */
    check_conv(1, 9, 37, 11);  /* channel tiles (16) and tap blocks (8) with remainders */
}

/* Perturbing token t changes outputs t..t+K-1 of its own sequence only. */
Test(short_conv, perturbing_token_t_changes_only_outputs_t_to_t_plus_K_minus_1)
{
    const int64_t B = 2, N = 12, C = 6, K = 4;
    nn_blob p;
    lc_blob(&p, nn_short_conv_param_count(C, K));
    nn_short_conv l;
    cr_assert_eq(nn_short_conv_bind(&l, C, K, &p), 0);
    attn_rng r;
    attn_rng_seed(&r, 5);
    nn_short_conv_init(&l, &r);
    size_t n = (size_t)(B * N * C);
    float *x = malloc(sizeof(float) * n), *z = malloc(sizeof(float) * n), *y0 = malloc(sizeof(float) * n),
          *y1 = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = attn_rng_range(&r, -1, 1);
    nn_short_conv_forward(&l, x, z, y0, B, N, 1);
    for (int64_t t = 0; t < N; t++) {
        float keep[6];
        memcpy(keep, x + (N + t) * C, sizeof keep); /* token t of sequence 1 */
        for (int64_t c = 0; c < C; c++)
            x[(N + t) * C + c] += 0.5f;
        nn_short_conv_forward(&l, x, z, y1, B, N, 1);
        memcpy(x + (N + t) * C, keep, sizeof keep);
        for (int64_t s = 0; s < B * N; s++) {
            int64_t u = s - N; /* position in sequence 1, negative in sequence 0 */
            int moved = memcmp(y0 + s * C, y1 + s * C, sizeof(float) * (size_t)C) != 0;
            cr_assert_eq(moved, u >= t && u < t + K, "token %lld perturbed: output row %lld %s", (long long)t,
                         (long long)s, moved ? "changed" : "did not change");
        }
    }
    free(x), free(z), free(y0), free(y1);
    lc_blob_free(&p);
}

/* ---- the attention block with short_conv = 4 against the double block */

/* B=2, N=7, C=16, H=2, H_kv=1 (D=8), causal */
static void check_block(const char *kernel, int rope)
{
    char what[96];
    snprintf(what, sizeof what, "attention block %s short_conv=4%s", kernel, rope ? " rope" : "");
    const attn_kernel *k = attn_find_kernel(kernel);
    cr_assert_not_null(k, "%s", kernel);
    nn_attn_cfg cfg = {.C = 16, .H = 2, .H_kv = 1, .kernel = k, .rope = rope, .short_conv = 4,
                       .mask = {.kind = ATTN_MASK_CAUSAL}};
    nn_attn_cfg plain = cfg;
    plain.short_conv = 0;
    /* q: H D = 16 channels, k and v: H_kv D = 8, K = 4 taps each (+ < 16 floats of alignment) */
    size_t extra = nn_attn_param_count(&cfg) - nn_attn_param_count(&plain);
    cr_assert(extra >= (16 + 8 + 8) * 4 && extra < (16 + 8 + 8) * 4 + 16, "%s: %zu more parameters", what, extra);
    mc_check_block(&cfg, 2, 7, 2, 2025, what);
}

Test(short_conv, attention_block_with_short_conv_matches_the_double_block, .timeout = 60)
{
    check_block("flash", 1);     /* double backward on the oracle, itself checked by central differences */
    check_block("deltanet", 0);  /* fp32 backward against central differences of the double block */
}

/* ---- whole models */

static nn_model_cfg lm_cfg(const char *kernel, int short_conv)
{
    nn_model_cfg c = {.head = NN_HEAD_LM, .vocab = 11, .max_len = 16, .layers = 2, .d_model = 16, .heads = 2,
                      .mlp = 24, .n_kernels = 1, .loops = 1, .causal = 1, .short_conv = short_conv};
    c.variant = NN_VARIANT_LM;
    snprintf(c.kernels[0], sizeof c.kernels[0], "%s", kernel);
    c.pos = NN_POS_LEARNED;
    c.pool = NN_POOL_CLS;
    return c;
}

/* the parameter table lists 3 filters per layer; then the whole-model gradient check */
static void model_gradcheck(const char *kernel)
{
    nn_model_cfg c = lm_cfg(kernel, 4);
    nn_model m;
    cr_assert_eq(nn_model_init(&m, &c, 5), 0, "%s: %s", kernel, attn_last_error());
    int k = nn_model_params(&m, NULL, 0), convs = 0;
    nn_param_info *info = malloc(sizeof *info * (size_t)k);
    nn_model_params(&m, info, k);
    for (int i = 0; i < k; i++)
        convs += strstr(info[i].name, ".attn.conv_") != NULL && info[i].count == (size_t)(16 * 4);
    cr_assert_eq(convs, 6, "%s: expected 3 conv filters per layer in the parameter table, found %d", kernel, convs);
    free(info);
    nn_model_free(&m);
    mc_lm_batch t;
    mc_lm_batch_make(&t, 3, 7, 11, 9);
    char what[64];
    snprintf(what, sizeof what, "lm %s short_conv=4", kernel);
    mc_gradcheck(&c, &t.b, 7, 30, what);
}

Test(short_conv, lm_models_with_short_conv_match_the_double_model, .timeout = 60)
{
    model_gradcheck("flash");
    model_gradcheck("deltanet");
}

/* 8 x 12 = 96 rows: the conv's row and channel loops run multi-threaded. */
Test(short_conv, model_gradients_are_bitwise_independent_of_the_thread_count, .timeout = 60)
{
    nn_model_cfg c = lm_cfg("deltanet", 4);
    c.d_model = 48, c.heads = 1;
    int32_t tok[96], tgt[96];
    attn_rng r;
    attn_rng_seed(&r, 8);
    for (int i = 0; i < 96; i++)
        tok[i] = (int32_t)attn_rng_uint_below(&r, 11), tgt[i] = i % 3 ? NN_IGNORE_INDEX : tok[(i + 5) % 96];
    nn_batch b = {.B = 8, .tokens = tok, .targets = tgt};
    float *g[2];
    double loss[2];
    size_t np = 0;
    for (int th = 1; th <= 2; th++) {
        nn_model m;
        int64_t correct, scored;
        cr_assert_eq(nn_model_init(&m, &c, 3), 0, "%s", attn_last_error());
        cr_assert_eq(nn_model_plan(&m, 8, 12, 0, th), 0, "%s", attn_last_error());
        cr_assert_eq(nn_model_forward(&m, &b, 1, 0, &loss[th - 1], &correct, &scored, NULL), 0);
        cr_assert_eq(nn_model_backward(&m, &b, 0, 1.0f), 0, "%s", attn_last_error());
        np = m.n_params;
        g[th - 1] = malloc(sizeof(float) * np);
        memcpy(g[th - 1], m.grads, sizeof(float) * np);
        nn_model_free(&m);
    }
    cr_assert(loss[0] == loss[1], "loss %.9g on 1 thread, %.9g on 2", loss[0], loss[1]);
    cr_assert_eq(memcmp(g[0], g[1], sizeof(float) * np), 0, "gradients differ between 1 and 2 threads");
    free(g[0]), free(g[1]);
}

/* ---- configuration */

Test(short_conv, model_cfg_json_round_trips_short_conv)
{
    nn_model_cfg c = lm_cfg("deltanet", 4), back;
    cJSON *o = nn_model_cfg_to_json(&c);
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.short_conv, 4);
    cr_assert_eq(memcmp(&c, &back, sizeof c), 0, "the config changed through JSON");
    char *text = cJSON_PrintUnformatted(o);
    cr_assert(strstr(text, "\"short_conv\":4"), "%s", text);
    free(text);
    /* a checkpoint header written before the option existed: no key, no convolution */
    cJSON_DeleteItemFromObjectCaseSensitive(o, "short_conv");
    cr_assert_eq(nn_model_cfg_from_json(o, "test", &back), 0, "%s", attn_last_error());
    cr_assert_eq(back.short_conv, 0);
    /* a present key must be a number */
    cJSON_AddStringToObject(o, "short_conv", "4");
    cr_assert_lt(nn_model_cfg_from_json(o, "test", &back), 0);
    cr_assert(strstr(attn_last_error(), "short_conv"), "%s", attn_last_error());
    cJSON_Delete(o);
}

Test(short_conv, invalid_widths_are_rejected_and_the_description_names_the_conv)
{
    nn_model m;
    nn_model_cfg c = lm_cfg("flash", -1);
    cr_assert_lt(nn_model_init(&m, &c, 1), 0);
    cr_assert(strstr(attn_last_error(), "short_conv"), "%s", attn_last_error());
    c.short_conv = NN_SHORT_CONV_MAX + 1;
    cr_assert_lt(nn_model_init(&m, &c, 1), 0);
    c.short_conv = 4;
    char buf[128];
    nn_model_describe(&c, buf, sizeof buf);
    cr_assert(strstr(buf, ",conv=4"), "%s", buf);
    /* the filters draw after a layer's other tensors: layer 0's projections are the same with or without */
    nn_model a, z;
    nn_model_cfg c0 = lm_cfg("flash", 0);
    cr_assert_eq(nn_model_init(&a, &c0, 9), 0);
    cr_assert_eq(nn_model_init(&z, &c, 9), 0);
    cr_assert_eq(z.n_params - a.n_params >= (size_t)(2 * 3 * 16 * 4), 1);
    cr_assert_eq(memcmp(a.params + a.blk[0].attn.q.off_w, z.params + z.blk[0].attn.q.off_w, sizeof(float) * 16 * 16),
                 0, "layer 0's q projection differs with the conv on");
    nn_model_free(&a);
    nn_model_free(&z);
}
