/* `probsparse`: Informer's ProbSparse self-attention (Zhou et al. 2021,
 * "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
 * Forecasting"; docs/kernels/probsparse.md). The u queries with the largest
 * sparsity measure, estimated from U sampled keys each, get exact softmax
 * attention; every other query outputs the mean of the values it may
 * attend. Forward only. */
#ifndef ATTN_PROBSPARSE_H
#define ATTN_PROBSPARSE_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_probsparse;

#endif
