/* attnbench bench: time kernels on one problem (or a small N x D grid) and
 * print a table; rows also go to --out FILE in the results schema. */
#include "harness/measure/bench.h"
#include "cli.h"
#include "harness/results/csvw.h"
#include "kernels/core/registry.h"
#include "harness/measure/sysinfo.h"
#include "harness/train/train_bench.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: attnbench bench --kernel K[,K...] [options]\n"
    "Times each kernel on a random U(-1,1) problem after warm-up (median, p10/p90, CV),\n"
    "with analytic and counted FLOPs, bytes, memory, PAPI counters and a correctness gate\n"
    "against the double-precision oracle on sampled rows. Prints a table; with --out,\n"
    "appends one CSV row per job (docs/csv-schema.md).\n"
    "  --kernel K[,K...]   kernels (attnbench list kernels)\n"
    "  --mask M            full | causal | window:wl=L,wr=R[,causal=1] | window:w=W (default full)\n"
    "  --B n --H n --Hkv n batch, query heads, KV heads (default 1, 8, = H)\n"
    "  --N n[,n...]        query length(s) (default 1024); --Nkv n key length (default = N)\n"
    "  --kv-lens L[,L...]  ragged batch (VARLEN kernels): KV length of each sequence; sets --B to\n"
    "                      their count and --Nkv to the longest; one --N\n"
    "  --seq-lens L[,L...] padded batch (kernels flagged padded): each sequence's length, padded to\n"
    "                      the one --N (>= the longest); sets --B to their count\n"
    "  --D n[,n...]        head dimension(s) (default 64)\n"
    "  --Dv n              columns of V and O (default = D; kernels with flag DV)\n"
    "  --suite train       the training benchmark instead: per kernel, an encoder (L=2, d=128,\n"
    "                      H=4, N=1024, batch 16) and an LM (L=2, d=64, N=256, batch 16): step\n"
    "                      time, tokens/s, GFLOP/s vs same-run sgemm, share of step time in\n"
    "                      GEMMs, attention kernels and the rest (rows: suite train)\n"
    "  --pass P            fwd | bwd | fwdbwd (default fwd); bwd times the backward alone\n"
    "  --param [K:]k=v     kernel parameter, for every kernel or only kernel K (repeatable)\n"
    "  --threads T         OpenMP threads (default: all cores)\n"
    "  --reps R            minimum repetitions (default 10); --min-time S seconds (default 1)\n"
    "  --warmup W          warm-up runs (default 3)\n"
    "  --seed S            input seed (default 1)\n"
    "  --out FILE          append rows to this CSV (created with the header if absent)\n"
    "  --no-peak           skip the same-run sgemm/STREAM probe (pct_*_peak become NA)\n";

/* The command line: the typed job every run shares (shape, mask, batch
 * lengths, pass, run settings), the N x D grid and kernels it runs over, and
 * kernel parameters (resolved per kernel: an option may name one). */
typedef struct {
    char kernels[32][CLI_ITEM], params[PARAM_BAG_MAX][CLI_ITEM];
    int n_kernels, n_params;
    int64_t Ns[32], Ds[16];
    int n_N, n_D;
    int64_t nkv;       /* --Nkv, 0 when not given */
    int b_given;       /* --B was given (a batch of lengths must agree with it) */
    bench_job base;
    const char *out;
    int no_peak, train;
} bench_opts;

static int parse_list64(const char *opt, const char *s, int64_t *vals, int max, int *n)
{
    char items[32][CLI_ITEM];
    int rc = cli_split(opt, s, items, max < 32 ? max : 32, n);
    for (int i = 0; !rc && i < *n; i++)
        rc = cli_int64(opt, items[i], 1, 1 << 24, &vals[i]);
    return rc;
}

/* --kv-lens (a ragged batch) or --seq-lens (a padded one), not both. */
static int parse_lens(int c, const char *arg, bench_lens *l)
{
    bench_lens_kind kind = c == 'L' ? BENCH_LENS_RAGGED_KV : BENCH_LENS_PADDED_SEQ;
    if (l->kind && l->kind != kind)
        return attn_fail(ATTN_EINVAL, "--seq-lens: expected a padded batch or a ragged one (--kv-lens), found both");
    l->kind = kind;
    return parse_list64(kind == BENCH_LENS_RAGGED_KV ? "--kv-lens" : "--seq-lens", arg, l->len, 32, &l->n);
}

