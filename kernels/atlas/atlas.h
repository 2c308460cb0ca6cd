/* ATLAS memory (docs/kernels/atlas.md): a linear memory over feature-mapped
 * keys trained at test time by the Omega rule -- a gradient step on the
 * weighted regression loss of the last c tokens, with momentum and a
 * retention gate -- read by the feature-mapped queries. Gates per token from
 * io.beta (step), io.gate (log retention) and io.router (momentum and
 * window-weight logits). */
#ifndef ATTN_ATLAS_H
#define ATTN_ATLAS_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_atlas;

#endif
