/* Per-suite summary tables of the full report (report_all.h): for each
 * group of a results file (kernel, mask, pass, ...) the ok row at its
 * largest size, with the columns a reader compares. */
#ifndef ATTN_REPORT_SUMMARY_H
#define ATTN_REPORT_SUMMARY_H

#include "schema.h"

#include <stdio.h>

#define SUMMARY_MAX_COLS 8

/* A table: rows of `suite` with status ok (and, when metric is set, that
 * metric), grouped by `group`, each group shown by its row at the largest N
 * (then N_kv) — `show` are the columns printed after the group's — or, with
 * mean_value, by the mean of its rows' value and their count. */
typedef struct {
    const char *suite, *metric;
    schema_col group[SUMMARY_MAX_COLS];
    int n_group;
    schema_col show[SUMMARY_MAX_COLS];
    int n_show;
    int mean_value; /* instead of one row per group: the mean of `value` over the group's rows */
    const char *skip_params; /* rows whose params contain this are left out (NULL: none) */
} summary_spec;

/* Writes the Markdown table of path's rows under spec; returns the groups
 * written (0: the file has no such rows, and nothing is written), or a
 * negative code when the file cannot be read. */
int summary_table(const char *path, const summary_spec *spec, FILE *md);

#endif
