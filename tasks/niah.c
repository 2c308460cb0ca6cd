/* NIAH tasks for small from-scratch byte models (docs/tasks.md).
 *
 * An example of T tokens (T = len, or uniform in [len_min, len] for
 * training; PAD after T) is y[0..T], fed as tokens = y[0:T] with targets =
 * y[t+1] where y[t+1] is an answer byte (TASK_IGNORE elsewhere), as MQAR:
 *   BOS  context (C bytes)  tail
 * The context is a haystack of G = C - (needle bytes) bytes with the needles
 * inserted where the variant's RULER rule puts them (niah_place.c). Over
 * RULER's haystack of needles (mk2, mk3) the context holds whole needles
 * only, so an example is up to one needle shorter than T (PAD after it).
 * Tails, [..] = trained targets:
 *   niah, niah_multikey   QUERY key ANSWER [value]
 *   niah_multivalue       QUERY key ANSWER [v1,v2,v3,v4]  (context order)
 *   niah_multiquery       (QUERY key_q ANSWER [value_q]) x 4, random order
 *   niah_vt               QUERY value ANSWER [N1,N2,N3,N4,N5]  (chain order)
 *   passkey               "What is the pass key? The pass key is " [K.]
 * A generated answer is scored against the example's references with
 * RULER's string_match_all (any order) or Landmark's first-integer test
 * (tasks/answer.h). Needles are RULER's (niah_needles.c). Values (and vt
 * names) never occur in the haystack: they are redrawn until they do not, so
 * a value is in the context exactly where a needle puts it. The passkey
 * answer ends with '.', so a model that runs on past the last digit of K is
 * wrong (Landmark scores the first integer of the output). */
#include "niah_gen.h"
#include "answer.h"
#include "recall.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_name[] = {"passkey", "single", "multikey", "multivalue", "multiquery", "vt"};

static const char passkey_desc[] = "There is an important info hidden inside a lot of irrelevant text. Find it and "
                                   "memorize them. I will quiz you about the important information there.";
static const char passkey_question[] = "What is the pass key? The pass key is ";

/* --- the tail ------------------------------------------------------------ */

void niah_tail_put(niah_tail *t, int32_t tok, int scored)
{
    if (t->n < NIAH_TAIL_CAP)
        t->tok[t->n] = tok, t->scored[t->n++] = (uint8_t)scored;
}

void niah_tail_str(niah_tail *t, const char *s, int scored)
{
    for (; *s; s++)
        niah_tail_put(t, (unsigned char)*s, scored);
}

/* The tail given the needles' context order (its length does not depend
 * on the order, so it is rendered once before the layout to size G). */
static void render_tail(const niah_cfg *c, const niah_ex *e, niah_tail *t)
{
    t->n = 0;
    if (c->kind == NK_PASSKEY) {
        niah_tail_str(t, passkey_question, 0);
        niah_tail_str(t, e->val[0], 1);
        niah_tail_put(t, '.', 1);
        return;
    }
    int queries = c->kind == NK_MULTIQUERY ? e->n_needles : 1;
    for (int q = 0; q < queries; q++) {
        int j = e->perm[q];
        niah_tail_put(t, NIAH_QUERY, 0);
        niah_tail_str(t, c->kind == NK_VT ? e->val[0] : e->key[j], 0);
        niah_tail_put(t, NIAH_ANSWER, 0);
        if (c->kind == NK_MULTIVALUE || c->kind == NK_VT)
            for (int k = 0; k < e->n_needles; k++) {
                if (k)
                    niah_tail_put(t, ',', 1);
                niah_tail_str(t, c->kind == NK_VT ? e->key[e->order[k]] : e->val[e->order[k]], 1);
            }
        else
            niah_tail_str(t, e->val[j], 1);
    }
}

/* --- layout ------------------------------------------------------------- */

static double draw_depth(const niah_cfg *c, attn_rng *r)
{
    return c->depth < 0 ? attn_rng_uniform(r) : c->depth;
}

