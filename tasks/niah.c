/* NIAH tasks for small from-scratch byte models (docs/tasks.md).
 *
 * An example of T tokens (T = len, or uniform in [len_min, len] for
 * training; PAD after T) is y[0..T], fed as tokens = y[0:T] with targets =
 * y[t+1] where y[t+1] is an answer byte (TASK_IGNORE elsewhere), as MQAR:
 *   BOS  context (C bytes)  tail
 * The context is a haystack of G = C - (needle bytes) bytes with the needles
 * inserted; needle 0 (the queried one) goes after round(depth * G) haystack
 * bytes (as Kamradt's NIAH: byte round(depth (len - needle_len)) of the
 * context when it is the only needle), moved back to just after the previous
 * '.' with snap=1. Tails, [..] = scored:
 *   niah, niah_multikey   QUERY key ANSWER [value]
 *   niah_multivalue       QUERY key ANSWER [v1,v2,v3,v4]  (context order)
 *   niah_multiquery       (QUERY key_q ANSWER [value_q]) x 4, random order
 *   niah_vt               QUERY value ANSWER [N1,N2,N3,N4,N5]  (chain order)
 *   passkey               "What is the pass key? The pass key is " [K.]
 * Needles follow RULER's template " One of the special magic numbers for
 * {key} is: {value}." with key = 4-8 random lowercase letters and value = 7
 * digits; variable tracking uses " VAR ABCDE = 12345." then " VAR FGHIJ =
 * VAR ABCDE." (RULER vt). Values (and vt names) never occur in the haystack:
 * they are redrawn until they do not, so a value is in the context exactly
 * where a needle puts it. The passkey answer ends with '.', so a model that
 * runs on past the last digit of K is wrong (Landmark scores the first
 * integer of the output). */
#include "niah.h"
#include "answer.h"
#include "recall.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NK_PASSKEY, NK_SINGLE, NK_MULTIKEY, NK_MULTIVALUE, NK_MULTIQUERY, NK_VT };
static const char *const kind_name[] = {"passkey", "single", "multikey", "multivalue", "multiquery", "vt"};

#define MAX_NEEDLES 5
#define NEEDLE_CAP 96
#define TAIL_CAP 256

typedef struct {
    int kind;
    int64_t len, len_min, distractors;
    double depth;
    int snap;
    niah_hay_kind hay;
    niah_fit_kind fit;
} niah_cfg;

/* One example's strings and layout. */
typedef struct {
    int n_keys, n_vals, n_needles;
    char key[MAX_NEEDLES][16]; /* niah keys, or vt names (fixed length) */
    char val[MAX_NEEDLES][16]; /* 7-digit values, or the vt value / passkey */
    int perm[MAX_NEEDLES];     /* multiquery: query order */
    char needle[MAX_NEEDLES][NEEDLE_CAP];
    int64_t off[MAX_NEEDLES];  /* haystack bytes before each needle */
    int order[MAX_NEEDLES];    /* needles in context order */
} niah_ex;

static const char passkey_desc[] = "There is an important info hidden inside a lot of irrelevant text. Find it and "
                                   "memorize them. I will quiz you about the important information there.";
static const char passkey_question[] = "What is the pass key? The pass key is ";

/* --- random strings ------------------------------------------------------ */

static void rand_letters(attn_rng *r, char *s, int64_t k, char first)
{
    for (int64_t j = 0; j < k; j++)
        s[j] = (char)(first + (char)recall_below(r, 26));
    s[k] = '\0';
}

/* k digits, the first nonzero (RULER: randint(10^(k-1), 10^k - 1)). */
static void rand_digits(attn_rng *r, char *s, int k)
{
    for (int j = 0; j < k; j++)
        s[j] = (char)('0' + (j == 0 ? 1 + recall_below(r, 9) : recall_below(r, 10)));
    s[k] = '\0';
}

static int in_list(char list[][16], int n, const char *s)
{
    for (int j = 0; j < n; j++)
        if (strcmp(list[j], s) == 0)
            return 1;
    return 0;
}

