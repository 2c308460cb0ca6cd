/* The stand-in for RULER's essay haystack (haystack=essay: ham messages
 * without HTML, whitespace runs made one space, whole documents from their
 * start) and the haystack each variant takes by default (haystack=ruler),
 * with its labels: data_source says stand-in:spam-assassin whenever corpus
 * text is in the rows, and an essay variant without the corpus says noise. */
#include "common/attn_error.h"
#include "niah_check.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const task_def *task;
    const char *params, *haystack, *source, *ruler;
} default_case;

static void check_default(const default_case *c, const char *dir)
{
    task_data d;
    char params[96];
    snprintf(params, sizeof params, "len=1024 %s", c->params);
    cr_assert_eq(nc_make(c->task, params, TASK_VALID, 3, 2, dir, &d), 0, "%s %s: %s", c->task->name, params,
                 attn_last_error());
    char want[64];
    snprintf(want, sizeof want, "haystack=%s;", c->haystack);
    cr_assert(strstr(d.meta, want), "%s %s: meta %s, expected %s", c->task->name, params, d.meta, want);
    snprintf(want, sizeof want, "ruler=%s", c->ruler);
    cr_assert(strstr(d.meta, want), "%s %s: meta %s, expected %s", c->task->name, params, d.meta, want);
    cr_assert_str_eq(d.data_source, c->source, "%s %s", c->task->name, params);
    task_data_free(&d);
}

static void check_defaults(const default_case *cases, size_t n, const char *dir)
{
    for (size_t k = 0; k < n; k++)
        check_default(&cases[k], dir);
}

Test(niah_essay, each_variant_defaults_to_the_haystack_ruler_gives_it, .timeout = 60)
{
    nc_corpus_root();
    static const char *const S = "stand-in:spam-assassin", *const GEN = "generated";
    const default_case cases[] = {
        {&task_passkey, "", "noise", GEN, "-"},
        {&task_niah, "", "noise", GEN, "niah_single_1"},
        {&task_niah, "variant=s2", "essay", S, "niah_single_2"},
        {&task_niah, "variant=s3", "essay", S, "niah_single_3"},
        {&task_niah_multikey, "", "essay", S, "niah_multikey_1"},
        {&task_niah_multikey, "variant=mk2", "needle", GEN, "niah_multikey_2"},
        {&task_niah_multikey, "variant=mk3", "needle", GEN, "niah_multikey_3"},
        {&task_niah_multivalue, "", "essay", S, "niah_multivalue"},
        {&task_niah_multiquery, "", "essay", S, "niah_multiquery"},
        {&task_niah_vt, "", "noise", GEN, "vt"},
        {&task_niah_multikey, "haystack=noise", "noise", GEN, "niah_multikey_1"},
        {&task_niah, "variant=s2 haystack=corpus", "corpus", S, "niah_single_2"},
    };
    check_defaults(cases, sizeof cases / sizeof *cases, NULL);
}

Test(niah_essay, essay_variants_without_the_corpus_fall_back_to_noise_and_say_so, .timeout = 60)
{
    const default_case cases[] = {
        {&task_niah, "variant=s2", "noise", "generated", "niah_single_2"},
        {&task_niah_multikey, "", "noise", "generated", "niah_multikey_1"},
        {&task_niah_multiquery, "", "noise", "generated", "niah_multiquery"},
    };
    check_defaults(cases, sizeof cases / sizeof *cases, "/nonexistent/attnbench-data");
    /* asked for by name, the essay haystack needs its corpus */
    task_data d;
    cr_assert_lt(nc_make(&task_niah, "haystack=essay", TASK_TEST, 1, 2, "/nonexistent/attnbench-data", &d), 0);
    cr_assert(strstr(attn_last_error(), "/nonexistent/attnbench-data"), "%s", attn_last_error());
}

Test(niah_essay, essay_documents_are_ham_messages_without_html, .timeout = 60)
{
    cr_assert(niah_corpus_is_essay("d/easy-ham-1/00001.json", "Hello there. See <a@b.com> and a < b."));
    cr_assert(niah_corpus_is_essay("d/easy-ham-2/00001.json", "Plain text."));
    cr_assert_not(niah_corpus_is_essay("d/spam-1/00001.json", "Plain text."));
    cr_assert_not(niah_corpus_is_essay("d/hard-ham-1/00001.json", "Plain text."));
    cr_assert_not(niah_corpus_is_essay("d/easy-ham-1/00001.json", "<HTML><body>hi</body>"));
    cr_assert_not(niah_corpus_is_essay("d/easy-ham-1/00001.json", "see <p >here"));
}

/* Every whitespace run as one space, none at either end. */
static void squeeze(char *s)
{
    size_t k = 0;
    for (const char *p = s; *p; p++)
        if (!isspace((unsigned char)*p))
            s[k++] = *p;
        else if (k && p[1] && !isspace((unsigned char)p[1]))
            s[k++] = ' ';
    s[k] = '\0';
}

Test(niah_essay, essay_haystack_starts_with_a_test_pool_ham_message_squeezed_to_single_spaces, .timeout = 120)
{
    const char *root = nc_corpus_root();
    task_data d;
    nc_make_ok(&task_niah, "len=1024 variant=s2", TASK_TEST, 5, 20, &d);
    cr_assert_str_eq(d.data_source, "stand-in:spam-assassin");
    char hay[20][NC_ROW_CAP];
    int found[20] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        cr_assert_eq(v.n, 1);
        snprintf(hay[i], sizeof hay[i], "%.*s%s", (int)v.nd[0].at, v.ctx, v.ctx + v.nd[0].at + v.nd[0].len);
        cr_assert_null(strpbrk(hay[i], "\n\r\t"), "example %lld: a line break in the essay", (long long)i);
        cr_assert_null(strstr(hay[i], "  "), "example %lld: a run of spaces in the essay", (long long)i);
        hay[i][48] = '\0'; /* its first 48 bytes */
    }
    char **paths;
    int64_t n;
    cr_assert_eq(niah_corpus_list(root, TASK_TEST, &paths, &n), 0, "%s", attn_last_error());
    for (int64_t k = 0; k < n; k++) {
        char *body;
        size_t len;
        cr_assert_eq(niah_corpus_read_body(paths[k], &body, &len), 0, "%s", attn_last_error());
        if (niah_corpus_is_essay(paths[k], body)) {
            squeeze(body);
            for (int64_t i = 0; i < d.n; i++)
                found[i] |= strncmp(body, hay[i], strlen(hay[i])) == 0;
        }
        free(body);
    }
    for (int64_t i = 0; i < d.n; i++)
        cr_assert(found[i], "example %lld's haystack does not start a test-pool ham message: '%s'", (long long)i,
                  hay[i]);
    free(paths);
    task_data_free(&d);
}
