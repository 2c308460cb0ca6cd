/* RULER's aggregation tasks cwe and fwe (tasks/niah_agg.c): the numbered
 * list's counts and numbering, fwe's Zipf counts and strict top three, the
 * answers and their order, filling the length, determinism, scoring by
 * string_match_all, the refused parameters, and a tiny training with its
 * length grid. Rows are decoded with the NIAH test helpers (niah_check.h). */
#include "common/attn_error.h"
#include "harness/results/csvw.h"
#include "harness/train/extrapolate.h"
#include "niah_check.h"
#include "tasks/answer.h"
#include "tasks/niah_agg.h"
#include "test_train.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WORDS 1024

/* The distinct words of a context with their counts and first positions. */
typedef struct {
    char word[MAX_WORDS][16];
    int count[MAX_WORDS], n;
    int64_t entries;
} tally;

static int tally_add(tally *t, const char *w, size_t len)
{
    for (int j = 0; j < t->n; j++)
        if (strlen(t->word[j]) == len && !strncmp(t->word[j], w, len))
            return ++t->count[j], j;
    cr_assert_lt(t->n, MAX_WORDS);
    cr_assert_lt(len, sizeof t->word[0], "word '%.20s' too long", w);
    snprintf(t->word[t->n], sizeof t->word[0], "%.*s", (int)len, w);
    t->count[t->n] = 1;
    return t->n++;
}

static int is_word(const char *w, size_t len, int want)
{
    if ((int)len != want)
        return 0;
    for (size_t k = 0; k < len; k++)
        if (!islower((unsigned char)w[k]))
            return 0;
    return 1;
}

/* cwe's context "1. w 2. w ...": every item numbered in turn, words of
 * word_len lowercase letters. */
static void parse_numbered(const char *ctx, int word_len, tally *t)
{
    memset(t, 0, sizeof *t);
    const char *p = ctx;
    while (*p) {
        char num[24];
        int used = 0;
        snprintf(num, sizeof num, "%lld. ", (long long)(t->entries + 1));
        cr_assert(!strncmp(p, num, strlen(num)), "item %lld is not numbered '%s' at '%.20s'",
                  (long long)(t->entries + 1), num, p);
        p += strlen(num);
        used = (int)strcspn(p, " ");
        cr_assert(is_word(p, (size_t)used, word_len), "'%.*s' is not a %d-letter word", used, p, word_len);
        tally_add(t, p, (size_t)used);
        t->entries++;
        p += used;
        if (*p == ' ')
            p++;
    }
}

/* fwe's context: coded words and the noise word "..." joined by single spaces. */
static void parse_coded(const char *ctx, int word_len, tally *t, int *dots)
{
    memset(t, 0, sizeof *t);
    *dots = 0;
    for (const char *p = ctx; *p;) {
        size_t n = strcspn(p, " ");
        if (n == 3 && !strncmp(p, "...", 3))
            ++*dots;
        else {
            cr_assert(is_word(p, n, word_len), "'%.*s' is neither '...' nor a %d-letter coded word", (int)n, p,
                      word_len);
            tally_add(t, p, n);
        }
        t->entries++;
        p += n;
        cr_assert(*p == ' ' || !*p);
        p += *p == ' ';
    }
}

static double meta_chance(const task_data *d)
{
    const char *c = strstr(d->meta, ";chance=");
    cr_assert_not_null(c, "meta %s", d->meta);
    return atof(c + 8);
}

/* The references of example i joined by ',' (the trained answer's form). */
static void refs_joined(const task_data *d, int64_t i, char *out, size_t cap)
{
    snprintf(out, cap, "%s", task_answers(d, i));
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n')
        out[--n] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '\n' ? ',' : *c;
}

