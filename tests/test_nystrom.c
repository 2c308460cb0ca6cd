/* Properties of the `nystrom` kernel (Nyströmformer): the fp32 kernel equals
 * its double reference (landmarks below, at and above N, uneven segments,
 * GQA, Dv != D, the conv skip, iteration counts, tiles); gradients against
 * central differences of the reference, conv taps included; the iteration
 * against an SVD pseudo-inverse (LAPACK dgesdd from OpenBLAS), its residual
 * ||A Z A - A|| falling every step; m = N with 30 steps on peaked inputs is
 * softmax attention; the error against the oracle falls as m grows (mean
 * over seeds) and is small on smooth sequences; the conv skip's alignment;
 * P = F Z Bt has negative entries (no attention rows for the fidelity
 * report); cost model and counters; refusals. Strided views, GQA, thread
 * determinism and padded batches: test_properties.c and test_padded.c. */
#include "harness/measure/check.h"
#include "harness/measure/fixture.h"
#include "kernels/core/counters.h"
#include "kernels/core/oracle.h"
#include "kernels/nystrom/nystrom.h"
#include "common/rng.h"
#include "own_ref_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const attn_kernel *const K = &attn_kernel_nystrom;

/* LAPACK's divide-and-conquer SVD as OpenBLAS exports it (column-major;
 * the trailing length of the character argument is gfortran's convention). */
extern void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
                    const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork,
                    int *info, size_t jobz_len);

static attn_args ny_args(int64_t B, int64_t H, int64_t H_kv, int64_t N, int64_t D, const char *params, int threads)
{
    return fx_args_params(B, H, H_kv, N, N, D, "full", threads, params);
}

Test(nystrom, forward_matches_double_reference_over_shapes_landmarks_and_tiles, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N, D, Dv;
        const char *params;
    } cases[] = {
        {2, 2, 2, 64, 16, 0, "landmarks=8"},          {1, 4, 2, 130, 32, 0, "landmarks=32"},
        {1, 2, 1, 130, 16, 0, "landmarks=64 tile=7"}, {2, 2, 2, 64, 16, 0, "landmarks=64"},
        {1, 2, 2, 50, 16, 0, "landmarks=1000"},       {1, 2, 1, 97, 64, 0, "landmarks=13 conv=5 tile=16"},
        {2, 2, 2, 40, 16, 8, "landmarks=6 conv=4"},   {1, 2, 2, 33, 16, 24, "landmarks=1 conv=33"},
        {1, 2, 2, 7, 80, 0, "landmarks=3 iters=0"},   {1, 2, 2, 64, 32, 0, "landmarks=16 iters=20"},
        {2, 1, 1, 1, 16, 0, ""},                      {1, 3, 1, 257, 16, 0, "landmarks=64 conv=35 tile=100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[96];
        snprintf(what, sizeof what, "N=%ld D=%ld Dv=%ld %s", (long)cases[i].N, (long)cases[i].D, (long)cases[i].Dv,
                 cases[i].params);
        attn_args a = ny_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, cases[i].params, 2);
        a.Dv = cases[i].Dv;
        own_ref_check(K, &a, 10 + i, what);
    }
}

