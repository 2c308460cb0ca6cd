/* Every mask kind, on the mask cases of `attnbench check` and more variants
 * of each kind: spec round trip, tile classification soundness, exact pair
 * counts against brute-force counts and closed forms, the row helpers,
 * determinism of the random kinds, ragged documents, and every exact kernel
 * against the oracle on every spec (forward and backward). */
#include "harness/measure/check.h"
#include "kernels/core/counters.h"
#include "harness/measure/fixture.h"
#include "kernels/core/mask.h"
#include "kernels/core/registry.h"

#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* The mask cases of `attnbench check` (check_mask_cases), then more variants
 * of the kinds: together at least one spec per kind, several for kinds with
 * variants. */
static const char *const variants[] = {
    "full:causal=1", "window:w=4,causal=1", "dilated:wl=4,wr=1,dil=3,causal=1", "dilated:w=5,dil=1",
    "strided:l=5,split=1", "strided:l=333333333333" /* a length past 2^32 (was truncated to int) */, "fixed:l=8,c=2", "fixed:l=7,c=3,split=1", "block:b=16,keep=0.3,seed=1",
    "block:bq=8,bk=32,keep=0.5,seed=2,heads=1", "block:b=16,keep=0.4,seed=3,heads=1,diag=0,causal=1",
    "global:w=3,g=2", "global:wl=4,wr=0,at=5+17+64,causal=1", "global:w=2,g=20",
    "bigbird:b=8,w=3,g=1,r=3,seed=4,causal=1", "bigbird:b=16,w=1,g=0,r=0", "document:n=5,seed=9,causal=1",
    "document:n=1", "prefix:p=0", "prefix:p=50,causal=1", "shared_question:q=20,answers=3",
    "shared_question:q=0,answers=1", "sink:n=0,w=3", "random:p=0.3,seed=5,diag=0,causal=1", "random:p=1,seed=2",
};
#define N_VARIANTS (sizeof variants / sizeof *variants)

#define N_SPECS (check_mask_case_count() + N_VARIANTS)

/* Spec s of the shared cases followed by the variants. */
static const char *spec(size_t s) { return s < check_mask_case_count() ? check_mask_cases[s] : variants[s - check_mask_case_count()]; }

static attn_mask parse_bound(const char *spec, int64_t npos)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse(spec, &m), 0, "%s: %s", spec, attn_last_error());
    cr_assert_eq(attn_mask_bind(&m, npos), 0, "%s: %s", spec, attn_last_error());
    return m;
}

Test(masks_all, every_kind_has_a_spec_and_parses)
{
    unsigned seen = 0;
    for (size_t s = 0; s < N_SPECS; s++)
        seen |= ATTN_MASK_BIT(parse_bound(spec(s), 130).kind);
    cr_assert_eq(seen, ATTN_MASK_ALL, "kinds without a test spec: %#x", ATTN_MASK_ALL & ~seen);
    for (int k = 0; k < ATTN_MASK__COUNT; k++) {
        attn_mask m;
        const char *ex = attn_mask_kind_example((attn_mask_kind)k);
        cr_assert_eq(attn_mask_parse(ex, &m), 0, "example %s: %s", ex, attn_last_error());
        cr_assert_eq((int)m.kind, k, "example %s", ex);
    }
}

Test(masks_all, format_round_trips_for_every_kind)
{
    for (size_t s = 0; s < N_SPECS; s++) {
        attn_mask a = parse_bound(spec(s), 130), b;
        char f1[512], f2[512];
        attn_mask_format(&a, f1, sizeof f1);
        cr_assert_eq(attn_mask_parse(f1, &b), 0, "%s -> %s: %s", spec(s), f1, attn_last_error());
        cr_assert_eq(attn_mask_bind(&b, 130), 0);
        attn_mask_format(&b, f2, sizeof f2);
        cr_assert_str_eq(f1, f2, "%s", spec(s));
        if (a.kind == b.kind) /* "full:causal=1" is spelled "causal": same pairs, other kind */
            cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "%s: %s parses to a different mask", spec(s), f1);
        for (int64_t i = 0; i < 130; i += 7)
            for (int64_t j = 0; j < 130; j++)
                cr_assert_eq(attn_mask_allowed(&a, 0, 1, i, j), attn_mask_allowed(&b, 0, 1, i, j), "%s vs %s", spec(s), f1);
    }
}

