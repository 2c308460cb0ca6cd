/* `mqar`: multi-query associative recall, the generator of Zoology
 * (Arora, Eyuboglu et al. 2023, zoology/data/multiquery_ar.py)
 * reproduced distribution-for-distribution (not numpy's byte stream, hence
 * data_source "generated"), plus the per-example streams of recall.h.
 *
 * Just-Read-Twice (Arora et al. 2024, "Just read twice: closing the recall
 * gap for recurrent language models", JRT-Prompt: the context is repeated
 * before the questions, so a recurrent model reads every pair once more
 * knowing what came before): jrt=1 takes the jrt=0 example (same seed, same
 * keys, values and query slots), and inserts a copy of its key-value block
 * (2 D tokens) right after it. L still counts the jrt=0 example (context +
 * query region); the sequence is L + 2 D tokens, scored at the same D query
 * positions (shifted by 2 D), never inside either copy of the context.
 * passes=2 is the other form of repetition, inside L (Zoology's num_passes:
 * the query region shrinks instead); the two are not combined. */
#include "recall.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void recall_example_rng(attn_rng *r, uint64_t seed, task_split split, int64_t i)
{
    /* three chained SplitMix64 rounds: nearby (seed, split, i) give unrelated streams */
    uint64_t h = attn_splitmix64(seed ^ 0x5265636131ull);
    h = attn_splitmix64(h ^ (0x9e3779b97f4a7c15ull * (uint64_t)(split + 1)));
    h = attn_splitmix64(h ^ (uint64_t)i);
    attn_rng_seed(r, h);
}

uint64_t recall_below(attn_rng *r, uint64_t n)
{
    /* accept x below the largest multiple of n that fits in 2^64 */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = attn_rng_next(r);
    while (x >= limit);
    return x % n;
}

void recall_distinct(attn_rng *r, int64_t lo, int64_t hi, int64_t k, int32_t *out)
{
    int64_t range = hi - lo, m = 0;
    for (int64_t j = range - k; j < range; j++) {
        int64_t t = (int64_t)recall_below(r, (uint64_t)j + 1), seen = 0;
        for (int64_t q = 0; q < m && !seen; q++)
            seen = out[q] == lo + t;
        out[m++] = (int32_t)(lo + (seen ? j : t));
    }
    for (int64_t j = k - 1; j > 0; j--) {
        int64_t t = (int64_t)recall_below(r, (uint64_t)j + 1);
        int32_t s = out[j];
        out[j] = out[t], out[t] = s;
    }
}

typedef struct {
    int64_t V, L, D, passes, rnq, jrt;
    double a;
} mqar_cfg;

static const opt_def mqar_params[] = {
    {.name = "V", .type = OPT_INT, .def = 8192, .lo = 4, .hi = INT32_MAX, .help = "vocabulary"},
    {.name = "L", .type = OPT_INT, .def = 256, .lo = 4, .hi = 1 << 24, .help = "sequence length (even)"},
    {.name = "D", .type = OPT_INT, .def = 16, .lo = 1, .hi = 1 << 22, .help = "key-value pairs"},
    {.name = "a", .type = OPT_DOUBLE, .def = 0.01, .lo = 1e-6, .hi = 1e6, .help = "power-law exponent of the query gaps"},
    {.name = "passes", .type = OPT_INT, .def = 1, .lo = 1, .hi = 1 << 10, .help = "passes over the pairs"},
    {.name = "random_non_queries", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1,
     .help = "1: random tokens between the queries; 0 (default) is the setting of Zoology's "
             "MQAR figure, while its MQARConfig class defaults to 1"},
    {.name = "jrt", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1, .help = "1: context repeated, L + 2D tokens"},
    {0},
};

static int mqar_parse(const param_bag *p, mqar_cfg *c)
{
    int rc = task_params_check(mqar_params, p, "mqar");
    if (rc)
        return rc;
    c->V = task_param_int(mqar_params, p, "V", &rc);
    c->L = task_param_int(mqar_params, p, "L", &rc);
    c->D = task_param_int(mqar_params, p, "D", &rc);
    c->passes = task_param_int(mqar_params, p, "passes", &rc);
    c->rnq = task_param_int(mqar_params, p, "random_non_queries", &rc);
    c->jrt = task_param_int(mqar_params, p, "jrt", &rc);
    c->a = task_param_double(mqar_params, p, "a", &rc);
    if (rc)
        return rc;
    /* the reference generator's three asserts, plus enough keys and values */
    if (c->L % 2)
        return attn_fail(ATTN_EINVAL, "task mqar: expected an even L, found L=%lld", (long long)c->L);
    if (c->V <= c->L)
        return attn_fail(ATTN_EINVAL, "task mqar: expected V > L, found V=%lld L=%lld", (long long)c->V,
                         (long long)c->L);
    if (2 * c->D * c->passes + 2 * c->D > c->L)
        return attn_fail(ATTN_EINVAL, "task mqar: expected 2*D*passes + 2*D <= L, found D=%lld passes=%lld L=%lld",
                         (long long)c->D, (long long)c->passes, (long long)c->L);
    if (c->jrt && c->passes > 1)
        return attn_fail(ATTN_EINVAL, "task mqar: expected jrt=1 with passes=1 (two ways of repeating the context), "
                         "found passes=%lld", (long long)c->passes);
    if (c->D > c->V / 2 - 1)
        return attn_fail(ATTN_EINVAL, "task mqar: expected D <= V/2 - 1 distinct keys, found D=%lld V=%lld",
                         (long long)c->D, (long long)c->V);
    return 0;
}

