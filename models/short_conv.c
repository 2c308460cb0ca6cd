/* The short causal convolution of recurrent mixers (layers.h "short
 * convolution"): per channel c and token t of each sequence,
 *   z[t,c] = sum_{j<K} w[c,j] x[t-K+1+j, c]   (x = 0 before the sequence),
 *   y[t,c] = silu(z[t,c]) = z sigmoid(z).
 * This is flash-linear-attention's ShortConvolution (fla/modules/
 * convolution.py: nn.Conv1d with groups = channels, padding K-1, output cut
 * to the first T steps, no bias, then SiLU), which DeltaNet (Yang et al.
 * 2024; fla/layers/delta_net.py, checked: q = q_conv1d(q_proj(x)) and the
 * same for k and v, conv_size 4) puts after the q/k/v projections; Zoology
 * and Based (Arora et al. 2023, 2024) pair their recurrent mixers with short
 * convolutions too (not checked here in code). The weight layout is PyTorch's (C, 1, K):
 * the newest tap, w[c, K-1], multiplies the current token. */
#include "layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONV_CH_TILE 16   /* channels per task of the weight-gradient loop */

size_t nn_short_conv_param_count(int64_t C, int64_t K)
{
    nn_short_conv l;
    nn_blob cnt = {0};
    return nn_short_conv_bind(&l, C, K, &cnt) ? SIZE_MAX : cnt.used;
}

int nn_short_conv_bind(nn_short_conv *l, int64_t C, int64_t K, nn_blob *blob)
{
    if (C < 1 || K < 1)
        return attn_fail(ATTN_EINVAL, "short conv: expected C >= 1 and K >= 1, found C=%lld K=%lld", (long long)C,
                         (long long)K);
    *l = (nn_short_conv){.C = C, .K = K};
    l->off_w = nn_blob_take(blob, (size_t)(C * K), &l->w, &l->dw);
    return l->off_w == SIZE_MAX ? ATTN_EINVAL : 0;
}

/* PyTorch's Conv1d default (kaiming_uniform with a = sqrt(5)): U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) with fan_in = in_channels / groups * K = K. */
void nn_short_conv_init(const nn_short_conv *l, attn_rng *r)
{
    float b = (float)(1.0 / sqrt((double)l->K));
    for (int64_t i = 0; i < l->C * l->K; i++)
        l->w[i] = attn_rng_range(r, -b, b);
}

static inline float sigmoid_f(float z) { return 1.0f / (1.0f + expf(-z)); }
/* silu'(z) = s (1 + z (1 - s)), s = sigmoid(z) */
static inline float silu_grad_f(float z)
{
    float s = sigmoid_f(z);
    return s * (1.0f + z * (1.0f - s));
}
static double sigmoid_d(double z) { return 1.0 / (1.0 + exp(-z)); }

// x, z, y are (B,N,C); z is the pre-activation cache
void nn_short_conv_forward(const nn_short_conv *l, const float *x, float *z, float *y, int64_t B, int64_t N,
                           int threads)
{
    int64_t C = l->C, K = l->K;
#pragma omp parallel for num_threads(threads) schedule(static) if (B * N >= 64)
    for (int64_t r = 0; r < B * N; r++) {
        int64_t t = r % N;
        float *zr = z + r * C;
        for (int64_t c = 0; c < C; c++)
            zr[c] = 0.0f;
        for (int64_t j = 0; j < K; j++) {   /* tap j reads token t - K + 1 + j */
            int64_t s = t - K + 1 + j;
            if (s < 0)
                continue;
            const float *xs = x + (r - t + s) * C;
            for (int64_t c = 0; c < C; c++)
                zr[c] += l->w[c * K + j] * xs[c];
        }
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] = zr[c] * sigmoid_f(zr[c]);
    }
}