static void check_cwe(const char *params, int common, int reps, int ureps, int word_len, int64_t len)
{
    task_data d;
    nc_make_ok(&task_cwe, params, TASK_TEST, 3, 12, &d);
    cr_assert_str_eq(d.data_source, "stand-in:pseudowords");
    double chance = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        cr_assert_eq(v.query[0], '\0', "cwe asks no key: QUERY ANSWER");
        tally t;
        parse_numbered(v.ctx, word_len, &t);
        char order[200] = "", ans[200], refs[200];
        int n_common = 0;
        for (int j = 0; j < t.n; j++) {
            cr_assert(t.count[j] == reps || t.count[j] == ureps, "%s: '%s' occurs %d times, expected %d or %d",
                      params, t.word[j], t.count[j], reps, ureps);
            if (t.count[j] == reps) /* words are numbered in first-occurrence order */
                strcat(strcat(order, n_common++ ? "," : ""), t.word[j]);
        }
        cr_assert_eq(n_common, common, "%s: %d words occur %d times, expected %d", params, n_common, reps, common);
        cr_assert_gt(t.n, common, "%s: no uncommon word", params);
        nc_answer_text(&d, i, ans);
        cr_assert_str_eq(ans, order, "%s: the answer is the common words in order of first occurrence", params);
        refs_joined(&d, i, refs, sizeof refs);
        cr_assert_str_eq(refs, order);
        /* the list fills the length: one more uncommon word would not fit */
        int64_t more = niah_numbered_bytes(t.entries + ureps, word_len) - niah_numbered_bytes(t.entries, word_len);
        cr_assert(v.T <= len && v.T + more > len, "%s: T=%lld of len %lld", params, (long long)v.T, (long long)len);
        for (int64_t k = v.T; k < d.len; k++)
            cr_assert_eq(task_tokens(&d, i)[k], NIAH_PAD);
        chance += (double)common / t.n;
    }
    cr_assert_float_eq(meta_chance(&d), chance / (double)d.n, 1e-3, "%s: meta %s", params, d.meta);
    task_data_free(&d);
}

Test(niah_agg, cwe_list_is_numbered_and_each_common_word_occurs_exactly_common_reps_times, .timeout = 60)
{
    check_cwe("len=512", 4, 4, 1, 5, 512);
    check_cwe("len=1024 common=6 common_reps=5 uncommon_reps=2 word_len=4", 6, 5, 2, 4, 1024);
    check_cwe("len=4096 common=10 common_reps=30 uncommon_reps=3", 10, 30, 3, 5, 4096); /* RULER's counts */
}

static int by_count_desc(const void *a, const void *b) { return *(const int *)b - *(const int *)a; }

/* The W whose counts (niah_zipf_counts) are the observed ones, or -1. */
static int64_t find_w(const int *sorted, int n, int dots, double alpha, int64_t vocab, int64_t len)
{
    int64_t *c = malloc((size_t)vocab * sizeof *c);
    double zeta = niah_zeta(alpha);
    int64_t found = -1;
    for (int64_t W = 0; W < 4 * len && found < 0; W++) {
        niah_zipf_counts(W, alpha, zeta, vocab, c);
        int same = c[0] == dots;
        for (int64_t k = 1; same && k < vocab; k++)
            same = c[k] == (k - 1 < n ? sorted[k - 1] : 0);
        found = same && n <= vocab - 1 ? W : -1;
    }
    free(c);
    return found;
}

static void check_fwe(const char *params, double alpha, int64_t vocab, int word_len, int64_t len)
{
    task_data d;
    nc_make_ok(&task_fwe, params, TASK_TEST, 4, 12, &d);
    cr_assert_str_eq(d.data_source, "generated");
    double chance = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        tally t;
        int dots, sorted[MAX_WORDS];
        parse_coded(v.ctx, word_len, &t, &dots);
        cr_assert_geq(t.n, 4, "%s: %d coded words, expected the 3 answers and another", params, t.n);
        memcpy(sorted, t.count, sizeof *sorted * (size_t)t.n);
        qsort(sorted, (size_t)t.n, sizeof *sorted, by_count_desc);
        cr_assert(sorted[0] > sorted[1] && sorted[1] > sorted[2] && sorted[2] > sorted[3],
                  "%s: top counts %d %d %d %d are not strictly ranked", params, sorted[0], sorted[1], sorted[2],
                  sorted[3]);
        cr_assert_geq(find_w(sorted, t.n, dots, alpha, vocab, len), 0,
                      "%s: counts (... %d, %d %d %d %d ..) are not floor(W k^-alpha / zeta) for any W", params, dots,
                      sorted[0], sorted[1], sorted[2], sorted[3]);
        char want[64] = "", ans[64], refs[64];
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < t.n; j++)
                if (t.count[j] == sorted[r])
                    strcat(strcat(want, r ? "," : ""), t.word[j]);
        nc_answer_text(&d, i, ans);
        cr_assert_str_eq(ans, want, "%s: the answer is the three most frequent coded words, most frequent first",
                         params);
        refs_joined(&d, i, refs, sizeof refs);
        cr_assert_str_eq(refs, want);
        cr_assert_leq(v.T, len);
        chance += 3.0 / t.n;
    }
    cr_assert_float_eq(meta_chance(&d), chance / (double)d.n, 1e-3, "%s: meta %s", params, d.meta);
    task_data_free(&d);
}

