/* PAPI presets and SDE counters behind one start/stop (papi_events.h). */
#include "papi_events.h"

#include "common/attn_error.h"

#include <math.h>
#include <papi.h>
#include <stdio.h>
#include <string.h>

static const char *const preset_names[ATTN_PAPI_NPRESETS] = {"PAPI_TOT_CYC", "PAPI_TOT_INS", "PAPI_L1_DCM",
                                                             "PAPI_L2_TCM", "PAPI_L3_TCM"};
static const schema_col preset_cols[ATTN_PAPI_NPRESETS] = {ATTN_COL_PAPI_TOT_CYC, ATTN_COL_PAPI_TOT_INS,
                                                         ATTN_COL_PAPI_L1_DCM, ATTN_COL_PAPI_L2_TCM,
                                                         ATTN_COL_PAPI_L3_TCM};
/* Indexed by attn_counter_id. */
static const schema_col sde_cols[ATTN_CNT__COUNT] = {ATTN_COL_FLOPS_COUNTED, ATTN_COL_SDE_BYTES_READ,
                                                   ATTN_COL_SDE_TILES_COMPUTED, ATTN_COL_SDE_TILES_SKIPPED,
                                                   ATTN_COL_SDE_EXPS};

/* Short symbolic name of a PAPI error code, for NA cells. */
static const char *papi_err_name(int code)
{
    switch (code) {
    case PAPI_EINVAL: return "PAPI_EINVAL";
    case PAPI_ENOMEM: return "PAPI_ENOMEM";
    case PAPI_ESYS: return "PAPI_ESYS";
    case PAPI_ECMP: return "PAPI_ECMP";
    case PAPI_EBUG: return "PAPI_EBUG";
    case PAPI_ENOEVNT: return "PAPI_ENOEVNT";
    case PAPI_ECNFLCT: return "PAPI_ECNFLCT";
    case PAPI_ENOTRUN: return "PAPI_ENOTRUN";
    case PAPI_EISRUN: return "PAPI_EISRUN";
    case PAPI_ENOEVST: return "PAPI_ENOEVST";
    case PAPI_ENOTPRESET: return "PAPI_ENOTPRESET";
    case PAPI_ENOCNTR: return "PAPI_ENOCNTR";
    case PAPI_EMISC: return "PAPI_EMISC";
    case PAPI_EPERM: return "PAPI_EPERM";
    case PAPI_ENOINIT: return "PAPI_ENOINIT";
    case PAPI_ENOCMP: return "PAPI_ENOCMP";
    case PAPI_ENOSUPP: return "PAPI_ENOSUPP";
    case PAPI_ECOMBO: return "PAPI_ECOMBO";
    case PAPI_ECOUNT: return "PAPI_ECOUNT";
    default: return "PAPI error";
    }
}

static const PAPI_component_info_t *component(const char *name)
{
    for (int c = 0; c < PAPI_num_components(); c++) {
        const PAPI_component_info_t *ci = PAPI_get_component_info(c);
        if (ci && strcmp(ci->name, name) == 0)
            return ci;
    }
    return NULL;
}

/* 1 if /proc/cpuinfo lists the "hypervisor" flag (x86 guests). */
static int in_vm(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[4096];
    int vm = 0;
    while (!vm && fgets(line, sizeof line, f))
        vm = strncmp(line, "flags", 5) == 0 && strstr(line, " hypervisor") != NULL;
    fclose(f);
    return vm;
}

/* Why no preset can exist on this host, or "" if the PMU looks usable. PAPI
 * derives presets from the hardware PMU libpfm4 detects; zero presets means
 * it found none (typical of VMs without PMU passthrough). */
static void host_reason(char *buf, size_t len)
{
    const PAPI_component_info_t *pe = component("perf_event");
    buf[0] = '\0';
    if (!pe)
        snprintf(buf, len, "no perf_event component in PAPI");
    else if (pe->disabled)
        snprintf(buf, len, "perf_event disabled: %.60s", pe->disabled_reason);
    else if (pe->num_preset_events == 0)
        snprintf(buf, len, in_vm() ? "no hardware counters in this VM" : "no hardware PMU found");
}

static void mark_all_presets_na(papi_session *p, const char *why)
{
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++) {
        p->hw_slot[i] = -1;
        snprintf(p->hw_na[i], sizeof p->hw_na[i], "NA:%.56s", why);
    }
    p->n_hw = 0;
}

