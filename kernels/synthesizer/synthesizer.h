/* `synthesizer`: Synthesizer attention (Tay et al., "Synthesizer: Rethinking
 * Self-Attention in Transformer Models", ICML 2021; docs/kernels/synthesizer.md):
 * softmax attention over learned ("synthetic") logits, optionally beside the
 * dot-product ones. The synthetic weights arrive through ATTN_IN_WEIGHTS. */
#ifndef ATTN_SYNTHESIZER_H
#define ATTN_SYNTHESIZER_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_synthesizer;

#endif
