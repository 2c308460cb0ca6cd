/* attnbench crossover: where each kernel starts beating a reference kernel. */
#include "cli.h"
#include "harness/results/crossover.h"

#include <getopt.h>

static const char usage[] =
    "usage: attnbench crossover [--csv] [--ref K] [--suite S] FILE\n"
    "For every kernel series of a results CSV (same mask, pass, D, Dv, B, H, H_kv,\n"
    "threads), the smallest N_kv from which the kernel's median time is below the\n"
    "reference kernel's at every common length after it (the crossover N where\n"
    "each linear-time kernel beats flash). Only status=ok rows count.\n"
    "  --ref K     reference kernel (default flash; its fastest params variant)\n"
    "  --suite S   only rows of this suite (default: all)\n"
    "  --csv       machine-readable output: series,kernel,crossover_n,common_ns,verdict\n";

int cmd_crossover(int argc, char **argv)
{
    static const struct option opts[] = {{"ref", required_argument, 0, 'r'},
                                         {"suite", required_argument, 0, 's'},
                                         {"csv", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *ref = "flash", *suite = NULL;
    int as_csv = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'r')
            ref = optarg;
        else if (c == 's')
            suite = optarg;
        else if (c == 'c')
            as_csv = 1;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_unknown_option("crossover", argc, argv);
    }
    if (optind != argc - 1)
        return cli_usage_error("crossover", "expected one results CSV file");
    crossover_points xs;
    if (crossover_points_load(argv[optind], suite, &xs) || crossover_check(&xs, argv[optind], suite, ref)) {
        crossover_points_free(&xs);
        return cli_report("crossover");
    }
    crossover_print(&xs, ref, as_csv, stdout);
    crossover_points_free(&xs);
    return 0;
}
