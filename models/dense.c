/* Dense (fully connected) layer: y = x W^T + b with W (out, in), as
 * PyTorch's nn.Linear. The fast path is cblas_sgemm on fixed-size tiles of
 * rows (forward, dx) or of output features (dW, db). */
#include "dense_tiles.h"
#include "profile.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

size_t nn_dense_param_count(int64_t in, int64_t out, int bias)
{
    nn_dense l;
    nn_blob cnt = {0};
    return nn_dense_bind(&l, in, out, bias, &cnt) ? SIZE_MAX : cnt.used;
}

int nn_dense_bind(nn_dense *l, int64_t in, int64_t out, int bias, nn_blob *blob)
{
    if (in < 1 || out < 1)
        return attn_fail(ATTN_EINVAL, "dense: expected in, out >= 1, found in=%lld out=%lld", (long long)in,
                         (long long)out);
    *l = (nn_dense){.in = in, .out = out, .bias = bias};
    l->off_w = nn_blob_take(blob, (size_t)(in * out), &l->w, &l->dw);
    if (l->off_w == SIZE_MAX)
        return ATTN_EINVAL;
    if (bias && (l->off_b = nn_blob_take(blob, (size_t)out, &l->b, &l->db)) == SIZE_MAX)
        return ATTN_EINVAL;
    return 0;
}

void nn_dense_init(const nn_dense *l, attn_rng *r)
{
    float bound = (float)(1.0 / sqrt((double)l->in));
    for (int64_t i = 0; i < l->in * l->out; i++)
        l->w[i] = attn_rng_range(r, -bound, bound);
    for (int64_t o = 0; l->bias && o < l->out; o++)
        l->b[o] = 0.0f;
}

/* Work is split into tasks of a FIXED size (not a per-thread share), each one
 * single-threaded sgemm inside the OpenMP loop (layers.h "Threads"): every
 * output element is computed by the same sgemm call whatever the thread count,
 * so results are bitwise independent of it. dense_tiles.h exports the tasks. */
#define DENSE_ROWS 64   /* rows of x / y / dx per task */
#define DENSE_OUTS 64   /* rows of dW (output features) per task: each task packs all
                         * of x, so wider tasks pack it fewer times */

static int64_t tasks_of(int64_t n, int64_t per) { return (n + per - 1) / per; }
static int chunk(int64_t n, int64_t per, int64_t t) { return (int)(n - t * per < per ? n - t * per : per); }

int64_t nn_dense_row_tasks(int64_t rows) { return tasks_of(rows, DENSE_ROWS); }
int64_t nn_dense_out_tasks(const nn_dense *l) { return tasks_of(l->out, DENSE_OUTS); }
int64_t nn_dense_row0(int64_t t) { return t * DENSE_ROWS; }
int nn_dense_row_count(int64_t rows, int64_t t) { return chunk(rows, DENSE_ROWS, t); }
void nn_dense_blas_single(void) { openblas_set_num_threads(1); }

void nn_dense_forward_task(const nn_dense *l, const float *x, float *y, int64_t rows, int64_t t)
{
    int in = (int)l->in, out = (int)l->out;
    int64_t r0 = t * DENSE_ROWS;
    int m = chunk(rows, DENSE_ROWS, t);
    /* the bias first, then beta 1: one rounding of (x W^T) + b as adding b
     * after a beta-0 call, without OpenBLAS's zeroing pass over the tile */
    for (int64_t r = r0; l->bias && r < r0 + m; r++)
        memcpy(y + r * out, l->b, sizeof(float) * (size_t)out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, out, in, 1.0f, x + r0 * in, in, l->w, in,
                l->bias ? 1.0f : 0.0f, y + r0 * out, out);
}

/* beta 0 (overwrite) gives the bits of beta 1 on a zeroed dx: 0 + s = s */
void nn_dense_dx_task(const nn_dense *l, const float *dy, float *dx, int64_t rows, int64_t t, int accumulate)
{
    int in = (int)l->in, out = (int)l->out;
    int64_t r0 = t * DENSE_ROWS;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, chunk(rows, DENSE_ROWS, t), in, out, 1.0f,
                dy + r0 * out, out, l->w, in, accumulate ? 1.0f : 0.0f, dx + r0 * in, in);
}

