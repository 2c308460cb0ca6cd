/* Software counters (counters.h): one process-wide array of long longs that
 * kernels bump with relaxed atomics and PAPI SDE reads in place.
 *
 * How PAPI 7 finds them: libsde keeps every papi_sde_register_counter()'d
 * pointer in its own table and exports a "tool interface" (sde_ti_*). PAPI's
 * sde component resolves those sde_ti_* symbols with dlsym in the running
 * process at PAPI_library_init, so the executable only has to link libsde
 * (it does, through attncore); "sde:::attnbench::flops" then names
 * values[ATTN_CNT_FLOPS]. Registered as PAPI_SDE_RO | PAPI_SDE_DELTA, so an
 * event set reports the increase between PAPI_start and PAPI_read/stop.
 * Order does not matter (registering after PAPI_library_init works too), but
 * PAPI_add_named_event accepts an sde:::attnbench:: name nobody registered,
 * as a placeholder, without error: papi_events.c therefore checks the result
 * of attn_counters_register_sde() before trusting the SDE columns.
 *
 * papi_sde_hook_list_events is the other discovery path: papi_native_avail
 * dlopen()s an SDE library and calls that hook to list its events without
 * running it. It is defined below for when attncore is built as a shared
 * library; in-process reads never call it. */
#include "counters.h"

#include "common/attn_error.h"

#include <sde_lib.h>
#include <stdio.h>
#include <threads.h>

static long long values[ATTN_CNT__COUNT];

static const struct {
    const char *name, *help;
} counters[ATTN_CNT__COUNT] = {
    [ATTN_CNT_FLOPS] = {"flops", "Matrix-product FLOPs the kernel executed (2 per multiply-add), "
                                 "including recomputation and masked work it did not skip"},
    [ATTN_CNT_BYTES_READ] = {"bytes_read", "Bytes of Q, K, V, O, dO and LSE the kernel read from its "
                                           "inputs, counting every re-read of a tile"},
    [ATTN_CNT_TILES_COMPUTED] = {"tiles_computed", "Score tiles (query block x key block) computed, "
                                                   "full or partially masked"},
    [ATTN_CNT_TILES_SKIPPED] = {"tiles_skipped", "Score tiles skipped because the mask made them "
                                                 "empty"},
    [ATTN_CNT_EXPS] = {"exps", "Exponentials evaluated (softmax numerators, rescales and feature "
                               "maps); not counted as FLOPs"},
};

void attn_counter_add(attn_counter_id id, long long delta)
{
    __atomic_fetch_add(&values[id], delta, __ATOMIC_RELAXED);
}

long long attn_counter_get(attn_counter_id id) { return __atomic_load_n(&values[id], __ATOMIC_RELAXED); }

/* Readers take differences (SDE DELTA mode, or two attn_counter_get calls),
 * so resetting only matters for tests that want absolute values. */
void attn_counters_reset(void)
{
    for (int i = 0; i < ATTN_CNT__COUNT; i++)
        __atomic_store_n(&values[i], 0, __ATOMIC_RELAXED);
}

const char *attn_counter_name(attn_counter_id id)
{
    return (unsigned)id < ATTN_CNT__COUNT ? counters[id].name : "unknown";
}

const char *attn_counter_help(attn_counter_id id)
{
    return (unsigned)id < ATTN_CNT__COUNT ? counters[id].help : "unknown counter";
}

/* Registers every counter through the given libsde entry points: the real
 * ones for this process, or the lister's when papi_native_avail asks. */
static papi_handle_t register_all(papi_sde_fptr_struct_t *sde, int *rc)
{
    papi_handle_t h = sde->init("attnbench");
    if (!h) {
        *rc = attn_fail(ATTN_EUNSUPPORTED, "counters: papi_sde_init(\"attnbench\") returned NULL");
        return h;
    }
    *rc = 0;
    for (int i = 0; i < ATTN_CNT__COUNT && *rc == 0; i++) {
        int r = sde->register_counter(h, counters[i].name, PAPI_SDE_RO | PAPI_SDE_DELTA,
                                      PAPI_SDE_long_long, &values[i]);
        if (r == SDE_OK)
            r = sde->describe_counter(h, counters[i].name, counters[i].help);
        if (r != SDE_OK)
            *rc = attn_fail(ATTN_EUNSUPPORTED, "counters: libsde refused sde:::attnbench::%s (code %d)",
                            counters[i].name, r);
    }
    return h;
}

papi_handle_t papi_sde_hook_list_events(papi_sde_fptr_struct_t *fptr_struct)
{
    int rc;
    return register_all(fptr_struct, &rc);
}

static once_flag sde_once = ONCE_FLAG_INIT;
static int sde_rc;
static char sde_msg[256];

static void register_once(void)
{
    papi_sde_fptr_struct_t sde;
    POPULATE_SDE_FPTR_STRUCT(sde);
    register_all(&sde, &sde_rc);
    if (sde_rc)
        snprintf(sde_msg, sizeof sde_msg, "%s", attn_last_error());
}

int attn_counters_register_sde(void)
{
    call_once(&sde_once, register_once);
    /* The message was recorded on the registering thread; repeat it here. */
    return sde_rc ? attn_fail(sde_rc, "%s", sde_msg) : 0;
}
