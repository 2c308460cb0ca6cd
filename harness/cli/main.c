/* attnbench: one binary, one subcommand per concern (docs/architecture.md). */
#include "cli.h"
#include "cp_hook.h"
#include "sweep_mpi_hook.h"
#include "harness/plugin/plugin.h"
#include "kernels/core/registry.h"

#ifdef ATTN_HAVE_MPI
#include "harness/mpi/cp_bench.h"
#include "harness/mpi/cp_probe.h"
#include "harness/mpi/sweep_ranks.h"
#endif

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "attnbench - benchmark and evaluation harness for efficient and long-context attention\n"
    "\n"
    "usage: attnbench <command> [options]   ('attnbench <command> --help' for details)\n"
    "\n"
    "commands:\n"
    "  list   [kernels|masks|tasks|models] [--csv] [--names]   what is registered\n"
    "  peak   [--threads T]           same-run sgemm GFLOP/s, STREAM-triad GB/s and FMA roof\n"
    "  check  --kernel K|all [--mask M]   oracle agreement, gradients, causal leakage,\n"
    "                                 masked rows, thread determinism (pass/fail table)\n"
    "  bench  --kernel K[,K...] --mask M --B --H --Hkv --N --Nkv --D [--pass fwd|bwd|fwdbwd]\n"
    "         [--param k=v ...] [--threads T] [--reps R] [--warmup W] [--out FILE]\n"
    "         [--max-time S] [--max-mem BYTES] [--mem-budget BYTES]\n"
    "                                 time one problem; prints a table, appends CSV rows to FILE;\n"
    "                                 a job estimated above the limits is refused before it starts;\n"
    "                                 --mem-budget: kernels choose tile/chunk sizes within that much\n"
    "                                 working memory (docs/memory-budget.md)\n"
    "  mpirun -n P attnbench bench --kernel ring|ulysses [bench options]\n"
    "                                 context-parallel attention over P MPI ranks (builds with MPI)\n"
    "  sweep  --config FILE [--suite S] [--kernel K] [--resume] [--shard i/n] [--dry-run]\n"
    "         [--max-time S] [--max-mem BYTES]\n"
    "                                 run a config's job grid into results/<suite>.csv; jobs\n"
    "                                 estimated above the limits become skipped rows\n"
    "  mpirun -n P attnbench sweep --config FILE [sweep options]\n"
    "                                 rank r runs shard r/P into DIR/part-r, rank 0 merges (builds with MPI)\n"
    "  merge  --out DIR PART_DIR...   join the result directories of a sharded sweep\n"
    "  mpirun -n 2 attnbench cpmodel --out FILE [--N LIST] [--H --Hkv --D --mask --threads]\n"
    "                                 cost model of ring and ulysses at 1..1024 ranks: a ping-pong\n"
    "                                 probe and flash's block rate (or --latency-us, --bandwidth-gbs)\n"
    "  migrate FILE|DIR...            rewrite results CSVs of the earlier header to the current one\n"
    "  mask   --show SPEC [--N N] [--head H] [--out DIR]\n"
    "                                 draw a mask as a PBM picture (results/plots/masks/)\n"
    "  train  --task T --kernel K[,K...] [--model M] [--steps S] [--seed S] [options]\n"
    "                                 train a model from scratch on a task, rows per evaluation\n"
    "  eval   --checkpoint FILE [--scale 1,2,4,8] [--depths K] [--mem-budget BYTES]\n"
    "                                 reload a trained model and reproduce its test accuracy,\n"
    "                                 or evaluate it at longer lengths and needle depths\n"
    "  report lra|recall [--csv FILE] [--md FILE] [--data FILE]\n"
    "                                 results/LRA.md (LRA table beside the published one) or\n"
    "                                 results/RECALL.md (best of the learning-rate grid)\n"
    "  icl    [--config FILE] [--task-param d=8 ...] [--kernel K[,K...]] [--steps S] [--out FILE]\n"
    "                                 in-context linear regression: closed-form baselines and\n"
    "                                 trained models, error by number of examples (results/icl.csv)\n"
    "  crossover [--ref K] [--suite S] [--csv] FILE\n"
    "                                 N from which each kernel beats K (default flash)\n"
    "\n"
    "Results use one CSV schema (docs/csv-schema.md); kernels: 'attnbench list kernels'.\n"
    "Kernels from shared objects: --plugin PATH.so (any command, repeatable) or ATTNBENCH_PLUGINS=A.so:B.so\n"
    "(docs/plugins.md).\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {{"list", cmd_list}, {"peak", cmd_peak}, {"check", cmd_check}, {"bench", cmd_bench}, {"sweep", cmd_sweep}, {"merge", cmd_merge}, {"cpmodel", cmd_cpmodel}, {"migrate", cmd_migrate}, {"mask", cmd_mask},
                    {"crossover", cmd_crossover}, {"train", cmd_train}, {"eval", cmd_eval},
                    {"report", cmd_report}, {"icl", cmd_icl}};
#ifdef ATTN_HAVE_MPI
    cli_cp_bench = cp_bench_run; /* ring and ulysses under mpirun (docs/scale-out.md) */
    cli_cp_probe = cp_probe_run; /* their cost model's ping-pong probe */
    cli_sweep_ranks = sweep_ranks_run; /* mpirun -n P attnbench sweep: one shard per rank, merged */
#endif
    /* plugin kernels join the registry before any command reads it */
    if (plugin_load_all(&argc, argv)) {
        fprintf(stderr, "attnbench: %s\n", attn_last_error());
        return 2;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "attnbench: unknown command '%s': expected list, peak, check, bench, sweep, merge, cpmodel, migrate, mask, crossover, train, eval or report\n", argv[1]);
    return 2;
}