Test(niah_agg, fwe_counts_are_rulers_zipf_floors_and_the_answer_the_three_most_frequent, .timeout = 60)
{
    check_fwe("len=512", 2.0, 10, 6, 512);
    check_fwe("len=256", 2.0, 5, 6, 256);
    check_fwe("len=2048 alpha=1.5 word_len=4", 1.5, 40, 4, 2048);
    check_fwe("len=1024 vocab=6", 2.0, 6, 6, 1024);
}

/* Short lengths hold few words, where RULER's floors tie ranks 4 and 5 */
Test(niah_agg, fwe_top_three_are_strict_at_every_length_from_the_shortest, .timeout = 60)
{
    for (int64_t len = 200; len <= 320; len++) {
        char params[32];
        snprintf(params, sizeof params, "len=%lld", (long long)len);
        task_data d;
        if (nc_make(&task_fwe, params, TASK_TEST, 1, 1, NULL, &d) == 0) {
            task_data_free(&d);
            check_fwe(params, 2.0, len / 50 > 5 ? len / 50 : 5, 6, len);
        } else
            cr_assert(strstr(attn_last_error(), "task fwe: expected len >= "), "%s", attn_last_error());
    }
}

Test(niah_agg, zipf_counts_are_floors_with_ties_among_the_top_ranks_raised)
{
    cr_assert_float_eq(niah_zeta(2), M_PI * M_PI / 6, 1e-12);
    cr_assert_float_eq(niah_zeta(4), pow(M_PI, 4) / 90, 1e-12);
    static const double alphas[] = {1.2, 2, 3};
    int64_t c[40];
    int raised = 0;
    for (int a = 0; a < 3; a++)
        for (int64_t V = 5; V <= 40; V += 35)
            for (int64_t W = 0; W < 3000; W++) {
                double z = niah_zeta(alphas[a]);
                niah_zipf_counts(W, alphas[a], z, V, c);
                for (int64_t k = V - 1; k >= 0; k--) {
                    int64_t fl = (int64_t)floor((double)W * pow((double)(k + 1), -alphas[a]) / z);
                    int64_t below = k + 1 < V ? c[k + 1] : 0;
                    int64_t want = k >= 1 && k <= 3 && fl <= below ? below + 1 : fl;
                    cr_assert_eq(c[k], want, "alpha %g W %lld rank %lld: %lld, expected %lld", alphas[a],
                                 (long long)W, (long long)k + 1, (long long)c[k], (long long)want);
                    raised += c[k] != fl;
                }
                cr_assert(c[1] > c[2] && c[2] > c[3] && c[3] > c[4], "W %lld: ranks 2-5 not strictly ranked",
                          (long long)W);
            }
    cr_assert_gt(raised, 0, "no tie was ever raised: the rule is untested");
}

Test(niah_agg, numbered_bytes_count_the_list_as_written)
{
    static char list[20000]; /* 1201 entries of up to 14 bytes */
    for (int len = 3; len <= 8; len += 5) {
        size_t at = 0;
        list[0] = '\0';
        for (int64_t n = 0; n <= 1200; n++) {
            cr_assert_eq(niah_numbered_bytes(n, len), (int64_t)at, "n=%lld", (long long)n);
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%lld. %.*s", n ? " " : "", (long long)(n + 1),
                                   len, "abcdefgh");
        }
    }
}

