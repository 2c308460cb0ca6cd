/* attnbench bench: time kernels on one problem (or a small N x D grid) and
 * print a table; rows also go to --out FILE in the results schema. */
#include "harness/measure/bench_fit.h"
#include "harness/measure/bench_opts.h"
#include "harness/measure/cachegrind.h"
#include "cli.h"
#include "cp_hook.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"
#include "harness/measure/sysinfo.h"
#include "harness/train/train_bench.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* The prose around the option lines, which come from the option table. */
static const char usage_head[] =
    "usage: attnbench bench --kernel K[,K...] [options]\n"
    "Times each kernel on a random U(-1,1) problem after warm-up (median, p10/p90, CV),\n"
    "with analytic and counted FLOPs, bytes, memory, PAPI counters and a correctness gate\n"
    "against the double-precision oracle on sampled rows. %roof is the share of the same-run\n"
    "roofline (max of bytes / STREAM and FLOPs / FMA roof); a FLOP rate more than 10 % above\n"
    "the FMA roof is an error row. noisy: other runnable work beside the timed calls (the\n"
    "noise column). Prints a table; with --out, appends one CSV row per job\n"
    "(docs/csv-schema.md).\n"
    "The context-parallel kernels run alone under MPI: mpirun -n P attnbench bench --kernel\n"
    "ring|ulysses [options] splits the sequence over P ranks; rank 0 writes the rows, with\n"
    "ranks=P in params, the ranks on the busiest host in host_ranks, and five more rows per job:\n"
    "comm_bytes_per_rank, comm_ms, comm_overlap, one_rank_ms (flash on one rank, same run) and\n"
    "efficiency_vs_1rank (docs/scale-out.md; a build without MPI has neither kernel).\n"
    "options:\n";

/* A batch of lengths sets B, and N_kv: a ragged batch's longest, or --N for
 * a padded one (self-attention). */
static int apply_lens(bench_opts *o)
{
    attn_args *a = &o->base.args;
    const bench_lens *l = &o->base.lens;
    const char *opt = l->kind == BENCH_LENS_PADDED_SEQ ? "--seq-lens" : "--kv-lens";
    if (l->n) {
        if (o->n_N > 1)
            return attn_fail(ATTN_EINVAL, "%s: only with a single --N", opt);
        if (a->B && a->B != l->n)
            return attn_fail(ATTN_EINVAL, "%s: %d lengths for --B %lld", opt, l->n, (long long)a->B);
        a->B = l->n;
    }
    if (!a->B)
        a->B = 1;
    if (l->kind == BENCH_LENS_PADDED_SEQ) {
        for (int i = 0; i < l->n; i++)
            if (l->len[i] > o->Ns[0])
                return attn_fail(ATTN_EINVAL, "--seq-lens: expected lengths <= --N %lld (the padded length), "
                                 "found %lld", (long long)o->Ns[0], (long long)l->len[i]);
        if (o->nkv && o->nkv != o->Ns[0])
            return attn_fail(ATTN_EINVAL, "--seq-lens: a padded batch is self-attention, expected no --Nkv or "
                             "--Nkv = --N");
        o->nkv = o->Ns[0];
    }
    for (int i = 0; l->kind == BENCH_LENS_RAGGED_KV && i < l->n; i++)
        o->nkv = o->nkv > l->len[i] ? o->nkv : l->len[i];
    a->Nk = o->nkv;
    return 0;
}

