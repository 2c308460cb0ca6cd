/* attnbench peak: same-run machine peaks that bench rows are compared with. */
#include "harness/measure/bench.h"
#include "cli.h"
#include "harness/results/csvw.h"
#include "harness/measure/sysinfo.h"

#include <getopt.h>

static const char usage[] =
    "usage: attnbench peak [--threads T] [--out FILE]\n"
    "Measures OpenBLAS sgemm GFLOP/s, STREAM-triad GB/s, the FMA roof (a register-only loop\n"
    "of independent fused multiply-adds on every thread) and, where the CPU has AVX512_BF16,\n"
    "the bf16 dot-product roof (else NA) with T threads (default: all cores): the ceilings\n"
    "bench rows report pct_sgemm_peak, pct_stream_peak and pct_roofline against (roofline\n"
    "time = max(bytes / STREAM, flops / roof), roof the bf16 one for bf16 rows where it\n"
    "exists, else the FMA roof). Each probe warms up until two calls agree within 5 % and\n"
    "keeps the best of 5.\n"
    "  --out FILE  also append the four rows (suite 'peak') to this CSV\n";

int cmd_peak(int argc, char **argv)
{
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int64_t threads = sysinfo_ncpu();
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 't') {
            if (cli_int64("--threads", optarg, 1, 1024, &threads))
                return cli_report("peak");
        } else if (c == 'o')
            out = optarg;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_unknown_option("peak", argc, argv);
    }
    if (optind < argc)
        return cli_usage_error("peak", "unexpected argument");
    sysinfo_print(stdout);
    peak_result p;
    if (peak_measure((int)threads, &p))
        return cli_report("peak");
    peak_print(stdout, &p);
    if (out) {
        csvw_row rows[BENCH_PEAK_ROWS];
        csvw w;
        bench_peak_rows(&p, rows);
        if (csvw_open(&w, out) || csvw_write_rows(&w, rows, BENCH_PEAK_ROWS))
            return cli_report("peak");
        csvw_close(&w);
    }
    return 0;
}
