/* The NIAH variants against RULER's generators (scripts/data/synthetic/
 * niah.py, variable_tracking.py, scripts/synthetic.yaml), measured over
 * thousands of generated examples: MK-1's distractor count, MK-2/3's
 * haystack of needles only, key and value formats (uuid4), the 40-point
 * depth grid of the essay variants, vt's statement units against the
 * distribution of RULER's sorted sample without replacement, the essay
 * stand-in haystack and which haystack each variant defaults to. */
#include "common/attn_error.h"
#include "niah_check.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double choose(int64_t n, int64_t k)
{
    if (k < 0 || k > n)
        return 0;
    double c = 1;
    for (int64_t i = 1; i <= k; i++)
        c = c * (double)(n - k + i) / (double)i;
    return c;
}

/* RULER's rule: sorted(random.sample(range(U), n)); the j-th smallest (from
 * 0) is k with probability C(k, j) C(U - 1 - k, n - 1 - j) / C(U, n). */
static double order_stat_p(int64_t U, int n, int j, int64_t k)
{
    return choose(k, j) * choose(U - 1 - k, n - 1 - j) / choose(U, n);
}

/* Pearson's chi-square of counts [m] against expected counts [m], and a
 * bound it stays under unless the rule differs: df + 6 sqrt(2 df) (beyond
 * the 99.9 % quantile for these df). */
static void assert_fits_expected(const int64_t *count, const double *expected, int m, const char *what)
{
    double chi2 = 0;
    int df = -1;
    for (int k = 0; k < m; k++) {
        if (expected[k] <= 0) {
            cr_assert_eq(count[k], 0, "%s: value %d has probability 0 but occurred %lld times", what, k,
                         (long long)count[k]);
            continue;
        }
        chi2 += (count[k] - expected[k]) * (count[k] - expected[k]) / expected[k];
        df++;
    }
    double bound = df + 6 * sqrt(2.0 * df);
    cr_assert(chi2 <= bound, "%s: chi-square %.1f over %d degrees of freedom (bound %.1f)", what, chi2, df, bound);
}

/* The same with probabilities p [m <= 128] over N draws. */
static void assert_fits(const int64_t *count, const double *p, int m, int64_t N, const char *what)
{
    double e[128];
    cr_assert(m <= 128);
    for (int k = 0; k < m; k++)
        e[k] = p[k] * (double)N;
    assert_fits_expected(count, e, m, what);
}

/* --- MK-1 ----------------------------------------------------------------- */

Test(niah_ruler, mk1_holds_exactly_three_distractors_and_the_queried_needle_anywhere_among_them, .timeout = 120)
{
    task_data d;
    nc_make_ok(&task_niah_multikey, "len=512", TASK_TEST, 11, 2000, &d);
    cr_assert(strstr(d.meta, "ruler=niah_multikey_1"), "meta %s", d.meta);
    int64_t rank[4] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        cr_assert_eq(v.n, 4, "example %lld holds %d needles, RULER MK-1 4 (3 distractors)", (long long)i, v.n);
        int real = -1;
        for (int j = 0; j < 4; j++) {
            for (int k = 0; k < j; k++)
                cr_assert_str_neq(v.nd[j].key, v.nd[k].key);
            real = strcmp(v.nd[j].key, v.query) == 0 ? j : real;
        }
        cr_assert_geq(real, 0, "queried key %s has no needle", v.query);
        rank[real]++;
    }
    double p[4] = {0.25, 0.25, 0.25, 0.25};
    assert_fits(rank, p, 4, d.n, "context rank of the queried needle among MK-1's four");
    task_data_free(&d);
    /* the earlier rule stays as distractors=0: 1, 2 or 3, uniform */
    nc_make_ok(&task_niah_multikey, "len=512 distractors=0", TASK_TEST, 11, 1500, &d);
    int64_t count[3] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        cr_assert(v.n >= 2 && v.n <= 4);
        count[v.n - 2]++;
    }
    double third[3] = {1 / 3.0, 1 / 3.0, 1 / 3.0};
    assert_fits(count, third, 3, d.n, "distractor count with distractors=0");
    task_data_free(&d);
}

/* --- MK-2, MK-3 ------------------------------------------------------------- */

static int is_letters(const char *s, int lo, int hi)
{
    int n = (int)strlen(s);
    for (int j = 0; j < n; j++)
        if (!islower((unsigned char)s[j]))
            return 0;
    return n >= lo && n <= hi;
}

