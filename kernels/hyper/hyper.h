/* `hyper`: HyperAttention (Han, Jayaram, Karbasi, Mirrokni, Woodruff, Zandieh
 * 2023): heavy entries found by sorted LSH blocks, the rest estimated from
 * uniform key samples, causal by recursive halving; forward only. */
#ifndef ATTN_HYPER_H
#define ATTN_HYPER_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_hyper;

#endif
