/* The classic synthetic recall tasks, all TASK_LM with a
 * target only where the model is scored:
 *   ar              single-query associative recall (Ba et al. 2016; H3):
 *                   k1 v1 ... kn vn q, target = q's value at the last position;
 *   induction       induction heads (H3; Mamba): random tokens, a trigger
 *                   once in the body and again at the end, target = the token
 *                   that followed the first trigger;
 *   selective_copy  Mamba's selective copying: content tokens at random
 *                   positions among noise, then one marker per token, targets
 *                   = the content in order at the marker positions;
 *   copy            the same with the content at fixed positions 0..m-1 (a
 *                   control that time-invariant convolutions solve).
 * The H3 and Mamba sizes are not checked against the papers' code;
 * every size is a parameter, the defaults are the recalled ones. */
#include "recall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*classic_fill)(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *scratch);

/* Shared driver: cfg[0] = L (tokens per example), cfg[1] = V; fill() writes
 * one example from its stream; scratch is [L + V] ints. */
static int classic_make(const char *name, const int64_t *cfg, classic_fill fill, task_split split, uint64_t seed,
                        int64_t n, task_data *out)
{
    int rc = task_data_alloc(out, name, TASK_LM, n, cfg[0]);
    if (rc)
        return rc;
    int32_t *scratch = malloc((size_t)(cfg[0] + cfg[1]) * sizeof *scratch);
    if (!scratch) {
        task_data_free(out);
        return attn_fail(ATTN_ENOMEM, "task %s: cannot allocate %lld scratch ints", name,
                         (long long)(cfg[0] + cfg[1]));
    }
    out->vocab = (int32_t)cfg[1];
    for (int64_t i = 0; i < n; i++) {
        attn_rng r;
        recall_example_rng(&r, seed, split, i);
        int32_t *tgt = task_targets(out, i);
        for (int64_t t = 0; t < cfg[0]; t++)
            tgt[t] = TASK_IGNORE;
        fill(cfg, &r, task_tokens(out, i), tgt, scratch);
    }
    free(scratch);
    return 0;
}

/* --- ar: cfg = {L (odd), V}; keys [0, V/2), values [V/2, V) ----------- */

/* Each example has its own key -> value map; keys repeat when there are
 * more pairs than keys (H3's ~15 pairs over ~10 keys), always with the same
 * value, so the query has exactly one answer. */
static void ar_fill(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *map)
{
    int64_t L = cfg[0], V = cfg[1], K = V / 2, pairs = (L - 1) / 2;
    for (int64_t k = 0; k < K; k++)
        map[k] = (int32_t)(K + (int64_t)recall_below(r, (uint64_t)(V - K)));
    int32_t *keys = map + K;
    if (pairs <= K)
        recall_distinct(r, 0, K, pairs, keys);
    else
        for (int64_t j = 0; j < pairs; j++)
            keys[j] = (int32_t)recall_below(r, (uint64_t)K);
    for (int64_t j = 0; j < pairs; j++)
        tok[2 * j] = keys[j], tok[2 * j + 1] = map[keys[j]];
    int32_t q = keys[recall_below(r, (uint64_t)pairs)];
    tok[L - 1] = q;
    tgt[L - 1] = map[q];
}

/* Parameter tables; the sizes of H3 and Mamba are not verified against their code. */
static const opt_def ar_params[] = {
    {.name = "L", .type = OPT_INT, .def = 31, .lo = 3, .hi = 1 << 20, .help = "sequence length (odd: pairs then a query)"},
    {.name = "V", .type = OPT_INT, .def = 20, .lo = 4, .hi = 1 << 20, .help = "vocabulary: keys [0,V/2), values [V/2,V)"},
    {0},
};
static const opt_def induction_params[] = {
    {.name = "L", .type = OPT_INT, .def = 256, .lo = 4, .hi = 1 << 24, .help = "sequence length"},
    {.name = "V", .type = OPT_INT, .def = 16, .lo = 3, .hi = 1 << 20, .help = "vocabulary (trigger = V-1)"},
    {0},
};
#define COPY_PARAMS(L_def)                                                                                      \
    {.name = "L", .type = OPT_INT, .def = L_def, .lo = 4, .hi = 1 << 24, .help = "sequence length"},           \
    {.name = "V", .type = OPT_INT, .def = 16, .lo = 3, .hi = 1 << 20, .help = "vocabulary (0 = noise, V-1 = marker)"}, \
    {.name = "tokens", .type = OPT_INT, .def = 16, .lo = 1, .hi = 1 << 20, .help = "content tokens to copy"}, {0}
static const opt_def selective_copy_params[] = {COPY_PARAMS(4096)};
static const opt_def copy_params[] = {COPY_PARAMS(256)};

static int ar_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                   task_data *out)
{
    (void)data_dir;
    memset(out, 0, sizeof *out);
    int rc = task_params_check(ar_params, p, "ar");
    int64_t cfg[2] = {task_param_int(ar_params, p, "L", &rc), task_param_int(ar_params, p, "V", &rc)};
    if (rc)
        return rc;
    if (cfg[0] % 2 == 0)
        return attn_fail(ATTN_EINVAL, "task ar: expected an odd L (pairs then one query), found L=%lld",
                         (long long)cfg[0]);
    rc = classic_make("ar", cfg, ar_fill, split, seed, n, out);
    if (!rc)
        snprintf(out->meta, sizeof out->meta, "L=%lld;V=%lld;pairs=%lld", (long long)cfg[0], (long long)cfg[1],
                 (long long)((cfg[0] - 1) / 2));
    return rc;
}

