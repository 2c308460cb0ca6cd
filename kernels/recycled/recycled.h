/* `recycled`: Recycled Attention (Xu, Goyal, Choi 2024, "Recycled Attention:
 * Efficient inference for long-context language models";
 * docs/kernels/recycled.md). Decode alternates full steps and recycled
 * steps. A full step attends to the whole cache and keeps the top-K keys by
 * attention weight summed over the G query heads of its KV group (ties: the
 * lower position), gathered into a small cache; the next S-1 steps attend
 * only to that small cache plus the keys that arrived since the full step.
 * Query rows are successive decode steps in position order; `phase` says
 * which step of the cycle row 0 is, so one call can be a full or a recycled
 * step. */
#ifndef ATTN_RECYCLED_H
#define ATTN_RECYCLED_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_recycled;

#define RC_DEFAULT_S 10
#define RC_DEFAULT_K 4096

#endif