Test(nystrom, backward_matches_reference_gradients_including_conv_taps, .timeout = 60)
{
    static const struct {
        int64_t B, H, H_kv, N, D;
        const char *params;
    } cases[] = {
        {1, 2, 1, 9, 8, "landmarks=4 conv=3"},
        {2, 2, 2, 7, 8, "landmarks=7 conv=4"},
        {1, 2, 1, 11, 8, "landmarks=3 iters=2 conv=5 tile=4"},
        {1, 1, 1, 10, 8, "landmarks=10 iters=0"},
        {2, 4, 2, 8, 4, "landmarks=5 iters=12 conv=1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_args a = ny_args(cases[i].B, cases[i].H, cases[i].H_kv, cases[i].N, cases[i].D, cases[i].params, 2);
        if (i == 4) /* many steps: on peaked scores (a well-conditioned A), see the docs page */
            a.scale = 2.0;
        double e[ATTN_CHECK_GRADS];
        cr_assert_eq(check_kernel_backward(K, &a, 60 + i, e), 0, "%s", attn_last_error());
        for (int g = 0; g < 3; g++)
            cr_assert(e[g] <= 1e-4, "case %zu (%s): %s err %.3g", i, cases[i].params, check_grad_names[g], e[g]);
        if (strstr(cases[i].params, "conv"))
            cr_assert(e[6] <= 1e-4, "case %zu (%s): dw err %.3g", i, cases[i].params, e[6]);
    }
}

/* ---- the pseudo-inverse iteration ---- */

/* Row-stochastic m x m matrix softmax(peak * I + N(0, 1)): peak 0 is the
 * flat, ill-conditioned regime, a large peak a well-conditioned one. */
static void stochastic(int64_t m, double peak, uint64_t seed, double *A)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t i = 0; i < m; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < m; j++)
            A[i * m + j] = attn_rng_normal(&r) + (i == j ? peak : 0), mx = fmax(mx, A[i * m + j]);
        for (int64_t j = 0; j < m; j++)
            sum += A[i * m + j] = exp(A[i * m + j] - mx);
        for (int64_t j = 0; j < m; j++)
            A[i * m + j] /= sum;
    }
}

/* A^+ from LAPACK's SVD, singular values below 1e-12 s_max dropped. */
static void svd_pinv(const double *A, int m, double *Ap)
{
    double *a = malloc(sizeof(double) * (size_t)(m * m)), *s = malloc(sizeof(double) * (size_t)m);
    double *u = malloc(sizeof(double) * (size_t)(m * m)), *vt = malloc(sizeof(double) * (size_t)(m * m));
    int *iwork = malloc(sizeof(int) * (size_t)(8 * m)), info = 0, lwork = -1;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            a[i + j * m] = A[i * m + j]; /* column-major */
    double q;
    dgesdd_("A", &m, &m, a, &m, s, u, &m, vt, &m, &q, &lwork, iwork, &info, 1);
    lwork = (int)q;
    double *work = malloc(sizeof(double) * (size_t)lwork);
    dgesdd_("A", &m, &m, a, &m, s, u, &m, vt, &m, work, &lwork, iwork, &info, 1);
    cr_assert_eq(info, 0, "dgesdd info %d", info);
    for (int i = 0; i < m; i++) /* A^+ = V S^+ U^T */
        for (int j = 0; j < m; j++) {
            double x = 0;
            for (int k = 0; k < m; k++)
                if (s[k] > 1e-12 * s[0])
                    x += vt[k + i * m] / s[k] * u[j + k * m];
            Ap[i * m + j] = x;
        }
    free(a), free(s), free(u), free(vt), free(iwork), free(work);
}

static double fro_diff(const double *X, const double *Y, int64_t n)
{
    double s = 0, t = 0;
    for (int64_t i = 0; i < n; i++)
        s += (X[i] - Y[i]) * (X[i] - Y[i]), t += Y[i] * Y[i];
    return sqrt(s / t);
}

/* ||A Z A - A||_F / ||A||_F */
static double pinv_residual(const double *A, const double *Z, int64_t m)
{
    double *AZ = calloc((size_t)(m * m), sizeof(double)), *AZA = calloc((size_t)(m * m), sizeof(double));
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < m; k++)
            for (int64_t j = 0; j < m; j++)
                AZ[i * m + j] += A[i * m + k] * Z[k * m + j];
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < m; k++)
            for (int64_t j = 0; j < m; j++)
                AZA[i * m + j] += AZ[i * m + k] * A[k * m + j];
    double r = fro_diff(AZA, A, m * m);
    free(AZ), free(AZA);
    return r;
}

