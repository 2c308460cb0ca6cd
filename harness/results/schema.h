/* The one CSV schema every results file uses (docs/csv-schema.md).
 * A row is an array of strings indexed by schema_col; empty means "not
 * applicable to this row", NA:<why> means "could not be measured". */
#ifndef ATTN_SCHEMA_H
#define ATTN_SCHEMA_H

#define ATTN_COLUMNS(X)                                                                        \
    /* identity */                                                                             \
    X(RUN_ID, "run_id") X(UTC, "utc") X(GIT_SHA, "git_sha") X(CPU, "cpu") X(THREADS, "threads") \
    X(SUITE, "suite") X(TASK, "task") X(KERNEL, "kernel") X(MODEL, "model") X(MASK, "mask")    \
    X(PASS, "pass") X(DTYPE, "dtype") X(B, "B") X(H, "H") X(H_KV, "H_kv") X(N, "N")            \
    X(N_KV, "N_kv") X(D, "D") X(DV, "Dv") X(PARAMS, "params") X(SEED, "seed") X(DATA_SOURCE, "data_source") \
    /* time */                                                                                 \
    X(REPS, "reps") X(WARMUP, "warmup") X(TIME_MS_MEDIAN, "time_ms_median")                   \
    X(TIME_MS_P10, "time_ms_p10") X(TIME_MS_P90, "time_ms_p90") X(TIME_CV, "time_cv")         \
    /* the machine around the repetitions: load, other runnable work, noise verdict, and the */ \
    /* processes of the run sharing the host */                                                  \
    X(LOAD_AVG_1M, "load_avg_1m") X(RUNNABLE_OTHERS, "runnable_others") X(NOISE, "noise")      \
    X(HOST_RANKS, "host_ranks")                                                                \
    /* work */                                                                                 \
    X(FLOPS_ANALYTIC, "flops_analytic") X(FLOPS_COUNTED, "flops_counted") X(GFLOPS, "gflops")  \
    X(DENSE_GFLOPS, "dense_gflops")                                                            \
    X(PCT_SGEMM_PEAK, "pct_sgemm_peak") X(BYTES_ANALYTIC, "bytes_analytic")                   \
    X(GBYTES_S, "gbytes_s") X(PCT_STREAM_PEAK, "pct_stream_peak") X(PCT_ROOFLINE, "pct_roofline") \
    X(DENSITY, "density")                                                                      \
    X(SPARSITY_EFF, "sparsity_eff") X(N_EXPONENT, "n_exponent")                                \
    /* memory */                                                                               \
    X(PEAK_RSS_BYTES, "peak_rss_bytes") X(WORKSPACE_BYTES, "workspace_bytes")                 \
    X(STATE_BYTES, "state_bytes")                                                              \
    /* counters: PAPI presets (NA where the host exposes none) and SDE software counters */    \
    X(PAPI_STATUS, "papi_status") X(PAPI_TOT_CYC, "papi_tot_cyc")                              \
    X(PAPI_TOT_INS, "papi_tot_ins") X(PAPI_L1_DCM, "papi_l1_dcm") X(PAPI_L2_TCM, "papi_l2_tcm") \
    X(PAPI_L3_TCM, "papi_l3_tcm") X(SDE_BYTES_READ, "sde_bytes_read")                         \
    X(SDE_TILES_COMPUTED, "sde_tiles_computed") X(SDE_TILES_SKIPPED, "sde_tiles_skipped")     \
    X(SDE_EXPS, "sde_exps")                                                                    \
    /* quality */                                                                              \
    X(METRIC, "metric") X(VALUE, "value") X(CI_LOW, "ci_low") X(CI_HIGH, "ci_high")            \
    X(SOFTMAX_REL_ERR, "softmax_rel_err")                                                      \
    X(TRAIN_STEPS, "train_steps") X(TRAIN_TIME_S, "train_time_s")                             \
    X(TOKENS_PER_S, "tokens_per_s")                                                            \
    /* outcome */                                                                              \
    X(STATUS, "status") X(JOB_ID, "job_id")

typedef enum {
#define ATTN_COL_ENUM(id, name) ATTN_COL_##id,
    ATTN_COLUMNS(ATTN_COL_ENUM)
#undef ATTN_COL_ENUM
    ATTN_COL__COUNT
} schema_col;

/* Identity columns (everything from SUITE to DATA_SOURCE except CPU-less run
 * metadata) define a job: job_id is a hash of them, so --resume can skip it. */
#define ATTN_COL_IDENTITY_FIRST ATTN_COL_SUITE
#define ATTN_COL_IDENTITY_LAST ATTN_COL_DATA_SOURCE

#define ATTN_CELL_MAX 512

/* Headers a results file may carry. CURRENT is the list above; V1 is the one
 * before the roofline and noise columns (load_avg_1m, runnable_others, noise,
 * host_ranks, pct_roofline): every other column, in the same order. Files
 * with a V1
 * header are read everywhere (those columns then say NA, see schema_v1_fill)
 * but not appended to: `attnbench migrate FILE` rewrites them. */
typedef enum { SCHEMA_HEADER_CURRENT = 0, SCHEMA_HEADER_V1 } schema_header;
#define SCHEMA_V1_NEW_COLUMNS 5

int schema_header_ncols(schema_header h);
/* The column field `field` (0-based, < schema_header_ncols(h)) of a file
 * with header h holds. */
schema_col schema_header_col(schema_header h, int field);

typedef struct {
    char cell[ATTN_COL__COUNT][ATTN_CELL_MAX];
} csvw_row;

/* The columns a V1 file lacks, in a row read from one: "NA:<why>" on a timed
 * row (time_ms_median set), which would carry them today; empty otherwise. */
void schema_v1_fill(csvw_row *row);

/* A measured or derived number before it becomes a cell: absent (the column
 * does not apply to the row: an empty cell), a value, or why it could not be
 * had (an "NA:<why>" cell). */
typedef enum { SCHEMA_NUM_NONE = 0, SCHEMA_NUM_VALUE, SCHEMA_NUM_NA } schema_num_state;

typedef struct {
    schema_num_state state;
    double value;          /* with VALUE */
    char why[128];         /* with NA: the reason, without the "NA:" */
} schema_num;

schema_num schema_num_value(double v);
schema_num schema_num_na(const char *why);

const char *schema_col_name(schema_col c);
int schema_col_find(const char *name);   /* -1 if unknown */

#endif
