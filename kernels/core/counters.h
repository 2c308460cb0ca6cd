/* Software counters the kernels export through PAPI SDE
 * (sde:::attnbench::<name>), read by the harness through the same PAPI
 * event-set path as hardware presets (docs/measurement.md).
 *
 * Kernels accumulate locally per thread / per tile loop and call
 * attn_counter_add once per parallel chunk: the add is an atomic relaxed
 * increment, cheap enough outside inner loops. */
#ifndef ATTN_COUNTERS_H
#define ATTN_COUNTERS_H

typedef enum {
    ATTN_CNT_FLOPS = 0,        /* executed matrix-product FLOPs (2 per multiply-add) */
    ATTN_CNT_BYTES_READ,       /* bytes of Q/K/V/O/dO/LSE read from memory by the kernel */
    ATTN_CNT_TILES_COMPUTED,   /* score tiles computed */
    ATTN_CNT_TILES_SKIPPED,    /* score tiles skipped by the mask */
    ATTN_CNT_EXPS,             /* exponentials evaluated */
    ATTN_CNT__COUNT
} attn_counter_id;

void attn_counter_add(attn_counter_id id, long long delta);
long long attn_counter_get(attn_counter_id id);
void attn_counters_reset(void);
const char *attn_counter_name(attn_counter_id id);   /* "flops", "bytes_read", ... */
const char *attn_counter_help(attn_counter_id id);

/* Registers every counter with PAPI SDE under library "attnbench" (idempotent).
 * Returns 0, or a negative code with a message if libsde refused. */
int attn_counters_register_sde(void);

#endif
