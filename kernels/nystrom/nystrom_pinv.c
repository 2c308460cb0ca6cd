/* The Nyströmformer's iterative pseudo-inverse (Xiong et al. 2021, eq. 8,
 * after Razavi et al. 2014): Z_0 = A^T / max_j sum_i A_ij and
 *
 *   P = A Z,  Z <- 1/4 Z (13 I - P (15 I - P (7 I - P)))
 *
 * in fp32 with cblas_sgemm (four m x m products per iteration), its reverse
 * mode, and the same iteration in double with plain loops for the reference.
 * A is row-stochastic (a softmax), so its largest row sum is 1 and
 * 1 / (max column sum) = 1 / (||A||_1 ||A||_inf) makes every singular value
 * of A Z_0 lie in (0, 1], where the iteration converges to A^+ (the
 * paper's "exact" initialisation: the reference code's per-head variant). */
#include "nystrom_internal.h"

#include <string.h>

/* Index of the largest column sum of A (m x m), the first on ties, and the sum. */
static int64_t max_column(const float *A, int64_t m, float *sum)
{
    int64_t best = 0;
    double top = -1;
    for (int64_t j = 0; j < m; j++) {
        double s = 0;
        for (int64_t i = 0; i < m; i++)
            s += A[i * m + j];
        if (s > top)
            top = s, best = j;
    }
    *sum = (float)top;
    return best;
}

/* T = c I - U (T may alias U). */
static void shifted_identity(float c, const float *U, int64_t m, float *T)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            T[i * m + j] = (i == j ? c : 0.0f) - U[i * m + j];
}

/* The three factors of one step from P = A Z: T1 = 7I - P, T2 = 15I - P T1,
 * T3 = 13I - P T2. */
static void step_factors(const float *P, int64_t m, float *T1, float *T2, float *T3)
{
    shifted_identity(7.0f, P, m, T1);
    ny_gemm(0, 0, m, m, m, 1.0f, P, m, T1, m, 0.0f, T2, m);
    shifted_identity(15.0f, T2, m, T2);
    ny_gemm(0, 0, m, m, m, 1.0f, P, m, T2, m, 0.0f, T3, m);
    shifted_identity(13.0f, T3, m, T3);
}

float *attn_nystrom_pinv(const float *A, int64_t m, int iters, int keep, float *zs, float *ps, float *tmp)
{
    int64_t m2 = m * m;
    float c;
    max_column(A, m, &c);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            zs[i * m + j] = A[j * m + i] / c;
    float *Z = zs;
    for (int k = 0; k < iters; k++) {
        float *P = keep ? ps + k * m2 : ps, *Zn = keep ? zs + (k + 1) * m2 : zs + ((k + 1) % 2) * m2;
        float *T = tmp, *U = tmp + m2;
        ny_gemm(0, 0, m, m, m, 1.0f, A, m, Z, m, 0.0f, P, m);
        /* T2 and T3 of step_factors without a third buffer */
        shifted_identity(7.0f, P, m, T);
        ny_gemm(0, 0, m, m, m, 1.0f, P, m, T, m, 0.0f, U, m);
        shifted_identity(15.0f, U, m, T);
        ny_gemm(0, 0, m, m, m, 1.0f, P, m, T, m, 0.0f, U, m);
        shifted_identity(13.0f, U, m, U);
        ny_gemm(0, 0, m, m, m, 0.25f, Z, m, U, m, 0.0f, Zn, m);
        Z = Zn;
    }
    return Z;
}

/* One step backward: Z' = 1/4 Z T3 with T3 = 13I - P T2, T2 = 15I - P T1,
 * T1 = 7I - P, P = A Z. From dZ' (in dZ, replaced by dL/dZ) adds into dA. */
