/* The classic synthetic recall tasks, all TASK_LM:
 *   ar              single-query associative recall (H3);
 *   induction       induction heads (H3; Mamba): the token that followed a
 *                   trigger, asked for when the trigger recurs at the end;
 *   selective_copy  Mamba's selective copying: content tokens at random
 *                   positions among noise, then one marker per token, targets
 *                   = the content in order at the marker positions;
 *   copy            the same with the content at fixed positions 0..m-1 (a
 *                   control that time-invariant convolutions solve).
 *
 * ar and induction come in two forms (task param form):
 *   safari     (default) the construction of the H3 authors' code
 *              (HazyResearch/safari, src/dataloaders/synthetics.py): its
 *              vocabulary with a no-op token and a "=>" separator before the
 *              query, next-token targets on every position of the training
 *              split, and only the answer kept on valid and test, as its
 *              test tensor masks all but the last label;
 *   last_only  the earlier form of this project: no separator, and the
 *              last position alone carries a target, in every split.
 * The Mamba sizes are not checked against that paper's code; every size is
 * a parameter. */
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

/* --- the two forms of ar and induction ---------------------------------- */

static const char *const classic_forms[] = {"safari", "last_only", NULL};
enum { FORM_SAFARI = 0, FORM_LAST_ONLY = 1 };

/* safari's vocabulary of vocab_size V: its Vocab sorts the token strings as
 * text, so the no-op "." (never emitted with safari's default allow_dot=False)
 * comes before the digit strings and the separator "=>" after them: id 0 is
 * the no-op, 1..V-2 the content tokens, V-1 the separator. */
#define SAFARI_SEP(V) ((int32_t)((V) - 1))

/* Tokens and next-token targets of a full safari sequence seq [L + 1]:
 * the model reads seq[0..L-1] and must emit seq[t+1] after seq[t]. */
static void safari_shift(const int32_t *seq, int64_t L, int32_t *tok, int32_t *tgt)
{
    for (int64_t t = 0; t < L; t++)
        tok[t] = seq[t], tgt[t] = seq[t + 1];
}

/* Valid and test keep only the answer's target (the last position), as
 * safari masks every label but the last in its test tensor; the training
 * split keeps them all, so the loss covers every position there. */
static void safari_keep_answer_only(task_data *d)
{
    for (int64_t i = 0; i < d->n; i++)
        for (int64_t t = 0; t + 1 < d->len; t++)
            task_targets(d, i)[t] = TASK_IGNORE;
}

/* A value given in p, else the default of the form. */
static int64_t form_param(const opt_def *rows, const param_bag *p, const char *key, int64_t form_def, int *rc)
{
    return param_bag_get(p, key) ? task_param_int(rows, p, key, rc) : form_def;
}

/* --- ar ------------------------------------------------------------------
 * safari (cfg = {L even, V}): with N = V-2 content tokens, keys are ids
 * [1, 1+N/2), values the rest of 1..N. Each example has its own key -> value
 * map (values drawn with replacement); (L-2)/2 pairs, keys drawn with
 * replacement; then "=>", a query key drawn uniformly from the distinct keys
 * present (safari draws from all keys and redraws among the present ones when
 * it missed, which is the same distribution), and its value as the last
 * target. seq [L + 1], map and present [K] each live in scratch. */
static void ar_fill_safari(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *scratch)
{
    int64_t L = cfg[0], V = cfg[1], N = V - 2, K = N / 2, pairs = (L - 2) / 2;
    int32_t *seq = scratch, *map = seq + L + 1, *present = map + K;
    for (int64_t k = 0; k < K; k++) {
        map[k] = (int32_t)(1 + K + (int64_t)recall_below(r, (uint64_t)(N - K)));
        present[k] = 0;
    }
    int64_t distinct = 0;
    for (int64_t j = 0; j < pairs; j++) {
        int64_t k = (int64_t)recall_below(r, (uint64_t)K);
        distinct += !present[k];
        present[k] = 1;
        seq[2 * j] = (int32_t)(1 + k), seq[2 * j + 1] = map[k];
    }
    int64_t pick = (int64_t)recall_below(r, (uint64_t)distinct), q = 0;
    while (!present[q] || pick-- > 0)
        q++;
    seq[L - 2] = SAFARI_SEP(V);
    seq[L - 1] = (int32_t)(1 + q);
    seq[L] = map[q];
    safari_shift(seq, L, tok, tgt);
}

