/* Properties of `reformer` (LSH attention, shared QK): the fp32 kernel
 * equals its double reference (shapes, parameters, masks, GQA, Dv != D,
 * near-tie hashes); one round with one bucket and one chunk is shared-QK
 * softmax without the self key (a row with no other key attends itself);
 * several rounds are one softmax over the union of the candidates (the
 * ln count correction), rounds with identical candidates change nothing;
 * the error against full shared-QK attention falls as rounds are added
 * (mean over seeds); the sort is stable (counting sort, and one bucket
 * chunked by position); a query alone in its bucket gets its own value; K is
 * never read (dK = 0); gradients against central differences; the seed is
 * recorded and decides the hashes; cost model against the counters;
 * parameter validation. Leakage, thread determinism, views and padded
 * batches: the registry-driven tests. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/reformer/reformer.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_reformer;

static attn_args rf_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *mask,
                         const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, mask, threads, params);
}

/* ---- the double reference ---- */

static const struct {
    int64_t B, H, H_kv, N, D, Dv;
    const char *mask, *params;
} ref_cases[] = {
    {2, 2, 2, 64, 16, 0, "full", "chunk=8"},                 /* 8 chunks, 16 buckets */
    {1, 2, 2, 100, 16, 0, "causal", "chunk=16"},             /* last chunk shorter */
    {1, 4, 2, 130, 32, 0, "full", "chunk=16 rounds=2"},      /* GQA */
    {2, 2, 1, 70, 16, 24, "causal", "chunk=8 rounds=3"},     /* Dv != D */
    {1, 2, 2, 96, 16, 0, "full", "chunk=32 buckets=4"},      /* 3 chunks */
    {1, 2, 2, 40, 16, 0, "full", "chunk=32 buckets=2"},      /* 2 chunks: each the other's previous */
    {1, 2, 2, 50, 16, 0, "causal", "chunk=64"},              /* one chunk, its own previous */
    {1, 2, 2, 64, 16, 0, "full", "chunk=8 same_bucket=0"},
    {1, 2, 2, 64, 16, 0, "causal", "chunk=8 buckets=1 rounds=2"},
    {1, 3, 3, 200, 64, 0, "full", "rounds=1 seed=7"},        /* defaults: c = 64, nb = 6 */
    {2, 2, 2, 1, 16, 0, "full", ""},                         /* one row: alone */
    {1, 2, 1, 600, 16, 0, "full", "chunk=4 rounds=2"},       /* auto nb 300: factored 32 x 8 */
    {1, 2, 2, 600, 16, 0, "causal", "chunk=4 rounds=1"},
};

Test(reformer, forward_matches_double_reference_on_shapes_parameters_and_masks, .timeout = 60)
{
    for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++) {
        attn_args a = rf_args(ref_cases[i].B, ref_cases[i].H, ref_cases[i].H_kv, ref_cases[i].N, ref_cases[i].D,
                              ref_cases[i].mask, ref_cases[i].params, 2);
        a.Dv = ref_cases[i].Dv;
        char what[160];
        snprintf(what, sizeof what, "%s N%ld H%ld/%ld D%ld %s", ref_cases[i].mask, (long)ref_cases[i].N,
                 (long)ref_cases[i].H, (long)ref_cases[i].H_kv, (long)ref_cases[i].D, ref_cases[i].params);
        own_ref_check(K, &a, 20 + i, what);
    }
}

/* Rows whose projection on the first rotation column is nearly zero (nb = 2:
 * bucket = sign of x.r): fp32 sgemm cannot decide them, the exact fallback
 * must, or kernel and reference would put them in different buckets. */
