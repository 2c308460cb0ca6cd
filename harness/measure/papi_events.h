/* One path for every counter (docs/measurement.md): PAPI presets for the
 * hardware (cycles, instructions, L1/L2/L3 misses) and the kernels' software
 * counters sde:::attnbench::* (counters.h), all read through PAPI event sets.
 *
 *   papi_session p;
 *   papi_events_init(&p);              // once per job; never fails for missing events
 *   papi_events_start(&p);             // around exactly one untimed kernel call
 *   kernel call
 *   papi_events_stop(&p);
 *   papi_events_fill_row(&p, &row);    // papi_status, papi_*, sde_*, flops_counted
 *   papi_events_fini(&p);
 *
 * Whatever cannot be counted is written as "NA:<reason>", never 0: a preset
 * the host lacks (VMs usually expose no PMU), SDE if libsde or PAPI's sde
 * component is missing. Presets and SDE live in separate event sets because
 * PAPI binds an event set to one component.
 *
 * Presets count the thread that calls start/stop only (perf_event counts one
 * thread unless inherited by threads created later, and OpenMP reuses its
 * pool); SDE counters are process-wide, so they include every thread, and
 * two jobs measured at once in one process would mix their counts: measure
 * one job at a time. Start and stop must be called from the same thread. */
#ifndef ATTN_PAPI_EVENTS_H
#define ATTN_PAPI_EVENTS_H

#include "kernels/core/counters.h"
#include "harness/results/schema.h"

#define ATTN_PAPI_NPRESETS 5   /* PAPI_TOT_CYC, PAPI_TOT_INS, PAPI_L1_DCM, PAPI_L2_TCM, PAPI_L3_TCM */

typedef struct {
    int hw_set, sde_set;                       /* PAPI event sets; -1 (PAPI_NULL) when absent */
    int hw_slot[ATTN_PAPI_NPRESETS];           /* position in hw_set's values, -1 if unavailable */
    char hw_na[ATTN_PAPI_NPRESETS][64];        /* "NA:<why>" for each unavailable preset */
    int n_hw;                                  /* presets in hw_set */
    char sde_na[128];                          /* "" if SDE counters are read, else "NA:<why>" */
    char status[128];                          /* papi_status: "ok" or "NA:<why>" */
    char summary[512];                         /* papi_events_describe() */
    int running, measured;                     /* inside start/stop; a stop completed */
    long long hw_val[ATTN_PAPI_NPRESETS];
    long long sde_val[ATTN_CNT__COUNT];
} papi_session;

/* Initializes PAPI (once per process), registers the SDE counters and builds
 * the event sets. Unavailable events are recorded as NA, not errors: returns
 * 0 in every case but a NULL argument. */
int papi_events_init(papi_session *p);

/* Starts counting. A preset set that fails to start (e.g. perf_event
 * permissions) turns its columns to NA and the SDE set still runs. Negative
 * only for misuse: already running. */
int papi_events_start(papi_session *p);

/* Stops counting and keeps the counts of the region. Negative if not running. */
int papi_events_stop(papi_session *p);

/* One counter's reading of the last region, or why there is none. */
typedef struct {
    int available;
    long long value;       /* when available */
    char na[128];          /* "NA:<why>" when not */
} papi_count;

/* Every counter of one region, before any of it is text. */
typedef struct {
    char status[128];                       /* papi_status: "ok" or "NA:<why>" */
    papi_count preset[ATTN_PAPI_NPRESETS];  /* PAPI_TOT_CYC .. PAPI_L3_TCM */
    papi_count sde[ATTN_CNT__COUNT];        /* by attn_counter_id; sde[ATTN_CNT_FLOPS] is flops_counted */
} papi_counts;

/* The session's counts of its last region (NA for what was not measured). */
void papi_events_read(const papi_session *p, papi_counts *out);

/* Writes papi_status, papi_tot_cyc .. papi_l3_tcm, sde_bytes_read .. sde_exps
 * and flops_counted (SDE flops) into row. */
void papi_counts_fill_row(const papi_counts *c, csvw_row *row);

/* papi_events_read then papi_counts_fill_row. Returns the counted flops, or
 * NAN when SDE could not be read (the cells then say why). */
double papi_events_fill_row(const papi_session *p, csvw_row *row);

/* One line for headers and `attnbench peak`, e.g. "PAPI 7.0.0; presets: none;
 * papi_status: NA:presets unavailable (no hardware counters in this VM);
 * SDE sde:::attnbench::*: ok". */
const char *papi_events_describe(const papi_session *p);

/* Destroys the event sets (PAPI itself stays initialized for the process). */
void papi_events_fini(papi_session *p);

#endif
