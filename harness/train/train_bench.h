/* The training benchmark ('attnbench bench --suite train'): steps/s
 * and tokens/s of two reference models, the share of step time in GEMMs
 * (dense layers), attention kernels and the rest (norms, embeddings, loss,
 * AdamW), and the step's GFLOP/s against the same run's sgemm. */
#ifndef ATTN_TRAIN_BENCH_H
#define ATTN_TRAIN_BENCH_H

#include "harness/measure/measure.h"
#include "harness/measure/peak.h"
#include "harness/results/schema.h"

#include <stdint.h>
#include <stdio.h>

/* What one model's timed training steps measured. */
typedef struct {
    const char *label;                 /* "encoder" | "lm" | "text" (the LRA speed shape) */
    char kernel[32];
    char model[160];                   /* nn_model_describe of the model */
    int causal;
    char mask[96];                     /* canonical spec of the model's mask */
    size_t peak_rss_bytes;             /* growth over the model's life: weights, plan, optimiser, steps */
    int64_t batch, heads, N, head_dim;
    measure_stats time;                /* of the timed steps (reps; warmup: untimed ones before them);
                                        * median, p10, p90 only */
    double flops;                      /* GEMM and attention work of one step */
    double gflops, tokens_per_s;       /* at the median step time */
    double gemm_share, attn_share;     /* of the step time; the rest is norms, embeddings, loss, AdamW */
    schema_num pct_sgemm_peak;         /* NA without a same-run sgemm peak */
} train_bench_result;

/* The result's row (suite train, task synthetic) with its job_id. */
void train_bench_row(const train_bench_result *res, int threads, csvw_row *row);

/* The result's line of the console table. */
void train_bench_print(FILE *f, const train_bench_result *res);

/* Runs both models with kernel `name`; rows[0..1] are filled (encoder, lm)
 * and a table line printed for each. */
int train_bench_run(const char *name, int threads, const peak_result *peak, csvw_row rows[2], FILE *table);

/* LRA Table 2's analogue ('attnbench bench --suite lra_speed'): training
 * steps of a byte-level Text encoder (the long profile's: 2 layers,
 * d_model 64, 2 heads, MLP 128, batch 8) at length N with kernel `name` and
 * the model mask `mask` (canonical spec, or NULL for full): one row (suite
 * lra_speed, task text-shape) with the step time, tokens/s and the peak RSS,
 * and a table line. */
int train_bench_speed(const char *name, const char *mask, int64_t N, int threads, const peak_result *peak,
                      csvw_row *row, FILE *table);

#endif