/* Adds the presets one by one, so one the host lacks (or that conflicts
 * with those already added) costs only its own column. A missing preset's
 * cell gives the machine-level reason if there is one, else the PAPI error. */
static void add_presets(papi_session *p)
{
    char host[96];
    host_reason(host, sizeof host);
    int set_rc = PAPI_create_eventset(&p->hw_set);
    int missing = 0, first = -1, first_rc = 0;
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++) {
        int rc = set_rc == PAPI_OK ? PAPI_add_named_event(p->hw_set, preset_names[i]) : set_rc;
        if (rc == PAPI_OK) {
            p->hw_slot[i] = p->n_hw++;
            continue;
        }
        p->hw_slot[i] = -1;
        snprintf(p->hw_na[i], sizeof p->hw_na[i], "NA:%.56s", host[0] ? host : papi_err_name(rc));
        if (missing++ == 0)
            first = i, first_rc = rc;
    }
    if (missing == 0)
        snprintf(p->status, sizeof p->status, "ok");
    else if (missing == ATTN_PAPI_NPRESETS && host[0])
        snprintf(p->status, sizeof p->status, "NA:presets unavailable (%s)", host);
    else
        snprintf(p->status, sizeof p->status, "NA:%d of %d presets unavailable (%s: %s)", missing,
                 ATTN_PAPI_NPRESETS, preset_names[first], papi_err_name(first_rc));
    if (p->n_hw == 0 && set_rc == PAPI_OK)
        PAPI_destroy_eventset(&p->hw_set);   /* leaves PAPI_NULL */
}

static void add_sde(papi_session *p)
{
    if (attn_counters_register_sde() != 0) {
        snprintf(p->sde_na, sizeof p->sde_na, "NA:libsde registration failed");
        return;
    }
    const PAPI_component_info_t *sde = component("sde");
    if (!sde || sde->disabled) {
        snprintf(p->sde_na, sizeof p->sde_na, "NA:PAPI sde component %s", sde ? "disabled" : "missing");
        return;
    }
    int rc = PAPI_create_eventset(&p->sde_set);
    for (int i = 0; i < ATTN_CNT__COUNT && rc == PAPI_OK; i++) {
        char name[96];
        snprintf(name, sizeof name, "sde:::attnbench::%s", attn_counter_name((attn_counter_id)i));
        rc = PAPI_add_named_event(p->sde_set, name);
    }
    if (rc != PAPI_OK)
        snprintf(p->sde_na, sizeof p->sde_na, "NA:cannot add SDE events (%s)", papi_err_name(rc));
}

static void describe(papi_session *p)
{
    char presets[128] = "";
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++)
        if (p->hw_slot[i] >= 0) {
            strcat(presets, presets[0] ? "," : "");
            strcat(presets, preset_names[i]);
        }
    snprintf(p->summary, sizeof p->summary,
             "PAPI %d.%d.%d; presets: %s; papi_status: %s; SDE sde:::attnbench::*: %s",
             PAPI_VERSION_MAJOR(PAPI_VERSION), PAPI_VERSION_MINOR(PAPI_VERSION),
             PAPI_VERSION_REVISION(PAPI_VERSION), presets[0] ? presets : "none", p->status,
             p->sde_na[0] ? p->sde_na : "ok");
}

int papi_events_init(papi_session *p)
{
    if (!p)
        return attn_fail(ATTN_EINVAL, "papi: papi_events_init needs a session");
    memset(p, 0, sizeof *p);
    p->hw_set = p->sde_set = PAPI_NULL;
    int rc = PAPI_is_initialized() ? (int)PAPI_VER_CURRENT : PAPI_library_init(PAPI_VER_CURRENT);
    if (rc != (int)PAPI_VER_CURRENT) {
        const char *why = rc > 0 ? "version mismatch" : papi_err_name(rc);
        mark_all_presets_na(p, why);
        snprintf(p->status, sizeof p->status, "NA:PAPI_library_init failed (%s)", why);
        snprintf(p->sde_na, sizeof p->sde_na, "NA:PAPI_library_init failed (%s)", why);
        snprintf(p->summary, sizeof p->summary, "PAPI unavailable: PAPI_library_init failed (%s)", why);
        return 0;
    }
    add_presets(p);
    add_sde(p);
    describe(p);
    return 0;
}

