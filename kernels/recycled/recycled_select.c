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

/* out[g] = sc * <q_g, k> for the nh <= RC_HEADS heads at q (head stride
 * qsh): lane u sums the products of d = u mod 16 in ascending d (AVX2: two
 * vectors of 8 lanes per head, FMA where the build has it), then the lanes
 * are added pairwise (u + 8, u + 4, u + 2, u + 1). */
static void rc_dots(const float *q, int64_t qsh, int64_t nh, const float *k, int64_t D, float sc, float *out)
{
    float acc[RC_HEADS][RC_LANES] = {{0}};
    int64_t d = 0;
#ifdef __AVX2__
    if (nh == RC_HEADS) { /* the common GQA group: eight independent chains */
        __m256 v[RC_HEADS][2];
        for (int g = 0; g < RC_HEADS; g++)
            v[g][0] = v[g][1] = _mm256_setzero_ps();
        for (; d + RC_LANES <= D; d += RC_LANES) {
            __m256 k0 = _mm256_loadu_ps(k + d), k1 = _mm256_loadu_ps(k + d + 8);
            for (int g = 0; g < RC_HEADS; g++) {
#ifdef __FMA__
                v[g][0] = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * qsh + d), k0, v[g][0]);
                v[g][1] = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * qsh + d + 8), k1, v[g][1]);
#else
                v[g][0] = _mm256_add_ps(v[g][0], _mm256_mul_ps(_mm256_loadu_ps(q + g * qsh + d), k0));
                v[g][1] = _mm256_add_ps(v[g][1], _mm256_mul_ps(_mm256_loadu_ps(q + g * qsh + d + 8), k1));
#endif
            }
        }
        for (int g = 0; g < RC_HEADS; g++)
            _mm256_storeu_ps(acc[g], v[g][0]), _mm256_storeu_ps(acc[g] + 8, v[g][1]);
    }
#endif
    for (; d + RC_LANES <= D; d += RC_LANES)
        for (int64_t g = 0; g < nh; g++)
            for (int u = 0; u < RC_LANES; u++)
                acc[g][u] += q[g * qsh + d + u] * k[d + u];
    for (; d < D; d++)
        for (int64_t g = 0; g < nh; g++)
            acc[g][d % RC_LANES] += q[g * qsh + d] * k[d];
    for (int64_t g = 0; g < nh; g++) {
        float *a = acc[g];
        for (int half = RC_LANES / 2; half > 0; half /= 2)
            for (int u = 0; u < half; u++)
                a[u] += a[u + half];
        out[g] = sc * a[0];
    }
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
