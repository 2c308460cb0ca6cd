/* 64-byte aligned buffers: kernels' workspaces, tensors and model weights
 * are allocated here so every vector load may assume the alignment. */
#ifndef ATTN_COMMON_ALLOC_H
#define ATTN_COMMON_ALLOC_H

#include <stddef.h>

/* A buffer of at least `bytes` (rounded up to 64), aligned to 64; NULL on failure. */
void *attn_alloc(size_t bytes);
void attn_free(void *p);

#endif