Test(niah_agg, pseudowords_alternate_consonants_and_vowels_and_never_repeat)
{
    niah_word w[400];
    attn_rng r;
    attn_rng_seed(&r, 5);
    cr_assert_eq(niah_draw_words(&r, NIAH_WORDS_PSEUDO, 3, 400, w), 0, "%s", attn_last_error());
    for (int i = 0; i < 400; i++) {
        cr_assert_eq(strlen(w[i]), 3);
        cr_assert(!strchr("aeiou", w[i][0]) && strchr("aeiou", w[i][1]) && !strchr("aeiou", w[i][2]), "%s", w[i]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(w[i], w[j]);
    }
    cr_assert_lt(niah_draw_words(&r, NIAH_WORDS_PSEUDO, 3, 406, w), 0, "more than a quarter of the 1620 words");
    cr_assert(strstr(attn_last_error(), "at most a quarter of the 1620 words"), "%s", attn_last_error());
}

Test(niah_agg, examples_are_deterministic_per_seed_split_and_index, .timeout = 60)
{
    const task_def *const tasks[] = {&task_cwe, &task_fwe};
    for (int k = 0; k < 2; k++) {
        task_data a, b, small, test;
        nc_make_ok(tasks[k], "len=512 len_min=300", TASK_TRAIN, 21, 10, &a);
        nc_make_ok(tasks[k], "len=512 len_min=300", TASK_TRAIN, 21, 10, &b);
        nc_make_ok(tasks[k], "len=512 len_min=300", TASK_TRAIN, 21, 3, &small);
        nc_make_ok(tasks[k], "len=512 len_min=300", TASK_TEST, 21, 10, &test);
        size_t row = (size_t)a.len * sizeof(int32_t);
        int same_test = 0, lengths = 0;
        for (int64_t i = 0; i < 10; i++) {
            cr_assert_eq(memcmp(task_tokens(&a, i), task_tokens(&b, i), row), 0);
            cr_assert_eq(memcmp(task_targets(&a, i), task_targets(&b, i), row), 0);
            cr_assert_str_eq(task_answers(&a, i), task_answers(&b, i));
            if (i < 3)
                cr_assert_eq(memcmp(task_tokens(&a, i), task_tokens(&small, i), row), 0, "%s: example %lld depends on n",
                             tasks[k]->name, (long long)i);
            same_test += memcmp(task_tokens(&a, i), task_tokens(&test, i), row) == 0;
            lengths += a.lengths[i] != a.lengths[0];
        }
        cr_assert_eq(same_test, 0, "%s: the test split repeats the train split", tasks[k]->name);
        cr_assert_gt(lengths, 0, "%s: len_min gave one length", tasks[k]->name);
        task_data_free(&a), task_data_free(&b), task_data_free(&small), task_data_free(&test);
    }
}

/* The targets as the generated answer score 1; one changed byte of the first
 * word costs that word, (k - 1) / k; the words in reverse order and upper
 * case still score 1; words of the context that are not the answer 0. */
static void check_scores(const task_def *t, const char *params, int k)
{
    task_data d;
    nc_make_ok(t, params, TASK_TEST, 9, 20, &d);
    cr_assert_eq(d.answer_rule, TASK_ANSWER_MATCH_ALL);
    int32_t *gen = malloc(sizeof *gen * (size_t)(d.n * d.len));
    memcpy(gen, d.targets, sizeof *gen * (size_t)(d.n * d.len));
    task_answer_summary s;
    cr_assert_eq(task_answer_summarize(&d, gen, d.n, &s), 0);
    cr_assert_eq(s.mean, 1.0, "%s: the oracle scores %g", t->name, s.mean);
    for (int64_t i = 0; i < d.n; i++) {
        for (int64_t p = 0; p < d.len; p++)
            if (task_targets(&d, i)[p] != TASK_IGNORE) {
                gen[i * d.len + p] = gen[i * d.len + p] == 'a' ? 'b' : 'a';
                break;
            }
        char refs[200], out[200] = "", other[200] = "";
        snprintf(refs, sizeof refs, "%s", task_answers(&d, i));
        for (char *r = refs + strlen(refs) - 1; r >= refs; r--)
            if (r == refs || r[-1] == '\n') {
                char w[16];
                snprintf(w, sizeof w, "%.*s", (int)strcspn(r, "\n"), r);
                for (char *c = w; *c; c++)
                    *c = (char)toupper((unsigned char)*c);
                strcat(strcat(out, w), " ");
            }
        cr_assert_eq(task_answer_score(TASK_ANSWER_MATCH_ALL, refs, out), 1.0, "%s: '%s'", t->name, out);
        nc_row v;
        nc_view_row(&d, i, &v);
        tally tl;
        int dots;
        if (t == &task_fwe)
            parse_coded(v.ctx, 6, &tl, &dots);
        else
            parse_numbered(v.ctx, 5, &tl);
        for (int j = 0; j < tl.n; j++)
            if (!strstr(refs, tl.word[j]))
                strcat(strcat(other, tl.word[j]), ",");
        cr_assert_eq(task_answer_score(TASK_ANSWER_MATCH_ALL, refs, other), 0.0, "%s: '%s'", t->name, other);
    }
    cr_assert_eq(task_answer_summarize(&d, gen, d.n, &s), 0);
    cr_assert_float_eq(s.mean, (k - 1.0) / k, 1e-12, "%s: one wrong word of %d scores %g", t->name, k, s.mean);
    free(gen);
    task_data_free(&d);
}

Test(niah_agg, string_match_all_scores_the_oracle_one_and_a_wrong_word_less, .timeout = 60)
{
    check_scores(&task_cwe, "len=512", 4);
    check_scores(&task_fwe, "len=512", 3);
}

/* The message of a refused make: one line, holding want. */
static void refused(const task_def *t, const char *params, const char *dir, const char *want)
{
    task_data d;
    cr_assert_lt(nc_make(t, params, TASK_TRAIN, 1, 2, dir, &d), 0, "%s %s accepted", t->name, params);
    const char *e = attn_last_error();
    cr_assert(strstr(e, want), "%s %s: '%s' lacks '%s'", t->name, params, e, want);
    cr_assert_null(strchr(e, '\n'), "%s %s: a message of several lines: %s", t->name, params, e);
}

/* The shortest length a message names is the shortest that works. */
static void shortest_len_is_exact(const task_def *t, const char *extra)
{
    char params[128], want[64];
    snprintf(params, sizeof params, "len=64 %s", extra);
    snprintf(want, sizeof want, "task %s: expected len >= ", t->name);
    refused(t, params, NULL, want);
    long need = atol(strstr(attn_last_error(), ">= ") + 3);
    cr_assert_gt(need, 64);
    task_data d;
    snprintf(params, sizeof params, "len=%ld %s", need, extra);
    nc_make_ok(t, params, TASK_TRAIN, 2, 20, &d);
    task_data_free(&d);
    snprintf(params, sizeof params, "len=%ld %s", need - 1, extra);
    refused(t, params, NULL, want);
    snprintf(params, sizeof params, "len=%ld len_min=%ld %s", need + 100, need - 1, extra);
    snprintf(want, sizeof want, "task %s: expected len_min >= %ld", t->name, need);
    refused(t, params, NULL, want);
}

Test(niah_agg, bad_parameters_are_refused_with_one_line_messages, .timeout = 60)
{
    refused(&task_cwe, "uncommon_reps=4", NULL, "param uncommon_reps: expected < common_reps=4 (the common words must "
                                                "occur more often), found 4");
    refused(&task_cwe, "common=11", NULL, "common");
    refused(&task_cwe, "depth=0.5", NULL, "depth");
    refused(&task_cwe, "len=512 len_min=600", NULL, "param len_min: expected <= len=512, found 600");
    refused(&task_cwe, "len=65536 word_len=3", NULL, "distinct words, expected at most 405 (a quarter of the words of "
                                                     "word_len=3 letters)");
    refused(&task_cwe, "len=512", "/tmp", "task cwe: --data: expected none");
    refused(&task_fwe, "vocab=4", NULL, "param vocab: expected 0 (len/50) or at least 5 ranks");
    refused(&task_fwe, "alpha=1", NULL, "alpha");
    refused(&task_fwe, "len=512", "/tmp", "task fwe: --data: expected none");
    shortest_len_is_exact(&task_cwe, "");
    shortest_len_is_exact(&task_cwe, "common=10 common_reps=30 uncommon_reps=3");
    shortest_len_is_exact(&task_fwe, "");
    shortest_len_is_exact(&task_fwe, "alpha=3 word_len=4");
}

/* --- a tiny training and its length grid --------------------------------- */

typedef struct {
    int headline, token_acc, extrap;
    char params[8][512];
} seen_rows;

static int see_row(const csvw_row *row, void *ud)
{
    seen_rows *s = ud;
    cr_assert_str_eq(row->cell[ATTN_COL_STATUS], "ok");
    cr_assert_str_eq(row->cell[ATTN_COL_SUITE], "niah");
    const char *m = row->cell[ATTN_COL_METRIC], *p = row->cell[ATTN_COL_PARAMS];
    s->headline += !strcmp(m, "string_match_all");
    s->token_acc += !strcmp(m, "token_accuracy");
    if (strstr(p, ";split=extrap;") && !strcmp(m, "string_match_all") && s->extrap < 8)
        snprintf(s->params[s->extrap++], sizeof s->params[0], "%s", p);
    return 0;
}

static void train_and_grid(const char *task)
{
    char dir[] = "/tmp/attn_agg_XXXXXX", csv[64], ckpt[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    snprintf(ckpt, sizeof ckpt, "%s/m.ckpt", dir);
    train_run_opts r;
    train_run_defaults(&r);
    strcpy(r.task, task);
    cr_assert_eq(param_bag_add(&r.task_params, "len=256"), 0);
    r.train_n = 16, r.valid_n = 8, r.test_n = 8;
    r.model.layers = 1, r.model.d_model = 16, r.model.heads = 1, r.model.mlp = 0;
    for (int i = 0; nn_pos_names[i]; i++)
        if (!strcmp(nn_pos_names[i], "sinusoid"))
            r.model.pos = (nn_pos_kind)i;
    r.train.steps = 3, r.train.warmup = 1, r.train.eval_every = 3, r.train.batch = 8, r.train.progress = 0;
    r.out = csv, r.checkpoint = ckpt;
    double acc;
    cr_assert_eq(test_train_acc(&r, &acc), 0, "%s: %s", task, attn_last_error());
    cr_assert(acc >= 0 && acc <= 1, "%s: test score %g", task, acc);
    extrapolate_opts o = {.checkpoint = ckpt, .out = csv, .test_n = 4, .threads = 1, .n_scales = 2,
                          .scale = {1, 2}, .depths = 3};
    int written;
    cr_assert_lt(extrapolate_run(&o, &written), 0, "%s: --depths accepted for a task without depth", task);
    char want[96];
    snprintf(want, sizeof want, "--depths: task '%s' has no depth parameter", task);
    cr_assert(strstr(attn_last_error(), want), "%s", attn_last_error());
    o.depths = 0;
    cr_assert_eq(extrapolate_run(&o, &written), 0, "%s: %s", task, attn_last_error());
    cr_assert_eq(written, 2);
    seen_rows s = {0};
    cr_assert_gt(csvw_read_rows(csv, see_row, &s), 0, "%s", attn_last_error());
    cr_assert_geq(s.headline, 3, "%s: valid, test and 2 grid rows scored by string_match_all, found %d", task,
                  s.headline);
    cr_assert_eq(s.token_acc, s.headline, "%s: a token_accuracy row beside each", task);
    cr_assert_eq(s.extrap, 2);
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof want, ";split=extrap;eval_len=%d;train_len=256", 256 << i);
        cr_assert(strstr(s.params[i], want) && !strstr(s.params[i], "depth="), "%s row %d: %s", task, i,
                  s.params[i]);
    }
    unlink(csv), unlink(ckpt), rmdir(dir);
}

Test(niah_agg, a_tiny_training_writes_rows_and_the_length_grid_refuses_depths, .timeout = 120)
{
    train_and_grid("cwe");
    train_and_grid("fwe");
}