/* Copies bytes into y as tokens. */
static int64_t put_bytes(int32_t *y, int64_t at, const uint8_t *s, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        y[at + k] = s[k];
    return at + n;
}

int niah_put_tail(int32_t *y, int64_t at, const niah_tail *t, int64_t T)
{
    for (int k = 0; k < t->n; k++)
        y[at++] = t->tok[k];
    if (at != T + 1)
        return attn_fail(ATTN_EINVAL, "task niah: internal layout error, expected %lld tokens, built %lld",
                         (long long)(T + 1), (long long)at);
    return 0;
}

/* Fills the haystack [G] of one example: RULER's needles (G shrinks to the
 * whole needles that fit, and *T with it) or the haystack h. */
static int fill_haystack(const niah_cfg *c, niah_haystack *h, niah_needle_hay *nh, attn_rng *r, uint8_t *hay,
                         int64_t *G, int64_t *T)
{
    if (c->hay != NIAH_HAY_NEEDLE)
        return niah_haystack_fill(h, r, hay, *G);
    int rc = niah_needle_hay_fill(c, r, hay, *G, nh);
    *T -= *G - nh->used;
    *G = nh->used;
    return rc;
}

/* One RULER example into y [T+1] (*T: its length, <= the drawn one) and its
 * strings into *ex; hay is scratch [T]. */
static int niah_example(const niah_cfg *c, niah_haystack *h, niah_needle_hay *nh, attn_rng *r, int64_t *T,
                        int32_t *y, uint8_t *hay, niah_tail *t, niah_ex *ex)
{
    niah_ex e;
    memset(&e, 0, sizeof e);
    /* the depth rule draws its depth first (the stream of earlier versions) */
    double d = c->grid || c->kind == NK_VT || c->hay == NIAH_HAY_NEEDLE ? c->depth : draw_depth(c, r);
    niah_draw_keys(c, r, &e);
    niah_placeholder_answers(c, &e);
    int64_t needles = 0;
    for (int j = 0; j < e.n_needles; j++)
        needles += niah_render_needle(c, &e, j, e.needle[j]);
    render_tail(c, &e, t);
    int64_t G = *T - t->n - needles;
    if (G < 0)
        return attn_fail(ATTN_EINVAL, "task niah (%s): expected len >= %lld for the needles and the query, found %lld",
                         kind_name[c->kind], (long long)(*T - G), (long long)*T);
    int rc = fill_haystack(c, h, nh, r, hay, &G, T);
    if (!rc)
        rc = niah_draw_answers(c, r, &e, hay, G);
    for (int j = 0; !rc && j < e.n_needles; j++)
        niah_render_needle(c, &e, j, e.needle[j]);
    if (!rc)
        rc = niah_place_needles(c, r, &e, hay, G, d, nh);
    if (rc)
        return rc;
    e.hay_bytes = G;
    render_tail(c, &e, t);
    int64_t at = 0, from = 0;
    y[at++] = NIAH_BOS;
    for (int k = 0; k < e.n_needles; k++) {
        int j = e.order[k];
        at = put_bytes(y, at, hay + from, e.off[j] - from);
        at = put_bytes(y, at, (const uint8_t *)e.needle[j], (int64_t)strlen(e.needle[j]));
        from = e.off[j];
    }
    at = put_bytes(y, at, hay + from, G - from);
    *ex = e;
    return niah_put_tail(y, at, t, *T);
}

/* Landmark passkey (Mohtashami and Jaggi 2023) into y [T+1]: description, prefix, info line,
 * suffix and question joined by '\n'; prefix and suffix are each a fresh
 * haystack stream (for noise: both from the block's start, as Landmark). */
