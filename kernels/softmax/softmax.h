/* The plain softmax kernels: `naive` (the textbook three passes, one query
 * row at a time, in fp32) and `blas` (S = QK^T and O = PV as sgemm calls on
 * whole score blocks). Both materialise scores; they are the baselines the
 * streaming kernels are measured against. */
#ifndef ATTN_SOFTMAX_H
#define ATTN_SOFTMAX_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_naive;
extern const attn_kernel attn_kernel_blas;

#endif
