/* The one table of kernels (kernels/core/registry.c). */
#ifndef ATTN_REGISTRY_H
#define ATTN_REGISTRY_H

#include "attn.h"

/* NULL-terminated list, in table order. */
const attn_kernel *const *attn_registry(void);
int attn_registry_count(void);

/* NULL and a message listing the valid names if `name` is unknown. */
const attn_kernel *attn_find_kernel(const char *name);

#endif
