/* Generated-answer scoring (tasks/answer.h): the rules on hand-made outputs
 * (one wrong digit scores 0, any order of values scores the same, case is
 * ignored, Landmark reads the first integer), the output text built from
 * generated tokens, and the references the NIAH tasks give: an output that
 * repeats the targets scores 1 on every kind and RULER variant, one changed
 * digit lowers it, and reversed or upper-case lists of values still match. */
#include "common/attn_error.h"
#include "tasks/answer.h"
#include "tasks/metrics.h"
#include "tasks/niah.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

#define MATCH_ALL TASK_ANSWER_MATCH_ALL
#define FIRST_INT TASK_ANSWER_FIRST_INT

Test(answer, one_wrong_digit_of_a_value_scores_zero)
{
    cr_assert_eq(task_answer_score(MATCH_ALL, "4821937\n", "4821937"), 1.0);
    cr_assert_eq(task_answer_score(MATCH_ALL, "4821937\n", "4821931"), 0.0);
    cr_assert_eq(task_answer_score(MATCH_ALL, "4821937\n", "482193"), 0.0);
    /* RULER accepts the value anywhere in the output */
    cr_assert_eq(task_answer_score(MATCH_ALL, "4821937\n", "is: 4821937."), 1.0);
}

Test(answer, match_all_counts_the_share_of_references_in_any_order_ignoring_case)
{
    const char *refs = "1111111\n2222222\n3333333\n4444444\n";
    cr_assert_eq(task_answer_score(MATCH_ALL, refs, "1111111,2222222,3333333,4444444"), 1.0);
    cr_assert_eq(task_answer_score(MATCH_ALL, refs, "4444444,3333333,2222222,1111111"), 1.0);
    cr_assert_eq(task_answer_score(MATCH_ALL, refs, "4444444,3333333,2222229,1111111"), 0.75);
    cr_assert_eq(task_answer_score(MATCH_ALL, refs, ""), 0.0);
    cr_assert_eq(task_answer_score(MATCH_ALL, "ABCDE\nFGHIJ\n", "abcde fghij"), 1.0);
    cr_assert_eq(task_answer_score(MATCH_ALL, "ABCDE\nFGHIJ\n", "abcde fghix"), 0.5);
}

Test(answer, first_integer_rule_reads_the_first_run_of_digits_as_a_number)
{
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", "31415."), 1.0);
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", " 31415 is it"), 1.0);
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", "031415"), 1.0); /* int() drops leading zeros */
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", "31416."), 0.0);
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", "314159"), 0.0); /* ran on past the key */
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", "3141 5"), 0.0); /* the first integer is 3141 */
    cr_assert_eq(task_answer_score(FIRST_INT, "31415\n", "no key"), 0.0);
}

/* A tiny LM dataset by hand: one example, scored positions 2-4 and 7-8. */
static void tiny(task_data *d)
{
    cr_assert_eq(task_data_alloc(d, "tiny", TASK_LM, 1, 10), 0);
    for (int t = 0; t < 10; t++)
        task_targets(d, 0)[t] = TASK_IGNORE;
    const int scored[] = {2, 3, 4, 7, 8};
    for (int k = 0; k < 5; k++)
        task_targets(d, 0)[scored[k]] = '0' + k;
    cr_assert_eq(task_answer_alloc(d, MATCH_ALL), 0);
}

Test(answer, output_text_joins_runs_by_newlines_and_maps_specials_to_newlines)
{
    task_data d;
    tiny(&d);
    int32_t gen[10] = {'x', 'x', 'A', 'b', NIAH_ANSWER, 'x', 'x', 0x01, 'Z', 'x'};
    char text[64];
    size_t n = task_answer_text(&d, 0, gen, text, sizeof text);
    cr_assert_str_eq(text, "Ab\n\n\nZ");
    cr_assert_eq(n, 6);
    cr_assert_eq(task_answer_text(&d, 0, gen, text, 3), 2, "cut to cap - 1 bytes");
    task_data_free(&d);
}

Test(answer, references_are_checked_and_summaries_use_wilson_for_single_answers)
{
    task_data d;
    tiny(&d);
    cr_assert_eq(task_answer_add(&d, 0, "Ab"), 0);
    cr_assert_neq(task_answer_add(&d, 0, "two\nlines"), 0);
    cr_assert_neq(task_answer_add(&d, 0, ""), 0);
    int32_t gen[10] = {0, 0, 'a', 'B', 'c', 0, 0, 'd', 'e', 0};
    task_answer_summary s;
    cr_assert_eq(task_answer_summarize(&d, gen, 1, &s), 0, "%s", attn_last_error());
    cr_assert_eq(s.examples, 1);
    cr_assert_eq(s.mean, 1.0);
    double lo, hi;
    task_wilson(1, 1, TASK_Z95, &lo, &hi);
    cr_assert_float_eq(s.ci_low, lo, 1e-12);
    cr_assert_float_eq(s.ci_high, hi, 1e-12);
    task_data_free(&d);
}

/* Every example of a NIAH kind, answered by its own targets, scores 1; with
 * the first answer byte changed to another digit or letter, `changed`. */