static int passkey_example(const niah_cfg *c, niah_haystack *h, attn_rng *r, int64_t T, int32_t *y,
                           uint8_t *hay, niah_tail *t, niah_ex *ex)
{
    niah_ex e;
    memset(&e, 0, sizeof e);
    double d = draw_depth(c, r);
    snprintf(e.val[0], sizeof e.val[0], "%d", 1 + (int)recall_below(r, 50000));
    char info[NIAH_NEEDLE_CAP];
    int64_t ni = snprintf(info, sizeof info, "The pass key is %s. Remember it. %s is the pass key.", e.val[0], e.val[0]);
    render_tail(c, &e, t);
    int64_t nd = (int64_t)strlen(passkey_desc), G = T - t->n - nd - ni - 4;
    if (G < 0)
        return attn_fail(ATTN_EINVAL, "task passkey: expected len >= %lld for the prompt, found %lld",
                         (long long)(T - G), (long long)T);
    int64_t p = (int64_t)llround(d * (double)G);
    int rc = niah_haystack_fill(h, r, hay, p);
    if (!rc && c->snap)
        p = niah_snap_back(hay, p, p);
    if (!rc)
        rc = niah_haystack_fill(h, r, hay + p, G - p);
    if (rc)
        return rc;
    e.hay_bytes = G;
    int64_t at = 0;
    y[at++] = NIAH_BOS;
    at = put_bytes(y, at, (const uint8_t *)passkey_desc, nd);
    y[at++] = '\n';
    at = put_bytes(y, at, hay, p);
    y[at++] = '\n';
    at = put_bytes(y, at, (const uint8_t *)info, ni);
    y[at++] = '\n';
    at = put_bytes(y, at, hay + p, G - p);
    y[at++] = '\n';
    *ex = e;
    return niah_put_tail(y, at, t, T);
}

/* --- parameters ---------------------------------------------------------- */

/* The RULER task each variant reproduces and its haystack, formats and
 * placement rule (scripts/synthetic.yaml). */
static const struct {
    const char *ruler;
    niah_hay_kind hay;
    int key_uuid, val_uuid, grid;
} variant_def[] = {
    [NV_PASSKEY] = {"-", NIAH_HAY_NOISE, 0, 0, 0},
    [NV_S1] = {"niah_single_1", NIAH_HAY_NOISE, 0, 0, 0},
    [NV_S2] = {"niah_single_2", NIAH_HAY_ESSAY, 0, 0, 1},
    [NV_S3] = {"niah_single_3", NIAH_HAY_ESSAY, 0, 1, 1},
    [NV_MK1] = {"niah_multikey_1", NIAH_HAY_ESSAY, 0, 0, 1},
    [NV_MK2] = {"niah_multikey_2", NIAH_HAY_NEEDLE, 0, 0, 0},
    [NV_MK3] = {"niah_multikey_3", NIAH_HAY_NEEDLE, 1, 1, 0},
    [NV_MV] = {"niah_multivalue", NIAH_HAY_ESSAY, 0, 0, 1},
    [NV_MQ] = {"niah_multiquery", NIAH_HAY_ESSAY, 0, 0, 1},
    [NV_VT] = {"vt", NIAH_HAY_NOISE, 0, 0, 0},
};
static const char *const single_names[] = {"s1", "s2", "s3", NULL};
static const char *const multikey_names[] = {"mk1", "mk2", "mk3", NULL};

#define NIAH_COMMON_PARAMS(hay_def, hay_help)                                                                 \
    NIAH_LEN_PARAMS,                                                                                           \
    {.name = "depth", .type = OPT_DOUBLE, .def = -1, .lo = -1, .hi = 1,                                        \
     .help = "queried needle depth in [0, 1]; -1: the rule's own draw (uniform: passkey, niah s1)"},           \
    {.name = "haystack", .type = OPT_ENUM, .names = niah_hay_names, .def = hay_def, .help = hay_help},        \
    {.name = "fit", .type = OPT_ENUM, .names = niah_fit_names, .def = NIAH_FIT_NOISE,                         \
     .help = "the text the random chain is fitted to"},                                                       \
    {.name = "snap", .type = OPT_INT, .def = 1, .lo = 0, .hi = 1,                                              \
     .help = "1: a needle moved back to just after a sentence end"}

#define RULER_HAY_HELP "ruler: the variant's RULER haystack (essay, noise without the corpus; needle); or noise, " \
                       "random, corpus, essay, needle"

static const opt_def passkey_params[] = {
    NIAH_COMMON_PARAMS(NIAH_HAY_NOISE, "noise, a Markov chain (random), corpus or essay text"), {0}};
