/* LayerNorm (Ba et al. 2016, eq. 4) and RMSNorm (Zhang and Sennrich 2019,
 * eq. 4). The forward caches mean and rstd per row; the backward is
 * llm.c's layernorm_backward, which for RMSNorm drops the mean terms:
 *   n = (x - mean) rstd, dn = dy g,
 *   dx += rstd (dn - mean_c(dn) - n mean_c(dn n))   (LayerNorm)
 *   dx += rstd (dn - n mean_c(dn n))                 (RMSNorm)
 * A constant row has variance 0: rstd = 1/sqrt(eps) stays finite. */
#include "layers.h"

#include <math.h>

size_t nn_norm_param_count(int64_t C, int rms)
{
    nn_norm l;
    nn_blob cnt = {0};
    return nn_norm_bind(&l, C, rms, &cnt) ? SIZE_MAX : cnt.used;
}

int nn_norm_bind(nn_norm *l, int64_t C, int rms, nn_blob *blob)
{
    if (C < 1)
        return attn_fail(ATTN_EINVAL, "norm: expected C >= 1, found %lld", (long long)C);
    *l = (nn_norm){.C = C, .rms = rms, .eps = 1e-5f};
    if ((l->off_g = nn_blob_take(blob, (size_t)C, &l->g, &l->dg)) == SIZE_MAX)
        return ATTN_EINVAL;
    if (!rms && (l->off_b = nn_blob_take(blob, (size_t)C, &l->b, &l->db)) == SIZE_MAX)
        return ATTN_EINVAL;
    return 0;
}

void nn_norm_init(const nn_norm *l)
{
    for (int64_t c = 0; c < l->C; c++) {
        l->g[c] = 1.0f;
        if (!l->rms)
            l->b[c] = 0.0f;
    }
}

// x, y are (rows,C); mean, rstd are (rows)
void nn_norm_forward(const nn_norm *l, const float *x, float *y, float *mean, float *rstd, int64_t rows,
                     int threads)
{
    int64_t C = l->C;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float m = 0.0f, v = 0.0f;
        if (!l->rms) {
            for (int64_t c = 0; c < C; c++)
                m += xr[c];
            m /= (float)C;
        }
        for (int64_t c = 0; c < C; c++)
            v += (xr[c] - m) * (xr[c] - m);
        float s = 1.0f / sqrtf(v / (float)C + l->eps);
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] = (xr[c] - m) * s * l->g[c] + (l->rms ? 0.0f : l->b[c]);
        if (mean)
            mean[r] = m;
        rstd[r] = s;
    }
}

// dy is (rows,C): dx += ..., dg += ..., db += ...
void nn_norm_backward(const nn_norm *l, const float *x, const float *mean, const float *rstd,
                      const float *dy, float *dx, int64_t rows, int threads)
{
    int64_t C = l->C;
    if (dx) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float m = l->rms ? 0.0f : mean[r], s = rstd[r], mdn = 0.0f, mdnn = 0.0f;
            const float *xr = x + r * C, *gr = dy + r * C;
            for (int64_t c = 0; c < C; c++) {
                float dn = gr[c] * l->g[c];
                mdn += dn;
                mdnn += dn * (xr[c] - m) * s;
            }
            mdn = l->rms ? 0.0f : mdn / (float)C;
            mdnn /= (float)C;
            for (int64_t c = 0; c < C; c++)
                dx[r * C + c] += s * (gr[c] * l->g[c] - mdn - (xr[c] - m) * s * mdnn);
        }
    }
    /* parameter gradients: one channel per iteration, rows in order */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        float sg = 0.0f, sb = 0.0f;
        for (int64_t r = 0; r < rows; r++) {
            float m = l->rms ? 0.0f : mean[r];
            sg += dy[r * C + c] * (x[r * C + c] - m) * rstd[r];
            sb += dy[r * C + c];
        }
        l->dg[c] += sg;
        if (!l->rms)
            l->db[c] += sb;
    }
}

/* mean and rstd of row xr in double */
static void norm_stats_ref(const nn_norm *l, const double *xr, double *m, double *s)
{
    *m = 0;
    double v = 0;
    for (int64_t c = 0; !l->rms && c < l->C; c++)
        *m += xr[c] / (double)l->C;
    for (int64_t c = 0; c < l->C; c++)
        v += (xr[c] - *m) * (xr[c] - *m);
    *s = 1.0 / sqrt(v / (double)l->C + (double)l->eps);
}

void nn_norm_forward_ref(const nn_norm *l, const double *P, const double *x, double *y, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) {
        double m, s;
        norm_stats_ref(l, x + r * l->C, &m, &s);
        for (int64_t c = 0; c < l->C; c++)
            y[r * l->C + c] = (x[r * l->C + c] - m) * s * P[l->off_g + c] + (l->rms ? 0.0 : P[l->off_b + c]);
    }
}

void nn_norm_backward_ref(const nn_norm *l, const double *P, const double *x, const double *dy, double *dx,
                          double *dP, int64_t rows)
{
    int64_t C = l->C;
    for (int64_t r = 0; r < rows; r++) {
        double m, s, mdn = 0, mdnn = 0;
        const double *xr = x + r * C, *gr = dy + r * C;
        norm_stats_ref(l, xr, &m, &s);
        for (int64_t c = 0; c < C; c++) {
            double n = (xr[c] - m) * s, dn = gr[c] * P[l->off_g + c];
            mdn += dn / (double)C;
            mdnn += dn * n / (double)C;
            dP[l->off_g + c] += gr[c] * n;
            if (!l->rms)
                dP[l->off_b + c] += gr[c];
        }
        for (int64_t c = 0; dx && c < C; c++)
            dx[r * C + c] += s * (gr[c] * P[l->off_g + c] - (l->rms ? 0.0 : mdn) - (xr[c] - m) * s * mdnn);
    }
}