static void niah_kind_scores(const task_def *t, const char *params, double changed)
{
    param_bag p = {.n = 0};
    cr_assert_eq(param_bag_add_list(&p, params), 0);
    task_data d;
    cr_assert_eq(t->make(&p, TASK_TEST, 7, 40, NULL, &d), 0, "%s: %s", t->name, attn_last_error());
    cr_assert_neq(d.answer_rule, TASK_ANSWER_NONE, "%s gives references", t->name);
    int32_t *gen = malloc(sizeof *gen * (size_t)(d.n * d.len));
    memcpy(gen, d.targets, sizeof *gen * (size_t)(d.n * d.len));
    task_answer_summary s;
    cr_assert_eq(task_answer_summarize(&d, gen, d.n, &s), 0);
    cr_assert_eq(s.mean, 1.0, "%s: the targets themselves score %g", t->name, s.mean);
    for (int64_t i = 0; i < d.n; i++)
        for (int64_t k = 0; k < d.len; k++)
            if (task_targets(&d, i)[k] != TASK_IGNORE) {
                int32_t c = gen[i * d.len + k];
                gen[i * d.len + k] = c == '9' ? '8' : c >= '0' && c <= '8' ? c + 1 : c == 'Z' ? 'Y' : c + 1;
                break;
            }
    cr_assert_eq(task_answer_summarize(&d, gen, d.n, &s), 0);
    cr_assert_float_eq(s.mean, changed, 1e-12, "%s: one changed byte per example scores %g, expected %g", t->name,
                       s.mean, changed);
    free(gen);
    task_data_free(&d);
}

Test(answer, niah_references_score_their_own_targets_one_and_a_changed_byte_less, .timeout = 60)
{
    niah_kind_scores(&task_passkey, "len=256", 0.0);
    niah_kind_scores(&task_niah, "len=256", 0.0);
    niah_kind_scores(&task_niah_multikey, "len=256", 0.0);
    niah_kind_scores(&task_niah_multivalue, "len=512", 0.75);
    niah_kind_scores(&task_niah_multiquery, "len=512", 0.75);
    niah_kind_scores(&task_niah_vt, "len=512", 0.8);
}

Test(answer, landmark_tokens_inside_an_answer_do_not_cut_it, .timeout = 60)
{
    param_bag p = {.n = 0};
    cr_assert_eq(param_bag_add_list(&p, "len=256 landmark=4"), 0);
    task_data d;
    cr_assert_eq(task_landmark_make(&task_niah, 1, &p, TASK_TEST, 3, 20, NULL, &d), 0, "%s", attn_last_error());
    cr_assert_eq(d.landmark_l, 4);
    task_answer_summary s;
    cr_assert_eq(task_answer_summarize(&d, d.targets, d.n, &s), 0);
    cr_assert_eq(s.mean, 1.0, "7-digit values split by landmarks every 3 bytes still match: %g", s.mean);
    task_data_free(&d);
}

Test(answer, ruler_variant_references_score_their_own_targets_one_and_a_changed_byte_zero, .timeout = 60)
{
    niah_kind_scores(&task_niah, "len=512 variant=s2", 0.0);
    niah_kind_scores(&task_niah, "len=512 variant=s3", 0.0); /* a uuid value */
    niah_kind_scores(&task_niah_multikey, "len=512 variant=mk1", 0.0);
    niah_kind_scores(&task_niah_multikey, "len=512 variant=mk2", 0.0);
    niah_kind_scores(&task_niah_multikey, "len=512 variant=mk3", 0.0);
}

/* RULER's string_match_all: the references listed in reverse (the
 * multi-answer variants train in context order) still score 1, in upper
 * case too; one of them left out scores (n - 1) / n. */
Test(answer, multi_answer_references_score_one_in_reverse_order_and_any_case, .timeout = 60)
{
    const task_def *const kinds[] = {&task_niah_multivalue, &task_niah_multiquery, &task_niah_vt};
    for (int k = 0; k < 3; k++) {
        param_bag p = {.n = 0};
        cr_assert_eq(param_bag_add_list(&p, "len=512"), 0);
        task_data d;
        cr_assert_eq(kinds[k]->make(&p, TASK_TEST, 8, 30, NULL, &d), 0, "%s", attn_last_error());
        for (int64_t i = 0; i < d.n; i++) {
            const char *refs = task_answers(&d, i);
            char list[8][40], out[400] = "", partial[400] = "";
            int n = 0;
            for (const char *r = refs; *r && n < 8; r = strchr(r, '\n') + 1, n++)
                snprintf(list[n], sizeof list[n], "%.*s", (int)(strchr(r, '\n') - r), r);
            cr_assert_geq(n, 4, "%s: %d references", kinds[k]->name, n);
            for (int j = n - 1; j >= 0; j--) {
                for (char *c = list[j]; *c; c++)
                    *c = (char)toupper((unsigned char)*c);
                strcat(out, list[j]), strcat(out, j ? ", " : "");
                if (j)
                    strcat(partial, list[j]), strcat(partial, " ");
            }
            cr_assert_eq(task_answer_score(MATCH_ALL, refs, out), 1.0, "%s: '%s' against\n%s", kinds[k]->name, out,
                         refs);
            cr_assert_float_eq(task_answer_score(MATCH_ALL, refs, partial), (n - 1.0) / n, 1e-12, "%s: '%s'",
                               kinds[k]->name, partial);
        }
        task_data_free(&d);
    }
}