static const opt_def niah_params[] = {NIAH_COMMON_PARAMS(NIAH_HAY_RULER, RULER_HAY_HELP), {0}};
static const opt_def niah_single_params[] = {
    NIAH_COMMON_PARAMS(NIAH_HAY_RULER, RULER_HAY_HELP),
    {.name = "variant", .type = OPT_ENUM, .names = single_names, .def = 0,
     .help = "RULER niah_single_1 (noise), _2 (essay), _3 (essay, uuid values)"},
    {0},
};
static const opt_def niah_multikey_params[] = {
    NIAH_COMMON_PARAMS(NIAH_HAY_RULER, RULER_HAY_HELP),
    {.name = "variant", .type = OPT_ENUM, .names = multikey_names, .def = 0,
     .help = "RULER niah_multikey_1 (essay, 3 distractors), _2 (a haystack of needles), _3 (needles, uuids)"},
    {.name = "distractors", .type = OPT_INT, .def = 3, .lo = 0, .hi = 3,
     .help = "mk1's distractor needles (RULER: 3); 0: uniform 1-3"},
    {0},
};

static const opt_def *params_of(int kind)
{
    return kind == NK_PASSKEY ? passkey_params : kind == NK_SINGLE ? niah_single_params
                                           : kind == NK_MULTIKEY ? niah_multikey_params : niah_params;
}

static niah_variant variant_of(int kind, int64_t index)
{
    static const niah_variant fixed[] = {NV_PASSKEY, NV_S1, NV_MK1, NV_MV, NV_MQ, NV_VT};
    return (niah_variant)(fixed[kind] + (kind == NK_SINGLE || kind == NK_MULTIKEY ? index : 0));
}

/* haystack=ruler as the variant's own; essay needs the corpus, else noise
 * (the row then says haystack=noise and data_source=generated). */
static niah_hay_kind resolve_haystack(const niah_cfg *c, niah_hay_kind asked, const char *data_dir)
{
    if (asked != NIAH_HAY_RULER)
        return asked;
    niah_hay_kind hay = variant_def[c->variant].hay;
    char root[4096];
    if (hay == NIAH_HAY_ESSAY && niah_corpus_root(data_dir, root, sizeof root) != 0) {
        attn_clear_error();
        return NIAH_HAY_NOISE;
    }
    return hay;
}

int niah_check_lengths(int64_t len, int64_t len_min)
{
    if (len_min > len)
        return attn_fail(ATTN_EINVAL, "param len_min: expected <= len=%lld, found %lld", (long long)len,
                         (long long)len_min);
    return 0;
}

int64_t niah_draw_len(attn_rng *r, int64_t len, int64_t len_min)
{
    return len_min ? len_min + (int64_t)recall_below(r, (uint64_t)(len - len_min + 1)) : len;
}

static int niah_check(const param_bag *p, const niah_cfg *c)
{
    if (c->depth < 0 && c->depth != -1)
        return attn_fail(ATTN_EINVAL, "param depth: expected a number in [0, 1] or -1 (uniform), found %g", c->depth);
    if (niah_check_lengths(c->len, c->len_min))
        return ATTN_EINVAL;
    if (c->kind == NK_MULTIKEY && c->variant != NV_MK1 && param_bag_get(p, "distractors"))
        return attn_fail(ATTN_EINVAL, "param distractors: expected only with variant=mk1 (%s fills the haystack "
                                      "with needles)", variant_def[c->variant].ruler);
    int one_needle = c->kind == NK_SINGLE || (c->kind == NK_MULTIKEY && c->variant != NV_MK1);
    if (c->hay == NIAH_HAY_NEEDLE && !one_needle)
        return attn_fail(ATTN_EINVAL, "param haystack: expected needle only with one inserted needle (niah, "
                                      "niah_multikey variant=mk2|mk3), found it for %s",
                         variant_def[c->variant].ruler);
    return 0;
}