Test(nystrom, iteration_converges_to_the_svd_pseudo_inverse)
{
    enum { M = 24 };
    double A[M * M], Z[M * M], P[M * M], tmp[3 * M * M];
    float A32[M * M], zs[2 * M * M], ps[M * M], t32[2 * M * M];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        stochastic(M, 4.0, seed, A);
        svd_pinv(A, M, P);
        attn_nystrom_pinv64(A, M, 30, Z, tmp);
        double e = fro_diff(Z, P, M * M);
        cr_assert(e < 1e-10, "seed %lu: double iteration vs SVD pinv %.3g", (unsigned long)seed, e);
        for (int i = 0; i < M * M; i++)
            A32[i] = (float)A[i];
        const float *z = attn_nystrom_pinv(A32, M, 30, 0, zs, ps, t32);
        for (int i = 0; i < M * M; i++)
            Z[i] = z[i];
        e = fro_diff(Z, P, M * M);
        cr_assert(e < 1e-4, "seed %lu: fp32 iteration vs SVD pinv %.3g", (unsigned long)seed, e);
    }
}

/* A singular A (two equal rows: two equal landmarks): the iteration reaches
 * the pseudo-inverse, not an inverse; run on, the rounding error in the null
 * direction grows by 13/4 per step (the iteration's slope at 0), so more
 * steps are not always better. */
Test(nystrom, iteration_on_a_singular_matrix_reaches_the_pseudo_inverse_then_drifts)
{
    enum { M = 24 };
    double A[M * M], P[M * M], Z[M * M], tmp[3 * M * M], e[3];
    stochastic(M, 4.0, 9, A);
    memcpy(A + 5 * M, A + 2 * M, sizeof(double) * M);
    svd_pinv(A, M, P);
    static const int steps[] = {15, 30, 40};
    for (int i = 0; i < 3; i++) {
        attn_nystrom_pinv64(A, M, steps[i], Z, tmp);
        e[i] = fro_diff(Z, P, M * M);
    }
    cr_assert(e[0] < 1e-10, "15 steps: iteration vs SVD pinv %.3g", e[0]);
    double growth = pow(e[2] / e[1], 1.0 / 10);
    cr_assert(growth > 3.0 && growth < 3.5, "drift per step %.3g (errors %.3g, %.3g), expected 13/4", growth, e[1],
              e[2]);
}

Test(nystrom, pinv_residual_falls_every_iteration)
{
    enum { M = 32 };
    double A[M * M], Z[M * M], tmp[3 * M * M];
    static const double peaks[] = {0.0, 2.0, 5.0};
    for (int p = 0; p < 3; p++) {
        stochastic(M, peaks[p], 20 + (uint64_t)p, A);
        double prev = INFINITY;
        for (int it = 0; it <= 10; it++) {
            attn_nystrom_pinv64(A, M, it, Z, tmp);
            double r = pinv_residual(A, Z, M);
            cr_assert(r < prev || r < 1e-12, "peak %g: residual %.3g after %d steps, %.3g before", peaks[p], r, it,
                      prev);
            prev = r;
        }
        if (peaks[p] >= 5.0)
            cr_assert(prev < 1e-10, "peak %g: residual %.3g after 10 steps", peaks[p], prev);
    }
}

/* ---- against softmax attention ---- */

/* Inputs with q ~ qs N(0, 1), k = ks q + noise N(0, 1), v ~ N(0, 1): ks = 0
 * gives independent q and k, ks = qs with a small noise peaked attention
 * (each query's own key stands out: a well-conditioned A at m = N). */
static void fill_inputs(fx_problem *p, double qs, double ks, double noise, uint64_t seed)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    const attn_args *a = &p->a;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t n = 0; n < a->Nq; n++)
                for (int64_t d = 0; d < a->D; d++) {
                    double z = attn_rng_normal(&r);
                    attn_at(&p->q, b, h, n)[d] = (float)(qs * z);
                    attn_at(&p->k, b, h, n)[d] = (float)(ks * z + noise * attn_rng_normal(&r));
                    attn_at(&p->v, b, h, n)[d] = (float)attn_rng_normal(&r);
                }
}

typedef struct {
    double rel_fro; /* ||O - O_oracle||_F / ||O_oracle||_F */
    double max_v;   /* max|O - O_oracle| / max|V|: the exact kernels' measure */
} oracle_err;

