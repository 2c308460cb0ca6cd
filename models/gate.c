/* GTrXL's GRU-type gate in place of a residual add (layers.h nn_gate). The
 * six C x C maps are dense layers of the parameter blob; the elementwise
 * parts are plain loops split by OpenMP over elements (each element computed
 * by the same code whatever the thread count). */
#include "layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nn_gate_bind(nn_gate *l, int64_t C, nn_blob *blob)
{
    l->C = C;
    nn_dense *maps[] = {&l->wr, &l->ur, &l->wz, &l->uz, &l->wg, &l->ug};
    for (int i = 0; i < 6; i++) {
        int rc = nn_dense_bind(maps[i], C, C, maps[i] == &l->wz, blob);
        if (rc)
            return rc;
    }
    return 0;
}

void nn_gate_init(const nn_gate *l, attn_rng *r)
{
    const nn_dense *maps[] = {&l->wr, &l->ur, &l->wz, &l->uz, &l->wg, &l->ug};
    for (int i = 0; i < 6; i++)
        nn_dense_init(maps[i], r);
    for (int64_t o = 0; o < l->C; o++)
        l->wz.b[o] = -NN_GATE_BIAS;
}

int nn_gate_acts_bind(const nn_gate *l, int64_t rows, nn_blob *buf, nn_gate_acts *a)
{
    float **bufs[] = {&a->u, &a->r, &a->z, &a->rx, &a->h};
    for (int i = 0; i < 5; i++)
        if (nn_blob_take(buf, (size_t)(rows * l->C), bufs[i], NULL) == SIZE_MAX)
            return ATTN_ENOMEM;
    return 0;
}

static float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

void nn_gate_forward(const nn_gate *l, const float *x, const float *s, nn_gate_acts *a, float *tmp, float *y,
                     int64_t rows, int threads)
{
    int64_t n = rows * l->C;
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        a->u[i] = s[i] > 0 ? s[i] : 0;
    nn_dense_forward(&l->wr, a->u, a->r, rows, threads);
    nn_dense_forward(&l->ur, x, tmp, rows, threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        a->r[i] = sigmoidf(a->r[i] + tmp[i]);
        a->rx[i] = a->r[i] * x[i];
    }
    nn_dense_forward(&l->wz, a->u, a->z, rows, threads);
    nn_dense_forward(&l->uz, x, tmp, rows, threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        a->z[i] = sigmoidf(a->z[i] + tmp[i]);
    nn_dense_forward(&l->wg, a->u, a->h, rows, threads);
    nn_dense_forward(&l->ug, a->rx, tmp, rows, threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        a->h[i] = tanhf(a->h[i] + tmp[i]);
        y[i] = (1.0f - a->z[i]) * x[i] + a->z[i] * a->h[i];
    }
}

void nn_gate_backward(const nn_gate *l, const float *x, const nn_gate_acts *a, const float *dy, float *dx,
                      float *ds, float *t1, float *t2, int64_t rows, int threads)
{
    int64_t n = rows * l->C;
    size_t bytes = sizeof(float) * (size_t)n;
    /* t1 = d(pre-tanh) of h; dx starts with the direct path (1 - z) dy */
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        t1[i] = dy[i] * a->z[i] * (1.0f - a->h[i] * a->h[i]);
        dx[i] = dy[i] * (1.0f - a->z[i]);
    }
    memset(ds, 0, bytes);
    memset(t2, 0, bytes);
    nn_dense_backward(&l->wg, a->u, t1, ds, rows, threads);
    nn_dense_backward(&l->ug, a->rx, t1, t2, rows, threads); /* t2 = d(r * x) */
    /* t1 = d(pre-sigmoid) of r; dx += r d(r * x) */
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float r = a->r[i];
        t1[i] = t2[i] * x[i] * r * (1.0f - r);
        dx[i] += t2[i] * r;
    }
    nn_dense_backward(&l->wr, a->u, t1, ds, rows, threads);
    nn_dense_backward(&l->ur, x, t1, dx, rows, threads);
    /* t1 = d(pre-sigmoid) of z, from dz = dy (h - x) */
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float z = a->z[i];
        t1[i] = dy[i] * (a->h[i] - x[i]) * z * (1.0f - z);
    }
    nn_dense_backward(&l->wz, a->u, t1, ds, rows, threads);
    nn_dense_backward(&l->uz, x, t1, dx, rows, threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        ds[i] = a->u[i] > 0 ? ds[i] : 0;
}

/* The same gate in double precision from plain loops (nn_dense_forward_ref),
 * for the whole-model gradient check. */
int nn_gate_forward_ref(const nn_gate *l, const double *P, const double *x, const double *s, double *y,
                        int64_t rows)
{
    size_t n = (size_t)(rows * l->C);
    double *u = calloc(n, sizeof *u), *r = calloc(n, sizeof *r), *z = calloc(n, sizeof *z);
    double *h = calloc(n, sizeof *h), *t = calloc(n, sizeof *t);
    if (u && r && z && h && t) {
        for (size_t i = 0; i < n; i++)
            u[i] = s[i] > 0 ? s[i] : 0;
        nn_dense_forward_ref(&l->wr, P, u, r, rows);
        nn_dense_forward_ref(&l->ur, P, x, t, rows);
        for (size_t i = 0; i < n; i++)
            r[i] = 1.0 / (1.0 + exp(-(r[i] + t[i]))), r[i] *= x[i]; /* r now holds r * x */
        nn_dense_forward_ref(&l->wz, P, u, z, rows);
        nn_dense_forward_ref(&l->uz, P, x, t, rows);
        nn_dense_forward_ref(&l->wg, P, u, h, rows);
        nn_dense_forward_ref(&l->ug, P, r, u, rows); /* u is free again */
        for (size_t i = 0; i < n; i++) {
            double zi = 1.0 / (1.0 + exp(-(z[i] + t[i]))), hi = tanh(h[i] + u[i]);
            y[i] = (1.0 - zi) * x[i] + zi * hi;
        }
    }
    int ok = u && r && z && h && t;
    free(u), free(r), free(z), free(h), free(t);
    return ok ? 0 : attn_fail(ATTN_ENOMEM, "gate reference: out of memory");
}