static int add_param(const char *arg, bench_opts *o)
{
    if (o->n_params >= PARAM_BAG_MAX || strlen(arg) >= CLI_ITEM)
        return attn_fail(ATTN_EINVAL, "--param: too many or too long");
    strcpy(o->params[o->n_params++], arg);
    return 0;
}

/* One option into the typed job (or the grid around it): the one place an
 * option's text becomes a value. */
static int apply_option(int c, const char *arg, bench_opts *o)
{
    attn_args *a = &o->base.args;
    int64_t v = 0;
    double t = 0;
    int rc = 0;
    switch (c) {
    case 'k': return cli_split("--kernel", arg, o->kernels, 32, &o->n_kernels);
    case 'm': return attn_mask_parse(arg, &a->mask);
    case 'B': o->b_given = 1; return cli_int64("--B", arg, 1, 1 << 20, &a->B);
    case 'H': return cli_int64("--H", arg, 1, 1 << 16, &a->H);
    case 'G': return cli_int64("--Hkv", arg, 1, 1 << 16, &a->H_kv);
    case 'N': return parse_list64("--N", arg, o->Ns, 32, &o->n_N);
    case 'K': return cli_int64("--Nkv", arg, 1, 1 << 24, &o->nkv);
    case 'D': return parse_list64("--D", arg, o->Ds, 16, &o->n_D);
    case 'V': return cli_int64("--Dv", arg, 1, 1 << 16, &a->Dv);
    case 'S':
        o->train = 1;
        return strcmp(arg, "train") ? attn_fail(ATTN_EINVAL, "--suite: expected train (the training benchmark), "
                                                "found '%s'", arg) : 0;
    case 'L':
    case 'Q': return parse_lens(c, arg, &o->base.lens);
    case 'p': return bench_pass_parse(arg, &o->base.pass);
    case 'P': return add_param(arg, o);
    case 't': rc = cli_int64("--threads", arg, 1, 1024, &v), a->threads = (int)v; break;
    case 'r': rc = cli_int64("--reps", arg, 1, 1000000, &v), o->base.measure.min_reps = (int)v; break;
    case 'T': rc = cli_double("--min-time", arg, 0, 3600, &t), o->base.measure.min_time_s = t; break;
    case 'w': rc = cli_int64("--warmup", arg, 0, 1000, &v), o->base.measure.warmup = (int)v; break;
    case 's': rc = cli_int64("--seed", arg, 0, INT64_MAX, &v), o->base.seed = (uint64_t)v; break;
    case 'o': o->out = arg; break;
    case 'n': o->no_peak = 1; break;
    default: return attn_fail(ATTN_EINVAL, "unknown option or missing value (see 'attnbench bench --help')");
    }
    return rc;
}

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
        if (o->b_given && a->B != l->n)
            return attn_fail(ATTN_EINVAL, "%s: %d lengths for --B %lld", opt, l->n, (long long)a->B);
        a->B = l->n;
    }
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

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    static const struct option opts[] = {
        {"kernel", required_argument, 0, 'k'}, {"mask", required_argument, 0, 'm'},
        {"B", required_argument, 0, 'B'},      {"H", required_argument, 0, 'H'},
        {"Hkv", required_argument, 0, 'G'},    {"N", required_argument, 0, 'N'},
        {"Nkv", required_argument, 0, 'K'},    {"D", required_argument, 0, 'D'},
        {"pass", required_argument, 0, 'p'},   {"param", required_argument, 0, 'P'},
        {"threads", required_argument, 0, 't'}, {"reps", required_argument, 0, 'r'},
        {"min-time", required_argument, 0, 'T'}, {"warmup", required_argument, 0, 'w'},
        {"seed", required_argument, 0, 's'},   {"out", required_argument, 0, 'o'},
        {"no-peak", no_argument, 0, 'n'},      {"help", no_argument, 0, 'h'},
        {"kv-lens", required_argument, 0, 'L'}, {"Dv", required_argument, 0, 'V'},
        {"seq-lens", required_argument, 0, 'Q'},
        {"suite", required_argument, 0, 'S'},
        {0, 0, 0, 0}};
    int c, rc = 0;
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        }
        rc = apply_option(c, optarg, o);
    }
    if (rc)
        return rc;
    if (optind < argc)
        return attn_fail(ATTN_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!o->n_kernels)
        return attn_fail(ATTN_EINVAL, "--kernel: expected at least one kernel name");
    if (o->nkv && o->n_N > 1)
        return attn_fail(ATTN_EINVAL, "--Nkv: only with a single --N");
    if (!o->base.args.H_kv)
        o->base.args.H_kv = o->base.args.H;
    return apply_lens(o);
}

