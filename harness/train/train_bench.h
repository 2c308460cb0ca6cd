/* The training benchmark ('attnbench bench --suite train'): steps/s
 * and tokens/s of two reference models, the share of step time in GEMMs
 * (dense layers), attention kernels and the rest (norms, embeddings, loss,
 * AdamW), and the step's GFLOP/s against the same run's sgemm. */
#ifndef ATTN_TRAIN_BENCH_H
#define ATTN_TRAIN_BENCH_H

#include "harness/measure/peak.h"
#include "harness/results/schema.h"

#include <stdio.h>

/* Runs both models with kernel `name`; rows[0..1] are filled (encoder, lm). */
int train_bench_run(const char *name, int threads, const peak_result *peak, csvw_row rows[2], FILE *table);

#endif
