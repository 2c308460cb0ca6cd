/* LayerNorm (Ba et al. 2016, eq. 4) and RMSNorm (Zhang and Sennrich 2019,
 * eq. 4). The forward caches mean and rstd per row; the backward is
 * llm.c's layernorm_backward, which for RMSNorm drops the mean terms:
 *   n = (x - mean) rstd, dn = dy g,
 *   dx += rstd (dn - mean_c(dn) - n mean_c(dn n))   (LayerNorm)
 *   dx += rstd (dn - n mean_c(dn n))                 (RMSNorm)
 * A constant row has variance 0: rstd = 1/sqrt(eps) stays finite. */
#include "layers.h"

#include <math.h>
#include <stdlib.h>

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

/* Rows per task of the backward's parameter sums: each task sums its rows in
 * order into its own partial, and the partials are added in task order, so
 * the sums do not depend on the thread count. */
#define NORM_ROWS 64

/* The row reductions below are vectorised (omp simd): their lanes sum in a
 * fixed interleaved order, so a result depends on the build's vector width
 * but not on the thread count. */

// x, y are (rows,C); mean, rstd are (rows)
void nn_norm_forward(const nn_norm *l, const float *x, float *y, float *mean, float *rstd, int64_t rows,
                     int threads)
{
    int64_t C = l->C;
    const float *g = l->g, *b = l->b;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float m = 0.0f, v = 0.0f;
        if (!l->rms) {
#pragma omp simd reduction(+ : m)
            for (int64_t c = 0; c < C; c++)
                m += xr[c];
            m /= (float)C;
        }
#pragma omp simd reduction(+ : v)
        for (int64_t c = 0; c < C; c++)
            v += (xr[c] - m) * (xr[c] - m);
        float s = 1.0f / sqrtf(v / (float)C + l->eps);
        if (l->rms)
            for (int64_t c = 0; c < C; c++)
                yr[c] = xr[c] * s * g[c];
        else
            for (int64_t c = 0; c < C; c++)
                yr[c] = (xr[c] - m) * s * g[c] + b[c];
        if (mean)
            mean[r] = m;
        rstd[r] = s;
    }
}

/* dx (one row) += rstd (dn - mean_c(dn) - n mean_c(dn n)) */
static void norm_dx_row(const nn_norm *l, const float *xr, const float *gr, float m, float s, float *dxr)
{
    int64_t C = l->C;
    const float *g = l->g;
    float mdn = 0.0f, mdnn = 0.0f;
#pragma omp simd reduction(+ : mdn, mdnn)
    for (int64_t c = 0; c < C; c++) {
        float dn = gr[c] * g[c];
        mdn += dn;
        mdnn += dn * (xr[c] - m) * s;
    }
    mdn = l->rms ? 0.0f : mdn / (float)C;
    mdnn /= (float)C;
    for (int64_t c = 0; c < C; c++)
        dxr[c] += s * (gr[c] * g[c] - mdn - (xr[c] - m) * s * mdnn);
}

// dy is (rows,C): dx += ..., dg += ..., db += ...
void nn_norm_backward(const nn_norm *l, const float *x, const float *mean, const float *rstd,
                      const float *dy, float *dx, int64_t rows, int threads)
{
    int64_t C = l->C, tasks = (rows + NORM_ROWS - 1) / NORM_ROWS;
    /* per task: dg partial (C), db partial (C) */
    float *part = tasks > 0 ? malloc(sizeof(float) * (size_t)(tasks * 2 * C)) : NULL;
    if (!part) { /* no memory for the partials: rows, then one channel per iteration */
        for (int64_t r = 0; dx && r < rows; r++)
            norm_dx_row(l, x + r * C, dy + r * C, l->rms ? 0.0f : mean[r], rstd[r], dx + r * C);
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < rows; r++) {
                float m = l->rms ? 0.0f : mean[r], gy = dy[r * C + c];
                l->dg[c] += gy * ((x[r * C + c] - m) * rstd[r]);
                if (!l->rms)
                    l->db[c] += gy;
            }
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        /* one pass over each block of rows: dx and the block's parameter sums */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            float *pg = part + t * 2 * C, *pb = pg + C;
            for (int64_t c = 0; c < C; c++)
                pg[c] = pb[c] = 0.0f;
            int64_t r1 = (t + 1) * NORM_ROWS < rows ? (t + 1) * NORM_ROWS : rows;
            for (int64_t r = t * NORM_ROWS; r < r1; r++) {
                const float *xr = x + r * C, *gr = dy + r * C;
                float m = l->rms ? 0.0f : mean[r], s = rstd[r];
                if (dx)
                    norm_dx_row(l, xr, gr, m, s, dx + r * C);
                for (int64_t c = 0; c < C; c++) {
                    pg[c] += gr[c] * ((xr[c] - m) * s);
                    pb[c] += gr[c];
                }
            }
        }
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            float sg = 0.0f, sb = 0.0f;
            for (int64_t t = 0; t < tasks; t++)
                sg += part[t * 2 * C + c], sb += part[t * 2 * C + C + c];
            l->dg[c] += sg;
            if (!l->rms)
                l->db[c] += sb;
        }
    }
    free(part);
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
