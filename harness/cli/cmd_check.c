/* attnbench check --kernel K|all [--mask M] [--threads T] [--kv-dtype F] [--dtype T] */
#include "harness/measure/check.h"
#include "cli.h"
#include "kernels/core/registry.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench check --kernel K[,K...]|all [--mask M] [--threads T] [--kv-dtype F] [--dtype T]\n"
    "Runs each kernel against the double-precision oracle and prints one line per case:\n"
    "forward O and logsumexp on a table of shapes (N = 1..513, D = 16..128, GQA, Nq != Nk),\n"
    "backward dQ/dK/dV (trainable kernels), a padded batch (kernels flagged padded),\n"
    "causal leakage, fully masked rows and 1-vs-T-thread determinism. Tolerances:\n"
    "O 2e-5 of max|V| (5e-5 of max|O_ref| for own-reference kernels), lse 1e-5,\n"
    "gradients 1e-4 of max|g_ref|. A case whose output holds NaN or an infinity fails\n"
    "naming it (nonfinite: ...). Exit 1 if any case fails.\n"
    "Approximate kernels then report their fidelity against the oracle (not pass/fail):\n"
    "on each input family (gaussian, lowrank, peaked, longtail; docs/fidelity.md), the mean\n"
    "over 3 seeds at N = 1024, D = 64, H = 2 of rel_fro_err, cosine_mean, cosine_min, and\n"
    "kl / topk_recall where the kernel forms attention rows / selects keys (else NA).\n"
    "  --kernel  kernel names (see 'attnbench list kernels') or 'all' (with --kv-dtype or --dtype: all\n"
    "            that take it)\n"
    "  --mask    check only this mask spec (e.g. causal, window:wl=64,wr=0); default: all\n"
    "  --threads threads for the kernels (default 2)\n"
    "  --kv-dtype fp32|bf16|fp16|q8_0|q4_0: K and V caches stored in this format (decode, lean;\n"
    "            docs/kv-formats.md): the forward cases with D a multiple of 32 against the oracle\n"
    "            on the stored values, then the fidelity report against the oracle on the unrounded\n"
    "            inputs (default fp32)\n"
    "  --dtype   fp32|bf16|fp16: Q, K, V, O (dO and the gradients) stored in this type (flash;\n"
    "            docs/dtypes.md): the forward and backward cases against the oracle on the rounded\n"
    "            operands, tolerances grown by the outputs' rounding, then the fidelity report\n"
    "            against the oracle on the unrounded inputs (default fp32)\n";

/* The pass/fail table: one line per measure of a case. */
typedef struct {
    FILE *out;
    int failed; /* failing lines */
} check_table;

static void table_line(check_table *t, const check_result *r, const char *check, double err, double tol)
{
    int pass = err <= tol;
    t->failed += !pass;
    const char *why = !pass && r->status == CHECK_NONFINITE ? r->reason : ""; /* err alone would read inf */
    fprintf(t->out, "%-14s %-15s %-46s err=%-10.3g tol=%-8.2g %s%s%s\n", r->kernel->name, check, r->what, err, tol,
            pass ? "PASS" : "FAIL", why[0] ? " " : "", why);
}

static void table_print(const check_result *r, void *ctx)
{
    check_table *t = ctx;
    char name[32];
    switch (r->kind) {
    case CHECK_FORWARD:
        table_line(t, r, "forward.O", r->err_o, r->tol_o);
        if (!isnan(r->tol_lse))
            table_line(t, r, "forward.lse", r->err_lse, r->tol_lse);
        break;
    case CHECK_BACKWARD:
        for (int i = 0; i < ATTN_CHECK_GRADS; i++)
            if (!isnan(r->err_grad[i])) {
                snprintf(name, sizeof name, "backward.%s", check_grad_names[i]);
                table_line(t, r, name, r->err_grad[i], r->tol_grad);
            }
        break;
    case CHECK_CAUSAL_LEAK:
    case CHECK_MASKED_ROWS:
    case CHECK_THREADS: { /* a property: err 1 when it does not hold, against 0 */
        static const char *const names[] = {[CHECK_CAUSAL_LEAK] = "causal.leak", [CHECK_MASKED_ROWS] = "masked.rows",
                                            [CHECK_THREADS] = "threads"};
        table_line(t, r, names[r->kind], r->status == CHECK_PASS ? 0 : 1, 0);
        break;
    }
    }
}

