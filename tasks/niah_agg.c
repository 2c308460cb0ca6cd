/* RULER's aggregation tasks as trainable byte-level tasks (docs/tasks.md), in
 * the NIAH layout (niah.c): an example of T tokens is BOS context tail, PAD
 * after it, the answer bytes of the tail trained.
 *   cwe  common words extraction (RULER's common_words_extraction.py): the
 *        context is RULER's numbered list "1. w 2. w ... n. w" of shuffled
 *        words, `common` of them common_reps times each, the others
 *        (uncommon) uncommon_reps times; tail QUERY ANSWER [c1,c2,..] the
 *        common words in order of first occurrence (they all occur equally
 *        often, so frequency cannot order them).
 *   fwe  frequent words extraction (RULER's freq_words_extraction.py): the
 *        context is coded words (word_len random letters) joined by ' ', rank
 *        k occurring floor(W k^-alpha / zeta(alpha)) times, rank 1 being the
 *        noise word "...", shuffled; tail QUERY ANSWER [r2,r3,r4] the three
 *        most frequent coded words by descending count (niah_agg.h: the
 *        counts of ranks 2-4 are made distinct).
 * As RULER searches the number of words that fits its token budget, the
 * context holds the most words that fit T - 1 - tail bytes (uncommon words
 * for cwe, W for fwe), so an example may be a few bytes shorter than T.
 * Words are drawn afresh per example (RULER: the same shuffle seed for every
 * example, which a trained model could learn). References: the answer words,
 * scored by RULER's string_match_all. */
#include "niah_agg.h"
#include "answer.h"
#include "niah_gen.h"
#include "recall.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CWE_COMMON_MAX = 10, FWE_ANSWERS = 3 };

typedef struct {
    int fwe;
    int64_t len, len_min;
    int word_len;
    int64_t common, common_reps, uncommon_reps; /* cwe */
    double alpha, zeta;                          /* fwe */
    int64_t vocab;                               /* fwe: ranks, noise word included */
} agg_cfg;

/* How many words an example of T tokens holds (-1 in n: none fit). */
typedef struct {
    int64_t n;       /* cwe: uncommon words; fwe: RULER's W */
    int64_t words;   /* distinct words drawn (fwe: coded ones) */
    int64_t entries; /* words in the context, repeats counted */
} agg_plan;

typedef struct {
    niah_word *word;
    int64_t *entry, *count; /* context order as word (cwe) or rank (fwe) indices; fwe's counts [vocab] */
    int32_t *y;             /* the example [len + 1] */
    niah_tail tail;
    int64_t plan_T; /* the length of plan (and of fwe's counts), -1: none */
    agg_plan plan;
} agg_scratch;

/* One example's answer and baseline. */
typedef struct {
    int64_t answer[CWE_COMMON_MAX]; /* word indices, in trained order */
    int n_answer;
    int64_t words; /* distinct (coded) words in the context */
} agg_ex;

static const char *task_name(const agg_cfg *c) { return c->fwe ? "fwe" : "cwe"; }

static int64_t tail_bytes(const agg_cfg *c)
{
    int64_t k = c->fwe ? FWE_ANSWERS : c->common;
    return 2 + k * (c->word_len + 1) - 1; /* QUERY ANSWER, the words joined by ',' */
}

/* --- how many words fit -------------------------------------------------- */

static int64_t cwe_bytes(const agg_cfg *c, int64_t uncommon)
{
    return niah_numbered_bytes(c->common * c->common_reps + uncommon * c->uncommon_reps, c->word_len);
}

