/* GELU in its tanh form (Hendrycks and Gimpel 2016, section 2):
 *   gelu(x) = x/2 (1 + tanh(u)), u = k (x + 0.044715 x^3), k = sqrt(2/pi),
 * and the transformer MLP block: fc (C -> F), GELU, proj (F -> C).
 * The fp32 path uses the identity (1 + tanh u)/2 = sigmoid(2u), so one
 * vectorised exp per element (attn_vexp) replaces a scalar tanhf, which was
 * the largest item of a training step outside GEMMs and attention. */
#include "dense_tiles.h"
#include "profile.h"
#include "kernels/core/vexp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GELU_K 0.7978845608028654   /* sqrt(2/pi) */
#define GELU_A 0.044715
#define GELU_BLOCK 256              /* elements per exp call (a stack buffer) */

/* e[i] = exp(-2 u(x[i])) for n <= GELU_BLOCK elements */
static void gelu_exp_neg2u(const float *x, float *e, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        e[i] = -2.0f * (float)GELU_K * (x[i] + (float)GELU_A * x[i] * x[i] * x[i]);
    attn_vexp(e, e, n);
}

static double gelu_d(double x) { return 0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_A * x * x * x))); }

static double gelu_grad_d(double x)
{
    double t = tanh(GELU_K * (x + GELU_A * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_A * x * x);
}

// x, y are (n): y = x * sigmoid(2u)
void nn_gelu_forward(const float *x, float *y, int64_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += GELU_BLOCK) {
        int64_t m = n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK;
        float e[GELU_BLOCK];
        gelu_exp_neg2u(x + i0, e, m);
        for (int64_t i = 0; i < m; i++)
            y[i0 + i] = x[i0 + i] / (1.0f + e[i]);
    }
}

/* g[i] = gelu'(x[i]) for n <= GELU_BLOCK elements:
 * gelu' = s + x s (1 - s) 2u'(x), s = sigmoid(2u), u' = k (1 + 3a x^2) */
static void gelu_grad_block(const float *x, float *g, int64_t n)
{
    gelu_exp_neg2u(x, g, n);
    for (int64_t i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + g[i]);
        float du = 2.0f * (float)GELU_K * (1.0f + 3.0f * (float)GELU_A * x[i] * x[i]);
        g[i] = sg + x[i] * sg * (1.0f - sg) * du;
    }
}

// dx = gelu'(x) dy over n elements, in blocks of GELU_BLOCK from x[0]; dx may be dy
static void gelu_grad_rows(const float *x, const float *dy, float *dx, int64_t n)
{
    for (int64_t i0 = 0; i0 < n; i0 += GELU_BLOCK) {
        int64_t m = n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK;
        float g[GELU_BLOCK];
        gelu_grad_block(x + i0, g, m);
        for (int64_t i = 0; i < m; i++)
            dx[i0 + i] = g[i] * dy[i0 + i];
    }
}

// dx += gelu'(x) dy
static void gelu_grad_apply(const float *x, const float *dy, float *dx, int64_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += GELU_BLOCK) {
        int64_t m = n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK;
        float g[GELU_BLOCK];
        gelu_grad_block(x + i0, g, m);
        for (int64_t i = 0; i < m; i++)
            dx[i0 + i] += g[i] * dy[i0 + i];
    }
}

// dx += gelu'(x) dy
void nn_gelu_backward(const float *x, const float *dy, float *dx, int64_t n, int threads)
{
    gelu_grad_apply(x, dy, dx, n, threads);
}

void nn_gelu_forward_ref(const double *x, double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = gelu_d(x[i]);
}

void nn_gelu_backward_ref(const double *x, const double *dy, double *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += gelu_grad_d(x[i]) * dy[i];
}

/* ---- MLP block */

size_t nn_mlp_param_count(int64_t C, int64_t F)
{
    nn_mlp l;
    nn_blob cnt = {0};
    return nn_mlp_bind(&l, C, F, &cnt) ? SIZE_MAX : cnt.used;
}

int nn_mlp_bind(nn_mlp *l, int64_t C, int64_t F, nn_blob *blob)
{
    *l = (nn_mlp){.C = C, .F = F};
    int rc = nn_dense_bind(&l->fc, C, F, 1, blob);
    return rc ? rc : nn_dense_bind(&l->proj, F, C, 1, blob);
}

void nn_mlp_init(const nn_mlp *l, attn_rng *r)
{
    nn_dense_init(&l->fc, r);
    nn_dense_init(&l->proj, r);
}

