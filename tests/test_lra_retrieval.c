/* LRA Retrieval: the official AAN pair TSVs (two documents per example, float
 * labels, quotes as data, one-line errors with file:line) and the
 * SpamAssassin same-group pairs stand-in (labels follow the groups, exactly
 * balanced, near-duplicates dropped, no document shared across splits). */
#include "tasks/lra_text.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES ATTN_SOURCE_DIR "/tests/data/lra"

static param_bag params(const char *a)
{
    param_bag p;
    memset(&p, 0, sizeof p);
    if (a)
        cr_assert_eq(param_bag_add(&p, a), 0);
    return p;
}

/* One document row (tokens or tokens2) back to its bytes; checks CLS and padding. */
static const char *decode(const int32_t *t, int32_t length, int64_t len, char *buf, size_t n)
{
    cr_assert_eq(t[0], LRA_TEXT_CLS);
    size_t m = 0;
    for (int32_t j = 1; j < length && m + 1 < n; j++) {
        cr_assert(t[j] >= 1 && t[j] <= 256, "token %d is not a byte", t[j]);
        buf[m++] = (char)(t[j] - 1);
    }
    buf[m] = '\0';
    for (int64_t j = length; j < len; j++)
        cr_assert_eq(t[j], LRA_TEXT_PAD, "padding");
    return buf;
}

