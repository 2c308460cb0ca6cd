/* `streaming`: StreamingLLM attention sinks + sliding window (Xiao et al. 2023;
 * docs/kernels/streaming.md), with a real rolling KV cache for decode. */
#ifndef ATTN_STREAMING_H
#define ATTN_STREAMING_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_streaming;

/* Slots of the rolling cache of one (b, KV head): n_sink sinks plus the query
 * and its wl predecessors (mask SINK_WINDOW sink:n=n_sink,w=wl). */
static inline int64_t attn_streaming_cache_slots(const attn_mask *m) { return m->n_sink + m->wl + 1; }

#endif