/* The fp32 MLP runs as one OpenMP region of the dense layers' own tasks
 * (dense_tiles.h), so its bits are those of fc, GELU and proj called one
 * after the other: the forward per tile of rows, fc -> GELU -> proj while the
 * tile's h and a are in cache; the backward proj's dW tasks and dx tiles
 * (each then through GELU's derivative), a barrier, fc's. One fork and join
 * instead of three, and no pass that only zeroes or scales. Its wall time
 * counts as GEMM time in the training benchmark's profile. */

// x is (rows,C); h, a are (rows,F); y is (rows,C)
void nn_mlp_forward(const nn_mlp *l, const float *x, float *h, float *a, float *y, int64_t rows, int threads)
{
    double t0 = nn_prof_enabled() ? nn_prof_now() : 0;
    int64_t F = l->F, tasks = nn_dense_row_tasks(rows);
    nn_dense_blas_single();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t r0 = nn_dense_row0(t), n = nn_dense_row_count(rows, t) * F;
        nn_dense_forward_task(&l->fc, x, h, rows, t);
        for (int64_t i0 = r0 * F; i0 < r0 * F + n; i0 += GELU_BLOCK) {
            int64_t m = r0 * F + n - i0 < GELU_BLOCK ? r0 * F + n - i0 : GELU_BLOCK;
            float e[GELU_BLOCK];
            gelu_exp_neg2u(h + i0, e, m);
            for (int64_t i = 0; i < m; i++)
                a[i0 + i] = h[i0 + i] / (1.0f + e[i]);
        }
        nn_dense_forward_task(&l->proj, a, y, rows, t);
    }
    if (t0 > 0)
        nn_prof_add(NN_PROF_GEMM, nn_prof_now() - t0, 4.0 * (double)rows * (double)l->C * (double)F);
}

// dy is (rows,C); scratch is (rows,F); dx (rows,C) += ...
void nn_mlp_backward(const nn_mlp *l, const float *x, const float *h, const float *a, const float *dy,
                     float *scratch, float *dx, int64_t rows, int threads)
{
    if (rows < 1)
        return;
    double t0 = nn_prof_enabled() ? nn_prof_now() : 0;
    int64_t F = l->F, row_tasks = nn_dense_row_tasks(rows);
    int64_t proj_tasks = nn_dense_out_tasks(&l->proj), fc_tasks = nn_dense_out_tasks(&l->fc);
    nn_dense_blas_single();
    /* dW tasks first, then dx tiles, dynamically (as nn_dense_backward) */
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic) nowait
        for (int64_t t = 0; t < proj_tasks; t++)
            nn_dense_dw_task(&l->proj, a, dy, rows, t);
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < row_tasks; t++) { /* scratch = dL/da, then dL/dh in place */
            int64_t i0 = nn_dense_row0(t) * F, n = nn_dense_row_count(rows, t) * F;
            nn_dense_dx_task(&l->proj, dy, scratch, rows, t, 0);
            gelu_grad_rows(h + i0, scratch + i0, scratch + i0, n);
        }
#pragma omp for schedule(dynamic) nowait
        for (int64_t t = 0; t < fc_tasks; t++)
            nn_dense_dw_task(&l->fc, x, scratch, rows, t);
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < row_tasks; t++)
            nn_dense_dx_task(&l->fc, scratch, dx, rows, t, 1);
    }
    if (t0 > 0)
        nn_prof_add(NN_PROF_GEMM, nn_prof_now() - t0, 8.0 * (double)rows * (double)l->C * (double)F);
}

void nn_mlp_forward_ref(const nn_mlp *l, const double *P, const double *x, double *y, int64_t rows)
{
    double *h = malloc(sizeof(double) * (size_t)(rows * l->F));
    nn_dense_forward_ref(&l->fc, P, x, h, rows);
    nn_gelu_forward_ref(h, h, rows * l->F);
    nn_dense_forward_ref(&l->proj, P, h, y, rows);
    free(h);
}

void nn_mlp_backward_ref(const nn_mlp *l, const double *P, const double *x, const double *dy, double *dx,
                         double *dP, int64_t rows)
{
    size_t n = (size_t)(rows * l->F);
    double *h = malloc(sizeof(double) * n), *a = malloc(sizeof(double) * n);
    double *da = calloc(n, sizeof(double)), *dh = calloc(n, sizeof(double));
    nn_dense_forward_ref(&l->fc, P, x, h, rows);
    nn_gelu_forward_ref(h, a, rows * l->F);
    nn_dense_backward_ref(&l->proj, P, a, dy, da, dP, rows);
    nn_gelu_backward_ref(h, da, dh, rows * l->F);
    nn_dense_backward_ref(&l->fc, P, x, dh, dx, dP, rows);
    free(h);
    free(a);
    free(da);
    free(dh);
}
