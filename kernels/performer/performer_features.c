/* The random features of `performer` (docs/kernels/performer.md): i.i.d.
 * Gaussian rows, or orthogonal random features (Choromanski et al. 2020,
 * section 2.4): D-row blocks whose directions are the Q factor of the QR of a
 * D x D Gaussian matrix, each row rescaled by the norm of a fresh Gaussian
 * D-vector so that every row is marginally N(0, I) (the estimator stays
 * unbiased) while rows of a block are exactly orthogonal. The QR is LAPACK's
 * (dgeqrf/dorgqr, exported by the linked OpenBLAS). */
#include "performer.h"

#include "common/attn_error.h"
#include "common/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (Fortran interface; OpenBLAS ships no LAPACKE header here). */
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
                    const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
                    double *work, const int *lwork, int *info);

/* Stream tags: directions (Gaussian rows or blocks) and chi_D norms of a
 * draw are independent families of (seed, tag, index) streams. */
enum { PF_TAG_DIRECTIONS = 0, PF_TAG_NORMS = 1 };

static uint64_t tag_of(uint64_t draw, int kind) { return draw * 2 + (uint64_t)kind; }

static void gauss_fill(attn_rng *r, double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = attn_rng_normal(r);
}

/* Rows [r0, r0 + n) of W from block `block`: the first n columns of Q of a
 * D x D Gaussian G = QR, signs fixed so diag(R) > 0 (Q is then Haar
 * distributed; LAPACK's Householder signs alone would tie Q to G's signs). */
static int orthogonal_block(double *g, double *tau, double *sign, double *work, int lwork, int D, uint64_t seed,
                            uint64_t draw, int64_t block, int64_t n, double *rows)
{
    attn_rng r;
    attn_rng_seed_item(&r, seed, tag_of(draw, PF_TAG_DIRECTIONS), (uint64_t)block);
    gauss_fill(&r, g, (int64_t)D * D); /* column-major D x D */
    int info = 0;
    dgeqrf_(&D, &D, g, &D, tau, work, &lwork, &info);
    if (info)
        return attn_fail(ATTN_EINVAL, "performer features: dgeqrf failed (info=%d) on a %d x %d Gaussian block",
                         info, D, D);
    for (int i = 0; i < D; i++)
        sign[i] = g[i + (int64_t)i * D] < 0 ? -1.0 : 1.0;
    dorgqr_(&D, &D, &D, g, &D, tau, work, &lwork, &info);
    if (info)
        return attn_fail(ATTN_EINVAL, "performer features: dorgqr failed (info=%d) on a %d x %d block", info, D, D);
    for (int64_t i = 0; i < n; i++) /* row i of the block = column i of Q */
        for (int d = 0; d < D; d++)
            rows[i * D + d] = sign[i] * g[i * D + d];
    return 0;
}

static int draw_orthogonal(double *W, int64_t m, int64_t D, uint64_t seed, uint64_t draw)
{
    int lwork = (int)(64 * D);
    double *g = malloc(sizeof(double) * (size_t)(D * D + 2 * D + lwork)); /* G, tau, signs, work */
    if (!g)
        return attn_fail(ATTN_ENOMEM, "performer features: out of memory for a %lld x %lld block", (long long)D,
                         (long long)D);
    int rc = 0;
    for (int64_t r0 = 0, block = 0; r0 < m && !rc; r0 += D, block++) {
        int64_t n = m - r0 < D ? m - r0 : D;
        rc = orthogonal_block(g, g + D * D, g + D * D + D, g + D * D + 2 * D, lwork, (int)D, seed, draw, block, n,
                              W + r0 * D);
    }
    free(g);
    for (int64_t i = 0; i < m && !rc; i++) { /* chi_D norm of a fresh Gaussian vector */
        attn_rng r;
        attn_rng_seed_item(&r, seed, tag_of(draw, PF_TAG_NORMS), (uint64_t)i);
        double s = 0;
        for (int64_t d = 0; d < D; d++) {
            double x = attn_rng_normal(&r);
            s += x * x;
        }
        for (int64_t d = 0; d < D; d++)
            W[i * D + d] *= sqrt(s);
    }
    return rc;
}

static void draw_iid(double *W, int64_t m, int64_t D, uint64_t seed, uint64_t draw)
{
    for (int64_t i = 0; i < m; i++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, tag_of(draw, PF_TAG_DIRECTIONS), (uint64_t)i);
        gauss_fill(&r, W + i * D, D);
    }
}

int pf_draw(pf_features *f, int64_t m, int64_t D, int orthogonal, uint64_t seed, uint64_t draw)
{
    memset(f, 0, sizeof *f);
    double *W64 = malloc(sizeof(double) * (size_t)(m * D));
    f->W = malloc(sizeof(float) * (size_t)(m * D));
    f->half_sq = malloc(sizeof(float) * (size_t)m);
    int rc = 0;
    if (!W64 || !f->W || !f->half_sq)
        rc = attn_fail(ATTN_ENOMEM, "performer features: out of memory for %lld x %lld features", (long long)m,
                       (long long)D);
    else if (orthogonal)
        rc = draw_orthogonal(W64, m, D, seed, draw);
    else
        draw_iid(W64, m, D, seed, draw);
    for (int64_t i = 0; i < m && !rc; i++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++) {
            f->W[i * D + d] = (float)W64[i * D + d];
            s += (double)f->W[i * D + d] * f->W[i * D + d];
        }
        f->half_sq[i] = (float)(s / 2);
    }
    free(W64);
    f->m = m, f->D = D;
    if (rc)
        pf_free(f);
    return rc;
}

void pf_free(pf_features *f)
{
    free(f->W);
    free(f->half_sq);
    f->W = NULL, f->half_sq = NULL;
}

void pf_feature64(const pf_features *f, const double *x, double *phi)
{
    double x2 = 0;
    for (int64_t d = 0; d < f->D; d++)
        x2 += x[d] * x[d];
    for (int64_t r = 0; r < f->m; r++) {
        double p = 0;
        for (int64_t d = 0; d < f->D; d++)
            p += (double)f->W[r * f->D + d] * x[d];
        phi[r] = exp(p - x2 / 2) / sqrt((double)f->m);
    }
}
