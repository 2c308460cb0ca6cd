/* The one table of kernels (kernels/core/registry.c). */
#ifndef ATTN_REGISTRY_H
#define ATTN_REGISTRY_H

#include "attn.h"

/* NULL-terminated list, in table order. */
const attn_kernel *const *attn_registry(void);
int attn_registry_count(void);

/* NULL and a message listing the valid names if `name` is unknown. */
const attn_kernel *attn_find_kernel(const char *name);

/* Appends a kernel from outside the table (a plugin's) after the built-in
 * ones; its name must be new. The kernel object must outlive the process's
 * use of the registry. */
#define ATTN_REGISTRY_EXTRA 64
int attn_registry_add(const attn_kernel *k);

#endif
