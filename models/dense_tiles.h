/* The fixed-size tasks every dense entry point is made of (dense.c), for the
 * callers that fuse several layers into one OpenMP loop (the MLP, the q/k/v
 * projections): each task is the same single-threaded sgemm whoever calls
 * it, so a fused loop computes the bits of the separate calls. Call these
 * inside an OpenMP loop, after openblas_set_num_threads(1). */
#ifndef NN_DENSE_TILES_H
#define NN_DENSE_TILES_H

#include "layers.h"

/* tasks of the forward and of dx (tiles of rows), and of dW, db (blocks of
 * output features) */
int64_t nn_dense_row_tasks(int64_t rows);
int64_t nn_dense_out_tasks(const nn_dense *l);
/* the first row of row task t and its row count */
int64_t nn_dense_row0(int64_t t);
int nn_dense_row_count(int64_t rows, int64_t t);

/* forward row task t: y[tile] = x[tile] W^T + b */
void nn_dense_forward_task(const nn_dense *l, const float *x, float *y, int64_t rows, int64_t t);
/* dx row task t: dx[tile] (=, or += when accumulate) dy[tile] W */
void nn_dense_dx_task(const nn_dense *l, const float *dy, float *dx, int64_t rows, int64_t t, int accumulate);
/* dW, db task t: dW[block] += dy[:, block]^T x, db[block] += column sums of dy */
void nn_dense_dw_task(const nn_dense *l, const float *x, const float *dy, int64_t rows, int64_t t);

/* openblas_set_num_threads(1) (cblas.h stays inside dense.c) */
void nn_dense_blas_single(void);

#endif