/* Parameters that apply to kernel `name`: unprefixed ones and "name:k=v". */
static int params_for(const bench_opts *o, const char *name, param_bag *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < o->n_params; i++) {
        const char *kv = o->params[i], *colon = strchr(kv, ':'), *eq = strchr(kv, '=');
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

/* The job of one grid point: the shared job with its kernel, N, D and that
 * kernel's parameters. */
static int grid_job(const bench_opts *o, const attn_kernel *k, int in, int id, bench_job *job)
{
    *job = o->base;
    job->kernel = k;
    job->args.Nq = o->Ns[in], job->args.D = o->Ds[id];
    if (!job->args.Nk || o->n_N > 1)
        job->args.Nk = job->args.Nq;
    return params_for(o, k->name, &job->args.params);
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
    for (int ik = 0; ik < o->n_kernels; ik++) {
        param_bag p;
        if (params_for(o, kernels[ik]->name, &p))
            return ATTN_EINVAL;
    }
    return 0;
}

static void print_header(void)
{
    printf("%-7s %-22s %-6s %6s %4s %10s %10s %10s %6s %8s %7s %8s %7s %11s %11s %-9s %s\n", "kernel",
           "mask", "pass", "N", "D", "median_ms", "p10_ms", "p90_ms", "cv", "GFLOP/s", "%sgemm",
           "GB/s", "%strm", "workspace", "rss_delta", "err", "status");
}

/* One table line, in the CSV's spelling of each number (a missing peak: "NA"). */
static void print_result(const bench_result *res, const csvw_row *r)
{
    const char *st = r->cell[ATTN_COL_STATUS];
    printf("%-7s %-22s %-6s %6s %4s %10s %10s %10s %6s %8s %7s %8s %7s %11s %11s %-9s %s\n",
           r->cell[ATTN_COL_KERNEL], r->cell[ATTN_COL_MASK], r->cell[ATTN_COL_PASS], r->cell[ATTN_COL_N],
           r->cell[ATTN_COL_D], r->cell[ATTN_COL_TIME_MS_MEDIAN], r->cell[ATTN_COL_TIME_MS_P10],
           r->cell[ATTN_COL_TIME_MS_P90], r->cell[ATTN_COL_TIME_CV], r->cell[ATTN_COL_GFLOPS],
           res->measured && res->has_peak ? r->cell[ATTN_COL_PCT_SGEMM_PEAK] : res->measured ? "NA" : "",
           r->cell[ATTN_COL_GBYTES_S],
           res->measured && res->has_peak ? r->cell[ATTN_COL_PCT_STREAM_PEAK] : res->measured ? "NA" : "",
           r->cell[ATTN_COL_WORKSPACE_BYTES], r->cell[ATTN_COL_PEAK_RSS_BYTES], r->cell[ATTN_COL_VALUE], st);
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
                bench_result_fill(&res, &row);
                print_result(&res, &row);
                *failed += res.status == BENCH_ERROR;
                if (out && csvw_write(out, &row))
                    return ATTN_EINVAL;
            }
    return 0;
}

static void opts_defaults(bench_opts *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->base.suite, "kernels");
    o->base.seed = 1;
    o->base.measure = MEASURE_OPTS_DEFAULT;
    o->base.args.B = 1, o->base.args.H = 8, o->base.args.threads = sysinfo_ncpu();
    o->Ns[0] = 1024, o->Ds[0] = 64, o->n_N = o->n_D = 1;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    opts_defaults(&o);
    int rc = parse_opts(argc, argv, &o);
    if (rc > 0)
        return 0; /* --help */
    const attn_kernel *kernels[32];
    if (rc || check_grid(&o, kernels))
        return cli_report("bench");
    sysinfo_print(stderr);
    peak_result peak;
    if (!o.no_peak) {
        if (peak_measure(o.base.args.threads, &peak))
            return cli_report("bench");
        peak_print(stderr, &peak);
    }
    csvw out;
    if (o.out && csvw_open(&out, o.out))
        return cli_report("bench");
    int failed = 0;
    rc = o.train ? run_train_suite(&o, kernels, o.no_peak ? NULL : &peak, o.out ? &out : NULL)
                 : run_grid(&o, kernels, o.no_peak ? NULL : &peak, o.out ? &out : NULL, &failed);
    if (rc)
        return cli_report("bench");
    if (o.out)
        csvw_close(&out);
    return failed ? 1 : 0;
}