Test(masks_all, parse_rejects_bad_specs_with_a_message)
{
    static const char *const bad[] = {
        "dilated:w=2,dil=0", "dilated:dil=2", "strided", "fixed:l=8", "strided:l=8,c=2",
        "block:b=16", "block:keep=0.5", "block:b=16,keep=1.5", "global:w=3", "global:w=3,g=2,at=1",
        "dilated:w=2,dil=1+0", "dilated:w=2,dil=1+2+3+4+5+6+7+8+9", "bigbird", "bigbird:b=16,w=2", "bigbird:b=16,g=3", "document", "document:lens=3+0",
        "document:lens=3,n=2", "prefix", "shared_question:q=3", "sink:n=4", "random", "random:p=-0.1",
        "sink:n=4,w=3,causal=0", "window:w=3,seed=1", "random:p=0.5,zz=1", "document:lens=a+b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        attn_mask m;
        attn_clear_error();
        cr_assert_neq(attn_mask_parse(bad[i], &m), 0, "%s was accepted", bad[i]);
        cr_assert(strstr(attn_last_error(), "mask") != NULL, "%s: message '%s'", bad[i], attn_last_error());
    }
}

Test(masks_all, length_dependent_specs_bind_or_fail_with_a_message)
{
    attn_mask m;
    cr_assert_eq(attn_mask_parse("document:lens=100+28+1", &m), 0);
    cr_assert_eq(attn_mask_bind(&m, 129), 0);
    cr_assert_neq(attn_mask_bind(&m, 130), 0);
    cr_assert(strstr(attn_last_error(), "129") && strstr(attn_last_error(), "130"), "%s", attn_last_error());
    cr_assert_eq(attn_mask_parse("shared_question:q=40,answers=2", &m), 0);
    cr_assert_neq(attn_mask_bind(&m, 39), 0);
    /* a generated document spec resolves for any length, with at most one document per position */
    cr_assert_eq(attn_mask_parse("document:n=7,seed=2", &m), 0);
    for (int64_t n = 1; n < 40; n++) {
        cr_assert_eq(attn_mask_bind(&m, n), 0);
        cr_assert_eq(m.cu[0], 0);
        cr_assert_eq(m.cu[m.n_spans], n);
        for (int64_t d = 0; d < m.n_spans; d++)
            cr_assert_gt(m.cu[d + 1], m.cu[d], "n=%ld: empty document %ld", n, d);
    }
    /* attn_args_validate reports a spec that cannot bind to the problem */
    attn_args a = fx_args(1, 1, 1, 64, 64, 16, "full", 1);
    cr_assert_eq(attn_mask_parse("document:lens=60+5", &a.mask), 0);
    attn_args_defaults(&a);
    cr_assert_neq(attn_args_validate(NULL, &a), 0);
}

/* One tile of the soundness sweep. */
static void check_tile(const attn_mask *m, const char *spec, int64_t b, int64_t h, int64_t pi0, int64_t pi1,
                       int64_t pj0, int64_t pj1)
{
    attn_tile t = attn_mask_tile(m, b, h, pi0, pi1, pj0, pj1);
    int any = 0, all = 1;
    for (int64_t pi = pi0; pi < pi1; pi++)
        for (int64_t pj = pj0; pj < pj1; pj++) {
            int a = attn_mask_allowed(m, b, h, pi, pj);
            any |= a;
            all &= a;
        }
    cr_assert(t != ATTN_TILE_EMPTY || !any, "%s b%ld h%ld: tile [%ld,%ld)x[%ld,%ld) EMPTY but has allowed pairs",
              spec, b, h, pi0, pi1, pj0, pj1);
    cr_assert(t != ATTN_TILE_FULL || all, "%s b%ld h%ld: tile [%ld,%ld)x[%ld,%ld) FULL but has masked pairs",
              spec, b, h, pi0, pi1, pj0, pj1);
}

Test(masks_all, mask_tile_classification_is_sound)
{
    static const int64_t qoffs[] = {-3, 0, 40};
    const int64_t N = 130;
    for (size_t s = 0; s < N_SPECS; s++)
        for (int iq = 0; iq < 3; iq++) {
            int64_t qoff = qoffs[iq], npos = qoff + N > N ? qoff + N : N;
            attn_mask m = parse_bound(spec(s), npos);
            for (int64_t bh = 0; bh < 4; bh++)
                for (int64_t i0 = 0; i0 < N; i0 += 16)
                    for (int64_t j0 = 0; j0 < N; j0 += 32) {
                        int64_t i1 = i0 + 16 < N ? i0 + 16 : N, j1 = j0 + 32 < N ? j0 + 32 : N;
                        check_tile(&m, spec(s), bh / 2, bh % 2 + bh / 2, qoff + i0, qoff + i1, j0, j1);
                    }
        }
}