static int niah_parse(const param_bag *p, const char *name, int kind, const char *data_dir, niah_cfg *c)
{
    const opt_def *rows = params_of(kind);
    int rc = task_params_check(rows, p, name);
    if (rc)
        return rc;
    c->kind = kind;
    c->len = task_param_int(rows, p, "len", &rc);
    c->len_min = task_param_int(rows, p, "len_min", &rc);
    c->depth = task_param_double(rows, p, "depth", &rc);
    c->snap = (int)task_param_int(rows, p, "snap", &rc);
    c->distractors = kind == NK_MULTIKEY ? task_param_int(rows, p, "distractors", &rc) : 0;
    c->variant = variant_of(kind, kind == NK_SINGLE || kind == NK_MULTIKEY ? task_param_int(rows, p, "variant", &rc) : 0);
    niah_hay_kind asked = (niah_hay_kind)task_param_int(rows, p, "haystack", &rc);
    c->fit = (niah_fit_kind)task_param_int(rows, p, "fit", &rc);
    if (rc)
        return rc;
    c->key_uuid = variant_def[c->variant].key_uuid;
    c->val_uuid = variant_def[c->variant].val_uuid;
    c->grid = variant_def[c->variant].grid;
    c->hay = resolve_haystack(c, asked, data_dir);
    return niah_check(p, c);
}

/* --- make ---------------------------------------------------------------- */

/* What a generated answer of example i is scored against: the key
 * (passkey), the queried value(s), or vt's names bound to the value. */
static int add_references(const niah_cfg *c, const niah_ex *e, task_data *d, int64_t i)
{
    int many = c->kind == NK_MULTIVALUE || c->kind == NK_MULTIQUERY || c->kind == NK_VT;
    int k = c->kind == NK_VT ? e->n_keys : many ? e->n_vals : 1, rc = 0;
    for (int j = 0; !rc && j < k; j++)
        rc = task_answer_add(d, i, c->kind == NK_VT ? e->key[j] : e->val[j]);
    return rc;
}

void niah_put_row(task_data *out, int64_t i, const int32_t *y, int64_t T, const niah_tail *t)
{
    int32_t *tok = task_tokens(out, i), *tgt = task_targets(out, i);
    for (int64_t k = 0; k < out->len; k++) {
        tok[k] = k < T ? y[k] : NIAH_PAD;
        tgt[k] = TASK_IGNORE;
    }
    for (int k = 0; k < t->n; k++)
        if (t->scored[k])
            tgt[T + 1 - t->n + k - 1] = t->tok[k];
    out->lengths[i] = (int32_t)T;
}

/* Haystack bytes over the examples: at short lengths the prompt leaves
 * little filler (passkey's description, info line and question take about
 * 250 bytes), and the progress line says so. */
typedef struct {
    int64_t min, sum, tokens;
} hay_tally;

static void hay_count(hay_tally *a, int64_t hay_bytes, int64_t T)
{
    a->min = a->tokens && a->min < hay_bytes ? a->min : hay_bytes;
    a->sum += hay_bytes, a->tokens += T;
}

static void put_labels(const niah_cfg *c, const niah_haystack *h, const hay_tally *a, task_data *out)
{
    out->vocab = NIAH_VOCAB;
    out->pad = NIAH_PAD;
    snprintf(out->data_source, sizeof out->data_source, "%s", h ? niah_haystack_source(h) : "generated");
    snprintf(out->meta, sizeof out->meta,
             "len=%lld;len_min=%lld;depth=%g;haystack=%s;fit=%s;snap=%d;needle=%s;ruler=%s;hay_min=%lld;hay_share=%.2f",
             (long long)c->len, (long long)(c->len_min ? c->len_min : c->len), c->depth, niah_hay_names[c->hay],
             c->hay == NIAH_HAY_RANDOM ? niah_fit_names[c->fit] : "-", c->snap, kind_name[c->kind],
             variant_def[c->variant].ruler, (long long)a->min, a->tokens ? (double)a->sum / (double)a->tokens : 0.0);
}

