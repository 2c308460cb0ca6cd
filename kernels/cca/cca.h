/* `cca`: Core Context Aware attention, prefill side (Chen et al. 2024, "Core
 * Context Aware Transformers for Long Context Language Modeling", arXiv
 * 2412.12465; docs/kernels/cca.md). The math is in cca_internal.h. */
#ifndef ATTN_CCA_H
#define ATTN_CCA_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_cca;

#endif