/* Classifier precision: block-structured masks give EMPTY and FULL tiles
 * (else tiled kernels would compute every tile and skip nothing). */
Test(masks_all, block_structured_masks_skip_tiles)
{
    static const char *const structured[] = {"block:b=16,keep=0.3,seed=1", "bigbird:b=16,r=1,seed=1",
                                             "window:w=24", "document:lens=40+40+50", "fixed:l=32,c=1",
                                             "shared_question:q=32,answers=3", "prefix:p=64"};
    for (size_t s = 0; s < sizeof structured / sizeof *structured; s++) {
        attn_mask m = parse_bound(structured[s], 130);
        int empty = 0, full = 0;
        for (int64_t i0 = 0; i0 < 128; i0 += 16)
            for (int64_t j0 = 0; j0 < 128; j0 += 16) {
                attn_tile t = attn_mask_tile(&m, 0, 0, i0, i0 + 16, j0, j0 + 16);
                empty += t == ATTN_TILE_EMPTY;
                full += t == ATTN_TILE_FULL;
            }
        cr_assert(empty > 0 && full > 0, "%s: %d EMPTY and %d FULL 16x16 tiles", structured[s], empty, full);
    }
}

static double brute_pairs(const attn_mask *m, int64_t b, int64_t h, int64_t Nq, int64_t Nk, int64_t qoff)
{
    double n = 0;
    for (int64_t i = 0; i < Nq; i++)
        for (int64_t j = 0; j < Nk; j++)
            n += attn_mask_allowed(m, b, h, qoff + i, j);
    return n;
}

Test(masks_all, density_equals_the_counted_fraction)
{
    static const int64_t shapes[][3] = {{130, 130, 0}, {1, 130, 129}, {33, 97, 64}, {20, 20, -5}, {50, 64, 30}};
    for (size_t s = 0; s < N_SPECS; s++)
        for (int k = 0; k < 5; k++) {
            int64_t Nq = shapes[k][0], Nk = shapes[k][1], qoff = shapes[k][2];
            int64_t npos = qoff + Nq > Nk ? qoff + Nq : Nk;
            attn_mask m = parse_bound(spec(s), npos);
            double total = 0;
            for (int64_t b = 0; b < 2; b++)
                for (int64_t h = 0; h < 3; h++) {
                    double want = brute_pairs(&m, b, h, Nq, Nk, qoff);
                    total += want;
                    cr_assert_eq(attn_mask_pairs(&m, b, h, Nq, Nk, qoff, 0), want, "%s Nq=%ld Nk=%ld q_off=%ld b%ld h%ld",
                                 spec(s), Nq, Nk, qoff, b, h);
                }
            cr_assert_eq(attn_mask_pairs_total(&m, 2, 3, Nq, Nk, qoff, 0), total, "%s total", spec(s));
        }
    /* and through the args: density = nnz / (B H Nq Nk) */
    attn_args a = fx_args(2, 3, 3, 130, 130, 16, "random:p=0.2,seed=4", 1);
    cr_assert_float_eq(attn_density(&a), attn_mask_pairs_total(&a.mask, 2, 3, 130, 130, 0, 0) / (6.0 * 130 * 130), 1e-15);
}

