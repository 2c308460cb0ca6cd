/* LRA ListOps: the generator follows the LRA grammar and statistics, labels
 * are the expression values (checked by an independent evaluator here), and
 * the official TSV loader reads the release format and rejects bad files. */
#include "tasks/lra.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURES ATTN_SOURCE_DIR "/tests/data/lra"

/* Evaluates tokens [pos..] recursively (0 pad, 1 CLS, 2..11 digits,
 * 12..15 MIN MAX MED SM, 16 close); tracks depth and argument counts. */
typedef struct {
    const int32_t *t;
    int pos, n, max_depth, max_args, bad;
} ev;

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int eval(ev *e, int depth)
{
    if (e->pos >= e->n) {
        e->bad = 1;
        return 0;
    }
    int tok = e->t[e->pos++];
    if (tok >= 2 && tok <= 11)
        return tok - 2;
    if (tok < 12 || tok > 15) {
        e->bad = 1;
        return 0;
    }
    e->max_depth = depth > e->max_depth ? depth : e->max_depth;
    int v[256], k = 0;
    while (e->pos < e->n && e->t[e->pos] != 16 && !e->bad && k < 256)
        v[k++] = eval(e, depth + 1);
    e->pos++; /* the close token */
    e->max_args = k > e->max_args ? k : e->max_args;
    if (k == 0) {
        e->bad = 1;
        return 0;
    }
    qsort(v, (size_t)k, sizeof *v, cmp);
    int sum = 0;
    for (int i = 0; i < k; i++)
        sum += v[i];
    switch (tok) {
    case 12: return v[0];
    case 13: return v[k - 1];
    case 14: return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    default: return sum % 10;
    }
}

static param_bag params(const char *a, const char *b)
{
    param_bag p;
    memset(&p, 0, sizeof p);
    if (a)
        cr_assert_eq(param_bag_add(&p, a), 0);
    if (b)
        cr_assert_eq(param_bag_add(&p, b), 0);
    return p;
}

/* Every example parses as one tree whose value is its label; returns nothing, asserts. */
static void check_examples(const task_data *d, int min_len, int max_len)
{
    for (int64_t i = 0; i < d->n; i++) {
        const int32_t *t = task_tokens(d, i);
        cr_assert_eq(t[0], 1, "CLS first");
        ev e = {.t = t + 1, .n = d->lengths[i] - 1};
        int v = eval(&e, 1);
        cr_assert(!e.bad && e.pos == e.n, "example %ld does not parse as one expression", (long)i);
        cr_assert_eq(v, d->labels[i], "example %ld: value %d, label %d", (long)i, v, d->labels[i]);
        cr_assert(e.n > min_len && e.n < max_len, "example %ld has %d symbols", (long)i, e.n);
        cr_assert(e.max_depth <= 10 && e.max_args <= 10, "depth %d args %d", e.max_depth, e.max_args);
        for (int64_t j = d->lengths[i]; j < d->len; j++)
            cr_assert_eq(t[j], 0, "padding");
    }
}

Test(listops, generated_trees_follow_the_grammar_and_are_labelled_with_their_value, .timeout = 60)
{
    param_bag p = params("min_len=20", "max_len=200");
    task_data d, prefix, test;
    cr_assert_eq(task_listops.make(&p, TASK_TRAIN, 5, 400, NULL, &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "generated");
    check_examples(&d, 20, 200);
    int hist[10] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        hist[d.labels[i]]++;
        for (int64_t j = 0; j < i; j++)
            cr_assert(d.lengths[i] != d.lengths[j] ||
                          memcmp(task_tokens(&d, i), task_tokens(&d, j), sizeof(int32_t) * (size_t)d.lengths[i]),
                      "examples %ld and %ld are the same tree", (long)j, (long)i);
    }
    for (int c = 0; c < 10; c++)
        cr_assert(hist[c] > 0 && hist[c] < 0.4 * (double)d.n, "label %d: %d of %ld", c, hist[c], (long)d.n);
    /* the first n of a split do not depend on n; another split is another stream */
    cr_assert_eq(task_listops.make(&p, TASK_TRAIN, 5, 100, NULL, &prefix), 0);
    cr_assert_eq(memcmp(prefix.tokens, d.tokens, sizeof(int32_t) * (size_t)(100 * d.len)), 0);
    cr_assert_eq(task_listops.make(&p, TASK_TEST, 5, 100, NULL, &test), 0);
    cr_assert_neq(memcmp(prefix.tokens, test.tokens, sizeof(int32_t) * (size_t)(100 * d.len)), 0);
    task_data_free(&d);
    task_data_free(&prefix);
    task_data_free(&test);
}

