/* Plugins that must be refused at load, one per defect, chosen at build
 * time: -DWRONG_ABI (built for another ABI version), -DNO_KERNELS (a symbol
 * missing), -DCLASH (a kernel named like a built-in one). */
#include <attnbench/plugin.h>

static int fwd(const attnbench_problem *p, const attnbench_io *io, void *ws, char *err, size_t n)
{
    (void)p, (void)io, (void)ws, (void)err, (void)n;
    return 1;
}

const attnbench_plugin_kernel bad_plugin_kernel = {
#ifdef CLASH
    .name = "flash",
#else
    .name = "bad_plugin_kernel",
#endif
    .family = "test", .reference = "test", .flags = ATTNBENCH_EXACT, .forward = fwd};

#ifdef WRONG_ABI
int attnbench_plugin_abi(void) { return ATTNBENCH_PLUGIN_ABI + 1; }
#else
int attnbench_plugin_abi(void) { return ATTNBENCH_PLUGIN_ABI; }
#endif

#ifndef NO_KERNELS
const attnbench_plugin_kernel *const *attnbench_plugin_kernels(void)
{
    static const attnbench_plugin_kernel *const list[] = {&bad_plugin_kernel, NULL};
    return list;
}
#endif
