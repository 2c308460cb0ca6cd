/* The benchmark job's option table (bench_opts.h). A row's name is the sweep
 * config's key, its `cli` the command-line name where the two differ (a
 * config's keys are lists: "kernels", "masks"; the command line names one
 * value: --kernel, --mask). Rows are in the order of a suite entry's keys,
 * which config messages list. A range is the one both read: where the
 * command line and the config once had their own, the command line's bound
 * for a shape (a config allowed any exact JSON integer) and the config's wider
 * one for threads and the measure settings. */
#include "bench_opts.h"

#include "common/attn_error.h"
#include "kernels/core/mask.h"

#include <stddef.h>
#include <string.h>

static const char *const counter_names[] = {"papi", "cachegrind", NULL};
static const char *const suite_names[] = {"", "train", "lra_speed", NULL}; /* "": the kernel benchmark, not named */

/* --kernel K[,K...]: names, checked against the registry later. */
static int kernels_set(void *target, const char *text, const char *where)
{
    bench_opts *o = target;
    o->n_kernels = 0;
    for (const char *p = text;; o->n_kernels++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof o->kernels[0])
            return attn_fail(ATTN_EINVAL, "%s: expected a comma-separated list of names, found '%s'", where, text);
        if (o->n_kernels >= BENCH_OPTS_KERNELS)
            return attn_fail(ATTN_EINVAL, "%s: at most %d items", where, BENCH_OPTS_KERNELS);
        memcpy(o->kernels[o->n_kernels], p, len);
        o->kernels[o->n_kernels][len] = '\0';
        if (!p[len])
            return o->n_kernels++, 0;
        p += len + 1;
    }
}

static int inputs_set(void *target, const char *text, const char *where)
{
    return bench_inputs_parse(text, &((bench_opts *)target)->base.inputs, where);
}

static int mask_set(void *target, const char *text, const char *where)
{
    (void)where; /* the mask parser names the spec */
    return attn_mask_parse(text, &((bench_opts *)target)->base.args.mask);
}

/* --kv-lens (a ragged batch) or --seq-lens (a padded one), not both: the
 * lengths read as N's list row would read them, into the job's lens. */
static int lens_set(bench_opts *o, bench_lens_kind kind, const char *text, const char *where)
{
    bench_lens *l = &o->base.lens;
    if (l->kind && l->kind != kind)
        return attn_fail(ATTN_EINVAL, "--seq-lens: expected a padded batch or a ragged one (--kv-lens), found both");
    l->kind = kind;
    opt_def list = *bench_opt("N"); /* lengths: N's range */
    list.offset = offsetof(bench_opts, base.lens.len), list.count_offset = offsetof(bench_opts, base.lens.n);
    return opt_set_text(&list, o, text, where);
}
static int kv_lens_set(void *target, const char *text, const char *where)
{
    return lens_set(target, BENCH_LENS_RAGGED_KV, text, where);
}
static int seq_lens_set(void *target, const char *text, const char *where)
{
    return lens_set(target, BENCH_LENS_PADDED_SEQ, text, where);
}

