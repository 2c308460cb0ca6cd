/* Selection scoring of `recycled` (recycled_internal.h). The fp32 forward
 * and the double reference both call these functions on the same fp32
 * inputs (the reference narrows its widened inputs back, exactly), so a
 * full step keeps the same top-K keys in both: a selection flip between
 * them would be a difference of the method, not of the arithmetic. The
 * functions are not inlined into their callers, so there is one compiled
 * instance and one operation order. */
#include "recycled_internal.h"

#include "kernels/core/vexp.h"

#include <math.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define RC_LANES 16 /* partial sums per dot product: d mod 16 */
#define RC_HEADS 4  /* heads scored together, so their sums are independent chains */
/* K rows are prefetched ~4 KiB ahead of the one being scored: the full step
 * streams the whole cache once, and this VM's hardware prefetcher alone
 * left it well below the rate `decode` reads at */
#define RC_AHEAD_BYTES 4096

/* The sum of the 16 lanes of a: pairwise, a[u] += a[u + half] for half =
 * 8, 4, 2, 1 (the order both paths below use). */
static float rc_lane_sum(float a[RC_LANES])
{
    for (int half = RC_LANES / 2; half > 0; half /= 2)
        for (int u = 0; u < half; u++)
            a[u] += a[u + half];
    return a[0];
}

#ifdef __AVX2__
/* rc_lane_sum of the lanes v0 (d mod 16 < 8) and v1 (the others), in registers. */
static inline float rc_lane_sum8x2(__m256 v0, __m256 v1)
{
    __m256 a = _mm256_add_ps(v0, v1);                                                      /* u, u + 8 */
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));         /* u, u + 4 */
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));                                         /* u, u + 2 */
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));                               /* 0, 1 */
}

static inline __m256 rc_madd(__m256 x, __m256 y, __m256 acc)
{
#ifdef __FMA__
    return _mm256_fmadd_ps(x, y, acc);
#else
    return _mm256_add_ps(acc, _mm256_mul_ps(x, y));
#endif
}

/* The four heads of a full group, D a multiple of 16: eight accumulators
 * in registers, eight independent chains. */
static void rc_dots4(const float *q, int64_t qsh, const float *k, int64_t D, float sc, float *out)
{
    const float *q0 = q, *q1 = q + qsh, *q2 = q + 2 * qsh, *q3 = q + 3 * qsh;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
    for (int64_t d = 0; d < D; d += RC_LANES) {
        __m256 k0 = _mm256_loadu_ps(k + d), k1 = _mm256_loadu_ps(k + d + 8);
        a0 = rc_madd(_mm256_loadu_ps(q0 + d), k0, a0), a1 = rc_madd(_mm256_loadu_ps(q0 + d + 8), k1, a1);
        b0 = rc_madd(_mm256_loadu_ps(q1 + d), k0, b0), b1 = rc_madd(_mm256_loadu_ps(q1 + d + 8), k1, b1);
        c0 = rc_madd(_mm256_loadu_ps(q2 + d), k0, c0), c1 = rc_madd(_mm256_loadu_ps(q2 + d + 8), k1, c1);
        e0 = rc_madd(_mm256_loadu_ps(q3 + d), k0, e0), e1 = rc_madd(_mm256_loadu_ps(q3 + d + 8), k1, e1);
    }
    out[0] = sc * rc_lane_sum8x2(a0, a1), out[1] = sc * rc_lane_sum8x2(b0, b1);
    out[2] = sc * rc_lane_sum8x2(c0, c1), out[3] = sc * rc_lane_sum8x2(e0, e1);
}
#endif

/* out[g] = sc * <q_g, k> for the nh <= RC_HEADS heads at q (head stride
 * qsh): lane u sums the products of d = u mod 16 in ascending d, then
 * rc_lane_sum. With AVX2 a group of four heads and D a multiple of 16 takes
 * rc_dots4 (FMA where the build has it); which path runs depends on G and D
 * only, so the kernel and the reference always take the same one. */
static void rc_dots(const float *q, int64_t qsh, int64_t nh, const float *k, int64_t D, float sc, float *out)
{
#ifdef __AVX2__
    if (nh == RC_HEADS && D % RC_LANES == 0) {
        rc_dots4(q, qsh, k, D, sc, out);
        return;
    }
#endif
    float acc[RC_HEADS][RC_LANES] = {{0}};
    for (int64_t d = 0; d < D; d++)
        for (int64_t g = 0; g < nh; g++)
            acc[g][d % RC_LANES] += q[g * qsh + d] * k[d];
    for (int64_t g = 0; g < nh; g++)
        out[g] = sc * rc_lane_sum(acc[g]);
}

__attribute__((noinline)) void rc_group_weights(const float *q, int64_t qsh, int64_t G, const float *k, int64_t ksn,
                                                int64_t n, int64_t D, float sc, float *e, float *m, double *l,
                                                double *w)
{
    float s[RC_HEADS];
    int64_t ahead = RC_AHEAD_BYTES / (4 * D) + 1;
    for (int64_t j = 0; j < n; j++) {
        for (int64_t d = 0; j + ahead < n && d < D; d += 16) /* one 64-byte line per 16 floats */
            __builtin_prefetch(k + (j + ahead) * ksn + d, 0, 3);
        for (int64_t g0 = 0; g0 < G; g0 += RC_HEADS) {
            int64_t nh = G - g0 < RC_HEADS ? G - g0 : RC_HEADS;
            rc_dots(q + g0 * qsh, qsh, nh, k + j * ksn, D, sc, s);
            for (int64_t g = 0; g < nh; g++)
                e[(g0 + g) * n + j] = s[g];
        }
    }
    for (int64_t g = 0; g < G; g++) {
        float *row = e + g * n, mx = -INFINITY;
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            mx = row[j] > mx ? row[j] : mx;
        if (mx == -INFINITY)
            for (int64_t j = 0; j < n; j++)
                row[j] = 0.0f;
        else {
            for (int64_t j = 0; j < n; j++)
                row[j] -= mx;
            attn_vexp(row, row, n);
        }
        for (int64_t j = 0; j < n; j++)
            sum += row[j];
        m[g] = mx, l[g] = sum;
    }
    for (int64_t j = 0; j < n; j++) {
        double x = 0;
        for (int64_t g = 0; g < G; g++)
            x += l[g] > 0 ? (double)e[g * n + j] / l[g] : 0.0;
        w[j] = x;
    }
}

__attribute__((noinline)) double rc_group_cos(const float *q, int64_t qsh, const float *qf, int64_t qfsh, int64_t G,
                                              int64_t D)
{
    double dot = 0, a2 = 0, b2 = 0;
    for (int64_t g = 0; g < G; g++)
        for (int64_t d = 0; d < D; d++) {
            double x = q[g * qsh + d], y = qf[g * qfsh + d];
            dot += x * y, a2 += x * x, b2 += y * y;
        }
    return a2 > 0 && b2 > 0 ? dot / (sqrt(a2) * sqrt(b2)) : 1.0; /* a zero query: no drift to measure */
}
