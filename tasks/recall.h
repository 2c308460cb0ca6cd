/* Associative-recall suite (docs/tasks.md): MQAR and the classic synthetic
 * tasks, plus the per-example random streams every generated task shares.
 *
 * Determinism: example i of (params, split, seed) is drawn from its own
 * xoshiro stream seeded by hashing (seed, split, i), so it is the same for
 * any n, and the train, valid and test streams are unrelated. */
#ifndef ATTN_RECALL_H
#define ATTN_RECALL_H

#include "common/rng.h"
#include "task.h"

#include <stdint.h>

extern const task_def task_mqar;           /* Zoology multiquery_ar */
extern const task_def task_ar;             /* single-query AR */
extern const task_def task_induction;      /* induction heads */
extern const task_def task_selective_copy; /* Mamba selective copying */
extern const task_def task_copy;           /* plain copying control */

/* The stream of example i of a split: SplitMix64 chain over (seed, split, i). */
void recall_example_rng(attn_rng *r, uint64_t seed, task_split split, int64_t i);

/* Uniform integer in [0, n), n >= 1, without modulo bias (rejection). */
uint64_t recall_below(attn_rng *r, uint64_t n);

/* k distinct integers from [lo, hi) in uniformly random order (Floyd's
 * sampling, then a Fisher-Yates shuffle); needs k <= hi - lo. out is [k]. */
void recall_distinct(attn_rng *r, int64_t lo, int64_t hi, int64_t k, int32_t *out);

#endif