/* The fp32 kernel on p's inputs against the softmax oracle. */
static oracle_err vs_oracle(fx_problem *p)
{
    cr_assert_eq(fx_run(K, p, 0), 0, "%s", attn_last_error());
    problem_widen_inputs(p);
    attn_tensor_f64 o = p->o64;
    o.data = calloc((size_t)(o.B * o.sb), sizeof(double));
    double *lse = calloc((size_t)(p->a.B * p->a.H * p->a.Nq), sizeof(double)), s = 0, t = 0, mx = 0, mv = 0;
    attn_oracle_forward_f64(&p->a, &p->q64, &p->k64, &p->v64, &o, lse);
    for (int64_t b = 0; b < o.B; b++)
        for (int64_t h = 0; h < o.H; h++)
            for (int64_t n = 0; n < o.N; n++)
                for (int64_t d = 0; d < o.D; d++) {
                    double x = attn_at(&p->o, b, h, n)[d], y = attn_at64(&o, b, h, n)[d];
                    s += (x - y) * (x - y), t += y * y, mx = fmax(mx, fabs(x - y));
                    mv = fmax(mv, fabs(attn_at64(&p->v64, b, h, n)[d]));
                }
    free(o.data), free(lse);
    return (oracle_err){sqrt(s / t), mx / mv};
}

/* m = N: the landmarks are the rows, F = A = Bt = P (the softmax matrix),
 * and with Z -> P^{-1} the output is P V. */
Test(nystrom, landmarks_equal_to_n_give_softmax_attention_on_peaked_inputs, .timeout = 30)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        attn_args a = ny_args(1, 2, 2, 64, 32, "landmarks=64 iters=30", 2);
        fx_problem p;
        fx_make_for(&p, K, &a, seed);
        fill_inputs(&p, 2.0, 2.0, 0.1, seed);
        oracle_err e = vs_oracle(&p);
        cr_assert(e.rel_fro < 1e-3, "seed %lu: m = N rel_fro_err %.3g", (unsigned long)seed, e.rel_fro);
        cr_assert(e.max_v <= fx_tol_o(64), "seed %lu: m = N err_O %.3g above the exact kernels' %.2g",
                  (unsigned long)seed, e.max_v, fx_tol_o(64));
        fx_free(&p);
    }
}

/* Independent N(0, 1) q and k (scores of standard deviation 1 at D = 32):
 * segment means of unrelated rows are poor landmarks, yet the error falls
 * with m and is small at m = N. */
Test(nystrom, error_against_softmax_falls_as_landmarks_grow, .timeout = 60)
{
    static const char *const budgets[] = {"landmarks=8", "landmarks=32", "landmarks=128"};
    double mean[3] = {0};
    enum { SEEDS = 5 };
    for (int m = 0; m < 3; m++)
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            attn_args a = ny_args(1, 2, 2, 128, 32, budgets[m], 2);
            fx_problem p;
            fx_make_for(&p, K, &a, seed);
            fill_inputs(&p, 1.0, 0.0, 1.0, 100 + seed);
            mean[m] += vs_oracle(&p).rel_fro / SEEDS;
            fx_free(&p);
        }
    cr_assert(mean[1] < 0.9 * mean[0] && mean[2] < 0.2 * mean[1], "mean rel_fro_err m=8 %.3g, 32 %.3g, 128 %.3g",
              mean[0], mean[1], mean[2]);
}

/* Rows that vary slowly along the sequence (each channel a sum of three
 * random sinusoids of periods N, N/2, N/3): the regime segment means are
 * made for, where each landmark stands for the rows it averages. The error
 * is small from m = 32 on and the pseudo-inverse's steps set its floor. */
static void fill_smooth(const attn_tensor *t, attn_rng *r)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t d = 0; d < t->D; d++) {
                double amp[3], phase[3];
                for (int f = 0; f < 3; f++)
                    amp[f] = attn_rng_normal(r), phase[f] = 2 * M_PI * attn_rng_uniform(r);
                for (int64_t n = 0; n < t->N; n++) {
                    double x = 0;
                    for (int f = 0; f < 3; f++)
                        x += amp[f] * sin(2 * M_PI * (f + 1) * (double)n / (double)t->N + phase[f]);
                    attn_at(t, b, h, n)[d] = (float)x;
                }
            }
}

