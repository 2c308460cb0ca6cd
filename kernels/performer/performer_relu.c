/* `performer kernel=relu`: Performer's generalized attention with ReLU
 * features (Choromanski et al. 2020, section 2.2 and its Performer-ReLU
 * experiments), phi(x) = relu(W x) + 1e-3, and without a projection
 * (features=0) phi(x) = relu(x) + 1e-3 with F = D: the LRA repository's
 * default performer attention (make_fast_generalized_attention: kernel_fn
 * relu, kernel_epsilon 1e-3, no data normalisation, features_type
 * 'deterministic'), which its Text, Retrieval, Image and Pathfinder configs
 * use (docs/kernels/performer.md). One map for queries and keys; the
 * features are positive, so no stabiliser is needed. */
#include "performer_internal.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <string.h>

static const pf_features *features_of(const lin_fmap *mp) { return mp->data; }

/* relu(v) + floor; NaN stays NaN (it may only spread within its own head). */
static inline float relu_floor(float v) { return v > 0 ? v + PF_RELU_FLOOR : v != v ? v : PF_RELU_FLOOR; }

static void relu_fwd(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    const pf_features *F = features_of(mp);
    if (F->m) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)F->m, (int)F->D, 1.0f, x, (int)ldx, F->W,
                    (int)F->D, 0.0f, f, (int)ldf);
        attn_counter_add(ATTN_CNT_FLOPS, 2LL * n * F->m * F->D);
    } else
        for (int64_t i = 0; i < n; i++)
            memcpy(f + i * ldf, x + i * ldx, sizeof(float) * (size_t)mp->D);
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < mp->F; r++)
            f[i * ldf + r] = relu_floor(f[i * ldf + r]);
}

/* dx = W^T (df . [W x > 0]), or df . [x > 0] without a projection. */
static void relu_bwd(const lin_fmap *mp, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                     float *dx, int64_t lddx)
{
    const pf_features *F = features_of(mp);
    int64_t m = F->m, D = mp->D;
    float g[PF_MAX_FEATURES];
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * ldx, *dfi = df + i * ldf;
        float *dxi = dx + i * lddx;
        if (!m) {
            for (int64_t d = 0; d < D; d++)
                dxi[d] = xi[d] > 0 ? dfi[d] : 0;
            continue;
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)D, 1.0f, F->W, (int)D, xi, 1, 0.0f, g, 1);
        for (int64_t r = 0; r < m; r++)
            g[r] = g[r] > 0 ? dfi[r] : 0;
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)m, (int)D, 1.0f, F->W, (int)D, g, 1, 0.0f, dxi, 1);
    }
    attn_counter_add(ATTN_CNT_FLOPS, 4LL * n * m * D);
}

static void relu_fwd64(const lin_fmap *mp, const double *x, double *f)
{
    const pf_features *F = features_of(mp);
    for (int64_t r = 0; r < mp->F; r++) {
        double p = 0;
        for (int64_t d = 0; F->m && d < mp->D; d++)
            p += (double)F->W[r * mp->D + d] * x[d];
        p = F->m ? p : x[r];
        f[r] = (p > 0 ? p : 0) + (double)PF_RELU_FLOOR;
    }
}

void pf_relu_map(lin_fmap *map, const pf_features *f, int64_t D)
{
    memset(map, 0, sizeof *map);
    map->D = D, map->F = f->m ? f->m : D, map->c1 = 1, map->data = f;
    map->fwd = relu_fwd, map->bwd = relu_bwd, map->fwd64 = relu_fwd64;
}