// dy (B,N,C); dz (B,N,C) is overwritten with dL/dz (may equal dy); dx (B,N,C) += ..., dw += ...
void nn_short_conv_backward(const nn_short_conv *l, const float *x, const float *z, const float *dy, float *dz,
                            float *dx, int64_t B, int64_t N, int threads)
{
    int64_t C = l->C, K = l->K, T = B * N;
#pragma omp parallel for num_threads(threads) schedule(static) if (T >= 64)
    for (int64_t i = 0; i < T * C; i++)
        dz[i] = dy[i] * silu_grad_f(z[i]);
    if (dx) {
        /* gather form: dx[s,c] += sum_j w[c,j] dz[s + K - 1 - j, c], one task per row */
#pragma omp parallel for num_threads(threads) schedule(static) if (T >= 64)
        for (int64_t r = 0; r < T; r++) {
            int64_t s = r % N;
            for (int64_t j = 0; j < K; j++) {
                int64_t t = s + K - 1 - j;
                if (t >= N)
                    continue;
                const float *dzt = dz + (r - s + t) * C;
                for (int64_t c = 0; c < C; c++)
                    dx[r * C + c] += l->w[c * K + j] * dzt[c];
            }
        }
    }
    /* dw[c,j] = sum over (b, t) in row order of dz[t,c] x[t-K+1+j,c]: one task per channel tile */
    int64_t tiles = (C + CONV_CH_TILE - 1) / CONV_CH_TILE;
#pragma omp parallel for num_threads(threads) schedule(static) if (C >= 2 * CONV_CH_TILE)
    for (int64_t ti = 0; ti < tiles; ti++) {
        int64_t c0 = ti * CONV_CH_TILE, c1 = c0 + CONV_CH_TILE < C ? c0 + CONV_CH_TILE : C;
        float acc[CONV_CH_TILE * 8];
        for (int64_t jb = 0; jb < K; jb += 8) {   /* taps in blocks of 8 so acc stays on the stack */
            int64_t nj = K - jb < 8 ? K - jb : 8;
            memset(acc, 0, sizeof acc);
            for (int64_t r = 0; r < T; r++) {
                int64_t t = r % N;
                for (int64_t jj = 0; jj < nj; jj++) {
                    int64_t s = t - K + 1 + jb + jj;
                    if (s < 0)
                        continue;
                    const float *xs = x + (r - t + s) * C, *dzt = dz + r * C;
                    for (int64_t c = c0; c < c1; c++)
                        acc[jj * CONV_CH_TILE + (c - c0)] += dzt[c] * xs[c];
                }
            }
            for (int64_t jj = 0; jj < nj; jj++)
                for (int64_t c = c0; c < c1; c++)
                    l->dw[c * K + jb + jj] += acc[jj * CONV_CH_TILE + (c - c0)];
        }
    }
}

/* ---- double twins: the definition, term by term */

static void conv_ref(const nn_short_conv *l, const double *P, const double *x, double *z, int64_t B, int64_t N)
{
    int64_t C = l->C, K = l->K;
    const double *w = P + l->off_w;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < N; t++)
            for (int64_t c = 0; c < C; c++) {
                double acc = 0;
                for (int64_t j = 0; j < K; j++)
                    if (t - K + 1 + j >= 0)
                        acc += w[c * K + j] * x[(b * N + t - K + 1 + j) * C + c];
                z[(b * N + t) * C + c] = acc;
            }
}

// x, y are (B,N,C)
void nn_short_conv_forward_ref(const nn_short_conv *l, const double *P, const double *x, double *y, int64_t B,
                               int64_t N)
{
    size_t n = (size_t)(B * N * l->C);
    double *z = malloc(sizeof(double) * n);
    conv_ref(l, P, x, z, B, N);
    for (size_t i = 0; i < n; i++)
        y[i] = z[i] * sigmoid_d(z[i]);
    free(z);
}

// dy (B,N,C); dx += ..., dP (at off_w) += ...
void nn_short_conv_backward_ref(const nn_short_conv *l, const double *P, const double *x, const double *dy,
                                double *dx, double *dP, int64_t B, int64_t N)
{
    int64_t C = l->C, K = l->K;
    size_t n = (size_t)(B * N * C);
    double *z = malloc(sizeof(double) * n);
    const double *w = P + l->off_w;
    conv_ref(l, P, x, z, B, N);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < N; t++)
            for (int64_t c = 0; c < C; c++) {
                int64_t i = (b * N + t) * C + c;
                double s = sigmoid_d(z[i]), g = dy[i] * s * (1.0 + z[i] * (1.0 - s));
                for (int64_t j = 0; j < K; j++) {
                    int64_t src = t - K + 1 + j;
                    if (src < 0)
                        continue;
                    if (dx)
                        dx[(b * N + src) * C + c] += w[c * K + j] * g;
                    dP[l->off_w + (size_t)(c * K + j)] += x[(b * N + src) * C + c] * g;
                }
            }
    free(z);
}
