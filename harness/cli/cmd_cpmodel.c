/* attnbench cpmodel: the cost model of the context-parallel kernels
 * (harness/measure/cp_model.h) written as a CSV of predictions. The link
 * comes from the ping-pong probe over MPI (cli_cp_probe) unless given; the
 * compute rate is measured here, `flash` forward on square blocks. */
#include "cli.h"
#include "cp_hook.h"
#include "common/options.h"
#include "harness/measure/bench_opts.h"
#include "harness/measure/cp_model.h"
#include "harness/measure/sysinfo.h"
#include "kernels/flash/flash.h"

#include <csv.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CPMODEL_NS 16

cli_cp_prober cli_cp_probe = NULL; /* set by main() in a build with MPI */

typedef struct {
    const char *out;
    double latency_us, bandwidth_gbs;
    int64_t Ns[CPMODEL_NS], blocks[CPM_RATES_MAX];
    int n_N, n_blocks;
    int64_t B, H, H_kv, D, max_P;
    int threads, causal;
} cpmodel_opts;

static const char *const mask_names[] = {"full", "causal", NULL};

#define AT(f) offsetof(cpmodel_opts, f)
static const opt_def cpmodel_table[] = {
    {.name = "out", .type = OPT_ARG, .offset = AT(out), .metavar = "FILE", .flags = OPT_REQUIRED,
     .help = "the predictions, one CSV row per kernel, N and P (overwritten)"},
    {.name = "N", .type = OPT_INT_LIST, .offset = AT(Ns), .count_offset = AT(n_N), .size = CPMODEL_NS,
     .def_str = "32768,131072,1048576", .lo = 2, .hi = (double)(1 << 30), .help = "sequence lengths"},
    {.name = "max_P", .cli = "max-P", .type = OPT_INT, .offset = AT(max_P), .def = 1024, .lo = 1, .hi = 1 << 20,
     .metavar = "P", .help = "ranks predicted: 1, 2, 4, ... up to P"},
    {.name = "B", .type = OPT_INT, .offset = AT(B), .def = 1, .lo = 1, .hi = 1 << 20, .help = "batch"},
    {.name = "H", .type = OPT_INT, .offset = AT(H), .def = 8, .lo = 1, .hi = 1 << 16, .help = "query heads"},
    {.name = "H_kv", .cli = "Hkv", .type = OPT_INT, .offset = AT(H_kv), .lo = 1, .hi = 1 << 16, .def_str = "= H",
     .help = "KV heads (a divisor of H)"},
    {.name = "D", .type = OPT_INT, .offset = AT(D), .def = 64, .lo = 1, .hi = 1 << 16, .help = "head dimension"},
    {.name = "mask", .type = OPT_ENUM, .offset = AT(causal), .names = mask_names, .def = 1,
     .help = "the problem's mask (ring's zigzag chunks balance causal)"},
    {.name = "threads", .type = OPT_INT32, .offset = AT(threads), .lo = 1, .hi = 4096, .metavar = "T",
     .def_str = "all cores", .help = "OpenMP threads of one rank (the measured blocks)"},
    {.name = "blocks", .type = OPT_INT_LIST, .offset = AT(blocks), .count_offset = AT(n_blocks),
     .size = CPM_RATES_MAX, .def_str = "256,1024,2048", .lo = 16, .hi = 1 << 16, .metavar = "ROWS[,ROWS...]",
     .help = "square block sizes flash is timed on (increasing); the rate between them is interpolated"},
    {.name = "latency_us", .cli = "latency-us", .type = OPT_DOUBLE, .offset = AT(latency_us), .def = -1, .lo = 0,
     .hi = 1e9, .metavar = "US", .def_str = "probed", .help = "link latency; with --bandwidth-gbs, no probe"},
    {.name = "bandwidth_gbs", .cli = "bandwidth-gbs", .type = OPT_DOUBLE, .offset = AT(bandwidth_gbs), .def = -1,
     .lo = 1e-6, .hi = 1e9, .metavar = "GB/S", .def_str = "probed", .help = "link bandwidth (1e9 bytes/s)"},
    {0},
};
#undef AT