/* last_only (cfg = {L odd, V}): keys [0, V/2), values [V/2, V), (L-1)/2
 * pairs then the query at L-1, its value the only target. Keys are distinct
 * when there are at most V/2 pairs, else they repeat, always with the same
 * value, so the query has exactly one answer. */
static void ar_fill_last_only(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *map)
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

#define FORM_PARAM                                                                                               \
    {.name = "form", .type = OPT_ENUM, .names = classic_forms, .def = FORM_SAFARI,                               \
     .help = "safari: its vocabulary, '=>' before the query, training loss on every position, the answer "      \
             "scored; last_only: no separator, loss and score at the last position only"}

/* Parameter tables: safari's sizes by default; last_only's induction sizes are
 * the ones recalled from Mamba, not verified against its code. */
static const opt_def ar_params[] = {
    FORM_PARAM,
    {.name = "L", .type = OPT_INT, .def_str = "42 (safari), 31 (last_only)", .lo = 3, .hi = 1 << 20,
     .help = "tokens per example: safari even (pairs, '=>', query), last_only odd (pairs, query)"},
    {.name = "V", .type = OPT_INT, .def = 20, .lo = 4, .hi = 1 << 20,
     .help = "vocabulary: safari 0 no-op, keys [1,1+(V-2)/2), values to V-2, V-1 '=>'; last_only keys "
             "[0,V/2), values [V/2,V)"},
    {0},
};
static const opt_def induction_params[] = {
    FORM_PARAM,
    {.name = "L", .type = OPT_INT, .def_str = "31 (safari), 256 (last_only)", .lo = 4, .hi = 1 << 24,
     .help = "tokens per example"},
    {.name = "V", .type = OPT_INT, .def_str = "20 (safari), 16 (last_only)", .lo = 3, .hi = 1 << 20,
     .help = "vocabulary: safari 0 no-op, content [1,V-1), trigger V-1 '=>'; last_only content [0,V-1), trigger V-1"},
    {0},
};

/* The form and the sizes {L, V} of ar or induction, with the defaults of the
 * form (last_only keeps the defaults it had before safari's became the default). */
static int classic_form_parse(const opt_def *rows, const param_bag *p, const char *name, const int64_t def[2][2],
                              int *form, int64_t cfg[2])
{
    int rc = task_params_check(rows, p, name);
    if (rc)
        return rc;
    *form = (int)task_param_int(rows, p, "form", &rc);
    if (rc)
        return rc;
    cfg[0] = form_param(rows, p, "L", def[*form][0], &rc);
    cfg[1] = form_param(rows, p, "V", def[*form][1], &rc);
    return rc;
}

static int ar_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                   task_data *out)
{
    memset(out, 0, sizeof *out);
    static const int64_t def[2][2] = {{42, 20}, {31, 20}};
    int form;
    int64_t cfg[2];
    int rc = task_generated_only("ar", data_dir);
    if (!rc)
        rc = classic_form_parse(ar_params, p, "ar", def, &form, cfg);
    if (rc)
        return rc;
    int safari = form == FORM_SAFARI;
    if (cfg[0] % 2 != (safari ? 0 : 1))
        return attn_fail(ATTN_EINVAL, "task ar: expected an %s L with form=%s (%s), found L=%lld",
                         safari ? "even" : "odd", classic_forms[form],
                         safari ? "pairs, '=>', query" : "pairs then one query", (long long)cfg[0]);
    rc = classic_make("ar", cfg, safari ? ar_fill_safari : ar_fill_last_only, split, seed, n, out);
    if (rc)
        return rc;
    if (safari && split != TASK_TRAIN)
        safari_keep_answer_only(out);
    snprintf(out->meta, sizeof out->meta, "L=%lld;V=%lld;pairs=%lld;form=%s", (long long)cfg[0], (long long)cfg[1],
             (long long)((cfg[0] - (safari ? 2 : 1)) / 2), classic_forms[form]);
    return 0;
}

