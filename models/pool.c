/* Sequence pooling for classifier heads: the mean over the real (unpadded)
 * tokens of each sequence, or the hidden state at one position (CLS, as BERT). */
#include "layers.h"

static int64_t valid_count(const uint8_t *valid, int64_t b, int64_t N)
{
    int64_t cnt = 0;
    for (int64_t n = 0; n < N; n++)
        cnt += valid ? valid[b * N + n] != 0 : 1;
    return cnt;
}

/* 1 / (valid rows of sequence b), 0 when there are none */
static float inv_count(const uint8_t *valid, int64_t b, int64_t N)
{
    int64_t cnt = valid_count(valid, b, N);
    return cnt ? 1.0f / (float)cnt : 0.0f;
}

// x is (B,N,C); valid is (B,N) (NULL: all valid); out is (B,C)
void nn_meanpool_forward(const float *x, const uint8_t *valid, float *out, int64_t B, int64_t N, int64_t C,
                         int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        float inv = inv_count(valid, b, N);
        for (int64_t c = 0; c < C; c++)
            out[b * C + c] = 0.0f;
        for (int64_t n = 0; n < N; n++)
            if (!valid || valid[b * N + n])
                for (int64_t c = 0; c < C; c++)
                    out[b * C + c] += x[(b * N + n) * C + c];
        for (int64_t c = 0; c < C; c++)
            out[b * C + c] *= inv;
    }
}

// dout is (B,C); dx (B,N,C) += dout / count on valid rows
void nn_meanpool_backward(const uint8_t *valid, const float *dout, float *dx, int64_t B, int64_t N, int64_t C,
                          int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        float inv = inv_count(valid, b, N);
        for (int64_t n = 0; n < N; n++)
            if (!valid || valid[b * N + n])
                for (int64_t c = 0; c < C; c++)
                    dx[(b * N + n) * C + c] += dout[b * C + c] * inv;
    }
}

void nn_meanpool_forward_ref(const double *x, const uint8_t *valid, double *out, int64_t B, int64_t N,
                             int64_t C)
{
    for (int64_t b = 0; b < B; b++) {
        int64_t cnt = valid_count(valid, b, N);
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++)
                s += (!valid || valid[b * N + n]) ? x[(b * N + n) * C + c] : 0.0;
            out[b * C + c] = cnt ? s / (double)cnt : 0.0;
        }
    }
}

void nn_meanpool_backward_ref(const uint8_t *valid, const double *dout, double *dx, int64_t B, int64_t N,
                              int64_t C)
{
    for (int64_t b = 0; b < B; b++) {
        int64_t cnt = valid_count(valid, b, N);
        for (int64_t n = 0; cnt && n < N; n++)
            for (int64_t c = 0; c < C && (!valid || valid[b * N + n]); c++)
                dx[(b * N + n) * C + c] += dout[b * C + c] / (double)cnt;
    }
}

// x is (B,N,C); out is (B,C) = x[:, pos]
void nn_clspool_forward(const float *x, float *out, int64_t B, int64_t N, int64_t C, int64_t pos)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            out[b * C + c] = x[(b * N + pos) * C + c];
}

// dout is (B,C); dx[:, pos] += dout
void nn_clspool_backward(const float *dout, float *dx, int64_t B, int64_t N, int64_t C, int64_t pos)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            dx[(b * N + pos) * C + c] += dout[b * C + c];
}

void nn_clspool_forward_ref(const double *x, double *out, int64_t B, int64_t N, int64_t C, int64_t pos)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            out[b * C + c] = x[(b * N + pos) * C + c];
}

void nn_clspool_backward_ref(const double *dout, double *dx, int64_t B, int64_t N, int64_t C, int64_t pos)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            dx[(b * N + pos) * C + c] += dout[b * C + c];
}