static int niah_make_kind(int kind, const char *name, const param_bag *p, task_split split, uint64_t seed,
                          int64_t n, const char *data_dir, task_data *out)
{
    memset(out, 0, sizeof *out);
    niah_cfg c = {.kind = kind};
    int rc = niah_parse(p, name, kind, data_dir, &c);
    niah_haystack *h = NULL;
    if (!rc && c.hay != NIAH_HAY_NEEDLE)
        rc = niah_haystack_open(&h, c.hay, c.fit, split, data_dir);
    if (!rc)
        rc = task_data_alloc(out, name, TASK_LM, n, c.len);
    if (!rc) /* the references' rule: Landmark's for the passkey, RULER's for the rest */
        rc = task_answer_alloc(out, kind == NK_PASSKEY ? TASK_ANSWER_FIRST_INT : TASK_ANSWER_MATCH_ALL);
    niah_needle_hay nh = {.cap = c.len / 32 + 2};
    int32_t *y = rc ? NULL : malloc((size_t)(c.len + 1) * sizeof *y);
    uint8_t *hay = rc ? NULL : malloc((size_t)c.len);
    niah_tail *t = rc ? NULL : malloc(sizeof *t);
    nh.start = rc ? NULL : malloc((size_t)nh.cap * sizeof *nh.start);
    if (!rc && (!y || !hay || !t || !nh.start))
        rc = attn_fail(ATTN_ENOMEM, "task %s: cannot allocate scratch for len=%lld", name, (long long)c.len);
    hay_tally hays = {0};
    for (int64_t i = 0; !rc && i < n; i++) {
        attn_rng r;
        recall_example_rng(&r, seed, split, i);
        int64_t T = niah_draw_len(&r, c.len, c.len_min);
        niah_ex e;
        rc = kind == NK_PASSKEY ? passkey_example(&c, h, &r, T, y, hay, t, &e)
                                : niah_example(&c, h, &nh, &r, &T, y, hay, t, &e);
        if (!rc)
            rc = add_references(&c, &e, out, i);
        if (!rc)
            niah_put_row(out, i, y, T, t);
        if (!rc)
            hay_count(&hays, e.hay_bytes, T);
    }
    if (!rc)
        put_labels(&c, h, &hays, out);
    else
        task_data_free(out);
    free(y);
    free(hay);
    free(t);
    free(nh.start);
    niah_haystack_close(h);
    return rc;
}

/* One task_def per needle kind; extra = the kind's own parameters. */
#define NIAH_TASK(ident, KIND, tname, desc, rows)                                                                \
    static int ident##_make(const param_bag *p, task_split split, uint64_t seed, int64_t n,                 \
                            const char *data_dir, task_data *out)                                             \
    {                                                                                                          \
        return niah_make_kind(KIND, tname, p, split, seed, n, data_dir, out);                                  \
    }                                                                                                          \
    const task_def task_##ident = {                                                                            \
        .name = tname,                                                                                         \
        .suite = "niah",                                                                                       \
        .description = desc,                                                                                   \
        .params = rows,                                                                                        \
        .make = ident##_make,                                                                                  \
    };

NIAH_TASK(passkey, NK_PASSKEY, "passkey", "Landmark passkey retrieval as bytes: answer the 1-50000 key and '.'",
          passkey_params)
NIAH_TASK(niah, NK_SINGLE, "niah", "RULER single needle (niah_single_1/2/3): QUERY key ANSWER -> its value",
          niah_single_params)
NIAH_TASK(niah_multikey, NK_MULTIKEY, "niah_multikey",
          "RULER multi-key (niah_multikey_1/2/3): the queried needle among distractor needles", niah_multikey_params)
NIAH_TASK(niah_multivalue, NK_MULTIVALUE, "niah_multivalue", "RULER multi-value: one key with 4 values, emit all",
          niah_params)
NIAH_TASK(niah_multiquery, NK_MULTIQUERY, "niah_multiquery", "RULER multi-query: 4 keys inserted, all 4 queried",
          niah_params)
NIAH_TASK(niah_vt, NK_VT, "niah_vt", "RULER variable tracking: a 4-hop VAR chain, emit the 5 names bound to the value",
          niah_params)
