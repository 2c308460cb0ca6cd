/* `flash`: exact softmax attention in tiles with an online softmax, so the
 * score matrix is never stored (Dao 2023, FlashAttention-2), forward and
 * backward; its building blocks are in flash_internal.h. */
#ifndef ATTN_FLASH_H
#define ATTN_FLASH_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_flash;

#endif
