/* `combiner`: Combiner attention (Ren, Dai, Dai, Yang, Leskovec, Schuurmans,
 * Dai 2021, "Combiner: Full Attention Transformer with Sparse Computation
 * Cost"; docs/kernels/combiner.md): exact attention to the own span, one
 * summary per other span (fixed) or per column of the other rows (axial)
 * with a query-independent inner distribution, one softmax over both. The
 * math is in combiner_internal.h. */
#ifndef ATTN_COMBINER_H
#define ATTN_COMBINER_H

#include "combiner_internal.h"

extern const attn_kernel attn_kernel_combiner;

#endif