Test(lra_retrieval, aan_tsv_gives_two_documents_per_example_and_float_labels)
{
    param_bag p = params("max_len=16");
    task_data d;
    cr_assert_eq(task_lra_retrieval.make(&p, TASK_TEST, 2, 4, FIXTURES "/aan", &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "official");
    cr_assert(d.kind == TASK_PAIR && d.vocab == LRA_TEXT_VOCAB && d.n_classes == 2 && d.len == 16 && d.tokens2);
    int seen = 0;
    char a[64], b[64];
    for (int64_t i = 0; i < d.n; i++) {
        decode(task_tokens(&d, i), d.lengths[i], d.len, a, sizeof a);
        decode(task_tokens2(&d, i), d.lengths2[i], d.len, b, sizeof b);
        if (strcmp(a, "We parse \"quote") == 0) { /* quotes are data; CLS + 15 bytes */
            cr_assert_str_eq(b, "Chart parsing i");
            cr_assert_eq(d.labels[i], 1, "label 1.0");
            seen |= 1;
        }
        if (a[0] == 'A') {
            cr_assert(d.lengths[i] == 16 && d.lengths2[i] == 6 && strcmp(b, "BBBBB") == 0, "%s / %s", a, b);
            seen |= 2;
        }
        if (strcmp(a, "Dependency pars") == 0) {
            cr_assert_str_eq(b, "  Speech recogn", "leading spaces are data");
            seen |= 8;
        }
        if (strcmp(a, "Statistical mac") == 0) {
            cr_assert_eq(d.labels[i], 0, "label 0.0");
            seen |= 4;
        }
    }
    cr_assert_eq(seen, 15);
    cr_assert(strstr(d.meta, "max_len=16;") && strstr(d.meta, "pos_frac=0.5000;chance=0.5"), "%s", d.meta);
    task_data_free(&d);
    cr_assert_eq(task_lra_retrieval.make(&p, TASK_VALID, 2, 2, FIXTURES "/aan", &d), 0, "valid reads the eval TSV");
    task_data_free(&d);
    cr_assert_lt(task_lra_retrieval.make(&p, TASK_TEST, 2, 5, FIXTURES "/aan", &d), 0);
    cr_assert(strstr(attn_last_error(), "new_aan_pairs.test.tsv: 4 pairs, 5 asked for"), "%s", attn_last_error());
}

Test(lra_retrieval, malformed_aan_fails_with_file_line_and_expectation)
{
    param_bag p = params(NULL);
    task_data d;
    static const struct {
        const char *dir, *needle;
    } cases[] = {
        {FIXTURES "/aan_bad_label", "new_aan_pairs.test.tsv:2: label: expected 0 or 1 (written 0.0 or 1.0), found '2.0'"},
        {FIXTURES "/aan_missing_field",
         "new_aan_pairs.test.tsv:2: expected 5 tab-separated fields (label, id1, id2, text1, text2), found 4"},
        {FIXTURES "/nowhere", "nowhere: expected new_aan_pairs.test.tsv"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cr_assert_lt(task_lra_retrieval.make(&p, TASK_TEST, 1, 1, cases[c].dir, &d), 0, "%s loaded", cases[c].dir);
        cr_assert(strstr(attn_last_error(), cases[c].needle), "%s: %s", cases[c].dir, attn_last_error());
    }
}

/* The group of a (short, untruncated) body, looked up in the corpus (-1 if absent). */
static int group_of(const spam_corpus *c, const char *body)
{
    for (int64_t i = 0; i < c->n; i++)
        if (strcmp((const char *)c->doc[i].body, body) == 0)
            return c->doc[i].group;
    return -1;
}

Test(lra_retrieval, standin_pairs_follow_groups_and_drop_near_duplicates)
{
    param_bag p = params("max_len=2048");
    spam_corpus c;
    task_data d, again, other;
    cr_assert_eq(spam_corpus_load(FIXTURES "/spam", &c), 0, "%s", attn_last_error());
    cr_assert_eq(task_lra_retrieval.make(&p, TASK_TRAIN, 4, 20, FIXTURES "/spam", &d), 0, "%s", attn_last_error());
    cr_assert_str_eq(d.data_source, "stand-in:spam-assassin-pairs");
    cr_assert(strstr(d.meta, "chance=0.5;docs=10/5/5;duplicates=1;near_dups=1"), "%s", d.meta);
    int pos = 0;
    static char a[4096], b[4096];
    for (int64_t i = 0; i < d.n; i++) {
        decode(task_tokens(&d, i), d.lengths[i], d.len, a, sizeof a);
        decode(task_tokens2(&d, i), d.lengths2[i], d.len, b, sizeof b);
        int ga = group_of(&c, a), gb = group_of(&c, b);
        cr_assert(ga >= 0 && gb >= 0, "pair %ld: documents not in the corpus", (long)i);
        cr_assert_eq(d.labels[i], ga == gb, "pair %ld: label %d for groups %d and %d", (long)i, d.labels[i], ga, gb);
        cr_assert_str_neq(a, b, "pair %ld pairs a document with itself", (long)i);
        cr_assert(!strstr(a, "modulx_") && !strstr(b, "modulx_"), "the near-duplicate (Jaccard 0.98) was kept");
        pos += d.labels[i];
    }
    cr_assert_eq(pos, 10, "exactly half positive");
    cr_assert_eq(task_lra_retrieval.make(&p, TASK_TRAIN, 4, 20, FIXTURES "/spam", &again), 0);
    cr_assert_eq(memcmp(d.tokens, again.tokens, sizeof(int32_t) * (size_t)(d.n * d.len)), 0, "same seed, same pairs");
    cr_assert_eq(memcmp(d.tokens2, again.tokens2, sizeof(int32_t) * (size_t)(d.n * d.len)), 0);
    cr_assert_eq(task_lra_retrieval.make(&p, TASK_TRAIN, 5, 20, FIXTURES "/spam", &other), 0);
    cr_assert_neq(memcmp(d.tokens, other.tokens, sizeof(int32_t) * (size_t)(d.n * d.len)), 0, "another seed");
    task_data_free(&d), task_data_free(&again), task_data_free(&other);
    cr_assert_eq(task_lra_retrieval.make(&p, TASK_TRAIN, 4, 7, FIXTURES "/spam", &d), 0);
    pos = 0;
    for (int64_t i = 0; i < d.n; i++)
        pos += d.labels[i];
    cr_assert_eq(pos, 3, "odd n: one more negative");
    task_data_free(&d);
    /* the "half" document (Jaccard 0.35 with the kept one) stays: docs=10 above counts it */
    cr_assert_lt(task_lra_retrieval.make(&p, TASK_VALID, 4, 2, FIXTURES "/spam", &d), 0, "no valid group has two");
    cr_assert(strstr(attn_last_error(), "the valid split has 5 documents in 5 groups"), "%s", attn_last_error());
    spam_corpus_free(&c);
}

/* The real corpus, or a failure naming where it was looked for (test_lra_text.c). */
const char *lra_test_real_root(void);

/* The plain twin of the MinHash filter: exact 8-byte-shingle sets (the bytes
 * themselves, sorted and unique) and their Jaccard by a merge. */
typedef struct {
    uint64_t *s;
    int64_t n;
} shingle_set;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static shingle_set shingles(const spam_doc *d, size_t prefix)
{
    size_t n = d->len < prefix ? d->len : prefix, m = n >= 8 ? n - 7 : 1;
    shingle_set r = {.s = calloc(m, sizeof(uint64_t))};
    cr_assert_not_null(r.s);
    for (size_t i = 0; i < m; i++)
        memcpy(&r.s[i], d->body + i, n < 8 ? n : 8);
    qsort(r.s, m, sizeof *r.s, cmp_u64);
    for (size_t i = 0; i < m; i++)
        if (r.n == 0 || r.s[r.n - 1] != r.s[i])
            r.s[r.n++] = r.s[i];
    return r;
}

static double jaccard(const shingle_set *a, const shingle_set *b)
{
    int64_t i = 0, j = 0, both = 0;
    while (i < a->n && j < b->n) {
        if (a->s[i] == b->s[j])
            both++, i++, j++;
        else if (a->s[i] < b->s[j])
            i++;
        else
            j++;
    }
    return (double)both / (double)(a->n + b->n - both);
}

/* MinHash decisions against exact Jaccard on the documents [lo, hi) of c: a
 * dropped document has an earlier one above 0.8, a kept one none above 0.97
 * (the estimate's standard error at 0.9 is 0.04). */
static void check_near_duplicates(const spam_corpus *c, int64_t lo, int64_t hi, size_t prefix, int64_t *dropped)
{
    spam_corpus view = *c;
    view.doc = c->doc + lo, view.n = hi - lo;
    unsigned char *keep = malloc((size_t)view.n);
    shingle_set *sh = calloc((size_t)view.n, sizeof *sh);
    cr_assert(keep && sh);
    cr_assert_eq(lra_near_duplicates(&view, prefix, keep, dropped), 0);
    for (int64_t i = 0; i < view.n; i++)
        sh[i] = shingles(&view.doc[i], prefix);
    for (int64_t j = 0; j < view.n; j++) {
        double best = 0;
        for (int64_t i = 0; i < j; i++) /* J <= min/max of the set sizes: skip what cannot exceed 0.8 */
            if (5 * (sh[i].n < sh[j].n ? sh[i].n : sh[j].n) > 4 * (sh[i].n > sh[j].n ? sh[i].n : sh[j].n)) {
                double x = jaccard(&sh[i], &sh[j]);
                best = x > best ? x : best;
            }
        if (keep[j])
            cr_assert(best <= 0.97, "%s kept, but an earlier document has Jaccard %.3f", view.doc[j].name, best);
        else
            cr_assert(best > 0.8, "%s dropped, but its closest earlier document has Jaccard %.3f", view.doc[j].name,
                      best);
    }
    for (int64_t i = 0; i < view.n; i++)
        free(sh[i].s);
    free(sh), free(keep);
}

Test(lra_retrieval, minhash_near_duplicates_agree_with_exact_jaccard)
{
    spam_corpus c;
    int64_t dropped;
    cr_assert_eq(spam_corpus_load(FIXTURES "/spam", &c), 0, "%s", attn_last_error());
    check_near_duplicates(&c, 0, c.n, 10000, &dropped);
    cr_assert_eq(dropped, 1, "the one-byte variant (Jaccard 0.98) only; the half-shared one (0.35) stays");
    spam_corpus_free(&c);
}

static int same_doc(const task_data *x, int64_t i, int xt, const task_data *y, int64_t j, int yt)
{
    int32_t lx = xt ? x->lengths2[i] : x->lengths[i], ly = yt ? y->lengths2[j] : y->lengths[j];
    const int32_t *a = xt ? task_tokens2(x, i) : task_tokens(x, i), *b = yt ? task_tokens2(y, j) : task_tokens(y, j);
    return lx == ly && memcmp(a, b, sizeof(int32_t) * (size_t)lx) == 0;
}

Test(lra_retrieval, standin_on_the_real_corpus_is_balanced_and_split_by_document, .timeout = 120)
{
    const char *root = lra_test_real_root();
    param_bag p = params("max_len=1024");
    task_data d[3];
    int64_t n[3] = {400, 200, 200};
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(task_lra_retrieval.make(&p, (task_split)s, 11, n[s], root, &d[s]), 0, "%s", attn_last_error());
        int64_t pos = 0;
        for (int64_t i = 0; i < d[s].n; i++)
            pos += d[s].labels[i];
        cr_assert_eq(2 * pos, n[s], "split %d: %ld positives of %ld", s, (long)pos, (long)n[s]);
        cr_log_info("split %d: %s", s, d[s].meta);
    }
    long docs[3], dups, near;
    cr_assert_eq(sscanf(strstr(d[0].meta, "docs="), "docs=%ld/%ld/%ld;duplicates=%ld;near_dups=%ld", &docs[0], &docs[1],
                        &docs[2], &dups, &near), 5, "%s", d[0].meta);
    cr_assert(docs[0] + docs[1] + docs[2] + dups + near == 6046, "%s", d[0].meta);
    cr_assert(near > 0 && near < 1500, "%ld near-duplicates", near);
    cr_assert(docs[1] > 0.08 * (docs[0] + docs[1] + docs[2]) && docs[2] > 0.08 * (docs[0] + docs[1] + docs[2]));
    for (int s = 0; s < 3; s++) /* no document (as the model sees it) in two splits */
        for (int t = s + 1; t < 3; t++)
            for (int64_t i = 0; i < d[s].n; i++)
                for (int64_t j = 0; j < d[t].n; j++)
                    for (int k = 0; k < 4; k++)
                        cr_assert(!same_doc(&d[s], i, k & 1, &d[t], j, k >> 1), "split %d pair %ld and split %d pair "
                                  "%ld share a document", s, (long)i, t, (long)j);
    for (int s = 0; s < 3; s++)
        task_data_free(&d[s]);
    spam_corpus c;
    cr_assert_eq(spam_corpus_load(root, &c), 0, "%s", attn_last_error());
    int64_t lo = 0, hi, dropped;
    while (lo < c.n && c.doc[lo].group != 3)
        lo++;
    for (hi = lo; hi < c.n && c.doc[hi].group == 3;)
        hi++;
    check_near_duplicates(&c, lo, hi, 1023, &dropped); /* spam-1: templated mail, many near-duplicates */
    cr_log_info("spam-1: %ld of %ld documents are near-duplicates at 1023 bytes", (long)dropped, (long)(hi - lo));
    cr_assert_gt(dropped, 0);
    spam_corpus_free(&c);
}
