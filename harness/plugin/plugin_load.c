/* Loading plugin shared objects (plugin.h). */
#include "plugin.h"

#include "kernels/core/registry.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLUGINS_ENV "ATTNBENCH_PLUGINS"

/* The paths loaded so far, ':'-separated (as the variable spells them). */
static char loaded[4096];

static int is_loaded(const char *path)
{
    size_t n = strlen(path);
    for (const char *p = loaded; (p = strstr(p, path)) != NULL; p += n)
        if ((p == loaded || p[-1] == ':') && (p[n] == ':' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Child processes load what this one did. */
static void remember(const char *path)
{
    snprintf(loaded + strlen(loaded), sizeof loaded - strlen(loaded), "%s%s", loaded[0] ? ":" : "", path);
    setenv(PLUGINS_ENV, loaded, 1);
}

typedef int (*abi_fn)(void);
typedef const attnbench_plugin_kernel *const *(*kernels_fn)(void);

/* Whether k[n]'s name clashes with an earlier one of the list or the registry. */
static int name_taken(const attn_kernel *const *k, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(k[i]->name, k[n]->name))
            return attn_fail(ATTN_EINVAL, "%s: kernel '%s' is listed twice", path, k[n]->name);
    if (attn_find_kernel(k[n]->name))
        return attn_fail(ATTN_EINVAL, "%s: kernel '%s': the name is taken by a kernel already registered", path,
                         k[n]->name);
    return 0;
}

/* Adapts every kernel of the list before adding any: a bad one adds none
 * (and the adapters made so far are freed). */
static int add_kernels(const attnbench_plugin_kernel *const *list, const char *path)
{
    const attn_kernel *k[ATTN_REGISTRY_EXTRA];
    int n = 0, rc = 0;
    for (; !rc && list[n]; n++) {
        if (n >= ATTN_REGISTRY_EXTRA)
            rc = attn_fail(ATTN_EINVAL, "%s: more than %d kernels", path, ATTN_REGISTRY_EXTRA);
        else if (!(k[n] = plugin_kernel_adapt(list[n], path)))
            rc = ATTN_EINVAL;
        else if ((rc = name_taken(k, n, path)))
            n++; /* k[n] exists: freed below */
        if (rc)
            break;
    }
    if (!rc && n == 0)
        rc = attn_fail(ATTN_EINVAL, "%s: attnbench_plugin_kernels() lists no kernel", path);
    int added = 0; /* registered adapters belong to the registry from then on */
    while (!rc && added < n)
        if (attn_registry_add(k[added]))
            rc = attn_fail(ATTN_EINVAL, "%s: %s", path, attn_last_error());
        else
            added++;
    if (rc)
        for (int i = added; i < n && i < ATTN_REGISTRY_EXTRA; i++)
            plugin_kernel_free(k[i]);
    return rc;
}

int plugin_load(const char *path)
{
    if (is_loaded(path))
        return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return attn_fail(ATTN_EINVAL, "plugin %s: cannot load: %s", path, dlerror());
    abi_fn abi = (abi_fn)dlsym(h, "attnbench_plugin_abi");
    kernels_fn kernels = (kernels_fn)dlsym(h, "attnbench_plugin_kernels");
    int rc = 0;
    if (!abi || !kernels)
        rc = attn_fail(ATTN_EINVAL, "plugin %s: missing symbol %s (a plugin exports attnbench_plugin_abi and "
                       "attnbench_plugin_kernels; include/attnbench/plugin.h)", path,
                       !abi ? "attnbench_plugin_abi" : "attnbench_plugin_kernels");
    else if (abi() != ATTNBENCH_PLUGIN_ABI)
        rc = attn_fail(ATTN_EINVAL, "plugin %s: built for plugin ABI %d, this attnbench has ABI %d (rebuild it "
                       "against this include/attnbench/plugin.h)", path, abi(), ATTNBENCH_PLUGIN_ABI);
    else if (!kernels())
        rc = attn_fail(ATTN_EINVAL, "plugin %s: attnbench_plugin_kernels() returned NULL", path);
    else
        rc = add_kernels(kernels(), path);
    if (rc) {
        dlclose(h);
        return rc;
    }
    remember(path); /* the handle stays open: its kernels are in the registry */
    return 0;
}

/* One ':'-separated list of paths. */
static int load_list(const char *list)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *p = strtok_r(buf, ":", &save); p; p = strtok_r(NULL, ":", &save))
        if (plugin_load(p))
            return ATTN_EINVAL;
    return 0;
}

int plugin_load_all(int *argc, char **argv)
{
    const char *env = getenv(PLUGINS_ENV);
    if (env && env[0] && load_list(env))
        return attn_fail(ATTN_EINVAL, "%s: %s", PLUGINS_ENV, attn_last_error());
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--plugin")) {
            if (i + 1 >= *argc)
                return attn_fail(ATTN_EINVAL, "--plugin: expected a path to a shared object");
            path = argv[++i];
        } else if (!strncmp(argv[i], "--plugin=", 9)) {
            path = argv[i] + 9;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (plugin_load(path))
            return ATTN_EINVAL;
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}