static const char usage_head[] =
    "usage: mpirun -n 2 attnbench cpmodel --out FILE [options]\n"
    "       attnbench cpmodel --out FILE --latency-us US --bandwidth-gbs GB/S [options]\n"
    "Predicts the forward time of ring and ulysses on 1, 2, 4, ... ranks and their efficiency\n"
    "against flash on one rank (docs/scale-out.md, 'The cost model'). The link's latency and\n"
    "bandwidth are fitted to a ping-pong between ranks 0 and 1 (1 KiB to 64 MiB), unless both\n"
    "are given; flash's rate is measured on square blocks of the problem's heads. A model, not\n"
    "a measurement: the rows are predictions, the measured points are bench's efficiency rows.\n"
    "options:\n";

static const int64_t default_Ns[] = {32768, 131072, 1048576}, default_blocks[] = {256, 1024, 2048};

/* flash forward on a full block of `rows` rows of the problem's heads: useful FLOP/s. */
static int block_rate(const cpmodel_opts *o, int64_t rows, double *flops_per_s)
{
    bench_opts b;
    bench_opts_defaults(&b);
    bench_job job = b.base;
    bench_result res;
    job.kernel = &attn_kernel_flash;
    job.args.B = o->B, job.args.H = o->H, job.args.H_kv = o->H_kv, job.args.D = o->D;
    job.args.Nq = job.args.Nk = rows, job.args.threads = o->threads;
    job.args.mask = attn_mask_default(ATTN_MASK_FULL);
    job.measure.warmup = 1, job.measure.min_reps = 3, job.measure.min_time_s = 0.2;
    int rc = bench_run(&job, NULL, &res);
    if (rc || res.status != BENCH_OK)
        return rc ? rc : attn_fail(ATTN_EINVAL, "flash on a %lld-row block: %s", (long long)rows, res.reason);
    *flops_per_s = 4.0 * (double)(o->B * o->H) * (double)o->D * (double)rows * (double)rows /
                   (res.time.median_ms / 1e3);
    fprintf(stderr, "cpmodel: flash block %6lld rows: %10.3f ms, %.3g GFLOP/s\n", (long long)rows,
            res.time.median_ms, *flops_per_s / 1e9);
    return 0;
}

/* Numbers as they are (gnuplot reads a quoted number as text); text cells through libcsv. */
static void put_row(FILE *f, char cells[][48], int n)
{
    for (int c = 0; c < n; c++) {
        char *end;
        if (c)
            fputc(',', f);
        (void)strtod(cells[c], &end);
        if (cells[c][0] && !*end)
            fputs(cells[c], f);
        else if (cells[c][0])
            csv_fwrite(f, cells[c], strlen(cells[c]));
    }
    fputc('\n', f);
}

static const char *const columns[] = {"kernel", "mask", "B", "H", "H_kv", "N", "D", "P", "latency_us",
                                      "bandwidth_gbs", "bytes_per_rank", "one_rank_ms", "compute_ms", "comm_ms",
                                      "exposed_ms", "time_ms", "efficiency", "overlap", "bound", "note"};
enum { NCOLS = sizeof columns / sizeof *columns };

/* One prediction as a row; an infeasible one keeps its shape and says why in note. */
static void prediction_row(FILE *f, const cpm_machine *m, const cpm_problem *p, const cpm_prediction *r)
{
    char c[NCOLS][48];
    double v[] = {m->latency_s * 1e6, m->bandwidth_Bps / 1e9, r->bytes, r->one_rank_s * 1e3, r->compute_s * 1e3,
                  r->comm_s * 1e3, r->exposed_s * 1e3, r->time_s * 1e3, r->efficiency, r->overlap};
    snprintf(c[0], 48, "%s", cpm_kind_names[p->kind]);
    snprintf(c[1], 48, "%s", mask_names[p->causal]);
    int64_t ints[] = {p->B, p->H, p->H_kv, p->N, p->D, p->P};
    for (int i = 0; i < 6; i++)
        snprintf(c[2 + i], 48, "%lld", (long long)ints[i]);
    for (int i = 0; i < 10; i++)
        snprintf(c[8 + i], 48, r->feasible && isfinite(v[i]) ? "%.6g" : "", v[i]);
    snprintf(c[18], 48, "%s", r->feasible ? cpm_bound_names[r->bound] : "");
    snprintf(c[19], 48, "%.47s", r->feasible ? "" : r->why);
    put_row(f, c, NCOLS);
}