static int is_digits(const char *s, int n)
{
    for (int j = 0; j < n; j++)
        if (!isdigit((unsigned char)s[j]))
            return 0;
    return (int)strlen(s) == n && s[0] != '0';
}

/* Every byte of the context is a needle; the queried needle is never the
 * last (RULER inserts it before haystack needle u, u in range(K)) and its
 * index is uniform over the others. */
static void check_needles_only(const char *params, int uuids, int64_t n)
{
    task_data d;
    char ans[64];
    nc_make_ok(&task_niah_multikey, params, TASK_TEST, 12, n, &d);
    cr_assert_str_eq(d.data_source, "generated");
    cr_assert(strstr(d.meta, "haystack=needle"), "meta %s", d.meta);
    int64_t at_index[16] = {0}, needles = -1;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        int64_t covered = 0;
        int real = -1;
        for (int j = 0; j < v.n; j++) {
            cr_assert_eq(v.nd[j].at, covered, "bytes between needles %d and %d", j - 1, j);
            covered += v.nd[j].len;
            cr_assert(uuids ? nc_is_uuid4(v.nd[j].key) && nc_is_uuid4(v.nd[j].val)
                            : is_letters(v.nd[j].key, 4, 8) && is_digits(v.nd[j].val, 7),
                      "needle %d key '%s' value '%s'", j, v.nd[j].key, v.nd[j].val);
            if (strcmp(v.nd[j].key, v.query) == 0) {
                cr_assert_lt(real, 0, "the queried key %s occurs twice", v.query);
                real = j;
            }
        }
        cr_assert_eq(covered, v.C, "context of %lld bytes, needles cover %lld", (long long)v.C, (long long)covered);
        cr_assert(real >= 0 && real < v.n - 1, "queried needle at %d of %d", real, v.n);
        cr_assert_lt(d.len - v.T, 2 * v.nd[0].len, "the row stops %lld bytes short", (long long)(d.len - v.T));
        nc_answer_text(&d, i, ans);
        cr_assert_str_eq(ans, v.nd[real].val);
        if (uuids) { /* fixed-size needles: K is the same in every row */
            cr_assert(needles < 0 || needles == v.n);
            cr_assert_lt(d.len - v.T, v.nd[0].len, "another needle would fit");
            needles = v.n;
            at_index[real]++;
        }
    }
    if (uuids) {
        double p[16] = {0};
        for (int k = 0; k < needles - 1; k++)
            p[k] = 1.0 / (double)(needles - 1);
        assert_fits(at_index, p, (int)needles, d.n, "index of the queried needle among MK-3's needles");
    }
    task_data_free(&d);
}

Test(niah_ruler, mk2_and_mk3_haystacks_are_needles_only_and_the_queried_one_is_never_last, .timeout = 120)
{
    check_needles_only("len=1024 variant=mk2", 0, 1000);
    check_needles_only("len=1024 variant=mk3", 1, 2000);
}

/* --- key and value formats --------------------------------------------------- */

Test(niah_ruler, s3_values_are_uuid4_strings_and_s1_s2_values_seven_digits, .timeout = 60)
{
    static const char *const variants[] = {"variant=s1", "variant=s2", "variant=s3"};
    int version_variant[4] = {0};
    for (int k = 0; k < 3; k++) {
        task_data d;
        char params[64];
        snprintf(params, sizeof params, "len=512 %s", variants[k]);
        nc_make_ok(&task_niah, params, TASK_TRAIN, 13, 400, &d);
        for (int64_t i = 0; i < d.n; i++) {
            nc_row v;
            nc_view_row(&d, i, &v);
            cr_assert_eq(v.n, 1);
            cr_assert(is_letters(v.nd[0].key, 4, 8), "key '%s'", v.nd[0].key);
            cr_assert(k == 2 ? nc_is_uuid4(v.nd[0].val) : is_digits(v.nd[0].val, 7), "%s value '%s'", params,
                      v.nd[0].val);
            cr_assert(strstr(v.ctx, k == 2 ? "special magic uuids for" : "special magic numbers for"));
            if (k == 2)
                version_variant[strchr("89ab", v.nd[0].val[19]) - "89ab"]++;
        }
        task_data_free(&d);
    }
    int64_t vv[4] = {version_variant[0], version_variant[1], version_variant[2], version_variant[3]};
    double p[4] = {0.25, 0.25, 0.25, 0.25};
    assert_fits(vv, p, 4, 400, "uuid variant digit");
}