Test(nystrom, smooth_sequences_are_approximated_closely, .timeout = 30)
{
    static const char *const params[] = {"landmarks=32", "landmarks=32 iters=20"};
    static const double bound[] = {0.05, 0.005};
    for (int c = 0; c < 2; c++) {
        double mean = 0;
        for (uint64_t seed = 1; seed <= 3; seed++) {
            attn_args a = ny_args(1, 2, 2, 512, 32, params[c], 2);
            fx_problem p;
            fx_make_for(&p, K, &a, seed);
            attn_rng r;
            attn_rng_seed(&r, seed);
            fill_smooth(&p.q, &r), fill_smooth(&p.k, &r);
            mean += vs_oracle(&p).rel_fro / 3;
            fx_free(&p);
        }
        cr_assert(mean < bound[c], "%s: mean rel_fro_err %.3g on smooth rows", params[c], mean);
    }
}

/* ---- the conv skip ---- */

/* One tap set to 1: the skip adds V shifted by tau - k/2 (PyTorch's centred
 * padding k/2), zero past either end. */
Test(nystrom, conv_skip_adds_the_centred_shift_of_v)
{
    static const int64_t taps[] = {5, 4};
    for (int c = 0; c < 2; c++)
        for (int64_t tau = 0; tau < taps[c]; tau++) {
            char params[48];
            snprintf(params, sizeof params, "landmarks=8 conv=%ld", (long)taps[c]);
            attn_args a = ny_args(1, 2, 1, 23, 16, params, 2);
            fx_problem p;
            fx_make_for(&p, K, &a, 5);
            for (int64_t h = 0; h < 2; h++)
                for (int64_t i = 0; i < taps[c]; i++)
                    attn_at(&p.w, 0, h, 0)[i] = i == tau ? 1.0f : 0.0f;
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            size_t n = sizeof(float) * (size_t)(p.o.B * p.o.sb);
            float *with = malloc(n);
            memcpy(with, p.o.data, n);
            for (int64_t h = 0; h < 2; h++)
                memset(attn_at(&p.w, 0, h, 0), 0, sizeof(float) * (size_t)taps[c]);
            cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
            for (int64_t h = 0; h < 2; h++)
                for (int64_t t = 0; t < 23; t++) {
                    int64_t src = t + tau - taps[c] / 2;
                    for (int64_t d = 0; d < 16; d++) {
                        float want = src >= 0 && src < 23 ? attn_at(&p.v, 0, 0, src)[d] : 0.0f;
                        float got = with[h * p.o.sh + t * p.o.sn + d] - attn_at(&p.o, 0, h, t)[d];
                        cr_assert(fabsf(got - want) <= 1e-5f, "k=%ld tau=%ld row %ld: skip %g, V shift %g",
                                  (long)taps[c], (long)tau, (long)t, got, want);
                    }
                }
            free(with);
            fx_free(&p);
        }
}

Test(nystrom, init_weights_draw_pytorch_conv_bounds_per_head)
{
    attn_args a = ny_args(1, 3, 3, 4, 16, "conv=35", 1);
    cr_assert_eq(K->input_cols(&a, ATTN_IN_WEIGHTS), 35);
    fx_problem p, q;
    fx_make_for(&p, K, &a, 1), fx_make_for(&q, K, &a, 1);
    cr_assert(memcmp(p.w.data, q.w.data, sizeof(float) * 3 * 35) == 0, "same seed, other taps");
    cr_assert(memcmp(attn_at(&p.w, 0, 0, 0), attn_at(&p.w, 0, 1, 0), sizeof(float) * 35) != 0, "heads share taps");
    double mx = 0, bound = 1 / sqrt(35.0);
    for (int i = 0; i < 3 * 35; i++)
        mx = fmax(mx, fabs(p.w.data[i]));
    cr_assert(mx <= bound && mx >= 0.8 * bound, "max|w| %.3g, bound %.3g", mx, bound);
    attn_args none = ny_args(1, 3, 3, 4, 16, "", 1);
    cr_assert_eq(K->input_cols(&none, ATTN_IN_WEIGHTS), 0, "conv=0 reads no weights");
    fx_free(&p), fx_free(&q);
}

