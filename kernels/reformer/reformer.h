/* `reformer`: LSH attention (Kitaev, Kaiser, Levskaya 2020, "Reformer: The
 * Efficient Transformer"; docs/kernels/reformer.md). Shared QK: the keys are
 * the queries normalised to unit length, the K input is not read (dK = 0).
 * The math and the shared pieces are in reformer_internal.h. */
#ifndef ATTN_REFORMER_H
#define ATTN_REFORMER_H

#include "reformer_internal.h"

extern const attn_kernel attn_kernel_reformer;

#endif