/* dW[o0:o1] += dy[:, o0:o1]^T x and db[o0:o1]: each task sums all rows in a fixed order */
void nn_dense_dw_task(const nn_dense *l, const float *x, const float *dy, int64_t rows, int64_t t)
{
    int in = (int)l->in, out = (int)l->out;
    int64_t o0 = t * DENSE_OUTS;
    int mo = chunk(out, DENSE_OUTS, t);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mo, in, (int)rows, 1.0f, dy + o0, out, x, in, 1.0f,
                l->dw + o0 * in, in);
    if (l->bias) { /* each column summed over rows in order, the task's columns side by side */
        float s[DENSE_OUTS] = {0};
        for (int64_t r = 0; r < rows; r++)
            for (int j = 0; j < mo; j++)
                s[j] += dy[r * out + o0 + j];
        for (int j = 0; j < mo; j++)
            l->db[o0 + j] += s[j];
    }
}

static double gemm_flops(const nn_dense *l, int64_t rows) { return 2.0 * (double)rows * (double)l->in * (double)l->out; }

void nn_dense_forward_n(const nn_dense *const *l, int n, const float *x, float *const *y, int64_t rows, int threads)
{
    double t0 = nn_prof_enabled() ? nn_prof_now() : 0, flops = 0;
    int64_t row_tasks = tasks_of(rows, DENSE_ROWS);
    openblas_set_num_threads(1);
    /* a task's layers run one after the other on its tile of x, still in cache */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < row_tasks; t++)
        for (int i = 0; i < n; i++)
            nn_dense_forward_task(l[i], x, y[i], rows, t);
    for (int i = 0; i < n; i++)
        flops += gemm_flops(l[i], rows);
    if (t0 > 0)
        nn_prof_add(NN_PROF_GEMM, nn_prof_now() - t0, flops);
}

// x is (rows, in), y is (rows, out)
void nn_dense_forward(const nn_dense *l, const float *x, float *y, int64_t rows, int threads)
{
    nn_dense_forward_n(&l, 1, x, &y, rows, threads);
}

void nn_dense_backward_n(const nn_dense *const *l, int n, const float *x, const float *const *dy, float *dx,
                         int accumulate, int64_t rows, int threads)
{
    if (rows < 1)
        return;
    double t0 = nn_prof_enabled() ? nn_prof_now() : 0, flops = 0;
    int64_t row_tasks = dx ? tasks_of(rows, DENSE_ROWS) : 0, dw_tasks = 0, first[NN_DENSE_MAX_FUSED + 1];
    for (int i = 0; i < n; i++)
        first[i] = dw_tasks, dw_tasks += nn_dense_out_tasks(l[i]);
    first[n] = dw_tasks;
    openblas_set_num_threads(1);
    /* The few large dW tasks (of every layer) first, then the many small dx
     * tasks, both handed out dynamically: whichever thread finishes its dW
     * task early takes dx tasks, so a layer with one dW task does not leave a
     * thread idle (tasks are fixed, so the thread that runs one does not
     * matter). A dx task adds the layers' products in layer order. */
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic) nowait
        for (int64_t t = 0; t < dw_tasks; t++) {
            int i = 0;
            while (t >= first[i + 1])
                i++;
            nn_dense_dw_task(l[i], x, dy[i], rows, t - first[i]);
        }
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < row_tasks; t++)
            for (int i = 0; i < n; i++)
                nn_dense_dx_task(l[i], dy[i], dx, rows, t, accumulate || i > 0);
    }
    for (int i = 0; i < n; i++)
        flops += gemm_flops(l[i], rows) * (dx ? 2 : 1);
    if (t0 > 0)
        nn_prof_add(NN_PROF_GEMM, nn_prof_now() - t0, flops);
}

// dy is (rows, out); dx (rows, in) += dy W; dW += dy^T x; db += sum_rows dy
void nn_dense_backward(const nn_dense *l, const float *x, const float *dy, float *dx, int64_t rows,
                       int threads)
{
    nn_dense_backward_n(&l, 1, x, &dy, dx, 1, rows, threads);
}

void nn_dense_forward_ref(const nn_dense *l, const double *P, const double *x, double *y, int64_t rows)
{
    const double *w = P + l->off_w;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < l->out; o++) {
            double s = l->bias ? P[l->off_b + o] : 0.0;
            for (int64_t i = 0; i < l->in; i++)
                s += x[r * l->in + i] * w[o * l->in + i];
            y[r * l->out + o] = s;
        }
}

void nn_dense_backward_ref(const nn_dense *l, const double *P, const double *x, const double *dy,
                           double *dx, double *dP, int64_t rows)
{
    const double *w = P + l->off_w;
    double *dw = dP + l->off_w;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < l->out; o++) {
            double g = dy[r * l->out + o];
            if (l->bias)
                dP[l->off_b + o] += g;
            for (int64_t i = 0; i < l->in; i++) {
                if (dx)
                    dx[r * l->in + i] += g * w[o * l->in + i];
                dw[o * l->in + i] += g * x[r * l->in + i];
            }
        }
}
