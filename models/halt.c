/* Adaptive computation time of the looped model (halt.h): the halting
 * record, its backward, and the double twin the reference model runs. */
#include "halt.h"

#include <math.h>
#include <string.h>

void nn_act_begin(nn_act *a)
{
    size_t T = (size_t)a->T;
    memset(a->cum, 0, sizeof(float) * T);
    memset(a->steps, 0, sizeof(float) * T);
    memset(a->rem, 0, sizeof(float) * T);
    memset(a->y, 0, sizeof(float) * T * (size_t)a->C);
    a->margin = INFINITY;
}

static float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

int64_t nn_act_step(nn_act *a, const nn_dense *halt, const float *s_prev, float *s_n, int n, int threads)
{
    int64_t T = a->T, C = a->C, running = 0;
    float margin = a->margin;
    float *p = a->p + (size_t)(n - 1) * (size_t)T;
    nn_dense_forward(halt, s_n, p, T, threads); /* logits of every position: one GEMV, halted ones unused */
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : running) reduction(min : margin) if (T * C > 65536)
    for (int64_t t = 0; t < T; t++) {
        float *s = s_n + t * C, *y = a->y + t * C;
        if (a->steps[t] > 0) { /* halted before step n: the state stays */
            memcpy(s, s_prev + t * C, sizeof(float) * (size_t)C);
            continue;
        }
        p[t] = sigmoidf(p[t]);
        float w = p[t];
        if (n < a->S)
            margin = fminf(margin, fabsf(a->cum[t] + p[t] - (float)(1.0 - NN_ACT_EPS)));
        if (n == a->S || a->cum[t] + p[t] >= (float)(1.0 - NN_ACT_EPS)) {
            a->steps[t] = (float)n, a->rem[t] = 1.0f - a->cum[t], w = a->rem[t];
        } else {
            a->cum[t] += p[t], running++;
        }
        for (int64_t c = 0; c < C; c++)
            y[c] += w * s[c];
    }
    a->margin = margin;
    return running;
}

nn_act_sums nn_act_ponder(const nn_act *a, const uint8_t *valid)
{
    nn_act_sums s = {.min_steps = (int)a->S, .max_steps = 0};
    for (int64_t t = 0; t < a->T; t++) {
        if (!valid[t])
            continue;
        int N = (int)a->steps[t];
        s.ponder += (double)N + (double)a->rem[t], s.steps += N, s.count++;
        s.min_steps = N < s.min_steps ? N : s.min_steps, s.max_steps = N > s.max_steps ? N : s.max_steps;
    }
    return s;
}

static float dot(const float *x, const float *y, int64_t n)
{
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

void nn_act_backward_step(nn_act *a, const nn_dense *halt, const float *const *states, int n, const float *dy,
                          const uint8_t *valid, float cost, float *ds, int threads)
{
    int64_t T = a->T, C = a->C;
    const float *p = a->p + (size_t)(n - 1) * (size_t)T, *s = states[n];
#pragma omp parallel for num_threads(threads) schedule(static) if (T * C > 65536)
    for (int64_t t = 0; t < T; t++) {
        int N = (int)a->steps[t];
        const float *g = dy + t * C;
        a->dz[t] = 0;
        if (N < n)
            continue; /* halted before step n: s_n is a copy, handled by nn_act_hold */
        float w = N == n ? a->rem[t] : p[t];
        for (int64_t c = 0; c < C; c++)
            ds[t * C + c] += w * g[c];
        if (N == n)
            continue; /* p^N sets N, a step: no gradient */
        /* y = ... + p^n s^n + (1 - ... - p^n - ...) s^N, ponder = N + R */
        float dp = dot(g, s + t * C, C) - dot(g, states[N] + t * C, C) - (valid[t] ? cost : 0.0f);
        a->dz[t] = dp * p[t] * (1.0f - p[t]);
    }
    nn_dense_backward(halt, s, a->dz, ds, T, threads);
}

void nn_act_hold(nn_act *a, int n, float *ds)
{
    size_t C = (size_t)a->C;
    for (int64_t t = 0; t < a->T; t++)
        if (a->steps[t] < (float)n) {
            memcpy(a->dkeep + (size_t)t * C, ds + (size_t)t * C, sizeof(float) * C);
            memset(ds + (size_t)t * C, 0, sizeof(float) * C);
        }
}

void nn_act_release(const nn_act *a, int n, float *ds)
{
    size_t C = (size_t)a->C;
    for (int64_t t = 0; t < a->T; t++)
        if (a->steps[t] < (float)n)
            for (size_t c = 0; c < C; c++)
                ds[(size_t)t * C + c] += a->dkeep[(size_t)t * C + c];
}

void nn_act_step_ref(const nn_dense *halt, const double *P, const double *s_prev, double *s_n, int n, int S,
                     int64_t T, int64_t C, double *steps, double *cum, double *rem, double *y, double *logit)
{
    nn_dense_forward_ref(halt, P, s_n, logit, T);
    for (int64_t t = 0; t < T; t++) {
        double *s = s_n + t * C;
        if (steps[t] > 0) {
            memcpy(s, s_prev + t * C, sizeof(double) * (size_t)C);
            continue;
        }
        double p = 1.0 / (1.0 + exp(-logit[t])), w = p;
        if (n == S || cum[t] + p >= 1.0 - NN_ACT_EPS)
            steps[t] = n, rem[t] = 1.0 - cum[t], w = rem[t];
        else
            cum[t] += p;
        for (int64_t c = 0; c < C; c++)
            y[t * C + c] += w * s[c];
    }
}