/* Variable-length keys (and counts, query order): drawn once per example. */
static void draw_keys(const niah_cfg *c, attn_rng *r, niah_ex *e)
{
    int k = c->kind;
    e->n_needles = k == NK_SINGLE ? 1 : k == NK_VT ? 5 : k == NK_MULTIKEY ? 1 : 4;
    if (k == NK_MULTIKEY)
        e->n_needles += c->distractors ? (int)c->distractors : 1 + (int)recall_below(r, 3);
    e->n_vals = k == NK_VT ? 1 : e->n_needles;
    e->n_keys = k == NK_VT ? 5 : k == NK_MULTIVALUE ? 1 : e->n_needles;
    if (k == NK_VT)
        return; /* vt names have a fixed length: drawn with the values */
    for (int j = 0; j < e->n_keys; j++) {
        char s[16];
        do
            rand_letters(r, s, 4 + (int64_t)recall_below(r, 5), 'a');
        while (in_list(e->key, j, s));
        memcpy(e->key[j], s, sizeof s);
    }
    for (int j = 0; j < e->n_needles; j++)
        e->perm[j] = j;
    if (k == NK_MULTIQUERY)
        recall_distinct(r, 0, e->n_needles, e->n_needles, e->perm);
}

/* Fixed-length answers (values, vt names), distinct, redrawn while any
 * occurs in the haystack hay [G]. */
static int draw_answers(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G)
{
    for (int attempt = 0; attempt < 1000; attempt++) {
        int clash = 0;
        for (int j = 0; j < e->n_vals; j++) {
            char s[16];
            do
                rand_digits(r, s, c->kind == NK_VT ? 5 : 7);
            while (in_list(e->val, j, s));
            memcpy(e->val[j], s, sizeof s);
            clash |= memmem(hay, (size_t)G, s, strlen(s)) != NULL;
        }
        for (int j = 0; c->kind == NK_VT && j < e->n_keys; j++) {
            char s[16];
            do
                rand_letters(r, s, 5, 'A');
            while (in_list(e->key, j, s));
            memcpy(e->key[j], s, sizeof s);
            clash |= memmem(hay, (size_t)G, s, 5) != NULL;
        }
        if (!clash)
            return 0;
    }
    return attn_fail(ATTN_EINVAL, "task niah: expected values absent from the haystack, found clashes in 1000 draws");
}

/* Needle j's text; its length does not depend on the values' digits. */
static int render_needle(const niah_cfg *c, const niah_ex *e, int j, char *out)
{
    if (c->kind == NK_VT)
        return j == 0 ? snprintf(out, NEEDLE_CAP, " VAR %s = %s.", e->key[0], e->val[0])
                      : snprintf(out, NEEDLE_CAP, " VAR %s = VAR %s.", e->key[j], e->key[j - 1]);
    return snprintf(out, NEEDLE_CAP, " One of the special magic numbers for %s is: %s.",
                    e->key[c->kind == NK_MULTIVALUE ? 0 : j], e->val[j]);
}

/* --- the tail ------------------------------------------------------------ */

typedef struct {
    int32_t tok[TAIL_CAP];
    uint8_t scored[TAIL_CAP];
    int n;
} niah_tail;

static void tail_put(niah_tail *t, int32_t tok, int scored)
{
    if (t->n < TAIL_CAP)
        t->tok[t->n] = tok, t->scored[t->n++] = (uint8_t)scored;
}

static void tail_str(niah_tail *t, const char *s, int scored)
{
    for (; *s; s++)
        tail_put(t, (unsigned char)*s, scored);
}

/* The tail given the needles' context order (its length does not depend
 * on the order, so it is rendered once before the layout to size G). */
static void render_tail(const niah_cfg *c, const niah_ex *e, niah_tail *t)
{
    t->n = 0;
    if (c->kind == NK_PASSKEY) {
        tail_str(t, passkey_question, 0);
        tail_str(t, e->val[0], 1);
        tail_put(t, '.', 1);
        return;
    }
    int queries = c->kind == NK_MULTIQUERY ? e->n_needles : 1;
    for (int q = 0; q < queries; q++) {
        int j = e->perm[q];
        tail_put(t, NIAH_QUERY, 0);
        tail_str(t, c->kind == NK_VT ? e->val[0] : e->key[j], 0);
        tail_put(t, NIAH_ANSWER, 0);
        if (c->kind == NK_MULTIVALUE || c->kind == NK_VT)
            for (int k = 0; k < e->n_needles; k++) {
                if (k)
                    tail_put(t, ',', 1);
                tail_str(t, c->kind == NK_VT ? e->key[e->order[k]] : e->val[e->order[k]], 1);
            }
        else
            tail_str(t, e->val[j], 1);
    }
}

