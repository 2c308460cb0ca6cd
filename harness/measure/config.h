/* Sweep configuration files (configs/<name>.json, documented in configs/README.md).
 *
 * {
 *   "name": "quick",                       required; [A-Za-z0-9_-], at most 31 chars
 *   "description": "CI smoke sweep",       optional
 *   "threads": [2],                        optional, default [1]; a suite may override it
 *   "measure": {"warmup": 1, "min_reps": 3, "min_time_s": 0.05, "max_reps": 20},
 *                                          optional, and so is each key (defaults 3, 10, 1.0, 1000:
 *                                          >= 3 warm-ups, >= 10 runs and >= 1 s, as `bench` does)
 *   "max_workspace_bytes": 2147483648,     optional; 0 (default) means no cap
 *   "max_time_s": 3600, "max_mem_bytes": 8e9,  optional; a job whose estimate is above either
 *                                          is a skipped row (bench_fit.h; sweep --max-time and
 *                                          --max-mem override them; defaults as bench's)
 *   "suites": [                            required, non-empty; entries run in file order
 *     {
 *       "suite": "kernels",                required; the CSV `suite` column (and file name)
 *       "description": "...",             optional
 *       "kernels": ["naive", "flash"],     required; names are checked against the registry when
 *                                          jobs are expanded; "oracle" is refused (a reference)
 *       "masks": ["full", "window:wl=256,wr=0"],  default ["full"]; attn_mask_parse specs,
 *                                          stored parsed (cfg_dump writes attn_mask_format's form)
 *       "pass": ["fwd", "bwd"],            default ["fwd"]; each one of fwd, bwd, fwdbwd
 *       "inputs": ["peaked"],              default ["uniform"]; input families (fidelity.h): any
 *                                          other than uniform adds the job's fidelity rows
 *       "kv_dtype": ["fp32", "q8_0"],      default ["fp32"]; storage of the KV cache (kv_format.h):
 *                                          one job per entry, kernels without it skip it
 *       "dtype": ["fp32", "bf16"],         default ["fp32"]; storage of Q, K, V, O (dtype.h): one
 *                                          job per entry, kernels without it skip it
 *       "B": [1], "H": [8], "N": [256, 512], "D": [64],
 *                                          B defaults to [1]; H, N, D are required
 *       "H_kv": [2],                       default: equal to H; each must divide every H
 *       "N_kv": [4096],                    default: equal to N (self-attention)
 *       "params": ["flash:br=64,bc=128"],  default none; "kernel:key=value,..." runs that kernel
 *                                          once per entry naming it ("flash:" = its defaults)
 *       "threads": [1, 2],                 default: the top-level list
 *       "kv_lens": ["32768+1024+1024"],    optional ragged batches (VARLEN kernels): one job per
 *                                          entry, B = number of lengths, N_kv = the longest;
 *                                          excludes "B" and "N_kv"
 *       "seq_lens": ["4096+1024+100"],     optional padded batches (kernels flagged padded):
 *                                          self-attention over sequences of these lengths
 *                                          padded to N (>= the longest), B = number of
 *                                          lengths; excludes "B", "N_kv" and "kv_lens"
 *       "seed": 1                          default 1
 *     }
 *   ]
 * }
 *
 * Strict: unknown or repeated keys, wrong types, empty or repeated list
 * values and jobs repeated across entries are errors, each reported on one
 * line as `file: $.json.path: expected ..., found ...`; malformed JSON as
 * `file:line:column: ...`. Several entries may share a suite name (kernel
 * groups with their own N range); their rows go to the same results file.
 *
 * Expansion order (deterministic): entries in file order, then threads,
 * kernel, params entry, mask, pass, inputs, kv_dtype, dtype, B, H, H_kv, D, N, N_kv (N innermost, so
 * a time-vs-N curve completes before the next starts). */
#ifndef ATTN_CONFIG_H
#define ATTN_CONFIG_H

#include "bench.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_NAME_MAX 32
#define CFG_SPEC_MAX 128

typedef struct {
    int64_t *v;
    size_t n;
} cfg_ints;

typedef struct {
    char (*v)[CFG_SPEC_MAX];
    size_t n;
} cfg_strs;

