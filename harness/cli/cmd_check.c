/* attnbench check --kernel K|all [--mask M] [--threads T] */
#include "harness/measure/check.h"
#include "cli.h"
#include "kernels/core/registry.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench check --kernel K[,K...]|all [--mask M] [--threads T]\n"
    "Runs each kernel against the double-precision oracle and prints one line per case:\n"
    "forward O and logsumexp on a table of shapes (N = 1..513, D = 16..128, GQA, Nq != Nk),\n"
    "backward dQ/dK/dV (trainable kernels), a padded batch (kernels flagged padded),\n"
    "causal leakage, fully masked rows and 1-vs-T-thread determinism. Tolerances:\n"
    "docs/kernel-interface.md. Exit 1 if any case fails.\n"
    "  --kernel  kernel names (see 'attnbench list kernels') or 'all'\n"
    "  --mask    check only this mask spec (e.g. causal, window:wl=64,wr=0); default: all\n"
    "  --threads threads for the kernels (default 2)\n";

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"kernel", required_argument, 0, 'k'},
                                         {"mask", required_argument, 0, 'm'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *kernels = NULL, *mask = NULL;
    int64_t threads = 2;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'k')
            kernels = optarg;
        else if (c == 'm')
            mask = optarg;
        else if (c == 't') {
            if (cli_int64("--threads", optarg, 1, 1024, &threads))
                return cli_report("check");
        } else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_usage_error("check", "unknown option");
    }
    if (!kernels || optind < argc)
        return cli_usage_error("check", "--kernel K|all is required and takes no positional arguments");

    const attn_kernel *list[64];
    int n = 0;
    if (strcmp(kernels, "all") == 0) {
        for (const attn_kernel *const *k = attn_registry(); *k; k++)
            if (!((*k)->flags & ATTN_REFERENCE) && (((*k)->flags & ATTN_EXACT) || (*k)->ref_forward))
                list[n++] = *k;
    } else {
        char names[64][CLI_ITEM];
        int nn;
        if (cli_split("--kernel", kernels, names, 64, &nn))
            return cli_report("check");
        for (int i = 0; i < nn; i++)
            if (!(list[n++] = attn_find_kernel(names[i])))
                return cli_report("check");
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int rc = check_kernel_all(list[i], mask, (int)threads, stdout);
        if (rc < 0)
            return cli_report("check");
        failed += rc;
    }
    printf("check: %d failing case(s)\n", failed);
    return failed ? 1 : 0;
}
