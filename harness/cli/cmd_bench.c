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
    "appends one CSV row per job (README.md: CSV schema).\n"
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

typedef struct {
    char kernels[32][CLI_ITEM], params[PARAM_BAG_MAX][CLI_ITEM];
    int n_kernels, n_params;
    int64_t Ns[32], Ds[16];
    int n_N, n_D;
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
    attn_args *a = &o->base.args;
    int64_t v, nkv = 0, b_given = 0;
    double t;
    int c, rc = 0;
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': rc = cli_split("--kernel", optarg, o->kernels, 32, &o->n_kernels); break;
        case 'm': rc = attn_mask_parse(optarg, &a->mask); break;
        case 'B': rc = cli_int64("--B", optarg, 1, 1 << 20, &a->B), b_given = 1; break;
        case 'H': rc = cli_int64("--H", optarg, 1, 1 << 16, &a->H); break;
        case 'G': rc = cli_int64("--Hkv", optarg, 1, 1 << 16, &a->H_kv); break;
        case 'N': rc = parse_list64("--N", optarg, o->Ns, 32, &o->n_N); break;
        case 'K': rc = cli_int64("--Nkv", optarg, 1, 1 << 24, &nkv); break;
        case 'D': rc = parse_list64("--D", optarg, o->Ds, 16, &o->n_D); break;
        case 'V': rc = cli_int64("--Dv", optarg, 1, 1 << 16, &a->Dv); break;
        case 'S':
            if (strcmp(optarg, "train"))
                rc = attn_fail(ATTN_EINVAL, "--suite: expected train (the training benchmark), found '%s'", optarg);
            o->train = 1;
            break;
        case 'L':
        case 'Q': {
            bench_lens *l = &o->base.lens;
            bench_lens_kind kind = c == 'L' ? BENCH_LENS_RAGGED_KV : BENCH_LENS_PADDED_SEQ;
            if (l->kind && l->kind != kind)
                rc = attn_fail(ATTN_EINVAL, "--seq-lens: expected a padded batch or a ragged one (--kv-lens), found both");
            else
                rc = parse_list64(kind == BENCH_LENS_RAGGED_KV ? "--kv-lens" : "--seq-lens", optarg, l->len, 32, &l->n),
                l->kind = kind;
            break;
        }
        case 'p': rc = bench_pass_parse(optarg, &o->base.pass); break;
        case 'P':
            if (o->n_params >= PARAM_BAG_MAX || strlen(optarg) >= CLI_ITEM)
                rc = attn_fail(ATTN_EINVAL, "--param: too many or too long");
            else
                strcpy(o->params[o->n_params++], optarg);
            break;
        case 't': rc = cli_int64("--threads", optarg, 1, 1024, &v), a->threads = (int)v; break;
        case 'r': rc = cli_int64("--reps", optarg, 1, 1000000, &v), o->base.measure.min_reps = (int)v; break;
        case 'T': rc = cli_double("--min-time", optarg, 0, 3600, &t), o->base.measure.min_time_s = t; break;
        case 'w': rc = cli_int64("--warmup", optarg, 0, 1000, &v), o->base.measure.warmup = (int)v; break;
        case 's': rc = cli_int64("--seed", optarg, 0, INT64_MAX, &v), o->base.seed = (uint64_t)v; break;
        case 'o': o->out = optarg; break;
        case 'n': o->no_peak = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        default: return attn_fail(ATTN_EINVAL, "unknown option or missing value (see 'attnbench bench --help')");
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return attn_fail(ATTN_EINVAL, "unexpected argument '%s'", argv[optind]);
    if (!o->n_kernels)
        return attn_fail(ATTN_EINVAL, "--kernel: expected at least one kernel name");
    if (nkv && o->n_N > 1)
        return attn_fail(ATTN_EINVAL, "--Nkv: only with a single --N");
    if (!a->H_kv)
        a->H_kv = a->H;
    const bench_lens *l = &o->base.lens;
    const char *lens_opt = l->kind == BENCH_LENS_PADDED_SEQ ? "--seq-lens" : "--kv-lens";
    if (l->n) {
        if (o->n_N > 1)
            return attn_fail(ATTN_EINVAL, "%s: only with a single --N", lens_opt);
        if (b_given && a->B != l->n)
            return attn_fail(ATTN_EINVAL, "%s: %d lengths for --B %lld", lens_opt, l->n, (long long)a->B);
        a->B = l->n;
    }
    if (l->kind == BENCH_LENS_PADDED_SEQ) { /* self-attention padded to --N */
        for (int i = 0; i < l->n; i++)
            if (l->len[i] > o->Ns[0])
                return attn_fail(ATTN_EINVAL, "--seq-lens: expected lengths <= --N %lld (the padded length), found %lld",
                                 (long long)o->Ns[0], (long long)l->len[i]);
        if (nkv && nkv != o->Ns[0])
            return attn_fail(ATTN_EINVAL, "--seq-lens: a padded batch is self-attention, expected no --Nkv or --Nkv = --N");
        nkv = o->Ns[0];
    } else if (l->n) {
        for (int i = 0; i < l->n; i++)
            nkv = nkv > l->len[i] ? nkv : l->len[i];
    }
    a->Nk = nkv;
    return 0;
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

static void print_header(void)
{
    printf("%-7s %-22s %-6s %6s %4s %10s %10s %10s %6s %8s %7s %8s %7s %11s %11s %-9s %s\n", "kernel",
           "mask", "pass", "N", "D", "median_ms", "p10_ms", "p90_ms", "cv", "GFLOP/s", "%sgemm",
           "GB/s", "%strm", "workspace", "rss_delta", "err", "status");
}

static void print_row(const csvw_row *r)
{
    const char *st = r->cell[ATTN_COL_STATUS];
    printf("%-7s %-22s %-6s %6s %4s %10s %10s %10s %6s %8s %7s %8s %7s %11s %11s %-9s %s\n",
           r->cell[ATTN_COL_KERNEL], r->cell[ATTN_COL_MASK], r->cell[ATTN_COL_PASS], r->cell[ATTN_COL_N],
           r->cell[ATTN_COL_D], r->cell[ATTN_COL_TIME_MS_MEDIAN], r->cell[ATTN_COL_TIME_MS_P10],
           r->cell[ATTN_COL_TIME_MS_P90], r->cell[ATTN_COL_TIME_CV], r->cell[ATTN_COL_GFLOPS],
           strncmp(r->cell[ATTN_COL_PCT_SGEMM_PEAK], "NA", 2) ? r->cell[ATTN_COL_PCT_SGEMM_PEAK] : "NA",
           r->cell[ATTN_COL_GBYTES_S],
           strncmp(r->cell[ATTN_COL_PCT_STREAM_PEAK], "NA", 2) ? r->cell[ATTN_COL_PCT_STREAM_PEAK] : "NA",
           r->cell[ATTN_COL_WORKSPACE_BYTES], r->cell[ATTN_COL_PEAK_RSS_BYTES], r->cell[ATTN_COL_VALUE], st);
    fflush(stdout);
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    strcpy(o.base.suite, "kernels");
    o.base.seed = 1;
    o.base.measure = MEASURE_OPTS_DEFAULT;
    o.base.args.B = 1, o.base.args.H = 8, o.base.args.threads = sysinfo_ncpu();
    o.Ns[0] = 1024, o.Ds[0] = 64, o.n_N = o.n_D = 1;
    int rc = parse_opts(argc, argv, &o);
    if (rc > 0)
        return 0; /* --help */
    if (rc)
        return cli_report("bench");
    const attn_kernel *kernels[32];
    for (int i = 0; i < o.n_kernels; i++)
        if (!(kernels[i] = attn_find_kernel(o.kernels[i])))
            return cli_report("bench");

    /* Shapes are checked before anything runs: bad input is a usage error. */
    for (int in = 0; in < o.n_N; in++)
        for (int id = 0; id < o.n_D; id++) {
            attn_args a = bench_job_args(&o.base);
            a.Nq = o.Ns[in], a.D = o.Ds[id];
            a.Nk = a.Nk && o.n_N == 1 ? a.Nk : a.Nq;
            if (attn_args_validate(NULL, &a))
                return cli_report("bench");
        }
    for (int ik = 0; ik < o.n_kernels; ik++) {
        param_bag p;
        if (params_for(&o, kernels[ik]->name, &p))
            return cli_report("bench");
    }
    sysinfo_print(stderr);
    peak_result peak;
    if (!o.no_peak) {
        if (peak_measure(o.base.args.threads, &peak))
            return cli_report("bench");
        peak_print(stderr, &peak);
        o.base.peak = &peak;
    }
    csvw out;
    if (o.out && csvw_open(&out, o.out))
        return cli_report("bench");
    if (o.train) { /* the training benchmark: two reference models per kernel */
        for (int ik = 0; ik < o.n_kernels; ik++) {
            csvw_row rows[2];
            if (train_bench_run(kernels[ik]->name, o.base.args.threads, o.no_peak ? NULL : &peak, rows, stdout))
                return cli_report("bench");
            for (int i = 0; o.out && i < 2; i++)
                if (csvw_write(&out, &rows[i]))
                    return cli_report("bench");
        }
        if (o.out)
            csvw_close(&out);
        return 0;
    }

    print_header();
    int failed = 0;
    for (int ik = 0; ik < o.n_kernels; ik++)
        for (int in = 0; in < o.n_N; in++)
            for (int id = 0; id < o.n_D; id++) {
                bench_job job = o.base;
                job.kernel = kernels[ik];
                job.args.Nq = o.Ns[in], job.args.D = o.Ds[id];
                if (!job.args.Nk || o.n_N > 1)
                    job.args.Nk = job.args.Nq;
                if (params_for(&o, kernels[ik]->name, &job.args.params))
                    return cli_report("bench");
                csvw_row row;
                if (bench_run(&job, &row))
                    return cli_report("bench");
                print_row(&row);
                failed += strncmp(row.cell[ATTN_COL_STATUS], "error", 5) == 0;
                if (o.out && csvw_write(&out, &row))
                    return cli_report("bench");
            }
    if (o.out)
        csvw_close(&out);
    return failed ? 1 : 0;
}