static agg_plan cwe_plan(const agg_cfg *c, int64_t T)
{
    int64_t room = T - 1 - tail_bytes(c), lo = 0, hi = room / (c->word_len + 3) + 1;
    if (cwe_bytes(c, 0) > room)
        return (agg_plan){.n = -1};
    while (lo < hi) { /* the most uncommon words that fit */
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (cwe_bytes(c, mid) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    return (agg_plan){.n = lo, .words = c->common + lo, .entries = c->common * c->common_reps + lo * c->uncommon_reps};
}

/* Bytes of fwe's text for W (counts left in count [vocab]). */
static int64_t fwe_bytes(const agg_cfg *c, int64_t W, int64_t *count)
{
    niah_zipf_counts(W, c->alpha, c->zeta, c->vocab, count);
    int64_t bytes = -1;
    for (int64_t k = 0; k < c->vocab; k++)
        bytes += count[k] * ((k == 0 ? 3 : c->word_len) + 1);
    return bytes;
}

static agg_plan fwe_plan(const agg_cfg *c, int64_t T, int64_t *count)
{
    int64_t room = T - 1 - tail_bytes(c), lo = 0, hi = 2 * room + 16;
    if (fwe_bytes(c, 0, count) > room)
        return (agg_plan){.n = -1};
    while (lo < hi) { /* the largest W that fits: the bytes grow with W */
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (fwe_bytes(c, mid, count) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    fwe_bytes(c, lo, count);
    agg_plan p = {.n = lo};
    for (int64_t k = 0; k < c->vocab; k++)
        p.entries += count[k], p.words += k > 0 && count[k] > 0;
    return p;
}

static agg_plan plan_of(const agg_cfg *c, int64_t T, int64_t *count)
{
    return c->fwe ? fwe_plan(c, T, count) : cwe_plan(c, T);
}

/* The plan of an example of T tokens, kept for the next example of the same
 * length (fwe's search costs a pass over the ranks per step). */
static agg_plan example_plan(const agg_cfg *c, agg_scratch *s, int64_t T)
{
    if (s->plan_T != T)
        s->plan = plan_of(c, T, s->count), s->plan_T = T;
    return s->plan;
}

/* The shortest length whose plan holds a word besides the answer: one
 * uncommon word (cwe), a fifth rank (fwe: floor(W 5^-alpha / zeta) >= 1). */
static int64_t shortest_len(const agg_cfg *c, int64_t *count)
{
    if (!c->fwe)
        return 1 + tail_bytes(c) + cwe_bytes(c, 1);
    int64_t W = (int64_t)(c->zeta * pow(5, c->alpha)); /* about where rank 5's count reaches 1 */
    while (niah_zipf_counts(W, c->alpha, c->zeta, c->vocab, count), count[4] < 1)
        W++;
    while (W > 0 && (niah_zipf_counts(W - 1, c->alpha, c->zeta, c->vocab, count), count[4] >= 1))
        W--;
    return 1 + tail_bytes(c) + fwe_bytes(c, W, count);
}

/* Every length in [len_min, len] holds a word besides the answer (the plans
 * grow with T), and the longest one's words can be drawn distinct. */
static int check_plans(const agg_cfg *c, int64_t *count)
{
    int64_t shortest = c->len_min ? c->len_min : c->len, need = shortest_len(c, count);
    if (shortest < need)
        return attn_fail(ATTN_EINVAL,
                         "task %s: expected %s >= %lld for the answer words and one other word, found %lld",
                         task_name(c), c->len_min ? "len_min" : "len", (long long)need, (long long)shortest);
    agg_plan p = plan_of(c, c->len, count);
    niah_word_kind kind = c->fwe ? NIAH_WORDS_CODED : NIAH_WORDS_PSEUDO;
    double most = niah_word_space(kind, c->word_len) / 4;
    if ((double)p.words > most)
        return attn_fail(ATTN_EINVAL,
                         "task %s: len=%lld needs %lld distinct words, expected at most %.0f (a quarter of the "
                         "words of word_len=%d letters): raise word_len or lower len",
                         task_name(c), (long long)c->len, (long long)p.words, most, c->word_len);
    return 0;
}

/* --- examples ------------------------------------------------------------ */

static int64_t put_text(int32_t *y, int64_t at, const char *s)
{
    for (; *s; s++)
        y[at++] = (unsigned char)*s;
    return at;
}

static void render_tail(const agg_scratch *s, const agg_ex *e, niah_tail *t)
{
    t->n = 0;
    niah_tail_put(t, NIAH_QUERY, 0);
    niah_tail_put(t, NIAH_ANSWER, 0);
    for (int k = 0; k < e->n_answer; k++) {
        if (k)
            niah_tail_put(t, ',', 1);
        niah_tail_str(t, s->word[e->answer[k]], 1);
    }
}

static int cwe_example(const agg_cfg *c, agg_scratch *s, attn_rng *r, int64_t *T, agg_ex *e)
{
    agg_plan p = example_plan(c, s, *T);
    int rc = niah_draw_words(r, NIAH_WORDS_PSEUDO, c->word_len, p.words, s->word);
    if (rc)
        return rc;
    int64_t m = 0;
    for (int64_t j = 0; j < p.words; j++)
        for (int64_t k = 0; k < (j < c->common ? c->common_reps : c->uncommon_reps); k++)
            s->entry[m++] = j;
    niah_shuffle(r, s->entry, m);
    int seen[CWE_COMMON_MAX] = {0};
    int64_t at = 0;
    s->y[at++] = NIAH_BOS;
    e->n_answer = 0;
    for (int64_t k = 0; k < m; k++) {
        char item[32];
        snprintf(item, sizeof item, "%s%lld. %s", k ? " " : "", (long long)(k + 1), s->word[s->entry[k]]);
        at = put_text(s->y, at, item);
        int64_t j = s->entry[k];
        if (j < c->common && !seen[j]++)
            e->answer[e->n_answer++] = j; /* first occurrences: the trained order */
    }
    e->words = p.words;
    render_tail(s, e, &s->tail);
    *T = at + s->tail.n - 1;
    return niah_put_tail(s->y, at, &s->tail, *T);
}

static int fwe_example(const agg_cfg *c, agg_scratch *s, attn_rng *r, int64_t *T, agg_ex *e)
{
    agg_plan p = example_plan(c, s, *T);
    int rc = niah_draw_words(r, NIAH_WORDS_CODED, c->word_len, p.words, s->word); /* word k-1: rank k+1 */
    if (rc)
        return rc;
    int64_t m = 0;
    for (int64_t k = 0; k < c->vocab; k++)
        for (int64_t j = 0; j < s->count[k]; j++)
            s->entry[m++] = k;
    niah_shuffle(r, s->entry, m);
    int64_t at = 0;
    s->y[at++] = NIAH_BOS;
    for (int64_t k = 0; k < m; k++) {
        if (k)
            s->y[at++] = ' ';
        at = put_text(s->y, at, s->entry[k] ? s->word[s->entry[k] - 1] : "...");
    }
    e->n_answer = FWE_ANSWERS;
    for (int k = 0; k < FWE_ANSWERS; k++)
        e->answer[k] = k; /* ranks 2, 3, 4: descending counts */
    e->words = p.words;
    render_tail(s, e, &s->tail);
    *T = at + s->tail.n - 1;
    return niah_put_tail(s->y, at, &s->tail, *T);
}

/* --- parameters ---------------------------------------------------------- */

static const opt_def cwe_params[] = {
    NIAH_LEN_PARAMS,
    {.name = "common", .type = OPT_INT, .def = 4, .lo = 1, .hi = CWE_COMMON_MAX,
     .help = "common words, the answer (RULER num_cw: 10)"},
    {.name = "common_reps", .type = OPT_INT, .def = 4, .lo = 2, .hi = 1000,
     .help = "occurrences of each common word (RULER freq_cw: 30; 6 below 4K tokens)"},
    {.name = "uncommon_reps", .type = OPT_INT, .def = 1, .lo = 1, .hi = 999,
     .help = "occurrences of each uncommon word, < common_reps (RULER freq_ucw: 3; 1 below 4K tokens)"},
    {.name = "word_len", .type = OPT_INT, .def = 5, .lo = NIAH_WORD_MIN, .hi = NIAH_WORD_MAX,
     .help = "letters per pseudoword (the stand-in for RULER's English words)"},
    {0},
};

static const opt_def fwe_params[] = {
    NIAH_LEN_PARAMS,
    {.name = "alpha", .type = OPT_DOUBLE, .def = 2.0, .lo = 1.2, .hi = 4,
     .help = "Zipf exponent of the word counts (RULER: 2.0)"},
    {.name = "vocab", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 16,
     .help = "ranks, the noise word '...' included (>= 5); 0: RULER's len/50, at least 5"},
    {.name = "word_len", .type = OPT_INT, .def = 6, .lo = NIAH_WORD_MIN, .hi = NIAH_WORD_MAX,
     .help = "letters per coded word (RULER coded_wordlen: 6)"},
    {0},
};

static int agg_parse(const param_bag *p, const char *name, int fwe, agg_cfg *c)
{
    const opt_def *rows = fwe ? fwe_params : cwe_params;
    int rc = task_params_check(rows, p, name);
    if (rc)
        return rc;
    *c = (agg_cfg){.fwe = fwe};
    c->len = task_param_int(rows, p, "len", &rc);
    c->len_min = task_param_int(rows, p, "len_min", &rc);
    c->word_len = (int)task_param_int(rows, p, "word_len", &rc);
    if (fwe) {
        c->alpha = task_param_double(rows, p, "alpha", &rc);
        c->vocab = task_param_int(rows, p, "vocab", &rc);
    } else {
        c->common = task_param_int(rows, p, "common", &rc);
        c->common_reps = task_param_int(rows, p, "common_reps", &rc);
        c->uncommon_reps = task_param_int(rows, p, "uncommon_reps", &rc);
    }
    if (rc || (rc = niah_check_lengths(c->len, c->len_min)))
        return rc;
    if (!fwe && c->uncommon_reps >= c->common_reps)
        return attn_fail(ATTN_EINVAL, "param uncommon_reps: expected < common_reps=%lld (the common words must occur "
                                      "more often), found %lld", (long long)c->common_reps, (long long)c->uncommon_reps);
    if (fwe && c->vocab > 0 && c->vocab < 5)
        return attn_fail(ATTN_EINVAL, "param vocab: expected 0 (len/50) or at least 5 ranks (the noise word, 3 "
                                      "answers and one more), found %lld", (long long)c->vocab);
    if (fwe && c->vocab == 0)
        c->vocab = c->len / 50 > 5 ? c->len / 50 : 5;
    c->zeta = fwe ? niah_zeta(c->alpha) : 0;
    return 0;
}

/* --- make ---------------------------------------------------------------- */

static void scratch_free(agg_scratch *s)
{
    free(s->word), free(s->entry), free(s->count), free(s->y);
}

/* Sized for the longest example (the plans grow with T). */
static int scratch_alloc(const agg_cfg *c, agg_scratch *s)
{
    s->count = malloc((size_t)(c->fwe ? c->vocab : 5) * sizeof *s->count);
    if (!s->count)
        return attn_fail(ATTN_ENOMEM, "task %s: cannot allocate %lld counts", task_name(c), (long long)c->vocab);
    int rc = check_plans(c, s->count);
    if (rc)
        return rc;
    agg_plan p = plan_of(c, c->len, s->count);
    s->plan_T = -1; /* the counts were the checks' */
    s->word = malloc((size_t)(p.words + 1) * sizeof *s->word);
    s->entry = malloc((size_t)(p.entries + 1) * sizeof *s->entry);
    s->y = malloc((size_t)(c->len + 1) * sizeof *s->y);
    if (!s->word || !s->entry || !s->y)
        return attn_fail(ATTN_ENOMEM, "task %s: cannot allocate scratch for len=%lld", task_name(c),
                         (long long)c->len);
    return 0;
}

/* Fewest distinct words of any example, and the chance baseline: a guess of
 * k distinct words from the example's D scores k/D on average under
 * string_match_all, averaged over the examples. */
typedef struct {
    int64_t words_min, n;
    double chance_sum;
} agg_tally;

static void put_labels(const agg_cfg *c, const agg_tally *a, task_data *out)
{
    out->vocab = NIAH_VOCAB;
    out->pad = NIAH_PAD;
    snprintf(out->data_source, sizeof out->data_source, "%s", c->fwe ? "generated" : "stand-in:pseudowords");
    int64_t len_min = c->len_min ? c->len_min : c->len;
    double chance = a->n ? a->chance_sum / (double)a->n : 0;
    if (c->fwe)
        snprintf(out->meta, sizeof out->meta, "len=%lld;len_min=%lld;ruler=fwe;alpha=%g;vocab=%lld;word_len=%d;"
                 "words_min=%lld;chance=%.3f", (long long)c->len, (long long)len_min, c->alpha, (long long)c->vocab,
                 c->word_len, (long long)a->words_min, chance);
    else
        snprintf(out->meta, sizeof out->meta, "len=%lld;len_min=%lld;ruler=cwe;common=%lld;common_reps=%lld;"
                 "uncommon_reps=%lld;word_len=%d;words_min=%lld;chance=%.3f", (long long)c->len, (long long)len_min,
                 (long long)c->common, (long long)c->common_reps, (long long)c->uncommon_reps, c->word_len,
                 (long long)a->words_min, chance);
}

static int one_example(const agg_cfg *c, agg_scratch *s, attn_rng *r, int64_t i, task_data *out, agg_tally *a)
{
    int64_t T = niah_draw_len(r, c->len, c->len_min);
    agg_ex e;
    int rc = c->fwe ? fwe_example(c, s, r, &T, &e) : cwe_example(c, s, r, &T, &e);
    for (int k = 0; !rc && k < e.n_answer; k++)
        rc = task_answer_add(out, i, s->word[e.answer[k]]);
    if (rc)
        return rc;
    niah_put_row(out, i, s->y, T, &s->tail);
    a->words_min = a->n && a->words_min < e.words ? a->words_min : e.words;
    a->chance_sum += (double)e.n_answer / (double)e.words;
    a->n++;
    return 0;
}

static int agg_make(int fwe, const char *name, const param_bag *p, task_split split, uint64_t seed, int64_t n,
                    const char *data_dir, task_data *out)
{
    memset(out, 0, sizeof *out);
    agg_cfg c;
    agg_scratch s = {0};
    agg_tally a = {0};
    int rc = task_generated_only(name, data_dir);
    if (!rc)
        rc = agg_parse(p, name, fwe, &c);
    if (!rc)
        rc = scratch_alloc(&c, &s);
    if (!rc)
        rc = task_data_alloc(out, name, TASK_LM, n, c.len);
    if (!rc)
        rc = task_answer_alloc(out, TASK_ANSWER_MATCH_ALL);
    for (int64_t i = 0; !rc && i < n; i++) {
        attn_rng r;
        recall_example_rng(&r, seed, split, i);
        rc = one_example(&c, &s, &r, i, out, &a);
    }
    if (!rc)
        put_labels(&c, &a, out);
    else
        task_data_free(out);
    scratch_free(&s);
    return rc;
}

static int cwe_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                    task_data *out)
{
    return agg_make(0, "cwe", p, split, seed, n, data_dir, out);
}

static int fwe_make(const param_bag *p, task_split split, uint64_t seed, int64_t n, const char *data_dir,
                    task_data *out)
{
    return agg_make(1, "fwe", p, split, seed, n, data_dir, out);
}

const task_def task_cwe = {
    .name = "cwe",
    .suite = "niah",
    .description = "RULER common words extraction: a numbered word list, emit the words that occur most often",
    .params = cwe_params,
    .make = cwe_make,
};

const task_def task_fwe = {
    .name = "fwe",
    .suite = "niah",
    .description = "RULER frequent words extraction: Zipf-distributed coded words, emit the 3 most frequent",
    .params = fwe_params,
    .make = fwe_make,
};
