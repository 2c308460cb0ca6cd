/* The Muon step of `atlas` (opt=muon; docs/kernels/atlas.md): the momentum
 * is replaced by NS5(S), five Newton-Schulz iterations towards its
 * orthogonal polar factor, before the step W_t = alpha W_{t-1} - eta NS5(S_t):
 *   X_0 = S / (|S|_F + 1e-7)   (0 when |S|_F < 1e-12)
 *   X_{k+1} = a X_k + X_k (b A_k + c A_k^2),  A_k = X_k^T X_k
 * with (a, b, c) = (3.4445, -4.7750, 2.0315). The memory is kept transposed
 * (F x Dv), and NS5 commutes with the transpose (X (X^T X) = (X X^T) X), so
 * it runs on the stored layout with Dv x Dv products. Its backward replays the
 * iterations from the stored X_k:
 *   dX_k = a G + G B_k + X_k (dA + dA^T),  dA = b dB + c (dB A_k + A_k dB),  dB = X_k^T G
 * (G = dX_{k+1}, B_k = b A_k + c A_k^2 symmetric), then the normalisation. */
#include "atlas_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static const float NS_A = 3.4445f, NS_B = -4.7750f, NS_C = 2.0315f;

size_t atlas_ns5_floats(const atlas_plan *pl)
{
    size_t FDv = (size_t)(pl->F * pl->Dv), DD = (size_t)(pl->Dv * pl->Dv);
    return (ATLAS_NS_STEPS + 1) * mem_round(FDv) + 2 * mem_round(FDv) + 4 * mem_round(DD);
}

/* B = b A + c A^2 of X (F x Dv); A into A, B into B; A2 scratch. */
static void ns_poly(const atlas_plan *pl, const float *X, float *A, float *A2, float *B)
{
    int F = (int)pl->F, Dv = (int)pl->Dv;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Dv, Dv, F, 1.0f, X, Dv, X, Dv, 0.0f, A, Dv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Dv, Dv, Dv, 1.0f, A, Dv, A, Dv, 0.0f, A2, Dv);
    for (int i = 0; i < Dv * Dv; i++)
        B[i] = NS_B * A[i] + NS_C * A2[i];
}

/* Y = NS5(S) (F x Dv each); ws holds atlas_ns5_floats: it keeps X_0 .. X_5 first (X_5 = Y's copy). */
void atlas_ns5(const atlas_plan *pl, const float *S, float *Y, float *ws)
{
    int F = (int)pl->F, Dv = (int)pl->Dv;
    size_t FDv = (size_t)(F * Dv), st = mem_round(FDv);
    float *X = ws, *A = ws + (ATLAS_NS_STEPS + 3) * st, *A2 = A + mem_round((size_t)(Dv * Dv)),
          *B = A2 + mem_round((size_t)(Dv * Dv));
    double n2 = 0;
    for (size_t x = 0; x < FDv; x++)
        n2 += (double)S[x] * S[x];
    double n = sqrt(n2);
    float inv = n < ATLAS_NS_TINY ? 0.0f : (float)(1.0 / (n + ATLAS_NS_EPS));
    for (size_t x = 0; x < FDv; x++)
        X[x] = S[x] * inv;
    for (int k = 0; k < ATLAS_NS_STEPS; k++) {
        const float *Xk = X + (size_t)k * st;
        float *Xn = X + (size_t)(k + 1) * st;
        ns_poly(pl, Xk, A, A2, B);
        for (size_t x = 0; x < FDv; x++)
            Xn[x] = NS_A * Xk[x];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, F, Dv, Dv, 1.0f, Xk, Dv, B, Dv, 1.0f, Xn, Dv);
    }
    memcpy(Y, X + (size_t)ATLAS_NS_STEPS * st, sizeof(float) * FDv);
}