Test(reformer, near_tie_hashes_follow_the_reference)
{
    attn_args a = rf_args(1, 1, 1, 64, 16, "full", "chunk=8 buckets=2 rounds=1", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    rf_plan pl;
    cr_assert_eq(rf_plan_make(&pl, &a), 0, "%s", attn_last_error());
    double r[16], rr = 0;
    rf_rotation(&pl, 0, 0, 16, 1, r);
    for (int d = 0; d < 16; d++)
        rr += r[d] * r[d];
    int ties = 0;
    for (int64_t i = 0; i < 64; i += 2) { /* every other row: x - (x.r) r / |r|^2 */
        float *x = attn_at(&p.q, 0, 0, i);
        double xr = 0;
        for (int d = 0; d < 16; d++)
            xr += x[d] * r[d];
        for (int d = 0; d < 16; d++)
            x[d] = (float)(x[d] - xr * r[d] / rr);
        double left = 0;
        for (int d = 0; d < 16; d++)
            left += (double)x[d] * r[d];
        ties += fabs(left) < 1e-5;
    }
    cr_assert_geq(ties, 16, "only %d near-tie rows", ties);
    problem_widen_inputs(&p);
    fx_ref_forward(&p);
    own_ref_check_problem(K, &p, "near-tie rows");
}

/* ---- limit cases against shared-QK softmax built here ---- */

/* Row i of (b, h): softmax over keys j with allowed[j] of sc <q_i, q_j/|q_j|>
 * in double (q, v from the double twin); a row with no key is v_i. */
static void shared_qk_row(const fx_problem *p, int64_t b, int64_t h, int64_t i, const unsigned char *allowed,
                          double *o)
{
    int64_t N = p->a.Nk, D = p->a.D, Dv = attn_dv(&p->a), hk = h / (p->a.H / p->a.H_kv);
    const double *q = attn_at64(&p->q64, b, h, i);
    double *s = malloc(sizeof(double) * (size_t)N), m = -INFINITY, z = 0;
    for (int64_t j = 0; j < N; j++) {
        const double *k = attn_at64(&p->q64, b, h, j);
        double dot = 0, nn = 0;
        for (int64_t d = 0; d < D; d++)
            dot += q[d] * k[d], nn += k[d] * k[d];
        s[j] = allowed[j] ? attn_scale(&p->a) * dot / sqrt(nn) : -INFINITY;
        m = fmax(m, s[j]);
    }
    memset(o, 0, sizeof(double) * (size_t)Dv);
    if (m == -INFINITY) {
        memcpy(o, attn_at64(&p->v64, b, hk, i), sizeof(double) * (size_t)Dv);
        free(s);
        return;
    }
    for (int64_t j = 0; j < N; j++)
        if (allowed[j]) {
            double e = exp(s[j] - m);
            z += e;
            for (int64_t d = 0; d < Dv; d++)
                o[d] += e * attn_at64(&p->v64, b, hk, j)[d];
        }
    for (int64_t d = 0; d < Dv; d++)
        o[d] /= z;
    free(s);
}

typedef void (*allowed_fn)(const fx_problem *p, int64_t b, int64_t h, int64_t i, unsigned char *allowed, void *ctx);

/* max |O - ref| / max |V| with ref rows from shared_qk_row over allowed();
 * *fro (if not NULL) the relative Frobenius error. */
static double shared_qk_err(const fx_problem *p, allowed_fn allowed, void *ctx, double *fro)
{
    int64_t N = p->a.Nq, Dv = attn_dv(&p->a);
    unsigned char *al = malloc((size_t)N);
    double *o = malloc(sizeof(double) * (size_t)Dv), e = 0, vmax = 0, d2 = 0, r2 = 0;
    for (int64_t b = 0; b < p->a.B; b++)
        for (int64_t h = 0; h < p->a.H; h++)
            for (int64_t i = 0; i < N; i++) {
                allowed(p, b, h, i, al, ctx);
                shared_qk_row(p, b, h, i, al, o);
                for (int64_t d = 0; d < Dv; d++) {
                    double x = attn_at(&p->o, b, h, i)[d];
                    e = fmax(e, fabs(x - o[d])), d2 += (x - o[d]) * (x - o[d]), r2 += o[d] * o[d];
                    vmax = fmax(vmax, fabs(attn_at64(&p->v64, b, h / (p->a.H / p->a.H_kv), i)[d]));
                }
            }
    if (fro)
        *fro = sqrt(d2 / r2);
    free(al), free(o);
    return e / vmax;
}

/* Every key but the query's own (and no later key under a causal mask). */
static void all_but_self(const fx_problem *p, int64_t b, int64_t h, int64_t i, unsigned char *al, void *ctx)
{
    (void)b, (void)h, (void)ctx;
    int causal = p->a.mask.kind == ATTN_MASK_CAUSAL;
    for (int64_t j = 0; j < p->a.Nk; j++)
        al[j] = j != i && (!causal || j <= i);
}

Test(reformer, one_bucket_one_chunk_is_shared_qk_softmax_without_the_self_key, .timeout = 30)
{
    /* rounds=3: every pair is a candidate 3 times, ln 3 cancels in the softmax */
    static const char *const params[] = {"rounds=1 buckets=1 chunk=90", "rounds=1 buckets=1 chunk=1000",
                                         "rounds=3 buckets=1 chunk=90"};
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            attn_args a = rf_args(2, 2, 1, 90, 32, masks[m], params[i], 2);
            fx_problem p;
            fx_make_for(&p, K, &a, 5 + i);
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            double e = shared_qk_err(&p, all_but_self, NULL, NULL);
            cr_assert(e <= fx_tol_o(90), "%s %s: err %.3g", masks[m], params[i], e);
            if (m == 1) /* causal row 0 has no other key: its own value, lse = -1e5 */
                for (int64_t h = 0; h < 2; h++) {
                    cr_assert_eq(p.lse[h * 90], (float)RF_SELF_SCORE);
                    cr_assert_eq(memcmp(attn_at(&p.o, 0, h, 0), attn_at(&p.v, 0, 0, 0), 32 * sizeof(float)), 0);
                }
            fx_free(&p);
        }
}