/* The command line into *o; 1 after --help (printed). */
static int parse_opts(int argc, char **argv, bench_opts *o)
{
    const opt_bind binds[] = {{bench_opts_table, o}, {0}};
    int help, rc = opt_parse_cli(binds, argc, argv, &help);
    if (help) {
        fputs(usage_head, stdout);
        opt_print_help(stdout, bench_opts_table, NULL);
        return 1;
    }
    if (rc)
        return rc;
    if (optind < argc)
        return attn_fail(ATTN_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (o->nkv && o->n_N > 1)
        return attn_fail(ATTN_EINVAL, "--Nkv: only with a single --N");
    attn_args *a = &o->base.args;
    if (!a->H_kv)
        a->H_kv = a->H;
    if (!a->threads)
        a->threads = sysinfo_ncpu();
    if (!o->base.limits.max_mem_bytes)
        o->base.limits.max_mem_bytes = bench_default_max_mem();
    return apply_lens(o);
}

/* Parameters that apply to kernel `name`: unprefixed ones and "name:k=v". */
static int params_for(const bench_opts *o, const char *name, param_bag *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < o->params.n; i++) {
        char given[sizeof o->params.key[0] + sizeof o->params.val[0]];
        snprintf(given, sizeof given, "%s=%s", o->params.key[i], o->params.val[i]);
        const char *kv = given, *colon = strchr(kv, ':'), *eq = strchr(kv, '=');
        if (colon && (!eq || colon < eq)) {
            if (strncmp(kv, name, (size_t)(colon - kv)) != 0 || name[colon - kv] != '\0')
                continue;
            kv = colon + 1;
        }
        int rc = param_bag_add(p, kv);
        if (rc)
            return rc;
    }
    return 0;
}

/* A "K:k=v" whose K is not one of --kernel would apply to no kernel: an
 * error (a typo would otherwise bench the defaults silently). */
static int check_param_kernels(const bench_opts *o)
{
    for (int i = 0; i < o->params.n; i++) {
        const char *key = o->params.key[i], *colon = strchr(key, ':');
        if (!colon)
            continue;
        int listed = 0;
        for (int k = 0; k < o->n_kernels; k++)
            listed |= strlen(o->kernels[k]) == (size_t)(colon - key) && !strncmp(o->kernels[k], key, (size_t)(colon - key));
        if (listed)
            continue;
        /* the list may be cut short: it only illustrates the message */
        char names[512] = "";
        for (int k = 0; k < o->n_kernels; k++) {
            size_t used = strlen(names);
            if (snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "", o->kernels[k]) >= (int)(sizeof names - used))
                break;
        }
        return attn_fail(ATTN_EINVAL, "param %s=%s: expected one of the kernels of --kernel (%s) before ':', "
                         "found '%.*s'", key, o->params.val[i], names, (int)(colon - key), key);
    }
    return 0;
}

/* The job of one grid point: the shared job with its kernel, N, D and that
 * kernel's parameters. */
static int grid_job(const bench_opts *o, const attn_kernel *k, int in, int id, bench_job *job)
{
    *job = o->base;
    job->kernel = k;
    job->args.Nq = o->Ns[in], job->args.D = o->Ds[id];
    if (!job->args.Nk || o->n_N > 1)
        job->args.Nk = job->args.Nq;
    int rc = params_for(o, k->name, &job->args.params);
    return rc ? rc : bench_budget_fit(job);
}

/* Kernels, shapes and parameters are checked before anything runs: bad
 * input is a usage error. */
static int check_grid(const bench_opts *o, const attn_kernel **kernels)
{
    for (int i = 0; i < o->n_kernels; i++)
        if (!(kernels[i] = attn_find_kernel(o->kernels[i])))
            return ATTN_EINVAL;
    for (int in = 0; in < o->n_N; in++)
        for (int id = 0; id < o->n_D; id++) {
            bench_job job;
            grid_job(o, kernels[0], in, id, &job);
            attn_args a = bench_job_args(&job);
            if (attn_args_validate(NULL, &a))
                return ATTN_EINVAL;
        }
    if (check_param_kernels(o) || bench_inputs_check(&o->base.inputs))
        return ATTN_EINVAL;
    for (int ik = 0; ik < o->n_kernels; ik++) {
        param_bag p;
        char owner[96];
        snprintf(owner, sizeof owner, "kernel '%s'", kernels[ik]->name);
        if (params_for(o, kernels[ik]->name, &p) || attn_params_validate(kernels[ik], &p, owner))
            return ATTN_EINVAL;
    }
    return 0;
}

/* Every job of the grid against --max-mem and, with a peak, --max-time:
 * a job that cannot fit or finish is a usage error before any job starts.
 * A job its kernel refuses (its own caps) is left to run_grid's skipped row. */
