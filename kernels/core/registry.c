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
    X(ponet) \
    X(tcnca) \
    X(lowrank_mha) \
    X(landmark) \
    X(infini) \
    X(titans) \
    X(atlas) \
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
static const attn_kernel *const builtin[] = {ATTN_REGISTERED_KERNELS(ADDRESS) NULL};
#undef ADDRESS
#define N_BUILTIN ((int)(sizeof builtin / sizeof builtin[0]) - 1)

/* The built-in kernels, then those added at run time (plugins), NULL-terminated. */
static const attn_kernel *table[N_BUILTIN + ATTN_REGISTRY_EXTRA + 1];
static int n_table;

static void table_init(void)
{
    if (n_table)
        return;
    for (int i = 0; i < N_BUILTIN; i++)
        table[n_table++] = builtin[i];
}

const attn_kernel *const *attn_registry(void)
{
    table_init();
    return table;
}

int attn_registry_count(void)
{
    table_init();
    return n_table;
}

int attn_registry_add(const attn_kernel *k)
{
    table_init();
    for (int i = 0; i < n_table; i++)
        if (!strcmp(table[i]->name, k->name))
            return attn_fail(ATTN_EINVAL, "kernel '%s': the name is taken (by %s)", k->name,
                             i < N_BUILTIN ? "a built-in kernel" : "a kernel loaded before");
    if (n_table >= N_BUILTIN + ATTN_REGISTRY_EXTRA)
        return attn_fail(ATTN_EINVAL, "kernel '%s': at most %d kernels can be added", k->name, ATTN_REGISTRY_EXTRA);
    table[n_table++] = k;
    return 0;
}

const attn_kernel *attn_find_kernel(const char *name)
{
    char names[1024] = "";
    for (const attn_kernel *const *k = attn_registry(); *k; k++) {
        if (strcmp((*k)->name, name) == 0)
            return *k;
        strncat(names, k == table ? "" : ", ", sizeof names - strlen(names) - 1);
        strncat(names, (*k)->name, sizeof names - strlen(names) - 1);
    }
    attn_fail(ATTN_EINVAL, "unknown kernel '%s': expected one of %s", name, names);
    return NULL;
}