#define AT(f) offsetof(bench_opts, f)
#define JOB(f) offsetof(bench_opts, base.f)
#define MEASURE(f) offsetof(bench_opts, base.measure.f)
#define G_JOB BENCH_OPTS_JOB
#define G_MEASURE BENCH_OPTS_MEASURE
#define G_CONFIG BENCH_OPTS_CONFIG
const opt_def bench_opts_table[] = {
    {.name = "kernels", .cli = "kernel", .group = G_JOB, .type = OPT_CUSTOM, .set_text = kernels_set,
     .metavar = "K[,K...]", .flags = OPT_REQUIRED, .help = "kernels (attnbench list kernels)"},
    {.name = "masks", .cli = "mask", .group = G_JOB, .type = OPT_CUSTOM, .set_text = mask_set, .metavar = "M",
     .def_str = "full", .help = "full | causal | window:wl=L,wr=R[,causal=1] | window:w=W"},
    {.name = "pass", .group = G_JOB, .type = OPT_ENUM, .offset = JOB(pass), .names = bench_pass_names,
     .def = BENCH_PASS_FWD, .help = "bwd times the backward alone"},
    {.name = "inputs", .group = G_JOB, .type = OPT_CUSTOM, .set_text = inputs_set,
     .metavar = "uniform|gaussian|lowrank|peaked|longtail|cache:FILE[@L]", .def_str = "uniform",
     .help = "input family, or layer L (default: the last) of a trained model's attention inputs written by "
             "'attnbench eval --dump-kv FILE'; other than uniform adds fidelity rows against the oracle "
             "(rel_fro_err, cosine_mean, cosine_min, kl, topk_recall; docs/fidelity.md)"},
    {.name = "kv_dtype", .group = G_JOB, .type = OPT_ENUM, .offset = JOB(args.kv_dtype),
     .names = attn_kv_dtype_names, .def = ATTN_KV_FP32,
     .help = "storage of the K and V caches a decode kernel reads (decode, lean; others skip a non-fp32 job): "
             "bf16 and fp16 widened in registers, q8_0 and q4_0 ggml's blocks of 32 with an fp16 scale "
             "(docs/kv-formats.md); accumulation stays fp32, softmax_rel_err is the error against the "
             "oracle on the unrounded K and V"},
    {.name = "dtype", .group = G_JOB, .type = OPT_ENUM, .offset = JOB(args.dtype), .names = attn_dtype_names,
     .def = ATTN_DT_FP32,
     .help = "storage of Q, K, V and O (dO and the gradients in a backward), rounded to nearest even "
             "(flash; others skip a non-fp32 job); accumulation stays fp32 (params acc=fp32), softmax_rel_err "
             "is the error against the oracle on the unrounded inputs (docs/dtypes.md)"},
    {.name = "B", .group = G_JOB, .type = OPT_INT, .offset = JOB(args.B), .lo = 1, .hi = 1 << 20, .def_str = "1",
     .help = "batch"},
    {.name = "H", .group = G_JOB, .type = OPT_INT, .offset = JOB(args.H), .def = 8, .lo = 1, .hi = 1 << 16,
     .help = "query heads"},
    {.name = "H_kv", .cli = "Hkv", .group = G_JOB, .type = OPT_INT, .offset = JOB(args.H_kv), .lo = 1,
     .hi = 1 << 16, .def_str = "= H", .help = "KV heads (a divisor of H)"},
    {.name = "N", .group = G_JOB, .type = OPT_INT_LIST, .offset = AT(Ns), .count_offset = AT(n_N),
     .size = BENCH_OPTS_NS, .def = 1024, .lo = 1, .hi = 1 << 24, .help = "query length(s)"},
    {.name = "N_kv", .cli = "Nkv", .group = G_JOB, .type = OPT_INT, .offset = AT(nkv), .lo = 1, .hi = 1 << 24,
     .def_str = "= N", .help = "key length (with one --N)"},
    {.name = "D", .group = G_JOB, .type = OPT_INT_LIST, .offset = AT(Ds), .count_offset = AT(n_D),
     .size = BENCH_OPTS_DS, .def = 64, .lo = 1, .hi = 1 << 24, .help = "head dimension(s)"},
    {.name = "Dv", .group = G_JOB, .type = OPT_INT, .offset = JOB(args.Dv), .lo = 1, .hi = 1 << 16,
     .def_str = "= D", .help = "columns of V and O (kernels with flag DV)"},
    {.name = "params", .cli = "param", .group = G_JOB, .type = OPT_PARAMS, .offset = AT(params),
     .metavar = "[K:]k=v", .help = "kernel parameter, for every kernel or only kernel K (repeatable); scale=X sets the score scale of any kernel that has one"},
    {.name = "mem_budget_bytes", .cli = "mem-budget", .group = G_JOB, .type = OPT_INT, .offset = JOB(args.mem_budget),
     .def = 0, .lo = 0, .hi = 1e18, .metavar = "BYTES", .def_str = "none",
     .help = "memory-budget mode: kernels that claim it (list kernels: budget) choose their tile, chunk or split "
             "sizes so the planned workspace stays within BYTES (params name them and mem_budget); no setting "
             "fits: bench refuses the job (exit 2) with the least budget it can meet; other kernels are skipped "
             "(docs/memory-budget.md)"},
    {.name = "threads", .group = G_JOB, .type = OPT_INT32, .offset = JOB(args.threads), .lo = 1, .hi = 4096,
     .metavar = "T", .def_str = "all cores", .help = "OpenMP threads"},
    {.name = "seed", .group = G_JOB, .type = OPT_UINT, .offset = JOB(seed), .def = 1, .lo = 0,
     .hi = (double)INT64_MAX, .metavar = "S", .help = "input seed"},
    {.name = "kv_lens", .group = G_JOB, .type = OPT_CUSTOM, .set_text = kv_lens_set, .metavar = "L[,L...]",
     .help = "ragged batch (VARLEN kernels): KV length of each sequence; sets --B to their count and --Nkv to "
             "the longest; one --N"},
    {.name = "seq_lens", .group = G_JOB, .type = OPT_CUSTOM, .set_text = seq_lens_set, .metavar = "L[,L...]",
     .help = "padded batch (kernels flagged padded): each sequence's length, padded to the one --N (>= the "
             "longest); sets --B to their count"},
    {.name = "warmup", .group = G_MEASURE, .type = OPT_INT32, .offset = MEASURE(warmup), .def = 3, .lo = 0,
     .hi = 1000000, .metavar = "W", .help = "warm-up runs"},
    {.name = "min_reps", .cli = "reps", .group = G_MEASURE, .type = OPT_INT32, .offset = MEASURE(min_reps),
     .def = 10, .lo = 1, .hi = 1000000, .metavar = "R", .help = "minimum repetitions"},
    {.name = "min_time_s", .cli = "min-time", .group = G_MEASURE, .type = OPT_DOUBLE,
     .offset = MEASURE(min_time_s), .def = 1, .lo = 0, .hi = 86400, .metavar = "S",
     .help = "minimum seconds of timed repetitions"},
    {.name = "max_reps", .group = G_MEASURE, .type = OPT_INT32, .offset = MEASURE(max_reps), .def = 1000, .lo = 1,
     .hi = 1000000, .flags = OPT_NO_CLI, .help = "most repetitions"},
    {.name = "max_workspace_bytes", .group = G_CONFIG, .type = OPT_UINT, .offset = JOB(max_workspace_bytes),
     .lo = 0, .hi = (double)INT64_MAX, .flags = OPT_NO_CLI, .help = "skip a job whose workspace is larger (0: no cap)"},
    {.name = "max_time_s", .cli = "max-time", .group = G_CONFIG, .type = OPT_DOUBLE, .offset = JOB(limits.max_time_s),
     .def = 3600, .lo = 0, .hi = 1e9, .metavar = "S",
     .help = "refuse a job (bench: exit 2; sweep: a skipped row) whose time estimate is longer: every call it makes "
             "at the analytic FLOPs and bytes over the same-run sgemm and STREAM peaks, a lower bound (0: no limit)"},
    {.name = "max_mem_bytes", .cli = "max-mem", .group = G_CONFIG, .type = OPT_DOUBLE,
     .offset = JOB(limits.max_mem_bytes), .def = 0, .lo = 0, .hi = 1e18, .metavar = "BYTES",
     .def_str = "80% of MemAvailable",
     .help = "refuse a job likewise whose tensors and kernel workspace need more bytes, judged before allocating "
             "(0: the default, 80% of the memory available when the command starts)"},
    {.name = "suite", .type = OPT_ENUM, .offset = AT(suite), .names = suite_names, .flags = OPT_NO_CONFIG,
     .help = "the training benchmark instead: per kernel, an encoder (L=2, d=128, H=4, N=1024, batch 16) and an "
             "LM (L=2, d=64, N=256, batch 16): step time, tokens/s, GFLOP/s vs same-run sgemm, share of step "
             "time in GEMMs, attention kernels and the rest (rows: suite train); lra_speed: LRA Table 2's analogue, "
             "training steps of a byte-level Text encoder (L=2, d=64, H=2, MLP 128, batch 8) per kernel at each "
             "--N with --mask as the model mask: step time, tokens/s, peak RSS (rows: suite lra_speed; 'attnbench "
             "report lra --speed FILE' sets them beside the paper's)"},
    {.name = "out", .type = OPT_ARG, .offset = AT(out), .metavar = "FILE", .flags = OPT_NO_CONFIG,
     .help = "append rows to this CSV (created with the header if absent)"},
    {.name = "counters", .type = OPT_ENUM, .offset = AT(counters), .names = counter_names, .def = 0,
     .flags = OPT_NO_CONFIG,
     .help = "papi: hardware presets where the machine has them (NA and why where not) and the kernels' own "
             "counts; cachegrind: also re-run each job's counted call under valgrind's cache simulator (one "
             "thread; jobs up to 4e9 flops) for papi_tot_ins, papi_l1_dcm and papi_l3_tcm (simulated last "
             "level), with papi_status sim:cachegrind"},
    {.name = "no_peak", .type = OPT_BOOL, .offset = AT(no_peak), .flags = OPT_NO_CONFIG,
     .help = "skip the same-run sgemm/STREAM probe (pct_*_peak become NA)"},
    {0},
};

void bench_opts_defaults(bench_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->base.suite, sizeof o->base.suite, "kernels");
    o->base.measure = MEASURE_OPTS_DEFAULT; /* max_reps has no row */
    opt_defaults(bench_opts_table, o);
}

const opt_def *bench_opt(const char *name) { return opt_find(bench_opts_table, name); }