/* The candidate sets as the reference's fidelity view gives them. */
typedef struct {
    unsigned char *sel; /* B x H x N x N */
} union_sets;

static void union_of_candidates(const fx_problem *p, int64_t b, int64_t h, int64_t i, unsigned char *al, void *ctx)
{
    const union_sets *u = ctx;
    int64_t N = p->a.Nk;
    memcpy(al, u->sel + ((b * p->a.H + h) * N + i) * N, (size_t)N);
    if (al[i]) /* the query itself is selected only when alone: shared_qk_row gives v_i then */
        al[i] = 0;
}

Test(reformer, several_rounds_are_one_softmax_over_the_union_of_candidates, .timeout = 30)
{
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++) {
        int64_t N = 96;
        attn_args a = rf_args(1, 2, 2, N, 16, masks[m], "chunk=8 rounds=4", 2);
        fx_problem p;
        fx_make_for(&p, K, &a, 11 + m);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        attn_io64 io = problem_io64(&p);
        union_sets u = {malloc((size_t)(2 * N * N))};
        double *P = malloc(sizeof(double) * (size_t)(N * N));
        int64_t *rows = malloc(sizeof(int64_t) * (size_t)N), selected = 0;
        for (int64_t i = 0; i < N; i++)
            rows[i] = i;
        for (int64_t h = 0; h < 2; h++) {
            int bits = K->ref_view(&p.a, &io, 0, h, rows, N, P, u.sel + h * N * N);
            cr_assert_eq(bits, ATTN_VIEW_ROWS | ATTN_VIEW_KEYS);
            for (int64_t i = 0; i < N; i++) { /* rows of the view: non-negative, sum 1, on the selected keys */
                double s = 0;
                for (int64_t j = 0; j < N; j++) {
                    cr_assert(P[i * N + j] >= 0 && (P[i * N + j] == 0 || u.sel[(h * N + i) * N + j]));
                    s += P[i * N + j], selected += u.sel[(h * N + i) * N + j];
                }
                cr_assert(fabs(s - 1) < 1e-12, "%s h%ld row %ld sums to %.15g", masks[m], (long)h, (long)i, s);
            }
        }
        double mean = (double)selected / (double)(2 * N);
        cr_assert(mean > 8 && mean < N / 2, "%s: %.1f keys per query: not a proper subset", masks[m], mean);
        double e = shared_qk_err(&p, union_of_candidates, &u, NULL);
        cr_assert(e <= fx_tol_o(N), "%s: union softmax err %.3g", masks[m], e);
        free(u.sel), free(P), free(rows);
        fx_free(&p);
    }
}

/* Full shared-QK attention without the self key against the LSH kernel,
 * as rounds are added (q scaled up: attention is peaked, so the keys the
 * hashes miss matter). Mean relative Frobenius error over 4 seeds. */
Test(reformer, error_against_full_shared_qk_attention_falls_as_rounds_grow, .timeout = 60)
{
    static const int rounds[] = {1, 2, 4, 8};
    double mean[4] = {0};
    for (int r = 0; r < 4; r++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            char params[64];
            snprintf(params, sizeof params, "chunk=16 rounds=%d seed=%llu", rounds[r], (unsigned long long)seed);
            attn_args a = rf_args(1, 2, 2, 256, 32, "full", params, 2);
            fx_problem p;
            fx_make_for(&p, K, &a, 100 + seed);
            for (int64_t i = 0; i < p.q.B * p.q.sb; i++)
                p.q.data[i] *= 4.0f;
            problem_widen_inputs(&p);
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            double fro;
            shared_qk_err(&p, all_but_self, NULL, &fro);
            mean[r] += fro / 4;
            fx_free(&p);
        }
    for (int r = 1; r < 4; r++)
        cr_assert(mean[r] < mean[r - 1], "rounds %d: mean error %.4f, not below %.4f at %d rounds", rounds[r],
                  mean[r], mean[r - 1], rounds[r - 1]);
    cr_assert(mean[3] < 0.6 * mean[0], "8 rounds %.4f vs 1 round %.4f", mean[3], mean[0]);
}

