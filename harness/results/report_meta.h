/* What the full report says about where its numbers come from (report_all.h):
 * per results file its rows, runs, commits, machines and time span; which
 * counters were measured, simulated or missing; which data each task read. */
#ifndef ATTN_REPORT_META_H
#define ATTN_REPORT_META_H

#include <stdio.h>

#define META_MAX_VALUES 16

/* Distinct values of one column and how many rows had each. */
typedef struct {
    char value[META_MAX_VALUES][160];
    int count[META_MAX_VALUES];
    int n, more; /* more: rows whose value did not fit the list */
} meta_values;

typedef struct {
    char path[512];
    int rows, ok;
    char first_utc[32], last_utc[32];
    meta_values runs, shas, cpus, threads, counters, sources; /* sources: "task: data_source" */
} meta_file;

/* Reads path's rows into *m (0; negative when the file cannot be read). */
int meta_scan(const char *path, meta_file *m);

/* The provenance section: one table row per file, then the machines,
 * commits, counter availability and data sources over all of them. */
void meta_markdown(const meta_file *files, int n, FILE *md);

#endif