/* --- layout ------------------------------------------------------------- */

/* The largest p <= o with p == 0 or hay[p-1] == '.'. */
static int64_t snap_back(const uint8_t *hay, int64_t o)
{
    while (o > 0 && hay[o - 1] != '.')
        o--;
    return o;
}

static double draw_depth(const niah_cfg *c, attn_rng *r)
{
    return c->depth < 0 ? attn_rng_uniform(r) : c->depth;
}

/* Offsets of the needles in the haystack [G] and their context order:
 * needle 0 at depth d; vt's later hops at sorted uniform offsets after it
 * (a chain must be read in order); other needles uniform anywhere. */
static void place_needles(const niah_cfg *c, attn_rng *r, niah_ex *e, const uint8_t *hay, int64_t G, double d)
{
    e->off[0] = (int64_t)llround(d * (double)G);
    if (c->snap)
        e->off[0] = snap_back(hay, e->off[0]);
    for (int j = 1; j < e->n_needles; j++) {
        int64_t lo = c->kind == NK_VT ? e->off[0] : 0;
        e->off[j] = lo + (int64_t)recall_below(r, (uint64_t)(G - lo + 1));
        if (c->snap)
            e->off[j] = snap_back(hay, e->off[j]);
    }
    for (int j = 0; j < e->n_needles; j++)
        e->order[j] = j;
    /* insertion sort by (offset, index): stable, so ties keep needle 0 first */
    for (int j = 1; j < e->n_needles; j++)
        for (int q = j; q > 0 && e->off[e->order[q - 1]] > e->off[e->order[q]]; q--) {
            int s = e->order[q];
            e->order[q] = e->order[q - 1], e->order[q - 1] = s;
        }
    if (c->kind == NK_VT) { /* hop k takes the k-th smallest offset */
        int64_t sorted[MAX_NEEDLES];
        for (int j = 0; j < e->n_needles; j++)
            sorted[j] = e->off[e->order[j]];
        for (int j = 0; j < e->n_needles; j++)
            e->off[j] = sorted[j], e->order[j] = j;
    }
}

/* Copies bytes into y as tokens. */
static int64_t put_bytes(int32_t *y, int64_t at, const uint8_t *s, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        y[at + k] = s[k];
    return at + n;
}

/* Appends the tail; the example must then be exactly y[0..T]. */
static int put_tail(int32_t *y, int64_t at, const niah_tail *t, int64_t T)
{
    for (int k = 0; k < t->n; k++)
        y[at++] = t->tok[k];
    if (at != T + 1)
        return attn_fail(ATTN_EINVAL, "task niah: internal layout error, expected %lld tokens, built %lld",
                         (long long)(T + 1), (long long)at);
    return 0;
}