/* The fidelity report compares a shared-QK kernel with its exact
 * counterpart: at one bucket, one round and one chunk reformer is that
 * counterpart, so every measure is at its ideal; with hashing it is not. */
Test(reformer, fidelity_reference_is_shared_qk_softmax_without_the_diagonal, .timeout = 30)
{
    static const char *const masks[] = {"full", "causal"};
    for (int m = 0; m < 2; m++) {
        attn_args a = rf_args(1, 2, 2, 200, 32, masks[m], "rounds=1 buckets=1 chunk=256", 2);
        fid_metrics f;
        cr_assert_eq(check_kernel_fidelity(K, &a, FID_PEAKED, 3, &f), 0, "%s", attn_last_error());
        cr_assert(f.rel_fro < 1e-5 && f.cos_min > 1 - 1e-9 && f.kl < 1e-6 && f.topk_recall == 1.0,
                  "%s: rel %.3g cos_min %.9f kl %.3g recall %.3f", masks[m], f.rel_fro, f.cos_min, f.kl,
                  f.topk_recall);
        attn_args h = rf_args(1, 2, 2, 200, 32, masks[m], "chunk=16", 2);
        cr_assert_eq(check_kernel_fidelity(K, &h, FID_PEAKED, 3, &f), 0, "%s", attn_last_error());
        cr_assert(f.rel_fro > 1e-2 && f.topk_recall < 1, "%s hashed: rel %.3g recall %.3f", masks[m], f.rel_fro,
                  f.topk_recall);
    }
}

/* ---- sort, lone queries, the K input ---- */

Test(reformer, counting_sort_is_stable)
{
    enum { L = 1000, NB = 7 };
    int32_t bucket[L], order[L], rank[L], count[NB + 1];
    uint64_t x = 12345;
    for (int i = 0; i < L; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        bucket[i] = (int32_t)((x >> 33) % NB);
    }
    rf_sort(bucket, L, NB, order, rank, count);
    for (int s = 1; s < L; s++) {
        int32_t p = order[s - 1], q = order[s];
        cr_assert(bucket[p] < bucket[q] || (bucket[p] == bucket[q] && p < q), "slots %d, %d out of order", s - 1, s);
    }
    for (int i = 0; i < L; i++)
        cr_assert_eq(order[rank[i]], i);
}

/* Chunk k holds rows k c .. k c + c - 1 (the stable sort keeps positions);
 * query i attends chunk i/c and the one before (chunk 0: the last one). */
static void position_chunks(const fx_problem *p, int64_t b, int64_t h, int64_t i, unsigned char *al, void *ctx)
{
    (void)b, (void)h;
    int64_t c = *(const int64_t *)ctx, N = p->a.Nk, nc = (N + c - 1) / c, ci = i / c;
    for (int64_t j = 0; j < N; j++)
        al[j] = j != i && (j / c == ci || j / c == (ci + nc - 1) % nc);
}

Test(reformer, one_bucket_chunks_by_position_as_a_stable_sort_keeps_them)
{
    int64_t c = 8;
    attn_args a = rf_args(1, 2, 2, 60, 16, "full", "chunk=8 buckets=1 rounds=1", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 9);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    double e = shared_qk_err(&p, position_chunks, &c, NULL);
    cr_assert(e <= fx_tol_o(60), "err %.3g", e);
    fx_free(&p);
}

/* q_5 = -u, every other row a positive multiple of u: with nb = 2 row 5 is
 * alone in its bucket in every round. It gets v_5 (lse -1e5) and no other
 * row attends it. */
