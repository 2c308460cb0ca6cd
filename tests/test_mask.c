/* Mask descriptor: parsing, tile classification soundness, pair counts. */
#include "mask.h"

#include <criterion/criterion.h>

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
                    attn_tile t = attn_mask_tile(&m, qoff + i0, qoff + i1, j0, j1);
                    int any = 0, all = 1;
                    for (int64_t i = i0; i < i1; i++)
                        for (int64_t j = j0; j < j1; j++) {
                            int a = attn_mask_allowed(&m, qoff + i, j);
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
                    counted += attn_mask_allowed(&m, qoff + i, j);
            cr_assert_eq(attn_mask_pairs(&m, Nq, Nk, qoff, 0), counted, "%s Nq=%ld", specs[s], Nq);
        }
    }
}

Test(mask, causal_closed_form_density)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse("causal", &m), 0);
    cr_assert_eq(attn_mask_pairs(&m, 1000, 1000, 0, 0), 1000.0 * 1001 / 2);
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