/* ---- structure ---- */

Test(nystrom, segments_are_floor_and_ceil_sized_and_cover_every_row)
{
    for (int64_t n = 1; n <= 70; n++)
        for (int64_t m = 1; m <= n; m++)
            for (int64_t s = 0; s < m; s++) {
                int64_t len = attn_nystrom_seg(s + 1, n, m) - attn_nystrom_seg(s, n, m);
                cr_assert(len == n / m || len == (n + m - 1) / m, "n=%ld m=%ld segment %ld has %ld rows", (long)n,
                          (long)m, (long)s, (long)len);
                cr_assert(attn_nystrom_seg(0, n, m) == 0 && attn_nystrom_seg(m, n, m) == n);
            }
}

/* Swapping two key rows (with their values) inside one segment changes
 * neither K~ nor Bt V, so O is unchanged; across a segment boundary it is not. */
Test(nystrom, keys_swapped_inside_a_segment_leave_the_output)
{
    attn_args a = ny_args(1, 1, 1, 40, 16, "landmarks=8", 1); /* segments of 5 rows */
    for (int across = 0; across < 2; across++) {
        fx_problem p;
        fx_make_for(&p, K, &a, 7);
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        float before[40 * 16], tmp[16];
        memcpy(before, p.o.data, sizeof before);
        int64_t i = 11, j = across ? 15 : 13; /* segment 2 is rows 10..14 */
        const attn_tensor *t[] = {&p.k, &p.v};
        for (int x = 0; x < 2; x++) {
            memcpy(tmp, attn_at(t[x], 0, 0, i), sizeof tmp);
            memcpy(attn_at(t[x], 0, 0, i), attn_at(t[x], 0, 0, j), sizeof tmp);
            memcpy(attn_at(t[x], 0, 0, j), tmp, sizeof tmp);
        }
        cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
        double e = 0;
        for (int64_t r = 0; r < 40 * 16; r++)
            e = fmax(e, fabs(before[r] - p.o.data[r]));
        if (across)
            cr_assert(e > 1e-3, "swap across segments changed O by only %.3g", e);
        else
            cr_assert(e < 1e-5, "swap inside a segment changed O by %.3g", e);
        fx_free(&p);
    }
}

/* With V = I (Dv = N) the reference's output is P = F Z Bt itself: its rows
 * sum to 1 only approximately and have negative entries, so the kernel forms
 * no attention distribution over the keys (ref_view: none). */
Test(nystrom, implied_attention_matrix_has_negative_entries)
{
    enum { N = 48 };
    attn_args a = ny_args(1, 1, 1, N, 16, "landmarks=8", 1);
    a.Dv = N;
    fx_problem p;
    fx_make_for(&p, K, &a, 3);
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < N; d++)
            attn_at(&p.v, 0, 0, n)[d] = n == d ? 1.0f : 0.0f;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < 16; d++)
            attn_at(&p.q, 0, 0, n)[d] *= 4.0f;
    fx_ref_forward(&p);
    double mn = INFINITY, worst_sum = 0;
    for (int64_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t j = 0; j < N; j++)
            s += attn_at64(&p.o64, 0, 0, i)[j], mn = fmin(mn, attn_at64(&p.o64, 0, 0, i)[j]);
        worst_sum = fmax(worst_sum, fabs(s - 1));
    }
    cr_assert(mn < -1e-3, "smallest entry of F Z Bt %.3g", mn);
    cr_assert(worst_sum < 0.5, "row sums far from 1 (%.3g): the iteration did not approach the inverse", worst_sum);
    cr_assert_null(K->ref_view);
    fx_free(&p);
}

/* ---- cost model, refusals ---- */

/* Per head: 8 N m D + 4 m^2 D + 8 iters m^3 (+ 2 N k D), backward twice;
 * the forward counter counts exactly the model; forward + backward count at
 * least the model's 3x forward and at most 4.5x (the backward recomputes
 * the landmark phase, F and the iteration's factors). */
