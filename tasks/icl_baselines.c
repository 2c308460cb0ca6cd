/* The closed-form in-context regression baselines (tasks/icl.h), in double.
 * Least squares and ridge solve whichever normal system is smaller: the
 * k x k Gram system (X X' + lambda I) a = y, w = X'a below d examples (with
 * lambda = 0 its solution is the minimum-norm least-squares one, which the
 * d x d system cannot give: X'X is singular there), else the d x d system
 * (X'X + lambda I) w = X'y. Both are solved by Cholesky: at most d or k of a
 * prompt's few dozen points, where a library call costs more than the loop. */
#include "icl.h"

#include <math.h>
#include <string.h>

const char *const icl_baseline_names[ICL_BASELINES] = {"baseline_zero", "baseline_lstsq", "baseline_ridge",
                                                       "baseline_avg", "baseline_knn3"};

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Solves A z = b in place (z over b) for a symmetric positive definite A
 * (m x m, overwritten by its Cholesky factor L, lower triangle). */
static int cholesky_solve(double *A, double *b, int64_t m)
{
    for (int64_t j = 0; j < m; j++) {
        double p = A[j * m + j] - dot(A + j * m, A + j * m, j);
        if (!(p > 0))
            return attn_fail(ATTN_EINVAL, "icl baseline: expected a positive definite normal matrix, found pivot %g "
                             "at %lld of %lld (repeated points without ridge?)", p, (long long)j, (long long)m);
        A[j * m + j] = sqrt(p);
        for (int64_t i = j + 1; i < m; i++)
            A[i * m + j] = (A[i * m + j] - dot(A + i * m, A + j * m, j)) / A[j * m + j];
    }
    for (int64_t i = 0; i < m; i++) /* L u = b */
        b[i] = (b[i] - dot(A + i * m, b, i)) / A[i * m + i];
    for (int64_t i = m - 1; i >= 0; i--) { /* L' z = u */
        double s = b[i];
        for (int64_t r = i + 1; r < m; r++)
            s -= A[r * m + i] * b[r];
        b[i] = s / A[i * m + i];
    }
    return 0;
}

/* xq . w for w = (X'X + lambda I)^+ X'y, through the smaller system. */
static int ridge_predict(const double *X, const double *y, int64_t k, int64_t d, double lambda, const double *xq,
                         double *scratch, double *pred)
{
    int gram = k < d;
    int64_t m = gram ? k : d;
    double *A = scratch, *b = scratch + m * m;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            if (gram)
                s = dot(X + i * d, X + j * d, d);
            else
                for (int64_t r = 0; r < k; r++)
                    s += X[r * d + i] * X[r * d + j];
            A[i * m + j] = A[j * m + i] = s + (i == j ? lambda : 0);
        }
    for (int64_t i = 0; i < m; i++) {
        b[i] = 0;
        if (gram)
            b[i] = y[i];
        else
            for (int64_t r = 0; r < k; r++)
                b[i] += X[r * d + i] * y[r];
    }
    int rc = cholesky_solve(A, b, m);
    if (rc)
        return rc;
    *pred = 0; /* gram: xq . X'a = sum_j a_j (x_j . xq) */
    for (int64_t i = 0; i < m; i++)
        *pred += b[i] * (gram ? dot(X + i * d, xq, d) : xq[i]);
    return 0;
}

static double avg_predict(const double *X, const double *y, int64_t k, int64_t d, const double *xq)
{
    double s = 0;
    for (int64_t j = 0; j < k; j++)
        s += y[j] * dot(X + j * d, xq, d);
    return s / (double)k;
}

/* The mean y of the (up to) 3 points nearest xq; ties go to the earlier point. */
static double knn3_predict(const double *X, const double *y, int64_t k, int64_t d, const double *xq)
{
    double best[3] = {INFINITY, INFINITY, INFINITY}, val[3] = {0, 0, 0};
    for (int64_t j = 0; j < k; j++) {
        double dist = 0;
        for (int64_t a = 0; a < d; a++)
            dist += (X[j * d + a] - xq[a]) * (X[j * d + a] - xq[a]);
        for (int s = 0; s < 3; s++)
            if (dist < best[s]) { /* insert at s, shifting the farther ones down */
                for (int t = 2; t > s; t--)
                    best[t] = best[t - 1], val[t] = val[t - 1];
                best[s] = dist, val[s] = y[j];
                break;
            }
    }
    int64_t used = k < 3 ? k : 3;
    double s = 0;
    for (int64_t t = 0; t < used; t++)
        s += val[t];
    return s / (double)used;
}

int icl_baseline_predict(icl_baseline b, const double *X, const double *y, int64_t k, int64_t d, double lambda,
                         const double *xq, double *scratch, double *pred)
{
    *pred = 0;
    if (k == 0 || b == ICL_ZERO)
        return 0;
    switch (b) {
    case ICL_LSTSQ:
        return ridge_predict(X, y, k, d, 0, xq, scratch, pred);
    case ICL_RIDGE:
        return ridge_predict(X, y, k, d, lambda, xq, scratch, pred);
    case ICL_AVG:
        *pred = avg_predict(X, y, k, d, xq);
        return 0;
    case ICL_KNN3:
        *pred = knn3_predict(X, y, k, d, xq);
        return 0;
    default:
        return attn_fail(ATTN_EINVAL, "icl baseline: expected one of icl.h's baselines, found %d", (int)b);
    }
}