/* --- induction -----------------------------------------------------------
 * safari (cfg = {L, V}): L-1 content tokens uniform over ids [1, V-1); the
 * trigger "=>" replaces the token at p, uniform in [0, L-4] (safari's
 * rng.integers(input_seq_len - 2), input_seq_len = L-1, so p+1 is content
 * and not the last body token); "=>" again at L-1; the last target is the
 * token at p+1. safari's induction_len and num_triggers are 1 (its
 * defaults). seq [L + 1] lives in scratch. */
static void induction_fill_safari(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *seq)
{
    int64_t L = cfg[0], V = cfg[1], body = L - 1;
    for (int64_t t = 0; t < body; t++)
        seq[t] = (int32_t)(1 + recall_below(r, (uint64_t)(V - 2)));
    int64_t p = (int64_t)recall_below(r, (uint64_t)(body - 2));
    seq[p] = SAFARI_SEP(V);
    seq[L - 1] = SAFARI_SEP(V);
    seq[L] = seq[p + 1];
    safari_shift(seq, L, tok, tgt);
}

/* last_only (cfg = {L, V}): content [0, V-1), trigger V-1 at p in [0, L-3]
 * and at L-1, the only target the token at p+1. */
static void induction_fill_last_only(const int64_t *cfg, attn_rng *r, int32_t *tok, int32_t *tgt, int32_t *scratch)
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
    memset(out, 0, sizeof *out);
    static const int64_t def[2][2] = {{31, 20}, {256, 16}};
    int form;
    int64_t cfg[2];
    int rc = task_generated_only("induction", data_dir);
    if (!rc)
        rc = classic_form_parse(induction_params, p, "induction", def, &form, cfg);
    if (rc)
        return rc;
    int safari = form == FORM_SAFARI;
    rc = classic_make("induction", cfg, safari ? induction_fill_safari : induction_fill_last_only, split, seed, n,
                      out);
    if (rc)
        return rc;
    if (safari && split != TASK_TRAIN)
        safari_keep_answer_only(out);
    snprintf(out->meta, sizeof out->meta, "L=%lld;V=%lld;form=%s", (long long)cfg[0], (long long)cfg[1],
             classic_forms[form]);
    return 0;
}

#define COPY_PARAMS(L_def)                                                                                      \
    {.name = "L", .type = OPT_INT, .def = L_def, .lo = 4, .hi = 1 << 24, .help = "sequence length"},           \
    {.name = "V", .type = OPT_INT, .def = 16, .lo = 3, .hi = 1 << 20, .help = "vocabulary (0 = noise, V-1 = marker)"}, \
    {.name = "tokens", .type = OPT_INT, .def = 16, .lo = 1, .hi = 1 << 20, .help = "content tokens to copy"}, {0}
static const opt_def selective_copy_params[] = {COPY_PARAMS(4096)};
static const opt_def copy_params[] = {COPY_PARAMS(256)};

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
    memset(out, 0, sizeof *out);
    int rc = task_generated_only("selective_copy", data_dir);
    return rc ? rc : copy_make_named("selective_copy", selective_copy_params, 0, p, split, seed, n, out);
}

static int copy_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                     task_data *out)
{
    memset(out, 0, sizeof *out);
    int rc = task_generated_only("copy", data_dir);
    return rc ? rc : copy_make_named("copy", copy_params, 1, p, split, seed, n, out);
}

const task_def task_ar = {
    .name = "ar",
    .suite = "recall",
    .description = "single-query associative recall (H3, safari's construction by default): k v pairs, '=>', a query key; its value",
    .params = ar_params,
    .make = ar_make,
};

const task_def task_induction = {
    .name = "induction",
    .suite = "recall",
    .description = "induction heads (safari's construction by default): after the trigger recurs at the end, emit what followed it first",
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