Test(listops, default_lengths_are_between_500_and_2000_symbols, .timeout = 60)
{
    param_bag p = params(NULL, NULL);
    task_data d;
    cr_assert_eq(task_listops.make(&p, TASK_TRAIN, 1, 40, NULL, &d), 0, "%s", attn_last_error());
    cr_assert_eq(d.len, 2000);
    check_examples(&d, 500, 2000);
    double mean = 0;
    for (int64_t i = 0; i < d.n; i++)
        mean += d.lengths[i] - 1;
    mean /= (double)d.n;
    cr_assert(mean > 600 && mean < 1900, "mean length %.0f", mean);
    task_data_free(&d);
}

Test(listops, official_tsv_is_tokenised_as_the_reference_does)
{
    param_bag p = params(NULL, NULL);
    task_data d;
    cr_assert_eq(task_listops.make(&p, TASK_TEST, 1, 4, FIXTURES "/listops", &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "official");
    check_examples(&d, 0, 2000);
    int found = 0;
    for (int64_t i = 0; i < d.n; i++) /* "( ( ( [MAX 2 ) 9 ) ] )" -> CLS [MAX 2 9 ] */
        if (d.lengths[i] == 5) {
            static const int32_t want[5] = {1, 13, 4, 11, 16};
            cr_assert_eq(memcmp(task_tokens(&d, i), want, sizeof want), 0);
            cr_assert_eq(d.labels[i], 9);
            found = 1;
        }
    cr_assert(found);
    task_data_free(&d);
    cr_assert_lt(task_listops.make(&p, TASK_TEST, 1, 5, FIXTURES "/listops", &d), 0);
    cr_assert(strstr(attn_last_error(), "basic_test.tsv: 4 examples, 5 asked for"), "%s", attn_last_error());
}

Test(listops, malformed_tsv_fails_with_file_line_and_expectation)
{
    param_bag p = params(NULL, NULL);
    task_data d;
    static const struct {
        const char *dir, *needle;
    } cases[] = {
        {FIXTURES "/listops_bad_label", "basic_test.tsv:3: Target: expected a digit 0-9, found '12'"},
        {FIXTURES "/listops_bad_token", "basic_test.tsv:3: Source: expected digits, [MIN [MAX [MED [SM ] ( ), found '[FOO'"},
        {FIXTURES "/listops_one_field", "basic_test.tsv:2: expected 2 tab-separated fields (Source, Target), found 1"},
        {FIXTURES "/nowhere", "basic_test.tsv: cannot open"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cr_assert_lt(task_listops.make(&p, TASK_TEST, 1, 1, cases[c].dir, &d), 0, "%s loaded", cases[c].dir);
        cr_assert(strstr(attn_last_error(), cases[c].needle), "%s: %s", cases[c].dir, attn_last_error());
    }
    param_bag bad = params("min_len=100", "max_len=50");
    cr_assert_lt(task_listops.make(&bad, TASK_TEST, 1, 1, NULL, &d), 0);
    cr_assert(strstr(attn_last_error(), "expected min_len + 1 < max_len"), "%s", attn_last_error());
}

/* An empty file and one with the header only say so, not "0 examples". */
Test(listops, an_empty_or_header_only_file_says_so)
{
    char dir[] = "/tmp/attn_listops_XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/basic_test.tsv", dir);
    param_bag p = params(NULL, NULL);
    task_data d;
    FILE *f = fopen(path, "w");
    fclose(f);
    cr_assert_lt(task_listops.make(&p, TASK_TEST, 1, 1, dir, &d), 0);
    cr_assert(strstr(attn_last_error(), "basic_test.tsv: expected a header line (Source, Target) and examples, "
                                        "found an empty file"), "%s", attn_last_error());
    f = fopen(path, "w");
    fputs("Source\tTarget\n", f);
    fclose(f);
    cr_assert_lt(task_listops.make(&p, TASK_TEST, 1, 1, dir, &d), 0);
    cr_assert(strstr(attn_last_error(), "basic_test.tsv: expected examples after the header line, found none"), "%s",
              attn_last_error());
    unlink(path), rmdir(dir);
}

/* The release archive unpacks to lra_release/listops-1000/: --data may name
 * the folder that holds it, as for retrieval. */
Test(listops, the_release_tree_is_found_under_lra_release)
{
    char dir[] = "/tmp/attn_listops_XXXXXX", sub[64], link[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/lra_release", dir);
    snprintf(link, sizeof link, "%s/listops-1000", sub);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(symlink(FIXTURES "/listops", link), 0);
    param_bag p = params(NULL, NULL);
    task_data d;
    cr_assert_eq(task_listops.make(&p, TASK_TEST, 1, 4, dir, &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "official");
    task_data_free(&d);
    unlink(link), rmdir(sub), rmdir(dir);
}