Test(reformer, a_query_alone_in_its_bucket_attends_to_itself)
{
    int64_t N = 48, D = 16;
    attn_args a = rf_args(1, 1, 1, N, D, "full", "chunk=16 buckets=2 rounds=4", 1);
    fx_problem p;
    fx_make_for(&p, K, &a, 4);
    const float *u = attn_at(&p.k, 0, 0, 0); /* any direction: K itself is never read */
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++)
            attn_at(&p.q, 0, 0, i)[d] = i == 5 ? -u[d] : u[d] * (1.0f + 0.05f * (float)i);
    problem_widen_inputs(&p);
    fx_ref_forward(&p);
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_eq(memcmp(attn_at(&p.o, 0, 0, 5), attn_at(&p.v, 0, 0, 5), sizeof(float) * (size_t)D), 0);
    cr_assert_eq(p.lse[5], (float)RF_SELF_SCORE);
    attn_io64 io = problem_io64(&p);
    double *P = malloc(sizeof(double) * (size_t)(N * N));
    unsigned char *sel = malloc((size_t)(N * N));
    int64_t rows[48];
    for (int64_t i = 0; i < N; i++)
        rows[i] = i;
    K->ref_view(&p.a, &io, 0, 0, rows, N, P, sel);
    for (int64_t i = 0; i < N; i++)
        cr_assert_eq(sel[i * N + 5], i == 5, "row %ld: key 5 selected %d", (long)i, sel[i * N + 5]);
    cr_assert(fx_err_o(&p) <= 5e-5, "err %.3g", fx_err_o(&p));
    free(P), free(sel);
    fx_free(&p);
}

Test(reformer, k_is_never_read_and_its_gradient_is_zero)
{
    attn_args a = rf_args(1, 2, 2, 40, 16, "causal", "chunk=8", 1);
    a.backward = 1;
    fx_problem p, n;
    fx_make_for(&p, K, &a, 6);
    fx_make_for(&n, K, &a, 6);
    for (int64_t i = 0; i < n.k.B * n.k.sb; i++)
        n.k.data[i] = NAN;
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    cr_assert_eq(fx_run(K, &n, 1), 0, "%s", attn_last_error());
    cr_assert(fx_bitwise_equal(&p.o, &n.o) && fx_bitwise_equal(&p.dq, &n.dq) && fx_bitwise_equal(&p.dv, &n.dv));
    for (int64_t i = 0; i < n.dk.B * n.dk.sb; i++)
        cr_assert_eq(n.dk.data[i], 0.0f);
    fx_free(&p), fx_free(&n);
}

/* ---- gradients, seed, cost, parameters ---- */

Test(reformer, gradients_match_central_differences_of_the_reference, .timeout = 60)
{
    static const struct {
        int64_t H, H_kv, Dv;
        const char *mask, *params;
    } cases[] = {
        {2, 2, 0, "full", "chunk=4 rounds=1 buckets=1"}, {2, 2, 0, "full", "chunk=4 rounds=2 same_bucket=0"},
        {4, 2, 0, "causal", "chunk=4 rounds=3"},          {2, 1, 12, "full", "chunk=8 rounds=2 buckets=2"},
        {2, 2, 0, "causal", "chunk=32 rounds=2"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attn_args a = rf_args(1, cases[c].H, cases[c].H_kv, 20, 8, cases[c].mask, cases[c].params, 2);
        a.Dv = cases[c].Dv;
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + c, e), 0, "%s", attn_last_error());
        cr_assert(e[0] <= CHECK_TOL_GRAD && e[1] <= CHECK_TOL_GRAD && e[2] <= CHECK_TOL_GRAD,
                  "%s %s: dQ %.3g dK %.3g dV %.3g", cases[c].mask, cases[c].params, e[0], e[1], e[2]);
    }
}

Test(reformer, the_seed_is_recorded_and_decides_the_hashes)
{
    attn_args a = rf_args(1, 1, 1, 64, 16, "full", "chunk=8 seed=3", 1);
    attn_args other = rf_args(1, 1, 1, 64, 16, "full", "chunk=8 seed=4", 1);
    own_seed_is_recorded_and_decides(K, &a, &other, 2);
}

/* Forward per head and round: L D nb + 2 nq nk (D + Dv) per chunk. N = 100,
 * c = 16: 7 chunks (the last of 4 rows), nb = 2 * 6 = 12. */