/* dS += the gradient through Y = NS5(S) from dY (overwritten); ws as left by atlas_ns5(S). */
void atlas_ns5_bwd(const atlas_plan *pl, const float *S, float *dY, float *dS, float *ws)
{
    int F = (int)pl->F, Dv = (int)pl->Dv;
    size_t FDv = (size_t)(F * Dv), st = mem_round(FDv), DD = (size_t)(Dv * Dv);
    float *X = ws, *G = dY, *dX = ws + (ATLAS_NS_STEPS + 1) * st, *A = ws + (ATLAS_NS_STEPS + 3) * st;
    float *A2 = A + mem_round(DD), *B = A2 + mem_round(DD), *dB = B + mem_round(DD);
    for (int k = ATLAS_NS_STEPS - 1; k >= 0; k--) {
        const float *Xk = X + (size_t)k * st;
        ns_poly(pl, Xk, A, A2, B);
        // dX = a G + G B;  dB = X^T G
        for (size_t x = 0; x < FDv; x++)
            dX[x] = NS_A * G[x];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, F, Dv, Dv, 1.0f, G, Dv, B, Dv, 1.0f, dX, Dv);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Dv, Dv, F, 1.0f, Xk, Dv, G, Dv, 0.0f, dB, Dv);
        // dA = b dB + c (dB A + A dB), symmetrised: A2 <- dA + dA^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Dv, Dv, Dv, NS_C, dB, Dv, A, Dv, 0.0f, A2, Dv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Dv, Dv, Dv, NS_C, A, Dv, dB, Dv, 1.0f, A2, Dv);
        for (int i = 0; i < Dv; i++)
            for (int j = 0; j < Dv; j++)
                B[i * Dv + j] = NS_B * (dB[i * Dv + j] + dB[j * Dv + i]) + A2[i * Dv + j] + A2[j * Dv + i];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, F, Dv, Dv, 1.0f, Xk, Dv, B, Dv, 1.0f, dX, Dv);
        memcpy(G, dX, sizeof(float) * FDv);
    }
    // X_0 = S / (n + eps):  dS = G / (n + eps) - S <S, G> / (n (n + eps)^2)
    double n2 = 0, sg = 0;
    for (size_t x = 0; x < FDv; x++)
        n2 += (double)S[x] * S[x], sg += (double)S[x] * G[x];
    double n = sqrt(n2);
    if (n < ATLAS_NS_TINY)
        return;
    double r = 1.0 / (n + ATLAS_NS_EPS);
    float c0 = (float)r, c1 = (float)(sg * r * r / n);
    for (size_t x = 0; x < FDv; x++)
        dS[x] += c0 * G[x] - c1 * S[x];
}

/* The double twin for the reference, on a Dv x F matrix S (row-major) in plain loops; ws: 3 F Dv + 3 Dv^2. */
void atlas_ns5_64(int64_t Dv, int64_t F, const double *S, double *Y, double *ws)
{
    int64_t n = Dv * F;
    double *X = ws, *T = ws + n, *A = ws + 2 * n, *A2 = A + Dv * Dv, *B = A2 + Dv * Dv, s2 = 0;
    (void)T;
    for (int64_t x = 0; x < n; x++)
        s2 += S[x] * S[x];
    double nrm = sqrt(s2), inv = nrm < ATLAS_NS_TINY ? 0.0 : 1.0 / (nrm + ATLAS_NS_EPS);
    for (int64_t x = 0; x < n; x++)
        X[x] = S[x] * inv;
    for (int k = 0; k < ATLAS_NS_STEPS; k++) {
        /* on the Dv x F memory: X <- a X + (b A + c A^2) X, A = X X^T */
        for (int64_t i = 0; i < Dv; i++)
            for (int64_t j = 0; j < Dv; j++) {
                double s = 0;
                for (int64_t f = 0; f < F; f++)
                    s += X[i * F + f] * X[j * F + f];
                A[i * Dv + j] = s;
            }
        for (int64_t i = 0; i < Dv; i++)
            for (int64_t j = 0; j < Dv; j++) {
                double s = 0;
                for (int64_t l = 0; l < Dv; l++)
                    s += A[i * Dv + l] * A[l * Dv + j];
                B[i * Dv + j] = (double)NS_B * A[i * Dv + j] + (double)NS_C * s;
            }
        for (int64_t i = 0; i < Dv; i++)
            for (int64_t f = 0; f < F; f++) {
                double s = (double)NS_A * X[i * F + f];
                for (int64_t l = 0; l < Dv; l++)
                    s += B[i * Dv + l] * X[l * F + f];
                Y[i * F + f] = s;
            }
        memcpy(X, Y, sizeof(double) * (size_t)n);
    }
}
