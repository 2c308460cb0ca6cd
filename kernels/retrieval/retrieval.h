/* `retrieval`: RetrievalAttention (Liu et al. 2024, "RetrievalAttention:
 * Accelerating Long-Context LLM Inference via Vector Retrieval";
 * docs/kernels/retrieval.md). Decode-time attention: each query row attends
 * exactly to a static set (the first n_sink and the w most recent positions)
 * and to the r keys of largest <q, k> retrieved from an IVF index (k-means
 * lists) over the rest of its causal past. The math and the shared pieces
 * are in retrieval_internal.h. */
#ifndef ATTN_RETRIEVAL_H
#define ATTN_RETRIEVAL_H

#include "retrieval_internal.h"

extern const attn_kernel attn_kernel_retrieval;
extern const opt_def attn_retrieval_params[];

/* What the last forward of a `retrieval` context spent on its index, so a
 * result row can carry build time and index memory apart from the
 * search + attention time: build_seconds is the wall time of the build
 * loop (0 when build=once reused the index), index_bytes the index of the
 * whole batch (centroids, list offsets, members, radii; the K/V cache not
 * included), stages the index stages per (b, KV head). */
typedef struct {
    double build_seconds;
    size_t index_bytes;
    int stages;
    int reused;
} attn_retrieval_stats;

/* Fills *s from ctx (a context of the `retrieval` kernel after a forward):
 * 0, or ATTN_EINVAL with a message for another kernel's context. */
int attn_retrieval_stats_of(const attn_ctx *ctx, attn_retrieval_stats *s);

#endif
