/* Kernels from shared objects (include/attnbench/plugin.h): loading, the
 * ABI check, and the attn_kernel each plugin kernel becomes in the
 * registry. */
#ifndef ATTN_PLUGIN_H
#define ATTN_PLUGIN_H

#include "include/attnbench/plugin.h"
#include "kernels/core/attn.h"

/* Loads path and adds its kernels to the registry. A missing file, a
 * missing symbol, another ABI version, a malformed kernel or a name that is
 * taken is an error naming the file (nothing of that file is added). Paths
 * loaded are appended to ATTNBENCH_PLUGINS, so child processes (the
 * simulated counters' `attnbench bench`) load them too; a path already
 * loaded is not loaded twice. */
int plugin_load(const char *path);

/* Every path of ATTNBENCH_PLUGINS (':'-separated), then every
 * `--plugin PATH` / `--plugin=PATH` of argv, which are removed from it. */
int plugin_load_all(int *argc, char **argv);

/* The attn_kernel for plugin kernel p from path (allocated for the
 * process's life); NULL with a message when p is malformed. */
const attn_kernel *plugin_kernel_adapt(const attnbench_plugin_kernel *p, const char *path);
/* Frees an adapter that never joined the registry (its file was refused). */
void plugin_kernel_free(const attn_kernel *k);

#endif