/* One RULER-style example into y [T+1] and its strings into *ex; hay is scratch [T]. */
static int niah_example(const niah_cfg *c, niah_haystack *h, attn_rng *r, int64_t T, int32_t *y, uint8_t *hay,
                        niah_tail *t, niah_ex *ex)
{
    niah_ex e;
    memset(&e, 0, sizeof e);
    double d = draw_depth(c, r);
    draw_keys(c, r, &e);
    /* placeholder answers of the right lengths size the needles and tail */
    for (int j = 0; j < MAX_NEEDLES; j++) {
        memcpy(e.val[j], "0000000", c->kind == NK_VT ? 5 : 7);
        if (c->kind == NK_VT)
            memcpy(e.key[j], "AAAAA", 6);
    }
    int64_t needles = 0;
    for (int j = 0; j < e.n_needles; j++)
        needles += render_needle(c, &e, j, e.needle[j]);
    render_tail(c, &e, t);
    int64_t G = T - t->n - needles;
    if (G < 0)
        return attn_fail(ATTN_EINVAL, "task niah (%s): expected len >= %lld for the needles and the query, found %lld",
                         kind_name[c->kind], (long long)(T - G), (long long)T);
    int rc = niah_haystack_fill(h, r, hay, G);
    if (!rc)
        rc = draw_answers(c, r, &e, hay, G);
    if (rc)
        return rc;
    for (int j = 0; j < e.n_needles; j++)
        render_needle(c, &e, j, e.needle[j]);
    place_needles(c, r, &e, hay, G, d);
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
    return put_tail(y, at, t, T);
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
    char info[NEEDLE_CAP];
    int64_t ni = snprintf(info, sizeof info, "The pass key is %s. Remember it. %s is the pass key.", e.val[0], e.val[0]);
    render_tail(c, &e, t);
    int64_t nd = (int64_t)strlen(passkey_desc), G = T - t->n - nd - ni - 4;
    if (G < 0)
        return attn_fail(ATTN_EINVAL, "task passkey: expected len >= %lld for the prompt, found %lld",
                         (long long)(T - G), (long long)T);
    int64_t p = (int64_t)llround(d * (double)G);
    int rc = niah_haystack_fill(h, r, hay, p);
    if (!rc && c->snap)
        p = snap_back(hay, p);
    if (!rc)
        rc = niah_haystack_fill(h, r, hay + p, G - p);
    if (rc)
        return rc;
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
    return put_tail(y, at, t, T);
}

/* --- make ---------------------------------------------------------------- */

#define NIAH_COMMON_PARAMS                                                                                   \
    {.name = "len", .type = OPT_INT, .def = 512, .lo = 16, .hi = 1 << 26, .help = "sequence length"},          \
    {.name = "len_min", .type = OPT_INT, .def = 0, .def_str = "len", .lo = 0, .hi = 1 << 26,                  \
     .help = "shortest length: lengths uniform in [len_min, len]"},                                           \
    {.name = "depth", .type = OPT_DOUBLE, .def = -1, .lo = -1, .hi = 1,                                        \
     .help = "needle depth in [0, 1]; -1: uniform"},                                                          \
    {.name = "haystack", .type = OPT_ENUM, .names = niah_hay_names, .def = NIAH_HAY_NOISE,                    \
     .help = "noise, a Markov chain (random) or corpus text"},                                                \
    {.name = "fit", .type = OPT_ENUM, .names = niah_fit_names, .def = NIAH_FIT_NOISE,                         \
     .help = "the text the random chain is fitted to"},                                                       \
    {.name = "snap", .type = OPT_INT, .def = 1, .lo = 0, .hi = 1, .help = "1: the needle moved back to just after a '.'"}

static const opt_def niah_params[] = {NIAH_COMMON_PARAMS, {0}};
static const opt_def niah_multikey_params[] = {
    NIAH_COMMON_PARAMS,
    {.name = "distractors", .type = OPT_INT, .def = 0, .lo = 0, .hi = 3, .help = "other keys; 0: uniform 1-3"},
    {0},
};

static int niah_parse(const param_bag *p, const char *name, int kind, niah_cfg *c)
{
    const opt_def *rows = kind == NK_MULTIKEY ? niah_multikey_params : niah_params;
    int rc = task_params_check(rows, p, name);
    if (rc)
        return rc;
    c->kind = kind;
    c->len = task_param_int(rows, p, "len", &rc);
    c->len_min = task_param_int(rows, p, "len_min", &rc);
    c->depth = task_param_double(rows, p, "depth", &rc);
    c->snap = (int)task_param_int(rows, p, "snap", &rc);
    c->distractors = kind == NK_MULTIKEY ? task_param_int(rows, p, "distractors", &rc) : 0;
    c->hay = (niah_hay_kind)task_param_int(rows, p, "haystack", &rc);
    c->fit = (niah_fit_kind)task_param_int(rows, p, "fit", &rc);
    if (rc)
        return rc;
    if (c->depth < 0 && c->depth != -1)
        return attn_fail(ATTN_EINVAL, "param depth: expected a number in [0, 1] or -1 (uniform), found %g", c->depth);
    if (c->len_min > c->len)
        return attn_fail(ATTN_EINVAL, "param len_min: expected <= len=%lld, found %lld", (long long)c->len,
                         (long long)c->len_min);
    return 0;
}

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