static int start_set(int set, long long *values)
{
    (void)values;
    return PAPI_start(set);
}

/* Runs PAPI_start or PAPI_stop on both event sets. A preset set that fails
 * (perf_event_paranoid, PMU taken by another tool) turns its columns NA and
 * the SDE set goes on, and the other way round. */
static void on_both_sets(papi_session *p, const char *op, int (*call)(int set, long long *values))
{
    if (p->n_hw > 0) {
        int rc = call(p->hw_set, p->hw_val);
        if (rc != PAPI_OK) {
            char why[48];
            snprintf(why, sizeof why, "%s %s", op, papi_err_name(rc));
            mark_all_presets_na(p, why);
            snprintf(p->status, sizeof p->status, "NA:presets failed in %s (%s)", op, papi_err_name(rc));
        }
    }
    if (p->sde_set != PAPI_NULL && !p->sde_na[0]) {
        int rc = call(p->sde_set, p->sde_val);
        if (rc != PAPI_OK)
            snprintf(p->sde_na, sizeof p->sde_na, "NA:%s on SDE events failed (%s)", op, papi_err_name(rc));
    }
}

int papi_events_start(papi_session *p)
{
    if (p->running)
        return attn_fail(ATTN_EINVAL, "papi: start called twice without stop");
    on_both_sets(p, "PAPI_start", start_set);
    p->running = 1;
    p->measured = 0;
    return 0;
}

int papi_events_stop(papi_session *p)
{
    if (!p->running)
        return attn_fail(ATTN_EINVAL, "papi: stop called without start");
    on_both_sets(p, "PAPI_stop", PAPI_stop);
    p->running = 0;
    p->measured = 1;
    return 0;
}

static void count_na(papi_count *c, const char *why)
{
    c->available = 0;
    snprintf(c->na, sizeof c->na, "%s", why);
}

void papi_events_read(const papi_session *p, papi_counts *out)
{
    const char *not_measured = "NA:counters not started";
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "%s", p->status);
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++) {
        papi_count *c = &out->preset[i];
        if (p->hw_slot[i] < 0)
            count_na(c, p->hw_na[i]);
        else if (!p->measured)
            count_na(c, not_measured);
        else
            c->available = 1, c->value = p->hw_val[p->hw_slot[i]];
    }
    for (int i = 0; i < ATTN_CNT__COUNT; i++) {
        papi_count *c = &out->sde[i];
        if (p->sde_na[0])
            count_na(c, p->sde_na);
        else if (!p->measured)
            count_na(c, not_measured);
        else
            c->available = 1, c->value = p->sde_val[i];
    }
}

static void count_cell(const papi_count *c, char *cell)
{
    if (c->available)
        snprintf(cell, ATTN_CELL_MAX, "%lld", c->value);
    else
        snprintf(cell, ATTN_CELL_MAX, "%s", c->na);
}

void papi_counts_fill_row(const papi_counts *c, csvw_row *row)
{
    snprintf(row->cell[ATTN_COL_PAPI_STATUS], ATTN_CELL_MAX, "%s", c->status);
    for (int i = 0; i < ATTN_PAPI_NPRESETS; i++)
        count_cell(&c->preset[i], row->cell[preset_cols[i]]);
    for (int i = 0; i < ATTN_CNT__COUNT; i++)
        count_cell(&c->sde[i], row->cell[sde_cols[i]]);
}

double papi_events_fill_row(const papi_session *p, csvw_row *row)
{
    papi_counts c;
    papi_events_read(p, &c);
    papi_counts_fill_row(&c, row);
    const papi_count *flops = &c.sde[ATTN_CNT_FLOPS];
    return flops->available ? (double)flops->value : NAN;
}

const char *papi_events_describe(const papi_session *p) { return p->summary; }

void papi_events_fini(papi_session *p)
{
    long long scratch[ATTN_PAPI_NPRESETS + ATTN_CNT__COUNT];
    int *sets[2] = {&p->hw_set, &p->sde_set};
    for (int i = 0; i < 2; i++) {
        if (*sets[i] == PAPI_NULL)
            continue;
        if (p->running)
            PAPI_stop(*sets[i], scratch);
        PAPI_cleanup_eventset(*sets[i]);
        PAPI_destroy_eventset(sets[i]);
    }
    p->running = 0;
}