Test(nystrom, cost_model_and_counters)
{
    attn_args a = ny_args(2, 3, 1, 100, 16, "landmarks=12 iters=5 conv=3", 1);
    double N = 100, D = 16, m = 12, per = 8 * N * m * D + 4 * m * m * D + 40 * m * m * m + 2 * N * 3 * D;
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_FWD), 6 * per, 1e-9 * per);
    cr_assert_float_eq(K->flops(&a, ATTN_PASS_BWD), 12 * per, 1e-9 * per);
    double q = 2 * 3 * 100 * 16, kv = 2 * 1 * 100 * 16, w = 3 * 3;
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_FWD), 4 * (2 * q + 2 * kv + 2 * w), 1e-9);
    cr_assert_float_eq(K->bytes(&a, ATTN_PASS_BWD), 4 * (3 * q + 4 * kv + 2 * 2 * w), 1e-9);
    cr_assert_eq(K->state_bytes(&a), 0);
    attn_args small = ny_args(1, 1, 1, 5, 16, "landmarks=12", 1); /* m clamps to N */
    double n5 = 5, m5 = 5, per5 = 8 * n5 * m5 * 16 + 4 * m5 * m5 * 16 + 48 * m5 * m5 * m5;
    cr_assert_float_eq(K->flops(&small, ATTN_PASS_FWD), per5, 1e-9 * per5);
    fx_problem p;
    fx_make_for(&p, K, &a, 5);
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 0), 0, "%s", attn_last_error());
    cr_assert_float_eq((double)attn_counter_get(ATTN_CNT_FLOPS), 6 * per, 1e-6 * per);
    cr_assert(attn_counter_get(ATTN_CNT_BYTES_READ) >= 4 * (q + kv));
    cr_assert_eq(attn_counter_get(ATTN_CNT_EXPS), 6 * (100 * 12 + 12 * 12 + 12 * 100));
    attn_counters_reset();
    cr_assert_eq(fx_run(K, &p, 1), 0, "%s", attn_last_error());
    double got = (double)attn_counter_get(ATTN_CNT_FLOPS);
    cr_assert(got >= 18 * per && got <= 27 * per, "fwd + bwd counted %.0f, model fwd %.0f", got, 6 * per);
    fx_free(&p);
}

Test(nystrom, refuses_causal_cross_lengths_bad_params_and_an_unplanned_backward)
{
    attn_ctx ctx;
    attn_args c = ny_args(1, 1, 1, 8, 16, "", 1);
    attn_mask_parse("causal", &c.mask);
    cr_assert_eq(attn_ctx_create(K, &c, &ctx), ATTN_EUNSUPPORTED);
    attn_args x = fx_args(1, 1, 1, 8, 12, 16, "full", 1);
    cr_assert_eq(attn_ctx_create(K, &x, &ctx), ATTN_EUNSUPPORTED);
    attn_args f = ny_args(1, 1, 1, 8, 16, "", 1); /* a context sized for the forward only */
    fx_problem p;
    fx_make_for(&p, K, &f, 1);
    cr_assert_eq(attn_ctx_create(K, &f, &ctx), 0, "%s", attn_last_error());
    attn_io io = problem_io(&p);
    attn_grads g = problem_grads(&p);
    cr_assert_eq(K->backward(&ctx, &io, &g), ATTN_EINVAL);
    cr_assert(strstr(attn_last_error(), "'nystrom'") && strstr(attn_last_error(), "args.backward"), "%s",
              attn_last_error());
    attn_ctx_destroy(&ctx);
    fx_free(&p);
    static const char *const bad[] = {"landmarks=0", "iters=-1", "conv=2000", "tile=0", "heads=2"};
    for (int i = 0; i < 5; i++) {
        attn_args b = ny_args(1, 1, 1, 8, 16, bad[i], 1);
        cr_assert_eq(attn_ctx_create(K, &b, &ctx), ATTN_EINVAL, "%s accepted", bad[i]);
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        cr_assert(strstr(attn_last_error(), key) != NULL, "%s: %s", bad[i], attn_last_error());
    }
}