/* --- the essay variants' depth grid ------------------------------------------ */

Test(niah_ruler, essay_variants_draw_distinct_depths_from_rulers_40_point_grid, .timeout = 120)
{
    /* snap=0 over noise: a needle sits at byte round(g/100 G) of the haystack */
    task_data d;
    nc_make_ok(&task_niah_multivalue, "len=2048 snap=0 haystack=noise", TASK_TEST, 14, 2000, &d);
    int64_t at_grid[40] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        cr_assert_eq(v.n, 4);
        int64_t G = v.C, before = 0, seen = 0;
        for (int j = 0; j < 4; j++)
            G -= v.nd[j].len;
        for (int j = 0; j < 4; j++) {
            int64_t o = v.nd[j].at - before;
            before += v.nd[j].len;
            int g = 0;
            while (g < 40 && llround(lround(100.0 * g / 39) / 100.0 * (double)G) != o)
                g++;
            cr_assert_lt(g, 40, "needle %d at haystack byte %lld of %lld is at no grid depth", j, (long long)o,
                         (long long)G);
            cr_assert_eq(seen & (1ll << g), 0, "grid depth %d drawn twice in one example", g);
            seen |= 1ll << g;
            at_grid[g]++;
        }
    }
    double p[40];
    for (int g = 0; g < 40; g++)
        p[g] = 1.0 / 40;
    assert_fits(at_grid, p, 40, 4 * d.n, "grid depths of multivalue's needles");
    task_data_free(&d);
}

/* The haystack of a noise context with its needles cut out; sentence starts
 * (0 and after every ". ") and which sentence each needle begins. */
Test(niah_ruler, essay_variants_insert_before_sentence_int_of_S_times_depth, .timeout = 120)
{
    task_data d;
    nc_make_ok(&task_niah_multikey, "len=1024 haystack=noise", TASK_TEST, 15, 2000, &d);
    int64_t count[64] = {0};
    double expected[64] = {0};
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        char hay[NC_ROW_CAP];
        int64_t G = 0, from = 0, start[4];
        for (int j = 0; j < v.n; j++) {
            memcpy(hay + G, v.ctx + from, (size_t)(v.nd[j].at - from));
            G += v.nd[j].at - from;
            start[j] = G;
            from = v.nd[j].at + v.nd[j].len;
        }
        memcpy(hay + G, v.ctx + from, (size_t)(v.C - from));
        G += v.C - from;
        int64_t S = 1; /* keys of 4-8 letters: S varies a little with them */
        for (int64_t p = 1; p < G; p++)
            S += hay[p - 1] == '.' && hay[p] == ' ';
        cr_assert(S > 10 && S < 63, "%lld sentences", (long long)S);
        for (int g = 0; g < 40; g++)
            expected[(int64_t)((double)S * lround(100.0 * g / 39) / 100.0)] += 1.0 / 40;
        for (int j = 0; j < v.n; j++) {
            int64_t k = 0; /* sentence index of the insertion point (S: after the last) */
            for (int64_t p = 1; p <= start[j] && p < G; p++)
                k += hay[p - 1] == '.' && hay[p] == ' ';
            k += start[j] == G;
            cr_assert(start[j] == 0 || start[j] == G || hay[start[j] - 1] == '.', "needle %d inside a sentence", j);
            if (strcmp(v.nd[j].key, v.query) == 0)
                count[k]++;
        }
    }
    assert_fits_expected(count, expected, 64, "sentence index of the queried MK-1 needle");
    task_data_free(&d);
}

/* --- variable tracking -------------------------------------------------------- */

/* The haystack offsets of vt's 5 statements (" VAR ... ." each) in a
 * context, and the haystack with them cut out into hay; returns its length. */
static int64_t vt_statements(const char *ctx, int64_t C, int64_t *off, char *hay)
{
    int64_t G = 0, from = 0;
    const char *p = ctx;
    for (int j = 0; j < 5; j++) {
        p = strstr(p, " VAR ");
        cr_assert(p, "statement %d missing", j);
        const char *end = strchr(p + 5, '.');
        memcpy(hay + G, ctx + from, (size_t)(p - ctx - from));
        G += p - ctx - from;
        off[j] = G;
        from = end + 1 - ctx;
        p = end + 1;
    }
    memcpy(hay + G, ctx + from, (size_t)(C - from));
    return G + C - from;
}