typedef struct {
    attn_mask *v;
    size_t n;
} cfg_masks;

typedef struct {
    bench_pass *v;
    size_t n;
} cfg_passes;
typedef struct {
    bench_inputs *v;
    size_t n;
} cfg_inputs;
typedef struct {
    attn_kv_dtype *v;
    size_t n;
} cfg_kv_dtypes;
typedef struct {
    attn_dtype *v;
    size_t n;
} cfg_dtypes;

/* One "params" entry: parameters for one of the entry's kernels. */
typedef struct {
    char kernel[CFG_NAME_MAX];
    param_bag params;
} cfg_kparams;

/* "kernel:key=value,..." as a config spells it. */
void cfg_kparams_format(const cfg_kparams *kp, char *buf, size_t n);

typedef struct {
    cfg_kparams *v;
    size_t n;
} cfg_kparams_list;

typedef struct {
    bench_lens *v;              /* every one RAGGED_KV ("kv_lens") or every one PADDED_SEQ ("seq_lens") */
    size_t n;
} cfg_lens_list;

typedef struct {
    char name[CFG_NAME_MAX];
    char description[256];
    cfg_strs kernels;
    cfg_masks masks;
    cfg_passes passes;
    cfg_inputs inputs;                          /* input families (default ["uniform"]) */
    cfg_kv_dtypes kv_dtypes;                    /* KV cache formats (default ["fp32"]) */
    cfg_dtypes dtypes;                          /* operand types (default ["fp32"]) */
    cfg_kparams_list params;
    cfg_lens_list lens;                         /* batches with their own lengths, or empty */
    cfg_ints B, H, H_kv, N, N_kv, D, Dv, threads; /* H_kv, N_kv, Dv empty: equal to H, N, D */
    cfg_ints mem_budget;                        /* memory budgets in bytes (empty: none) */
    uint64_t seed;
} cfg_suite;

typedef struct {
    int64_t warmup, min_reps, max_reps;
    double min_time_s;
} cfg_measure;

typedef struct {
    char path[1024];           /* the file it came from, for messages */
    char name[CFG_NAME_MAX];
    char description[512];
    cfg_ints threads;
    cfg_measure measure;
    int64_t max_workspace_bytes;   /* 0: no cap */
    double max_time_s, max_mem_bytes; /* the jobs' bench_limits (max_mem_bytes 0: the machine's default) */
    cfg_suite *suites;
    size_t n_suites;
    struct cfg_training *trainings;   /* "trainings" entries (config_train.h) */
    size_t n_trainings;
} cfg_config;

/* An expanded job: the same typed job `attnbench bench` builds from its
 * options (kernel resolved, measure settings and workspace cap from the
 * config), and the suites[] entry it comes from. */
typedef struct {
    bench_job job;
    size_t entry;
} cfg_job;

/* Selects jobs: suite == NULL or kernels == NULL selects all. Naming a suite
 * or kernel the (selected part of the) config does not have is an error. */
typedef struct {
    const char *suite;
    const char *const *kernels;
    size_t n_kernels;
} cfg_filter;

/* Reads and validates a config file; on error *cfg is empty (cfg_free-able). */
int cfg_load(const char *path, cfg_config *cfg);

/* The same from text; `name` stands for the file in messages. */
int cfg_parse(const char *name, const char *text, cfg_config *cfg);

void cfg_free(cfg_config *cfg);

/* All jobs in the order above; *jobs is malloc'ed (free() it). A kernel
 * name the registry does not know is an error. */
int cfg_expand(const cfg_config *cfg, cfg_job **jobs, size_t *n);
int cfg_expand_filtered(const cfg_config *cfg, const cfg_filter *filter, cfg_job **jobs, size_t *n);

/* Entries sharing a suite name must not repeat a job (it would run twice
 * and write two rows with one job_id); cfg_parse checks it. */
int cfg_check_distinct_jobs(const cfg_config *cfg);

/* The resolved kernel suites (defaults filled in) as JSON that cfg_parse
 * accepts when the config has suites; trainings are not written (--dry-run
 * lists them as jobs after it). */
void cfg_dump(FILE *f, const cfg_config *cfg);

#endif
