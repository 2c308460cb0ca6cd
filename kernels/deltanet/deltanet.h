/* DeltaNet and gated DeltaNet (docs/kernels/deltanet.md): linear attention whose
 * state is written by the delta rule,
 *   S_t = a_t S_{t-1} (I - b_t k_t k_t^T) + b_t v_t k_t^T,   o_t = sc S_t q_t,
 * with keys L2-normalised inside the kernel, b_t from io.beta and (gated)
 * a_t = exp(g_t) from io.gate. */
#ifndef ATTN_DELTANET_H
#define ATTN_DELTANET_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_deltanet;
extern const attn_kernel attn_kernel_gated_deltanet;

#endif
