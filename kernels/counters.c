/* Placeholder-free minimal counters: plain atomics; SDE registration is added
 * by the harness work. */
#include "counters.h"

static long long values[ATTN_CNT__COUNT];
static const char *const names[ATTN_CNT__COUNT] = {"flops", "bytes_read", "tiles_computed",
                                                   "tiles_skipped", "exps"};

void attn_counter_add(attn_counter_id id, long long delta)
{
    __atomic_fetch_add(&values[id], delta, __ATOMIC_RELAXED);
}

long long attn_counter_get(attn_counter_id id) { return __atomic_load_n(&values[id], __ATOMIC_RELAXED); }

void attn_counters_reset(void)
{
    for (int i = 0; i < ATTN_CNT__COUNT; i++)
        __atomic_store_n(&values[i], 0, __ATOMIC_RELAXED);
}

const char *attn_counter_name(attn_counter_id id) { return names[id]; }
const char *attn_counter_help(attn_counter_id id) { return names[id]; }
int attn_counters_register_sde(void) { return 0; }