/* A measure, or NA when it does not apply. */
static void print_measure(const char *name, double sum, int n)
{
    if (n)
        printf(" %s=%.4g", name, sum / n);
    else
        printf(" %s=NA", name);
}

/* Approximate kernels: the fidelity report, the mean over CHECK_FID_SEEDS
 * seeds per input family at one shape and the kernel's defaults. Informative:
 * no tolerance, never a failing line (the budget grids are configs/fidelity.json). */
#define CHECK_FID_SEEDS 3
static int fidelity_report(const attn_kernel *k, int threads, attn_kv_dtype kv_dtype, attn_dtype dtype)
{
    int full = (k->masks & ATTN_MASK_BIT(ATTN_MASK_FULL)) != 0;
    attn_args a = {.B = 1, .H = 2, .H_kv = 2, .Nq = 1024, .Nk = 1024, .D = 64, .threads = threads,
                   .mask = attn_mask_default(full ? ATTN_MASK_FULL : ATTN_MASK_CAUSAL), .kv_dtype = kv_dtype,
                   .dtype = dtype};
    attn_args_defaults(&a);
    for (int f = FID_GAUSSIAN; f < FID__COUNT; f++) {
        double sum[FID_MEASURES] = {0};
        int n[FID_MEASURES] = {0};
        for (uint64_t seed = 1; seed <= CHECK_FID_SEEDS; seed++) {
            fid_metrics m;
            int rc = check_kernel_fidelity(k, &a, (fid_inputs)f, seed, &m);
            if (rc)
                return rc;
            double v[FID_MEASURES];
            fid_metrics_values(&m, v);
            for (int i = 0; i < FID_MEASURES; i++)
                if (!isnan(v[i]))
                    sum[i] += v[i], n[i]++;
        }
        printf("%-14s %-15s %-8s N=1024 D=64 %s%s%s%s%s, %d seeds:", k->name, "fidelity", fid_inputs_names[f],
               full ? "full" : "causal", kv_dtype ? " kv=" : "", kv_dtype ? attn_kv_dtype_names[kv_dtype] : "",
               dtype ? " dtype=" : "", dtype ? attn_dtype_names[dtype] : "", CHECK_FID_SEEDS);
        for (int i = 0; i < FID_MEASURES; i++)
            print_measure(fid_measure_names[i], sum[i], n[i]);
        putchar('\n');
    }
    return 0;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"kernel", required_argument, 0, 'k'},
                                         {"mask", required_argument, 0, 'm'},
                                         {"threads", required_argument, 0, 't'},
                                         {"kv-dtype", required_argument, 0, 'q'},
                                         {"dtype", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *kernels = NULL, *mask = NULL;
    int64_t threads = 2;
    attn_kv_dtype kv_dtype = ATTN_KV_FP32;
    attn_dtype dtype = ATTN_DT_FP32;
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
        } else if (c == 'q') {
            if (attn_kv_dtype_parse(optarg, &kv_dtype))
                return cli_usage_error("check", attn_last_error());
        } else if (c == 'd') {
            if (attn_dtype_parse(optarg, &dtype))
                return cli_usage_error("check", attn_last_error());
        } else if (c == 'h')
            return fputs(usage, stdout), 0;
        else
            return cli_unknown_option("check", argc, argv);
    }
    if (!kernels || optind < argc)
        return cli_usage_error("check", "--kernel K|all is required and takes no positional arguments");

    const attn_kernel *list[64];
    int n = 0;
    if (strcmp(kernels, "all") == 0) {
        for (const attn_kernel *const *k = attn_registry(); *k; k++)
            if (!((*k)->flags & ATTN_REFERENCE) && (((*k)->flags & ATTN_EXACT) || (*k)->ref_forward) &&
                (kv_dtype == ATTN_KV_FP32 || ((*k)->kv_dtypes & ATTN_KV_BIT(kv_dtype))) && /* all that read it */
                (dtype == ATTN_DT_FP32 || ((*k)->dtypes & ATTN_DT_BIT(dtype))))
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
    check_table table = {stdout, 0};
    for (int i = 0; i < n; i++)
        if (check_kernel_cases_typed(list[i], mask, (int)threads, kv_dtype, dtype, table_print, &table) != 0 ||
            (((list[i]->flags & ATTN_APPROX) || kv_dtype || dtype) &&
             fidelity_report(list[i], (int)threads, kv_dtype, dtype) != 0))
            return cli_report("check");
    printf("check: %d failing case(s)\n", table.failed);
    return table.failed ? 1 : 0;
}
