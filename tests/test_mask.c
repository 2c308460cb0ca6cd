/* Mask descriptor: parsing, tile classification soundness, pair counts. */
#include "common/attn_error.h"
#include "kernels/core/mask.h"

#include <criterion/criterion.h>
#include <string.h>

static const char *const specs[] = {"full", "causal", "window:wl=5,wr=3", "window:w=4",
                                    "window:wl=7,wr=0", "window:wl=2,wr=9,causal=1"};

Test(mask, tile_classification_is_sound)
{
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        attn_mask m;
        cr_assert_eq(attn_mask_parse(specs[s], &m), 0, "%s", specs[s]);
        for (int64_t qoff = -3; qoff <= 40; qoff += 43)
            for (int64_t i0 = 0; i0 < 130; i0 += 16)
                for (int64_t j0 = 0; j0 < 130; j0 += 32) {
                    int64_t i1 = i0 + 16 < 130 ? i0 + 16 : 130, j1 = j0 + 32 < 130 ? j0 + 32 : 130;
                    attn_tile t = attn_mask_tile(&m, 0, 0, qoff + i0, qoff + i1, j0, j1);
                    int any = 0, all = 1;
                    for (int64_t i = i0; i < i1; i++)
                        for (int64_t j = j0; j < j1; j++) {
                            int a = attn_mask_allowed(&m, 0, 0, qoff + i, j);
                            any |= a;
                            all &= a;
                        }
                    if (t == ATTN_TILE_EMPTY)
                        cr_assert(!any, "%s: tile (%ld,%ld) EMPTY but has allowed pairs", specs[s], i0, j0);
                    if (t == ATTN_TILE_FULL)
                        cr_assert(all, "%s: tile (%ld,%ld) FULL but has masked pairs", specs[s], i0, j0);
                }
    }
}

Test(mask, pair_count_equals_counted_fraction)
{
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        attn_mask m;
        cr_assert_eq(attn_mask_parse(specs[s], &m), 0);
        for (int64_t Nq = 1; Nq <= 33; Nq += 8) {
            int64_t Nk = 37, qoff = Nk - Nq;
            double counted = 0;
            for (int64_t i = 0; i < Nq; i++)
                for (int64_t j = 0; j < Nk; j++)
                    counted += attn_mask_allowed(&m, 0, 0, qoff + i, j);
            cr_assert_eq(attn_mask_pairs(&m, 0, 0, Nq, Nk, qoff, 0), counted, "%s Nq=%ld", specs[s], Nq);
        }
    }
}

Test(mask, causal_closed_form_density)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse("causal", &m), 0);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 1000, 1000, 0, 0), 1000.0 * 1001 / 2);
}

Test(mask, parse_rejects_bad_specs_with_a_message)
{
    attn_mask m;
    cr_assert_neq(attn_mask_parse("diagonal", &m), 0);
    cr_assert_neq(attn_mask_parse("window", &m), 0);
    cr_assert_neq(attn_mask_parse("window:wl=-1", &m), 0);
    cr_assert_neq(attn_mask_parse("window:wl=3,zz=1", &m), 0);
    cr_assert_neq(attn_mask_parse("full:causal=2", &m), 0);
}

/* A repeated key is an error (as a repeated option is), not "the last wins". */
Test(mask, a_key_given_twice_is_an_error_naming_both_values)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse("window:wl=5,wl=7", &m), ATTN_EINVAL);
    cr_assert_str_eq(attn_last_error(), "mask 'window:wl=5,wl=7': wl: given twice ('5', then '7')");
    cr_assert_eq(attn_mask_parse("full:causal=1,causal=0", &m), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "causal: given twice ('1', then '0')"), "%s", attn_last_error());
    cr_assert_eq(attn_mask_parse("window:wl=5,wr=7", &m), 0, "different keys are not a repeat");
}

/* Nothing is clamped or skipped silently: a number beyond int64, an empty
 * item (a trailing or doubled comma) and a ':' with no parameters are errors. */
Test(mask, overflow_empty_items_and_an_empty_parameter_list_are_errors)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse("window:wl=99999999999999999999", &m), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "wl expects an integer >= 0, found '99999999999999999999'"), "%s",
              attn_last_error());
    static const char *const empty_item[] = {"window:wl=5,", "window:wl=5,,wr=3", "window:,wl=5"};
    for (size_t i = 0; i < sizeof empty_item / sizeof *empty_item; i++) {
        cr_assert_eq(attn_mask_parse(empty_item[i], &m), ATTN_EINVAL, "%s", empty_item[i]);
        cr_assert(strstr(attn_last_error(), "found an empty item"), "%s: %s", empty_item[i], attn_last_error());
    }
    cr_assert_eq(attn_mask_parse("document:lens=4+", &m), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "lens expects values joined by '+', found an empty item"), "%s",
              attn_last_error());
    cr_assert_eq(attn_mask_parse("causal:", &m), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "mask 'causal:': expected key=value after ':'"), "%s", attn_last_error());
    cr_assert_eq(attn_mask_parse("window:wl=9223372036854775807", &m), 0, "INT64_MAX itself is a number");
}

