/* One benchmark job: a kernel on one problem shape, timed after warm-up with
 * counters, memory and a correctness gate, reported as one CSV row. Both
 * `attnbench bench` and `attnbench sweep` run jobs through here. */
#ifndef ATTN_BENCH_H
#define ATTN_BENCH_H

#include "kernels/core/attn.h"
#include "bench_inputs.h"
#include "fidelity.h"
#include "gate.h"
#include "measure.h"
#include "papi_events.h"
#include "peak.h"
#include "sysload.h"
#include "harness/results/schema.h"

typedef enum { BENCH_PASS_FWD = 0, BENCH_PASS_BWD, BENCH_PASS_FWDBWD } bench_pass;

/* A batch whose sequences have lengths of their own. RAGGED_KV: each
 * sequence's KV length (VARLEN kernels; N_kv is the longest); PADDED_SEQ:
 * each sequence's length in a self-attention batch padded to N (PADDED
 * kernels). Either way B is the number of lengths. */
typedef enum { BENCH_LENS_NONE = 0, BENCH_LENS_RAGGED_KV, BENCH_LENS_PADDED_SEQ } bench_lens_kind;

#define BENCH_LENS_MAX 64

typedef struct {
    bench_lens_kind kind;
    int n;                        /* lengths in len (0 with NONE) */
    int64_t len[BENCH_LENS_MAX];
} bench_lens;

/* The lengths as "L+L+..." (the spelling of configs and of the params
 * column), and the name of their kind there: "kv_lens" or "seq_lens". */
void bench_lens_format(const bench_lens *l, char *buf, size_t n);
const char *bench_lens_key(const bench_lens *l);

/* Limits a job is judged against before anything is allocated (bench_fit.h):
 * a lower bound of its time and of its memory above them refuses it. 0: not checked. */
typedef struct {
    double max_time_s;          /* whole job: warm-up, timed repetitions, gate */
    double max_mem_bytes;       /* problem tensors and the kernel's workspace */
} bench_limits;

/* One job, as `attnbench bench` and a sweep config both build it. */
typedef struct {
    char suite[32];             /* "kernels" for kernel efficiency */
    const attn_kernel *kernel;
    attn_args args;             /* shape, mask, kernel params, threads; kv_len and
                                 * seq_len stay NULL: the lengths are `lens` */
    bench_lens lens;
    bench_pass pass;            /* bwd times backward only (forward run once before) */
    uint64_t seed;
    bench_inputs inputs;        /* generated family or kv file; other than uniform: fidelity rows too */
    measure_opts measure;
    size_t max_workspace_bytes; /* 0: no cap; above it the job is skipped */
    bench_limits limits;
    int timing_only;            /* an estimate's probe: no correctness gate (the output is still
                                 * checked finite); a kernel's double reference can cost several
                                 * times its timed calls (local_linear's at N = 1024) */
} bench_job;

typedef enum { BENCH_OK = 0, BENCH_SKIPPED, BENCH_ERROR } bench_status;

/* A row's useful FLOP rate may exceed the same-run FMA roof by this fraction
 * (the roof is a best-of probe, the row a median; both wobble a little);
 * beyond it the row is an error: its FLOP count or the probe is wrong. */
#define BENCH_ROOF_TOLERANCE 0.10

/* What one job measured, as numbers. Which parts are set depends on how far
 * the job got: a refused job has only its status; a job that failed after
 * its correctness gate keeps the gate's numbers. */
typedef struct {
    bench_status status;
    char reason[512];             /* why skipped or failed; "" when ok */
    int gated;                    /* the gate ran: gate_err and softmax_rel are set */
    double gate_err;              /* max_abs_err of the output on sampled rows */
    schema_num softmax_rel;       /* distance from softmax attention; NA when not measured */
    int has_fid;                  /* fidelity measured on the job's inputs (job.inputs) */
    fid_metrics fid;
    int measured;                 /* timed: everything below is set (status ok) */
    measure_stats time;
    double flops, bytes;          /* analytic, for the job's pass */
    double dense_flops;           /* the unmasked problem's work for the pass (dense_gflops) */
    double density;
    int has_peak;                 /* same-run machine peaks below are set */
    double sgemm_peak_gflops, stream_peak_gbs;
    double roof_gflops;        /* the row's compute roof: bf16 dot on bf16 operands where the CPU has it, else FMA */
    sysload_sample load;          /* around the timed calls: load average at the end, and other
                                   * runnable work present both before and after them */
    char load_na[64];             /* why load.ok is 0 ("": not sampled, e.g. MPI ranks) */
    size_t peak_rss_bytes, workspace_bytes, state_bytes;
    papi_counts counters;         /* of one untimed call */
    schema_num sparsity_eff, n_exponent; /* across jobs: a sweep derives them (NONE otherwise) */
} bench_result;