/* Pair counts in closed form (N = 130 unless stated). */
Test(masks_all, pair_counts_match_the_suite_closed_forms)
{
    const double N = 130;
    attn_mask m = parse_bound("document:lens=60+1+40+29", 130);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), 60.0 * 60 + 1 + 40 * 40 + 29 * 29);
    m = parse_bound("document:lens=60+1+40+29,causal=1", 130);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), 60.0 * 61 / 2 + 1 + 40 * 41 / 2 + 29 * 30 / 2);
    m = parse_bound("prefix:p=20", 130);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), 20.0 * 20 + (N * (N + 1) - 20.0 * 21) / 2);
    m = parse_bound("window:w=7", 130);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), (2 * 7 + 1) * N - 7 * 8);
    m = parse_bound("window:wl=7,wr=0", 130);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), (7 + 1) * N - 7 * 8 / 2);
    m = parse_bound("dilated:w=4,dil=3", 130); /* radius 12 positions in steps of 3 */
    double dil = N;
    for (int k = 1; k <= 4; k++)
        dil += 2 * (N - 3 * k);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), dil);
    m = parse_bound("shared_question:q=20,answers=3", 130); /* answers 37, 37, 36 */
    double sq = 20.0 * 21 / 2;
    const double alen[] = {37, 37, 36};
    for (int k = 0; k < 3; k++)
        sq += alen[k] * 20 + alen[k] * (alen[k] + 1) / 2;
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), sq);
    m = parse_bound("sink:n=4,w=16", 130); /* rows i > w + n see w + 1 + n keys */
    double sink = 0;
    for (int i = 0; i < 130; i++)
        sink += i - 16 <= 4 ? i + 1 : 16 + 1 + 4;
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), sink);
    m = parse_bound("global:w=3,g=2", 130); /* window pairs + 2gN - g^2 - overlap */
    double win = (2 * 3 + 1) * N - 3 * 4, overlap = 0;
    for (int i = 0; i < 130; i++)
        for (int j = 0; j < 130; j++)
            overlap += (i < 2 || j < 2) && (i - j <= 3 && j - i <= 3);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), win + 2 * 2 * N - 4 - overlap);
    m = parse_bound("block:b=10,keep=1,seed=1", 130);
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), N * N);
    m = parse_bound("block:b=10,keep=0,seed=1", 130); /* the diagonal blocks only */
    cr_assert_eq(attn_mask_pairs(&m, 0, 0, 130, 130, 0, 0), 13 * 100.0);
}

Test(masks_all, row_helpers_agree_with_the_predicate)
{
    unsigned char row[200];
    for (size_t s = 0; s < N_SPECS; s++) {
        attn_mask m = parse_bound(spec(s), 130);
        for (int64_t h = 0; h < 3; h++)
            for (int64_t pi = -2; pi < 130; pi += 3) {
                attn_mask_row(&m, 1, h, pi, 5, 120, row);
                int64_t lo, hi;
                attn_mask_row_range(&m, pi, 5, 125, &lo, &hi);
                for (int64_t j = 0; j < 120; j++) {
                    int a = attn_mask_allowed(&m, 1, h, pi, 5 + j);
                    cr_assert_eq(row[j], a, "%s h%ld pi=%ld pj=%ld: attn_mask_row", spec(s), h, pi, 5 + j);
                    /* row_range: exact for interval kinds, a superset for the others */
                    int in = 5 + j >= lo && 5 + j < hi;
                    if (attn_mask_is_interval(&m))
                        cr_assert_eq(in, a, "%s pi=%ld pj=%ld: row range [%ld,%ld)", spec(s), pi, 5 + j, lo, hi);
                    else
                        cr_assert(in || !a, "%s: row range misses an allowed key", spec(s));
                }
            }
    }
}

/* Random kinds are pure functions of (seed, indices): the same in repeated
 * calls and whatever the thread count evaluating them. */
Test(masks_all, random_masks_are_identical_across_calls_and_threads)
{
    static const char *const rnd[] = {"random:p=0.2,seed=7", "bigbird:b=8,r=3,seed=5",
                                      "block:b=8,keep=0.4,seed=3,heads=1", "document:n=6,seed=11"};
    enum { N = 96, H = 4 };
    static unsigned char ref[H][N][N], got[H][N][N];
    for (size_t s = 0; s < 4; s++) {
        attn_mask m = parse_bound(rnd[s], N);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++)
                    ref[h][i][j] = (unsigned char)attn_mask_allowed(&m, 1, h, i, j);
        for (int threads = 1; threads <= 3; threads++) {
            attn_mask m2 = parse_bound(rnd[s], N); /* a fresh parse and bind */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
            for (int hi = 0; hi < H * N; hi++)
                for (int j = N - 1; j >= 0; j--)
                    got[hi / N][hi % N][j] = (unsigned char)attn_mask_allowed(&m2, 1, hi / N, hi % N, j);
            cr_assert_eq(memcmp(ref, got, sizeof ref), 0, "%s differs with %d threads", rnd[s], threads);
        }
        int differ = 0; /* the per-head kinds really differ between heads */
        for (int i = 0; i < N; i++)
            differ |= memcmp(ref[0][i], ref[1][i], N) != 0;
        cr_assert(differ || !(attn_mask_varies(&m) & 1), "%s: heads 0 and 1 are identical", rnd[s]);
    }
}