static int niah_make_kind(int kind, const char *name, const param_bag *p, task_split split, uint64_t seed,
                          int64_t n, const char *data_dir, task_data *out)
{
    memset(out, 0, sizeof *out);
    niah_cfg c = {.kind = kind};
    int rc = niah_parse(p, name, kind, &c);
    niah_haystack *h = NULL;
    if (!rc)
        rc = niah_haystack_open(&h, c.hay, c.fit, split, data_dir);
    if (!rc)
        rc = task_data_alloc(out, name, TASK_LM, n, c.len);
    if (!rc) /* the references' rule: Landmark's for the passkey, RULER's for the rest */
        rc = task_answer_alloc(out, kind == NK_PASSKEY ? TASK_ANSWER_FIRST_INT : TASK_ANSWER_MATCH_ALL);
    int32_t *y = rc ? NULL : malloc((size_t)(c.len + 1) * sizeof *y);
    uint8_t *hay = rc ? NULL : malloc((size_t)c.len);
    niah_tail *t = rc ? NULL : malloc(sizeof *t);
    if (!rc && (!y || !hay || !t))
        rc = attn_fail(ATTN_ENOMEM, "task %s: cannot allocate scratch for len=%lld", name, (long long)c.len);
    for (int64_t i = 0; !rc && i < n; i++) {
        attn_rng r;
        recall_example_rng(&r, seed, split, i);
        int64_t T = c.len_min ? c.len_min + (int64_t)recall_below(&r, (uint64_t)(c.len - c.len_min + 1)) : c.len;
        niah_ex e;
        rc = kind == NK_PASSKEY ? passkey_example(&c, h, &r, T, y, hay, t, &e)
                                : niah_example(&c, h, &r, T, y, hay, t, &e);
        if (!rc)
            rc = add_references(&c, &e, out, i);
        int32_t *tok = task_tokens(out, i), *tgt = task_targets(out, i);
        /* scored y entries are the last answer bytes: mark them from the tail */
        for (int64_t k = 0; !rc && k < c.len; k++) {
            tok[k] = k < T ? y[k] : NIAH_PAD;
            tgt[k] = TASK_IGNORE;
        }
        for (int k = 0; !rc && k < t->n; k++)
            if (t->scored[k])
                tgt[T + 1 - t->n + k - 1] = t->tok[k];
        out->lengths[i] = (int32_t)T;
    }
    if (!rc) {
        out->vocab = NIAH_VOCAB;
        out->pad = NIAH_PAD;
        snprintf(out->data_source, sizeof out->data_source, "%s", niah_haystack_source(h));
        snprintf(out->meta, sizeof out->meta, "len=%lld;len_min=%lld;depth=%g;haystack=%s;fit=%s;snap=%d;needle=%s",
                 (long long)c.len, (long long)(c.len_min ? c.len_min : c.len), c.depth, niah_hay_names[c.hay],
                 c.hay == NIAH_HAY_RANDOM ? niah_fit_names[c.fit] : "-", c.snap, kind_name[kind]);
    } else
        task_data_free(out);
    free(y);
    free(hay);
    free(t);
    niah_haystack_close(h);
    return rc;
}

/* One task_def per needle kind; extra = the kind's own parameters. */
#define NIAH_TASK(ident, KIND, tname, desc, rows)                                                             \
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

NIAH_TASK(passkey, NK_PASSKEY, "passkey", "Landmark passkey retrieval as bytes: answer the 1-50000 key and '.'", niah_params)
NIAH_TASK(niah, NK_SINGLE, "niah", "RULER-style single needle: QUERY key ANSWER -> the 7-digit value", niah_params)
NIAH_TASK(niah_multikey, NK_MULTIKEY, "niah_multikey", "one queried needle among 1-3 distractors with other keys",
          niah_multikey_params)
NIAH_TASK(niah_multivalue, NK_MULTIVALUE, "niah_multivalue", "one key with 4 values: emit all, in context order", niah_params)
NIAH_TASK(niah_multiquery, NK_MULTIQUERY, "niah_multiquery", "4 keys inserted, all 4 queried in random order", niah_params)
NIAH_TASK(niah_vt, NK_VT, "niah_vt", "variable tracking: a 4-hop VAR chain, emit the 5 names bound to the value", niah_params)
