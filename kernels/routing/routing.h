/* `routing`: Routing Transformer attention (Roy, Saffar, Vaswani, Grangier
 * 2021, "Efficient Content-Based Sparse Attention with Routing
 * Transformers"; docs/kernels/routing.md). Queries and keys are routed to
 * unit centroids (io.w, updated by EMA through train_update) and attend
 * within their cluster. The math and the shared pieces are in
 * routing_internal.h. */
#ifndef ATTN_ROUTING_H
#define ATTN_ROUTING_H

#include "routing_internal.h"

extern const attn_kernel attn_kernel_routing;

#endif