Test(masks_all, bigbird_rows_have_window_global_and_random_blocks)
{
    attn_mask m = parse_bound("bigbird:b=8,w=3,g=2,r=2,seed=1", 128); /* 16 blocks */
    for (int64_t h = 0; h < 2; h++)
        for (int64_t I = 1; I < 15; I++) {
            int blocks = 0;
            for (int64_t J = 0; J < 16; J++)
                blocks += attn_mask_allowed(&m, 0, h, I * 8, J * 8);
            int fixed = 3 + (I > 1) + (I < 14); /* window, plus first / last when outside it */
            cr_assert_eq(blocks, fixed + 2, "h%ld block row %ld: %d key blocks", h, I, blocks);
        }
    for (int64_t J = 0; J < 16; J++) /* global rows see everything */
        cr_assert(attn_mask_allowed(&m, 0, 0, 3, J * 8) && attn_mask_allowed(&m, 0, 0, 127, J * 8 + 7));
}

/* Kernels against the oracle on ragged documents (one of length 1) and on
 * every new kind, forward and backward; and thread determinism on the
 * random kinds. The same checks `attnbench check` runs. */
static int is_competitor(const attn_kernel *k) { return (k->flags & ATTN_EXACT) && !(k->flags & ATTN_REFERENCE); }

static int check_all_kernels(const attn_args *a, const char *what, int backward)
{
    int ran = 0;
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (!is_competitor(*k) || attn_args_validate(*k, a) != 0)
            continue;
        double eo, el, e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_forward(*k, a, 5, &eo, &el), 0, "%s %s: %s", (*k)->name, what, attn_last_error());
        cr_assert(eo <= fx_tol_o(a->Nk) && el <= 1e-5, "%s %s: err_O %.3g err_lse %.3g", (*k)->name, what, eo, el);
        if (backward && (*k)->backward) {
            cr_assert_eq(check_kernel_backward(*k, a, 6, e), 0, "%s %s: %s", (*k)->name, what, attn_last_error());
            for (int i = 0; i < 3; i++)
                cr_assert(e[i] <= 1e-4, "%s %s: d%c err %.3g", (*k)->name, what, "QKV"[i], e[i]);
        }
        ran++;
    }
    return ran;
}

Test(masks_all, kernels_match_oracle_on_ragged_documents, .timeout = 60)
{
    static const char *const docs[] = {"document:lens=60+1+40+29", "document:lens=60+1+40+29,causal=1",
                                       "document:lens=1+128+1", "document:lens=130"};
    for (size_t s = 0; s < 4; s++) {
        attn_args a = fx_args(1, 4, 2, 130, 130, 32, docs[s], 2);
        cr_assert_geq(check_all_kernels(&a, docs[s], 1), 3, "%s", docs[s]);
    }
    /* one document per position: the length-1 documents see only themselves */
    attn_args a = fx_args(1, 2, 2, 7, 7, 16, "document:lens=1+1+1+1+1+1+1", 2);
    cr_assert_geq(check_all_kernels(&a, "seven length-1 documents", 1), 3);
}

Test(masks_all, kernels_match_oracle_on_every_kind, .timeout = 120)
{
    static const int64_t shapes[][5] = {/* B, H, Hkv, Nq, Nk */ {1, 4, 2, 130, 130}, {2, 2, 1, 64, 97}, {1, 2, 2, 257, 257}};
    for (size_t s = 0; s < N_SPECS; s++)
        for (int k = 0; k < 3; k++) {
            if (k == 2 && s % 3 != 0)
                continue; /* the large shape for a third of the specs keeps the run short */
            attn_args a = fx_args(shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], shapes[k][4], k == 1 ? 80 : 32,
                                  spec(s), 2);
            char what[160];
            snprintf(what, sizeof what, "%s B%ld H%ld/%ld N%ld/%ld", spec(s), shapes[k][0], shapes[k][1], shapes[k][2],
                     shapes[k][3], shapes[k][4]);
            cr_assert_geq(check_all_kernels(&a, what, k == 0), 3, "%s", what);
        }
}