/* Successive weighted sampling without replacement (numpy's choice with
 * replace=False and p): each draw picks among the slots not yet taken with
 * probability proportional to w. w is [S], taken [S] (zeroed), slot [D]. */
static void mqar_draw_slots(attn_rng *r, const double *w, int64_t S, int64_t D, uint8_t *taken, int64_t *slot)
{
    memset(taken, 0, (size_t)S);
    for (int64_t j = 0; j < D; j++) {
        double total = 0;
        for (int64_t g = 0; g < S; g++)
            total += taken[g] ? 0 : w[g];
        double u = attn_rng_uniform(r) * total, acc = 0;
        int64_t pick = -1;
        for (int64_t g = 0; g < S; g++) {
            if (taken[g])
                continue;
            pick = g; /* the last free slot absorbs rounding at the top end */
            acc += w[g];
            if (u < acc)
                break;
        }
        taken[pick] = 1;
        slot[j] = pick;
    }
}

/* One example: y [L+1] and labels [L+1] as in the reference, written
 * shifted into tokens [L] and targets [L]. keys/values [D], scratch. */
static void mqar_example(const mqar_cfg *c, attn_rng *r, const double *w, uint8_t *taken, int64_t *slot,
                         int32_t *keys, int32_t *values, int32_t *tok, int32_t *tgt)
{
    int64_t K = c->V / 2, ctx = 2 * c->D * c->passes, S = (c->L - ctx) / 2;
    recall_distinct(r, 1, K, c->D, keys);
    recall_distinct(r, K, c->V, c->D, values);
    mqar_draw_slots(r, w, S, c->D, taken, slot);
    for (int64_t t = 0; t < c->L; t++)
        tok[t] = 0, tgt[t] = TASK_IGNORE;
    for (int64_t p = 0; p < c->passes; p++)
        for (int64_t j = 0; j < c->D; j++) {
            tok[p * 2 * c->D + 2 * j] = keys[j];
            tok[p * 2 * c->D + 2 * j + 1] = values[j];
        }
    for (int64_t j = 0; j < c->D; j++) {
        /* y[ctx + 2g] = k, labels[ctx + 2g + 1] = v; target = labels[1:] */
        tok[ctx + 2 * slot[j]] = keys[j];
        tgt[ctx + 2 * slot[j]] = values[j];
    }
    if (c->rnq)
        for (int64_t t = 0; t < c->L; t++)
            if (tok[t] == 0)
                tok[t] = (int32_t)recall_below(r, (uint64_t)c->V);
}

/* JRT-Prompt: a row whose first L entries hold the jrt=0 example becomes
 * [context | context | query region], L + ctx entries; the copy is unscored. */
static void mqar_repeat_context(int64_t L, int64_t ctx, int32_t *tok, int32_t *tgt)
{
    memmove(tok + 2 * ctx, tok + ctx, sizeof *tok * (size_t)(L - ctx));
    memmove(tgt + 2 * ctx, tgt + ctx, sizeof *tgt * (size_t)(L - ctx));
    memcpy(tok + ctx, tok, sizeof *tok * (size_t)ctx);
    for (int64_t t = ctx; t < 2 * ctx; t++)
        tgt[t] = TASK_IGNORE;
}

/* out: tokens [n][L (+ 2D with jrt=1)] (V-token vocabulary, 0 = blank), targets alike. */
static int mqar_make(const param_bag *params, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                     task_data *out)
{
    memset(out, 0, sizeof *out);
    mqar_cfg c;
    int rc = task_generated_only("mqar", data_dir);
    if (!rc)
        rc = mqar_parse(params, &c);
    if (rc)
        return rc;
    int64_t S = (c.L - 2 * c.D * c.passes) / 2;
    double *w = malloc((size_t)S * sizeof *w);
    uint8_t *taken = malloc((size_t)S);
    int64_t *slot = malloc((size_t)c.D * sizeof *slot);
    int32_t *kv = malloc((size_t)(2 * c.D) * sizeof *kv);
    if (!w || !taken || !slot || !kv)
        rc = attn_fail(ATTN_ENOMEM, "task mqar: cannot allocate scratch for S=%lld slots", (long long)S);
    if (!rc)
        rc = task_data_alloc(out, "mqar", TASK_LM, n, c.L + (c.jrt ? 2 * c.D : 0));
    if (!rc) {
        /* slot weight w_g = a (g+1)^(a-1); normalising is left to the sampler */
        for (int64_t g = 0; g < S; g++)
            w[g] = c.a * pow((double)(g + 1), c.a - 1);
        out->vocab = (int32_t)c.V;
        snprintf(out->meta, sizeof out->meta, "L=%lld;D=%lld;V=%lld;a=%g;passes=%lld%s%s", (long long)c.L,
                 (long long)c.D, (long long)c.V, c.a, (long long)c.passes, c.rnq ? ";random_non_queries=1" : "",
                 c.jrt ? ";jrt=1" : "");
        for (int64_t i = 0; i < n; i++) {
            attn_rng r;
            recall_example_rng(&r, seed, split, i);
            mqar_example(&c, &r, w, taken, slot, kv, kv + c.D, task_tokens(out, i), task_targets(out, i));
            if (c.jrt)
                mqar_repeat_context(c.L, 2 * c.D, task_tokens(out, i), task_targets(out, i));
        }
    }
    free(w);
    free(taken);
    free(slot);
    free(kv);
    if (rc)
        task_data_free(out);
    return rc;
}

const task_def task_mqar = {
    .name = "mqar",
    .suite = "recall",
    .description = "multi-query associative recall, Zoology generator (power-law query gaps, JRT passes)",
    .params = mqar_params,
    .make = mqar_make,
};
