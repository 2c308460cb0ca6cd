/* One benchmark job: a kernel on one problem shape, timed after warm-up with
 * counters, memory and a correctness gate, reported as one CSV row. Both
 * `attnbench bench` and `attnbench sweep` run jobs through here. */
#ifndef ATTN_BENCH_H
#define ATTN_BENCH_H

#include "kernels/core/attn.h"
#include "measure.h"
#include "peak.h"
#include "harness/results/schema.h"

typedef enum { ATTN_RUN_FWD = 0, ATTN_RUN_BWD, ATTN_RUN_FWDBWD } bench_pass_set;

typedef struct {
    char suite[32];             /* "kernels" for kernel efficiency */
    const attn_kernel *kernel;
    attn_args args;             /* shapes, mask, threads, params */
    bench_pass_set pass;         /* bwd times backward only (forward run once before) */
    uint64_t seed;
    measure_opts measure;
    const peak_result *peak;      /* same-run machine peaks at args.threads, or NULL */
    size_t max_workspace_bytes; /* 0: no cap; above it the job is skipped */
    int n_kv_lens;              /* > 0: a ragged batch, args.B = n_kv_lens sequences */
    int64_t kv_lens[64];        /* their KV lengths (args.kv_len is pointed here at run time) */
    int lens_padded;            /* 1: kv_lens are a padded batch's lengths (args.seq_len) instead */
} bench_job;

/* "fwd" | "bwd" | "fwdbwd"; error naming the value otherwise. */
int bench_pass_parse(const char *s, bench_pass_set *out);
const char *bench_pass_name(bench_pass_set p);

/* Fills run metadata and identity cells (and job_id) of the job's row. */
void bench_identity(const bench_job *job, csvw_row *row);

/* Runs the job and completes the row. A kernel refusing the problem (mask,
 * workspace cap) yields status "skipped:<why>"; a failure "error:<why>";
 * both return 0 so a sweep goes on. Negative only for harness failures. */
int bench_run(const bench_job *job, csvw_row *row);

/* A fresh row with the run metadata (run_id, utc, git_sha, cpu), thread count
 * and suite filled in: every row this harness writes starts so. */
void bench_row_begin(csvw_row *row, int threads, const char *suite);

/* The run's machine peaks as two rows of suite "peak": kernel sgemm (gflops)
 * and kernel stream_triad (gbytes_s), which plots draw as reference lines. */
void bench_peak_rows(const peak_result *p, csvw_row rows[2]);

#endif