Test(masks_all, flash_tile_sizes_do_not_change_results_on_sparse_masks)
{
    static const char *const sparse[] = {"bigbird:b=16,r=2,seed=1", "block:b=16,keep=0.3,seed=2,heads=1",
                                         "dilated:w=6,dil=1+2+4,causal=1",
                                         "sink:n=4,w=20", "global:w=5,at=3+70", "random:p=0.2,seed=3"};
    static const char *const tiles[][2] = {{"br=32", "bc=64"}, {"br=64", "bc=128"}, {"br=16", "bc=48"}};
    const attn_kernel *flash = attn_find_kernel("flash");
    cr_assert_not_null(flash);
    for (size_t s = 0; s < sizeof sparse / sizeof *sparse; s++)
        for (int t = 0; t < 3; t++) {
            attn_args a = fx_args(1, 4, 2, 130, 130, 32, sparse[s], 2);
            param_bag_add(&a.params, tiles[t][0]);
            param_bag_add(&a.params, tiles[t][1]);
            double eo, el, e[ATTN_CHECK_GRADS];
            cr_assert_eq(check_kernel_forward(flash, &a, 8, &eo, &el), 0, "%s: %s", sparse[s], attn_last_error());
            cr_assert(eo <= fx_tol_o(130) && el <= 1e-5, "%s %s %s: %.3g %.3g", sparse[s], tiles[t][0], tiles[t][1], eo, el);
            cr_assert_eq(check_kernel_backward(flash, &a, 9, e), 0);
            for (int i = 0; i < 3; i++)
                cr_assert(e[i] <= 1e-4, "%s %s: d%c %.3g", sparse[s], tiles[t][0], "QKV"[i], e[i]);
        }
}

Test(masks_all, kernels_are_thread_independent_on_random_masks)
{
    static const char *const rnd[] = {"random:p=0.2,seed=7", "bigbird:b=16,r=3,seed=5",
                                      "block:b=16,keep=0.4,seed=3,heads=1", "document:n=5,seed=2,causal=1"};
    for (size_t s = 0; s < 4; s++) {
        attn_args a = fx_args(2, 4, 2, 130, 130, 32, rnd[s], 3);
        for (const attn_kernel *const *k = attn_registry(); *k; k++) {
            if (!is_competitor(*k) || !((*k)->flags & ATTN_DETERMINISTIC) || attn_args_validate(*k, &a) != 0)
                continue;
            int ok;
            cr_assert_eq(check_kernel_thread_determinism(*k, &a, 3, &ok), 0, "%s %s", (*k)->name, rnd[s]);
            cr_assert(ok, "%s %s: 1 and 3 threads differ", (*k)->name, rnd[s]);
        }
    }
}

/* flash skips exactly the tiles the classifier calls EMPTY (per head for
 * per-head layouts), and on these masks at 16x16 tiles that is over a third. */
Test(masks_all, flash_skips_the_empty_tiles_of_block_structured_masks)
{
    static const char *const structured[] = {"bigbird:b=16,r=1,seed=2", "block:b=32,keep=0.25,seed=3,heads=1",
                                             "document:lens=40+100+1+115", "window:w=20", "sink:n=4,w=30"};
    const attn_kernel *flash = attn_find_kernel("flash");
    for (size_t s = 0; s < sizeof structured / sizeof *structured; s++) {
        attn_args a = fx_args(1, 2, 2, 256, 256, 16, structured[s], 2);
        param_bag_add(&a.params, "br=16");
        param_bag_add(&a.params, "bc=16");
        long long empty = 0;
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i0 = 0; i0 < 256; i0 += 16)
                for (int64_t j0 = 0; j0 < 256; j0 += 16)
                    empty += attn_mask_tile(&a.mask, 0, h, i0, i0 + 16, j0, j0 + 16) == ATTN_TILE_EMPTY;
        fx_problem p;
        fx_make(&p, &a, 4);
        attn_counters_reset();
        cr_assert_eq(fx_run(flash, &p, 0), 0, "%s: %s", structured[s], attn_last_error());
        cr_assert_eq(attn_counter_get(ATTN_CNT_TILES_SKIPPED), empty, "%s", structured[s]);
        cr_assert_eq(attn_counter_get(ATTN_CNT_TILES_COMPUTED) + empty, 2 * 256, "%s", structured[s]);
        cr_assert_geq(empty, 2 * 256 / 3, "%s: only %lld of 512 tiles skipped", structured[s], empty);
        fx_free(&p);
    }
}