Test(reformer, cost_model_matches_the_formula_and_the_counters)
{
    attn_args a = rf_args(1, 2, 2, 100, 16, "full", "chunk=16 rounds=2", 1);
    a.Dv = 8;
    a.backward = 1;
    double pairs = 0; /* chunk k: nq rows, nk = nq + previous chunk's rows */
    for (int k = 0; k < 7; k++) {
        int nq = k < 6 ? 16 : 4, np = k == 0 ? 4 : 16;
        pairs += 2.0 * nq * (nq + np);
    }
    double fwd = 2 * 2 * (100.0 * 16 * 12 + pairs * (16 + 8)), bwd = 2 * 2 * (100.0 * 16 * 12 + pairs * (3 * 16 + 2 * 8));
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), fwd, 1e-6);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), bwd, 1e-6);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4.0 * 100 * (2 * 16 + 2 * 8 + 2 * 8 + 2), 1e-6);
    cr_assert_eq(K->state_bytes(&a), 4u * 100 * (16 * 2 + 8 * 2));
    fx_problem p;
    fx_make_for(&p, K, &a, 8);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_float_eq((double)attn_counter_get(ATTN_CNT_FLOPS), fwd, 0.5);
    cr_assert(attn_counter_get(ATTN_CNT_EXPS) > 0 && attn_counter_get(ATTN_CNT_BYTES_READ) > 0);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    cr_assert_float_eq((double)attn_counter_get(ATTN_CNT_FLOPS), fwd + bwd, 0.5);
    fx_free(&p);
}

/* Automatic bucket counts above 128 are factored as trax does (f1 the power
 * of two at or above sqrt(n), f2 the even rest): the projection has
 * f1/2 + f2/2 columns instead of n/2, and the cost model counts those. */
Test(reformer, automatic_buckets_above_128_are_factored_as_trax_does)
{
    static const struct {
        const char *params;
        int64_t L, nb, f1, f2, cols;
    } cases[] = {
        {"chunk=64", 16384, 512, 32, 16, 24}, {"chunk=64", 4096, 128, 128, 1, 64}, {"chunk=4", 600, 256, 32, 8, 20},
        {"chunk=64", 100, 2, 2, 1, 1},        {"buckets=512", 16384, 512, 512, 1, 256},
        {"buckets=1", 16384, 1, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = rf_args(1, 1, 1, 16, 16, "full", cases[i].params, 1);
        rf_plan pl;
        cr_assert_eq(rf_plan_make(&pl, &a), 0, "%s", attn_last_error());
        rf_hash_shape hs = rf_hash_of(&pl, cases[i].L);
        cr_assert(hs.nb == cases[i].nb && hs.f1 == cases[i].f1 && hs.f2 == cases[i].f2 && hs.cols == cases[i].cols,
                  "%s L=%ld: nb %ld = %ld x %ld, %ld columns", cases[i].params, (long)cases[i].L, (long)hs.nb,
                  (long)hs.f1, (long)hs.f2, (long)hs.cols);
    }
    /* N = 600, c = 4: 150 chunks of 4 (each with its previous: 2 * 4 * 8 products), 20 columns */
    attn_args a = rf_args(1, 2, 2, 600, 16, "full", "chunk=4 rounds=1", 1);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 2 * (2.0 * 600 * 16 * 20 + 150 * 2.0 * 4 * 8 * 32), 1e-6);
}

Test(reformer, refuses_odd_bucket_counts_other_masks_and_unknown_parameters)
{
    attn_ctx ctx;
    attn_args odd = rf_args(1, 1, 1, 16, 16, "full", "buckets=3", 1);
    cr_assert_eq(attn_ctx_create(K, &odd, &ctx), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "buckets"), "%s", attn_last_error());
    attn_args zero = rf_args(1, 1, 1, 16, 16, "full", "chunk=0", 1);
    cr_assert_eq(attn_ctx_create(K, &zero, &ctx), ATTN_EINVAL);
    attn_args unknown = rf_args(1, 1, 1, 16, 16, "full", "hashes=2", 1);
    cr_assert_neq(attn_ctx_create(K, &unknown, &ctx), 0);
    attn_args w = rf_args(1, 1, 1, 16, 16, "window:wl=4,wr=0", "", 1);
    cr_assert_eq(attn_ctx_create(K, &w, &ctx), ATTN_EUNSUPPORTED);
    attn_args cross = fx_args(1, 1, 1, 8, 16, 16, "full", 1);
    cr_assert_eq(attn_ctx_create(K, &cross, &ctx), ATTN_EUNSUPPORTED);
    attn_args one = rf_args(1, 1, 1, 16, 16, "full", "buckets=1 rounds=2 same_bucket=0", 1);
    cr_assert_eq(attn_ctx_create(K, &one, &ctx), 0, "%s", attn_last_error());
    attn_ctx_destroy(&ctx);
}