static int check_fit(const bench_opts *o, const attn_kernel **kernels, const peak_result *peak)
{
    for (int ik = 0; ik < o->n_kernels; ik++)
        for (int in = 0; in < o->n_N; in++)
            for (int id = 0; id < o->n_D; id++) {
                bench_job job;
                bench_estimate e;
                int rc = grid_job(o, kernels[ik], in, id, &job);
                if (rc || (!bench_estimate_job(&job, peak, &e) && (rc = bench_fit_limits(&job, &e))))
                    return rc;
            }
    return 0;
}

static void print_header(void)
{
    printf("%-7s %-22s %-6s %6s %4s %10s %10s %10s %6s %8s %7s %8s %7s %7s %11s %11s %-9s %-5s %s\n", "kernel",
           "mask", "pass", "N", "D", "median_ms", "p10_ms", "p90_ms", "cv", "GFLOP/s", "%sgemm",
           "GB/s", "%strm", "%roof", "workspace", "rss_delta", "err", "noisy", "status");
}

/* One table line, in the CSV's spelling of each number (a missing peak: "NA"). */
static void print_result(const bench_result *res, const csvw_row *r)
{
    const char *st = r->cell[ATTN_COL_STATUS];
    const char *noise = r->cell[ATTN_COL_NOISE];
    printf("%-7s %-22s %-6s %6s %4s %10s %10s %10s %6s %8s %7s %8s %7s %7s %11s %11s %-9s %-5s %s\n",
           r->cell[ATTN_COL_KERNEL], r->cell[ATTN_COL_MASK], r->cell[ATTN_COL_PASS], r->cell[ATTN_COL_N],
           r->cell[ATTN_COL_D], r->cell[ATTN_COL_TIME_MS_MEDIAN], r->cell[ATTN_COL_TIME_MS_P10],
           r->cell[ATTN_COL_TIME_MS_P90], r->cell[ATTN_COL_TIME_CV], r->cell[ATTN_COL_GFLOPS],
           res->measured && res->has_peak ? r->cell[ATTN_COL_PCT_SGEMM_PEAK] : res->measured ? "NA" : "",
           r->cell[ATTN_COL_GBYTES_S],
           res->measured && res->has_peak ? r->cell[ATTN_COL_PCT_STREAM_PEAK] : res->measured ? "NA" : "",
           res->measured && res->has_peak ? r->cell[ATTN_COL_PCT_ROOFLINE] : res->measured ? "NA" : "",
           r->cell[ATTN_COL_WORKSPACE_BYTES], r->cell[ATTN_COL_PEAK_RSS_BYTES], r->cell[ATTN_COL_VALUE],
           !strncmp(noise, "yes", 3) ? "yes" : !strcmp(noise, "no") ? "no" : "", st);
    fflush(stdout);
}

/* The training benchmark: two reference models per kernel. */
static int run_train_suite(const bench_opts *o, const attn_kernel **kernels, const peak_result *peak, csvw *out)
{
    for (int ik = 0; ik < o->n_kernels; ik++) {
        csvw_row rows[2];
        if (train_bench_run(kernels[ik]->name, o->base.args.threads, peak, rows, stdout))
            return ATTN_EINVAL;
        for (int i = 0; out && i < 2; i++)
            if (csvw_write(out, &rows[i]))
                return ATTN_EINVAL;
    }
    return 0;
}

/* LRA Table 2's analogue: the Text encoder per kernel and N, with the mask
 * of --mask as the model's (full when not given). */
static int run_speed_suite(const bench_opts *o, const attn_kernel **kernels, const peak_result *peak, csvw *out)
{
    char mask[96];
    attn_mask_format(&o->base.args.mask, mask, sizeof mask);
    for (int ik = 0; ik < o->n_kernels; ik++)
        for (int in = 0; in < o->n_N; in++) {
            csvw_row row;
            if (train_bench_speed(kernels[ik]->name, strcmp(mask, "full") ? mask : NULL, o->Ns[in],
                                  o->base.args.threads, peak, &row, stdout) ||
                (out && csvw_write(out, &row)))
                return ATTN_EINVAL;
        }
    return 0;
}

