/* The feature maps `performer` hands the linear-attention core
 * (docs/kernels/performer.md), with x = q sqrt(sc) (q D^-1/4 by default):
 *   key   f_r = exp(DELTA - |x - w_r|^2 / 2) / sqrt(m)
 *             = exp(<w_r, x> - |x|^2/2 - |w_r|^2/2 + DELTA) / sqrt(m) <= e^DELTA,
 *   query f_r = exp(<w_r, x> + |w_r|^2/2 - max_r'(<w_r', x> + |w_r'|^2/2)) <= 1.
 * Their product is the FAVOR+ estimate exp(<w_r, x_q + x_k> - |x_q|^2/2 -
 * |x_k|^2/2) / m times a factor that depends on the query row only, which
 * cancels between numerator and denominator (the guard PF_EPS is far below
 * any denominator). A key's feature reads that key only, so the causal form
 * is bitwise causal; the query's row maximum keeps its largest feature at 1.
 * Backward: d f_r / d x = f_r (w_r - x) (the unstabilised map's derivative);
 * the query's row maximum and |x|^2 are per-row constants, whose derivative
 * contributes nothing to O. */
#include "performer_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

static const pf_features *features_of(const lin_fmap *mp) { return mp->data; }

/* The input scale sqrt(sc) rides in c1 (unused by this map otherwise). */
static float in_scale(const lin_fmap *mp) { return (float)mp->c1; }

static float sq_norm(const float *x, int64_t D)
{
    float s = 0;
    for (int64_t d = 0; d < D; d++)
        s += x[d] * x[d];
    return s;
}

/* f holds <w_r, x>; becomes the key feature of x with |x|^2 = x2. */
static void key_row(const pf_features *F, float x2, float *f)
{
    float c = (float)(PF_DELTA - 0.5 * log((double)F->m)) - x2 / 2;
    for (int64_t r = 0; r < F->m; r++)
        f[r] = (f[r] - F->half_sq[r]) + c;
    attn_vexp(f, f, F->m);
}

/* f holds <w_r, x>; becomes the query feature. NaN inputs stay NaN. */
static void query_row(const pf_features *F, float *f)
{
    float mx = -INFINITY;
    for (int64_t r = 0; r < F->m; r++) {
        f[r] += F->half_sq[r];
        mx = f[r] > mx ? f[r] : mx;
    }
    for (int64_t r = 0; r < F->m; r++)
        f[r] -= mx;
    attn_vexp(f, f, F->m);
}

/* f (n x m, row stride ldf) = sqrt(sc) X W^T, the random projection. */
static void project(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    const pf_features *F = features_of(mp);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)F->m, (int)F->D, in_scale(mp), x, (int)ldx,
                F->W, (int)F->D, 0.0f, f, (int)ldf);
    attn_counter_add(ATTN_CNT_FLOPS, 2LL * n * F->m * F->D);
    attn_counter_add(ATTN_CNT_EXPS, (long long)n * F->m);
}

static void key_fwd(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    const pf_features *F = features_of(mp);
    float s = in_scale(mp);
    project(mp, x, ldx, n, f, ldf);
    for (int64_t i = 0; i < n; i++)
        key_row(F, s * s * sq_norm(x + i * ldx, F->D), f + i * ldf);
}

static void query_fwd(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    project(mp, x, ldx, n, f, ldf);
    for (int64_t i = 0; i < n; i++)
        query_row(features_of(mp), f + i * ldf);
}

/* dx = sqrt(sc) (W^T (df . f) - key * x sum_r df_r f_r) row by row, f
 * recomputed; key = 1 for keys, 0 for queries (see the file comment). */
static void map_bwd(const lin_fmap *mp, int key, const float *x, int64_t ldx, int64_t n, const float *df,
                    int64_t ldf, float *dx, int64_t lddx)
{
    const pf_features *F = features_of(mp);
    int64_t m = F->m, D = F->D;
    float s = in_scale(mp), g[PF_MAX_FEATURES];
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * ldx;
        float *dxi = dx + i * lddx, sum = 0;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)D, s, F->W, (int)D, xi, 1, 0.0f, g, 1);
        if (key)
            key_row(F, s * s * sq_norm(xi, D), g);
        else
            query_row(F, g);
        for (int64_t r = 0; r < m; r++)
            g[r] *= df[i * ldf + r], sum += g[r];
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)m, (int)D, s, F->W, (int)D, g, 1, 0.0f, dxi, 1);
        for (int64_t d = 0; key && d < D; d++)
            dxi[d] -= s * s * sum * xi[d];
    }
    attn_counter_add(ATTN_CNT_FLOPS, 4LL * n * m * D);
    attn_counter_add(ATTN_CNT_EXPS, (long long)n * m);
}

static void key_bwd(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                    float *dx, int64_t lddx)
{
    map_bwd(mp, 1, x, ldx, n, df, ldf, dx, lddx);
}

static void query_bwd(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                      float *dx, int64_t lddx)
{
    map_bwd(mp, 0, x, ldx, n, df, ldf, dx, lddx);
}

/* f_r = <w_r, x> and |w_r|^2/2 in double for the scaled x; returns |x|^2. */
static double project64(const lin_fmap *mp, const double *q, double *f, int64_t r)
{
    const pf_features *F = features_of(mp);
    double s = mp->c1, p = 0, x2 = 0;
    for (int64_t d = 0; d < F->D; d++) {
        p += (double)F->W[r * F->D + d] * (s * q[d]);
        x2 += (s * q[d]) * (s * q[d]);
    }
    *f = p;
    return x2;
}

static double half_sq64(const pf_features *F, int64_t r)
{
    double h = 0;
    for (int64_t d = 0; d < F->D; d++)
        h += (double)F->W[r * F->D + d] * F->W[r * F->D + d];
    return h / 2;
}

static void key_fwd64(const lin_fmap *mp, const double *q, double *f)
{
    const pf_features *F = features_of(mp);
    for (int64_t r = 0; r < F->m; r++) {
        double x2 = project64(mp, q, f + r, r);
        f[r] = exp(f[r] - half_sq64(F, r) - x2 / 2 + PF_DELTA - 0.5 * log((double)F->m));
    }
}

static void query_fwd64(const lin_fmap *mp, const double *q, double *f)
{
    const pf_features *F = features_of(mp);
    double mx = -INFINITY;
    for (int64_t r = 0; r < F->m; r++) {
        project64(mp, q, f + r, r);
        f[r] += half_sq64(F, r);
        mx = f[r] > mx ? f[r] : mx;
    }
    for (int64_t r = 0; r < F->m; r++)
        f[r] = exp(f[r] - mx);
}

void pf_maps(lin_fmap *key, lin_fmap *query, const pf_features *f, double sc)
{
    memset(key, 0, sizeof *key);
    key->D = f->D, key->F = f->m, key->c1 = sqrt(sc), key->data = f;
    *query = *key;
    key->fwd = key_fwd, key->bwd = key_bwd, key->fwd64 = key_fwd64;
    query->fwd = query_fwd, query->bwd = query_bwd, query->fwd64 = query_fwd64;
}