/* The passes by bench_pass value (NULL-terminated): the names the command
 * line, configs and the CSV's pass column use. */
extern const char *const bench_pass_names[];
const char *bench_pass_name(bench_pass p);

/* The job's args for a kernel: with a batch's lengths pointing into the job
 * (valid while *job is). */
attn_args bench_job_args(const bench_job *job);

/* The one untimed call whose counters a row reports (its argument is the
 * bench's own call record). Never inlined and not static: valgrind finds it
 * by name to simulate that call alone (cachegrind.h). */
__attribute__((noinline)) int bench_counted_call(void *call);

/* The args the job's kernel runs on: bench_job_args with the pass's backward
 * flag and the defaults applied. */
attn_args bench_run_args(const bench_job *job);

/* Fills run metadata and identity cells (and job_id) of the job's row. */
void bench_identity(const bench_job *job, csvw_row *row);

/* Runs the job. A kernel refusing the problem (mask, workspace cap) is status
 * SKIPPED, a failure ERROR, both with the reason; either way 0 is returned so
 * a sweep goes on. `peak`: same-run machine peaks at the job's thread count,
 * or NULL (the % of peak columns then say NA). */
int bench_run(const bench_job *job, const peak_result *peak, bench_result *out);

/* Every measured column of a row that holds the job's identity, derived
 * rates included, formatted from the result. A caller that made the identity
 * before the run keeps its utc (when the job started). */
void bench_result_fill(const bench_result *res, csvw_row *row);

/* The rows of a job: `row` (identity and bench_result_fill's cells), then
 * for a fidelity job one copy per fidelity measure with metric and value
 * replaced (rel_fro_err, cosine_mean, cosine_min, kl, topk_recall; NA:<why>
 * where one does not apply), each with a job_id of its own (the identity and
 * the metric). Returns how many of rows[BENCH_ROWS_MAX] it filled. */
#define BENCH_ROWS_MAX (1 + FID_MEASURES)
int bench_result_rows(const bench_result *res, const csvw_row *row, csvw_row rows[BENCH_ROWS_MAX]);

/* A copy of `row` that reports one more measure: metric and value replaced
 * (v NaN: "NA:<na>"), and a job_id of its own (the identity and the metric). */
void bench_metric_row(const csvw_row *row, const char *metric, double v, const char *na, csvw_row *out);

/* The job's roofline time from the same-run probes (has_peak):
 * max(bytes / STREAM, flops / FMA roof); pct_roofline = it / median time. */
double bench_roofline_s(const bench_result *res);

/* bench_identity, then bench_result_fill. */
void bench_result_row(const bench_job *job, const bench_result *res, csvw_row *row);

/* A fresh row with the run metadata (run_id, utc, git_sha, cpu), thread count
 * and suite filled in: every row this harness writes starts so. */
void bench_row_begin(csvw_row *row, int threads, const char *suite);

/* The problem's cells of a row: dtype fp32 and the shape (bench_identity adds a
 * stored KV cache's format to dtype: fp32;kv=q8_0). */
typedef struct {
    int64_t B, H, H_kv, N, N_kv, D, Dv;
} bench_shape;
void bench_row_shape(csvw_row *row, const bench_shape *s);

/* The time cells: reps, warmup, and the median, p10 and p90 times printed
 * with `fmt` (one double conversion). */
void bench_row_time(csvw_row *row, const measure_stats *st, const char *fmt);

/* The run's machine peaks as rows of suite "peak": kernel sgemm (gflops),
 * kernel stream_triad (gbytes_s) and kernel fma_roof (gflops), which plots
 * draw as reference lines. */
#define BENCH_PEAK_ROWS 4
void bench_peak_rows(const peak_result *p, csvw_row rows[BENCH_PEAK_ROWS]);

#endif