cli_cp_runner cli_cp_bench = NULL;

int cli_is_cp_kernel(const char *name) { return !strcmp(name, "ring") || !strcmp(name, "ulysses"); }

/* `ring` or `ulysses`: alone, the kernel suite, and only in a build with MPI. */
static int bench_cp(const bench_opts *o, const char *name)
{
    if (!cli_cp_bench) {
        attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' runs over MPI ranks (mpirun -n P attnbench bench --kernel %s), "
                  "and this build has no MPI: apt-get install libopenmpi-dev openmpi-bin, then rebuild", name, name);
        return cli_report("bench");
    }
    if (o->n_kernels > 1 || o->suite != BENCH_SUITE_KERNELS) {
        attn_fail(ATTN_EINVAL, "kernel '%s' runs over MPI ranks: bench it alone (--kernel %s, kernel suite)", name,
                  name);
        return cli_usage_error("bench", attn_last_error());
    }
    return cli_cp_bench(o, name);
}

/* Every kernel x N x D job, a table line each; *failed counts errors. */
static int run_grid(const bench_opts *o, const attn_kernel **kernels, const peak_result *peak, csvw *out,
                    int *failed)
{
    print_header();
    for (int ik = 0; ik < o->n_kernels; ik++)
        for (int in = 0; in < o->n_N; in++)
            for (int id = 0; id < o->n_D; id++) {
                bench_job job;
                bench_result res;
                csvw_row row;
                if (grid_job(o, kernels[ik], in, id, &job))
                    return ATTN_EINVAL;
                bench_identity(&job, &row); /* utc: when the job starts */
                if (bench_run(&job, peak, &res))
                    return ATTN_EINVAL;
                if (o->counters == BENCH_COUNTERS_CACHEGRIND && res.status == BENCH_OK)
                    cg_simulate(&job, NULL, &res.counters);
                bench_result_fill(&res, &row);
                print_result(&res, &row);
                *failed += res.status == BENCH_ERROR;
                csvw_row rows[BENCH_ROWS_MAX];
                if (out && csvw_write_rows(out, rows, bench_result_rows(&res, &row, rows)))
                    return ATTN_EINVAL;
            }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    bench_opts_defaults(&o);
    int rc = parse_opts(argc, argv, &o);
    if (rc > 0)
        return 0; /* --help */
    if (rc)
        return cli_usage_error("bench", attn_last_error());
    for (int i = 0; i < o.n_kernels; i++)
        if (cli_is_cp_kernel(o.kernels[i]))
            return bench_cp(&o, o.kernels[i]);
    const attn_kernel *kernels[BENCH_OPTS_KERNELS];
    if (check_grid(&o, kernels))
        return cli_report("bench");
    int kernel_suite = o.suite == BENCH_SUITE_KERNELS;
    if (kernel_suite && check_fit(&o, kernels, NULL)) /* memory first: it needs no peak */
        return cli_report("bench");
    sysinfo_print(stderr);
    peak_result peak;
    if (!o.no_peak) {
        if (peak_measure(o.base.args.threads, &peak))
            return cli_report("bench");
        peak_print(stderr, &peak);
    } else if (peak_measure_sized(o.base.args.threads, FIT_PROBE_SGEMM_N, FIT_PROBE_STREAM_BYTES, &peak))
        return cli_report("bench");
    if (kernel_suite && check_fit(&o, kernels, &peak))
        return cli_report("bench");
    csvw out;
    if (o.out && csvw_open(&out, o.out))
        return cli_report("bench");
    int failed = 0;
    const peak_result *pk = o.no_peak ? NULL : &peak;

    csvw *w = o.out ? &out : NULL;
    rc = o.suite == BENCH_SUITE_TRAIN       ? run_train_suite(&o, kernels, pk, w)
         : o.suite == BENCH_SUITE_LRA_SPEED ? run_speed_suite(&o, kernels, pk, w)
                                            : run_grid(&o, kernels, pk, w, &failed);
    if (rc)
        return cli_report("bench");
    if (o.out)
        csvw_close(&out);
    return failed ? 1 : 0;
}