static int write_predictions(const cpmodel_opts *o, const cpm_machine *m)
{
    FILE *f = fopen(o->out, "w");
    if (!f)
        return attn_fail(ATTN_EIO, "%s: cannot open for writing", o->out);
    for (int c = 0; c < NCOLS; c++)
        fprintf(f, "%s%s", c ? "," : "", columns[c]);
    fputc('\n', f);
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++)
        for (int i = 0; i < o->n_N && !rc; i++)
            for (int64_t P = 1; P <= o->max_P && !rc; P *= 2) {
                cpm_problem p = {(cpm_kind)k, o->B, o->H, o->H_kv, o->Ns[i], o->D, o->causal, P};
                cpm_prediction r;
                if (!(rc = cpm_predict(m, &p, &r)))
                    prediction_row(f, m, &p, &r);
            }
    if (fclose(f) && !rc)
        rc = attn_fail(ATTN_EIO, "%s: write failed", o->out);
    return rc;
}

/* The link: given, or probed over MPI (*done 1 on a rank other than 0, which stops there). */
static int link_of(const cpmodel_opts *o, cpm_machine *m, int *done)
{
    *done = 0;
    if ((o->latency_us >= 0) != (o->bandwidth_gbs > 0))
        return attn_fail(ATTN_EINVAL, "--latency-us and --bandwidth-gbs: give both (no probe) or neither");
    if (o->latency_us >= 0) {
        m->latency_s = o->latency_us * 1e-6, m->bandwidth_Bps = o->bandwidth_gbs * 1e9;
        return 0;
    }
    if (!cli_cp_probe)
        return attn_fail(ATTN_EUNSUPPORTED, "the link probe runs over MPI and this build has no MPI: give "
                         "--latency-us and --bandwidth-gbs, or apt-get install libopenmpi-dev openmpi-bin and rebuild");
    int root = 1, rc = cli_cp_probe(&root, &m->latency_s, &m->bandwidth_Bps, stderr);
    *done = !root;
    if (!rc && root)
        fprintf(stderr, "cpmodel: link fit: latency %.3g us, bandwidth %.3g GB/s\n", m->latency_s * 1e6,
                m->bandwidth_Bps / 1e9);
    return rc;
}

int cmd_cpmodel(int argc, char **argv)
{
    cpmodel_opts o;
    memset(&o, 0, sizeof o);
    opt_defaults(cpmodel_table, &o);
    memcpy(o.Ns, default_Ns, sizeof default_Ns), o.n_N = 3;
    memcpy(o.blocks, default_blocks, sizeof default_blocks), o.n_blocks = 3;
    int rc;
    if (cli_parse_table("cpmodel", cpmodel_table, &o, argc, argv, usage_head,
                        "unexpected argument (all options have names)", &rc))
        return rc;
    o.H_kv = o.H_kv ? o.H_kv : o.H;
    o.threads = o.threads ? o.threads : sysinfo_ncpu();
    if (o.H % o.H_kv)
        return cli_usage_error("cpmodel", "--Hkv must divide --H");
    cpm_machine m = {.n_rates = o.n_blocks};
    int done;
    if ((rc = link_of(&o, &m, &done)) != 0)
        return cli_report("cpmodel");
    if (done)
        return 0;
    for (int i = 0; i < o.n_blocks && !rc; i++) {
        m.rows[i] = (double)o.blocks[i];
        rc = block_rate(&o, o.blocks[i], &m.flops_per_s[i]);
    }
    if (rc || (rc = write_predictions(&o, &m)) != 0)
        return cli_report("cpmodel");
    fprintf(stderr, "cpmodel: predictions in %s (a model, not a measurement)\n", o.out);
    return 0;
}
