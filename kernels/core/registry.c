/* The one table of kernels. Adding a kernel = its code in its family folder,
 * one line in the list below, and its test file. A kernel that is not
 * finished is not listed. */
#include "registry.h"

#include <string.h>

/* Every registered kernel, in the order `list` shows them: one line each.
 * Each name is the attn_kernel object attn_kernel_<name> that the kernel's
 * family folder defines (kernels/<family>/). */
#define ATTN_REGISTERED_KERNELS(X) \
    X(oracle) \
    X(naive) \
    X(blas) \
    X(flash) \
    X(decode) \
    X(lean) \
    X(linear) \
    X(based) \
    X(streaming) \
    X(local_linear) \
    X(deltanet) \
    X(gated_deltanet) \
    X(retnet) \
    X(gla) \
    X(lightning) \
    X(sse) \
    X(sigmoid) \
    X(aaren) \
    X(gam) \
    X(landmark) \
    X(infini) \
    X(sinkhorn) \
    X(synthesizer) \
    X(reformer) \
    X(performer) \
    X(linformer) \
    X(nystrom) \
    X(cca) \
    X(probsparse) \
    X(combiner) \
    X(hyper) \
    X(routing) \
    X(retrieval) \
    X(recycled) \
    X(hip)

#define DECLARE(name) extern const attn_kernel attn_kernel_##name;
ATTN_REGISTERED_KERNELS(DECLARE)
#undef DECLARE

#define ADDRESS(name) &attn_kernel_##name,
static const attn_kernel *const table[] = {ATTN_REGISTERED_KERNELS(ADDRESS) NULL};
#undef ADDRESS

const attn_kernel *const *attn_registry(void) { return table; }

int attn_registry_count(void) { return (int)(sizeof table / sizeof table[0]) - 1; }

const attn_kernel *attn_find_kernel(const char *name)
{
    char names[1024] = "";
    for (const attn_kernel *const *k = table; *k; k++) {
        if (strcmp((*k)->name, name) == 0)
            return *k;
        strncat(names, k == table ? "" : ", ", sizeof names - strlen(names) - 1);
        strncat(names, (*k)->name, sizeof names - strlen(names) - 1);
    }
    attn_fail(ATTN_EINVAL, "unknown kernel '%s': expected one of %s", name, names);
    return NULL;
}
