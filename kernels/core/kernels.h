/* Every registered kernel object; registry.c lists them in one table. */
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H

#include "attn.h"

extern const attn_kernel attn_kernel_oracle;
extern const attn_kernel attn_kernel_naive;
extern const attn_kernel attn_kernel_blas;
extern const attn_kernel attn_kernel_flash;
extern const attn_kernel attn_kernel_decode;
extern const attn_kernel attn_kernel_lean;

#endif