static void step_backward(const float *A, const float *Z, const float *P, int64_t m, float *dZ, float *dA, float *t)
{
    int64_t m2 = m * m;
    float *T1 = t, *T2 = t + m2, *T3 = t + 2 * m2, *G3 = t + 3 * m2, *G1 = t + 4 * m2, *dP = t + 5 * m2,
          *dZk = t + 6 * m2;
    step_factors(P, m, T1, T2, T3);
    ny_gemm(0, 1, m, m, m, 0.25f, dZ, m, T3, m, 0.0f, dZk, m);   /* through Z in 1/4 Z T3 */
    ny_gemm(1, 0, m, m, m, 0.25f, Z, m, dZ, m, 0.0f, G3, m);     /* dT3 */
    ny_gemm(0, 1, m, m, m, -1.0f, G3, m, T2, m, 0.0f, dP, m);    /* T3 = 13I - P T2 */
    ny_gemm(1, 0, m, m, m, 1.0f, P, m, G3, m, 0.0f, G1, m);      /* -dT2 = dL/d(P T1) */
    ny_gemm(0, 1, m, m, m, 1.0f, G1, m, T1, m, 1.0f, dP, m);     /* T2 = 15I - P T1 */
    ny_gemm(1, 0, m, m, m, -1.0f, P, m, G1, m, 1.0f, dP, m);     /* T1 = 7I - P */
    ny_gemm(0, 1, m, m, m, 1.0f, dP, m, Z, m, 1.0f, dA, m);      /* P = A Z */
    ny_gemm(1, 0, m, m, m, 1.0f, A, m, dP, m, 1.0f, dZk, m);
    memcpy(dZ, dZk, sizeof(float) * (size_t)m2);
}

void attn_nystrom_pinv_backward(const float *A, int64_t m, int iters, const float *zs, const float *ps, float *dZ,
                                float *dA, float *tmp)
{
    int64_t m2 = m * m;
    for (int k = iters - 1; k >= 0; k--)
        step_backward(A, zs + k * m2, ps + k * m2, m, dZ, dA, tmp);
    /* Z_0 = A^T / c, c the largest column sum (column j*): dA += dZ^T / c and
     * dc = -<dZ, Z_0> / c reaches every entry of column j* */
    float c;
    int64_t js = max_column(A, m, &c);
    double dc = 0;
    for (int64_t i = 0; i < m2; i++)
        dc -= (double)dZ[i] * zs[i];
    dc /= c;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            dA[i * m + j] += dZ[j * m + i] / c + (j == js ? (float)dc : 0.0f);
}

/* ---- double, plain loops ---- */

/* C = alpha X Y (m x m). */
static void matmul64(const double *X, const double *Y, int64_t m, double alpha, double *C)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0;
            for (int64_t l = 0; l < m; l++)
                s += X[i * m + l] * Y[l * m + j];
            C[i * m + j] = alpha * s;
        }
}

static void shifted_identity64(double c, const double *U, int64_t m, double *T)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            T[i * m + j] = (i == j ? c : 0.0) - U[i * m + j];
}

void attn_nystrom_pinv64(const double *A, int64_t m, int iters, double *Z, double *tmp)
{
    int64_t m2 = m * m;
    double c = -1;
    for (int64_t j = 0; j < m; j++) {
        double s = 0;
        for (int64_t i = 0; i < m; i++)
            s += A[i * m + j];
        c = s > c ? s : c;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            Z[i * m + j] = A[j * m + i] / c;
    double *P = tmp, *T = tmp + m2, *U = tmp + 2 * m2;
    for (int k = 0; k < iters; k++) {
        matmul64(A, Z, m, 1.0, P);
        shifted_identity64(7.0, P, m, T);
        matmul64(P, T, m, 1.0, U);
        shifted_identity64(15.0, U, m, T);
        matmul64(P, T, m, 1.0, U);
        shifted_identity64(13.0, U, m, T);
        matmul64(Z, T, m, 0.25, U);
        memcpy(Z, U, sizeof(double) * (size_t)m2);
    }
}