/* --- induction: cfg = {L, V}; content [0, V-1), trigger V-1 ----------- */

static void induction_fill(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *scratch)
{
    (void)scratch;
    int64_t L = cfg[0], V = cfg[1];
    for (int64_t t = 0; t < L - 1; t++)
        tok[t] = (int32_t)recall_below(r, (uint64_t)(V - 1));
    /* first trigger at p in [0, L-3] so its successor p+1 <= L-2 is content */
    int64_t p = (int64_t)recall_below(r, (uint64_t)(L - 2));
    tok[p] = (int32_t)(V - 1);
    tok[L - 1] = (int32_t)(V - 1);
    tgt[L - 1] = tok[p + 1];
}

static int induction_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                          task_data *out)
{
    (void)data_dir;
    memset(out, 0, sizeof *out);
    int rc = task_params_check(induction_params, p, "induction");
    int64_t cfg[2] = {task_param_int(induction_params, p, "L", &rc), task_param_int(induction_params, p, "V", &rc)};
    if (rc)
        return rc;
    rc = classic_make("induction", cfg, induction_fill, split, seed, n, out);
    if (!rc)
        snprintf(out->meta, sizeof out->meta, "L=%lld;V=%lld", (long long)cfg[0], (long long)cfg[1]);
    return rc;
}

/* --- selective_copy / copy: cfg = {L, V, m, fixed} ---------------------
 * token 0 = noise, V-1 = marker, content in [1, V-1); the last m positions
 * are markers, and the target at marker j is the j-th content token. */

static void copy_fill(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *pos)
{
    int64_t L = cfg[0], V = cfg[1], m = cfg[2], body = L - m;
    for (int64_t t = 0; t < body; t++)
        tok[t] = 0;
    if (cfg[3])
        for (int64_t j = 0; j < m; j++)
            pos[j] = (int32_t)j;
    else {
        /* m distinct positions, in increasing order (insertion sort: m is small) */
        recall_distinct(r, 0, body, m, pos);
        for (int64_t j = 1; j < m; j++)
            for (int64_t q = j; q > 0 && pos[q - 1] > pos[q]; q--) {
                int32_t s = pos[q];
                pos[q] = pos[q - 1], pos[q - 1] = s;
            }
    }
    for (int64_t j = 0; j < m; j++) {
        int32_t c = (int32_t)(1 + recall_below(r, (uint64_t)(V - 2)));
        tok[pos[j]] = c;
        tok[body + j] = (int32_t)(V - 1);
        tgt[body + j] = c;
    }
}

static int copy_make_named(const char *name, const opt_def *rows, int fixed, const param_bag *p, task_split split,
                           uint64_t seed, int64_t n, task_data *out)
{
    memset(out, 0, sizeof *out);
    int rc = task_params_check(rows, p, name);
    int64_t cfg[4] = {task_param_int(rows, p, "L", &rc), task_param_int(rows, p, "V", &rc),
                      task_param_int(rows, p, "tokens", &rc), fixed};
    if (rc)
        return rc;
    if (2 * cfg[2] > cfg[0])
        return attn_fail(ATTN_EINVAL, "task %s: expected 2*tokens <= L (content then markers), found tokens=%lld L=%lld",
                         name, (long long)cfg[2], (long long)cfg[0]);
    rc = classic_make(name, cfg, copy_fill, split, seed, n, out);
    if (!rc)
        snprintf(out->meta, sizeof out->meta, "L=%lld;V=%lld;tokens=%lld", (long long)cfg[0], (long long)cfg[1],
                 (long long)cfg[2]);
    return rc;
}

static int selective_copy_make(const param_bag *p, task_split split, uint64_t seed, int64_t n,
                               const char *data_dir, task_data *out)
{
    (void)data_dir;
    return copy_make_named("selective_copy", selective_copy_params, 0, p, split, seed, n, out);
}

static int copy_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                     task_data *out)
{
    (void)data_dir;
    return copy_make_named("copy", copy_params, 1, p, split, seed, n, out);
}

const task_def task_ar = {
    .name = "ar",
    .suite = "recall",
    .description = "single-query associative recall (H3): k v pairs then a query key, answer at the end",
    .params = ar_params,
    .make = ar_make,
};

const task_def task_induction = {
    .name = "induction",
    .suite = "recall",
    .description = "induction heads: after the trigger recurs at the end, emit what followed it first",
    .params = induction_params,
    .make = induction_make,
};

const task_def task_selective_copy = {
    .name = "selective_copy",
    .suite = "recall",
    .description = "selective copying (Mamba): content tokens among noise, emit them in order at the markers",
    .params = selective_copy_params,
    .make = selective_copy_make,
};

const task_def task_copy = {
    .name = "copy",
    .suite = "recall",
    .description = "plain copying control: content at fixed positions, emit it in order at the markers",
    .params = copy_params,
    .make = copy_make,
};