Test(mask, format_round_trips)
{
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        attn_mask a, b;
        char buf[128];
        cr_assert_eq(attn_mask_parse(specs[s], &a), 0);
        attn_mask_format(&a, buf, sizeof buf);
        cr_assert_eq(attn_mask_parse(buf, &b), 0, "%s", buf);
        cr_assert(a.kind == b.kind && a.causal == b.causal && a.wl == b.wl && a.wr == b.wr);
    }
}

Test(mask, interval_kinds_are_exactly_those_with_one_key_range_per_row)
{
    static const char *const interval[] = {"full", "causal", "window:w=3", "document:n=3,seed=1", "prefix:p=9"};
    static const char *const other[] = {"dilated:w=2,dil=2", "strided:l=4", "fixed:l=4,c=1",
                                        "block:b=4,keep=0.5,seed=1", "global:w=1,g=1", "bigbird:b=4,r=1,seed=1",
                                        "shared_question:q=5,answers=2", "sink:n=2,w=2", "random:p=0.5,seed=1"};
    for (size_t s = 0; s < 5; s++) {
        attn_mask m;
        cr_assert_eq(attn_mask_parse(interval[s], &m), 0);
        cr_assert_eq(attn_mask_bind(&m, 40), 0);
        cr_assert(attn_mask_is_interval(&m), "%s", interval[s]);
    }
    /* the others really have rows with a gap: a tiled kernel must apply the predicate */
    for (size_t s = 0; s < 9; s++) {
        attn_mask m;
        cr_assert_eq(attn_mask_parse(other[s], &m), 0);
        cr_assert_eq(attn_mask_bind(&m, 40), 0);
        cr_assert(!attn_mask_is_interval(&m), "%s", other[s]);
        int gap = 0;
        for (int64_t pi = 0; pi < 40 && !gap; pi++) {
            int runs = 0, prev = 0;
            for (int64_t pj = 0; pj < 40; pj++) {
                int a = attn_mask_allowed(&m, 0, 0, pi, pj);
                runs += a && !prev;
                prev = a;
            }
            gap = runs > 1;
        }
        cr_assert(gap, "%s: no row with two separate key ranges", other[s]);
    }
}

Test(mask, binding_is_idempotent_and_follows_the_length)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse("document:n=5,seed=4", &m), 0);
    cr_assert_eq(attn_mask_bind(&m, 100), 0);
    attn_mask first = m;
    cr_assert_eq(attn_mask_bind(&m, 100), 0);
    cr_assert_eq(memcmp(&first, &m, sizeof m), 0);
    cr_assert_eq(attn_mask_bind(&m, 200), 0);
    cr_assert_eq(m.cu[m.n_spans], 200);
    /* shared question: answers split the rest, the first ones one longer */
    cr_assert_eq(attn_mask_parse("shared_question:q=10,answers=3", &m), 0);
    cr_assert_eq(attn_mask_bind(&m, 21), 0);
    cr_assert_eq(m.n_spans, 4);
    cr_assert(m.cu[1] == 10 && m.cu[2] == 14 && m.cu[3] == 18 && m.cu[4] == 21);
}

Test(mask, head_and_batch_dependence_is_declared)
{
    static const struct {
        const char *spec;
        int varies;
    } cases[] = {{"full", 0}, {"block:b=4,keep=0.5,seed=1", 0}, {"block:b=4,keep=0.5,seed=1,heads=1", 1},
                 {"bigbird:b=4,r=1,seed=1", 1}, {"bigbird:b=4,r=0", 0}, {"random:p=0.5,seed=1", 3},
                 {"strided:l=4,split=1", 1}, {"dilated:w=2,dil=1+2", 1}, {"dilated:w=2,dil=2", 0}};
    for (size_t s = 0; s < sizeof cases / sizeof *cases; s++) {
        attn_mask m;
        cr_assert_eq(attn_mask_parse(cases[s].spec, &m), 0);
        cr_assert_eq(attn_mask_bind(&m, 64), 0);
        cr_assert_eq(attn_mask_varies(&m), cases[s].varies, "%s", cases[s].spec);
        /* a mask declared invariant is the same for every (b, h) */
        for (int64_t pi = 0; !attn_mask_varies(&m) && pi < 64; pi++)
            for (int64_t pj = 0; pj < 64; pj++)
                cr_assert_eq(attn_mask_allowed(&m, 0, 0, pi, pj), attn_mask_allowed(&m, 1, 3, pi, pj), "%s", cases[s].spec);
    }
}
