/* `hip`: HiP attention (Lee et al. 2024, hierarchically pruned attention;
 * docs/kernels/hip.md): per query head, a coarse-to-fine search keeps the k
 * key blocks whose representatives score highest, then exact softmax over
 * them (plus sinks, a window and the keys that arrived since the search). */
#ifndef ATTN_HIP_H
#define ATTN_HIP_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_hip;

#endif
