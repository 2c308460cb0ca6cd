/* Selection scoring of `recycled` (recycled_internal.h). The fp32 forward
 * and the double reference both call these functions on the same fp32
 * inputs (the reference narrows its widened inputs back, exactly), so a
 * full step keeps the same top-K keys in both: a selection flip between
 * them would be a difference of the method, not of the arithmetic. The
 * functions are not inlined into their callers, so there is one compiled
 * instance and one operation order. */
#include "recycled_internal.h"

#include <math.h>

#define RC_LANES 8 /* partial sums per dot product: d mod 8 */
#define RC_HEADS 4 /* heads scored together, so their sums are independent chains */

/* out[g] = sc * <qd_g, k> for the nh <= RC_HEADS heads at qd (rows of D
 * doubles): lane u sums the products of d = u mod 8 in ascending d, then
 * the lanes are added pairwise. */
static void rc_dots(const double *qd, int64_t nh, const float *k, int64_t D, double sc, double *out)
{
    double acc[RC_HEADS][RC_LANES] = {{0}};
    int64_t d = 0;
    for (; d + RC_LANES <= D; d += RC_LANES)
        for (int64_t g = 0; g < nh; g++)
            for (int u = 0; u < RC_LANES; u++)
                acc[g][u] += qd[g * D + d + u] * (double)k[d + u];
    for (; d < D; d++)
        for (int64_t g = 0; g < nh; g++)
            acc[g][d % RC_LANES] += qd[g * D + d] * (double)k[d];
    for (int64_t g = 0; g < nh; g++) {
        const double *a = acc[g];
        out[g] = sc * (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])));
    }
}

__attribute__((noinline)) void rc_group_weights(const float *q, int64_t qsh, int64_t G, const float *k, int64_t ksn,
                                                int64_t n, int64_t D, double sc, double *qd, double *e, double *m,
                                                double *l, double *w)
{
    for (int64_t g = 0; g < G; g++)
        for (int64_t d = 0; d < D; d++)
            qd[g * D + d] = (double)q[g * qsh + d];
    double s[RC_HEADS];
    for (int64_t j = 0; j < n; j++)
        for (int64_t g0 = 0; g0 < G; g0 += RC_HEADS) {
            int64_t nh = G - g0 < RC_HEADS ? G - g0 : RC_HEADS;
            rc_dots(qd + g0 * D, nh, k + j * ksn, D, sc, s);
            for (int64_t g = 0; g < nh; g++)
                e[(g0 + g) * n + j] = s[g];
        }
    for (int64_t g = 0; g < G; g++) {
        double *row = e + g * n, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < n; j++) {
            row[j] = mx == -INFINITY ? 0.0 : exp(row[j] - mx);
            sum += row[j];
        }
        m[g] = mx, l[g] = sum;
    }
    for (int64_t j = 0; j < n; j++) {
        double x = 0;
        for (int64_t g = 0; g < G; g++)
            x += l[g] > 0 ? e[g * n + j] / l[g] : 0.0;
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