/* Over n examples of vt at params: each statement's unit (by block of the
 * noise period, or by sentence) against RULER's order statistics. */
static void check_vt_units(const char *params, int by_block, double depth, int64_t n)
{
    const int64_t P = (int64_t)strlen(niah_noise_block) + 1;
    task_data d;
    nc_make_ok(&task_niah_vt, params, TASK_TEST, 16, n, &d);
    static int64_t count[5][128];
    memset(count, 0, sizeof count);
    int64_t U = -1;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        char hay[NC_ROW_CAP];
        int64_t off[5], G = vt_statements(v.ctx, v.C, off, hay), units = by_block ? (G + P - 1) / P : 1;
        for (int64_t p = 1; !by_block && p < G; p++)
            units += hay[p - 1] == '.' && hay[p] == ' ';
        cr_assert(U < 0 || U == units);
        U = units;
        cr_assert(U < 128);
        for (int j = 0; j < 5; j++) {
            int64_t k = 0;
            if (by_block) {
                cr_assert(off[j] == 0 || (off[j] + 1) % P == 0, "statement %d at byte %lld: not before a block", j,
                          (long long)off[j]);
                k = off[j] == 0 ? 0 : (off[j] + 1) / P;
            } else {
                cr_assert(off[j] == 0 || hay[off[j] - 1] == '.', "statement %d inside a sentence", j);
                for (int64_t p = 1; p <= off[j]; p++)
                    k += hay[p - 1] == '.' && hay[p] == ' ';
            }
            cr_assert(j == 0 || k > 0, "statement %d before unit 0", j);
            count[j][k]++;
        }
    }
    cr_assert(U > 5, "%lld units", (long long)U);
    for (int j = 0; j < 5; j++) {
        double p[128] = {0};
        char what[96];
        int64_t u0 = depth < 0 ? -1 : llround(depth * (double)(U - 1));
        u0 = u0 > U - 5 ? U - 5 : u0;
        for (int64_t k = 0; k < U; k++)
            p[k] = depth < 0 ? order_stat_p(U, 5, j, k)
                   : j == 0  ? (k == u0)
                             : order_stat_p(U - u0 - 1, 4, j - 1, k - u0 - 1); /* the rest, given the first */
        snprintf(what, sizeof what, "%s: unit of statement %d of %lld units", params, j, (long long)U);
        assert_fits(count[j], p, (int)U, d.n, what);
    }
    task_data_free(&d);
}

Test(niah_ruler, vt_statements_sit_before_noise_blocks_drawn_as_variable_tracking_py_draws_them, .timeout = 120)
{
    check_vt_units("len=1024", 1, -1, 3000); /* 877 haystack bytes: 10 blocks */
    check_vt_units("len=2048", 1, -1, 3000);
}

Test(niah_ruler, vt_uses_sentence_units_when_the_haystack_holds_5_blocks_or_fewer, .timeout = 120)
{
    check_vt_units("len=512", 0, -1, 3000); /* 365 haystack bytes: 5 blocks */
}

Test(niah_ruler, vt_depth_fixes_the_first_statements_unit_and_draws_the_rest_after_it, .timeout = 120)
{
    check_vt_units("len=2048 depth=0.5", 1, 0.5, 2000);
    check_vt_units("len=1024 depth=1", 1, 1, 500);
}

Test(niah_ruler, vt_values_are_numpy_randint_10000_99999_and_names_five_capitals, .timeout = 60)
{
    task_data d;
    nc_make_ok(&task_niah_vt, "len=512", TASK_TEST, 17, 2000, &d);
    long lo = 99999, hi = 0;
    for (int64_t i = 0; i < d.n; i++) {
        nc_row v;
        nc_view_row(&d, i, &v);
        long value = strtol(v.query, NULL, 10);
        cr_assert(strlen(v.query) == 5 && value >= 10000 && value <= 99998, "value '%s'", v.query);
        lo = value < lo ? value : lo, hi = value > hi ? value : hi;
        for (const char *p = strstr(v.ctx, " VAR "); p; p = strstr(p + 1, " VAR "))
            for (int k = 5; k < 10; k++)
                cr_assert(isupper((unsigned char)p[k]), "name near '%.20s'", p);
    }
    cr_assert(lo < 11000 && hi > 98900, "values span [%ld, %ld]", lo, hi);
    task_data_free(&d);
}
