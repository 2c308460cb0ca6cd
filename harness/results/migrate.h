/* Rewriting a results file written with an earlier header (schema.h's V1,
 * before the roofline and noise columns) to the current one, so later runs
 * can append to it (`attnbench migrate FILE`).
 *
 * Every complete row is kept with every value; the columns V1 lacks say
 * "NA:written before the column existed" on timed rows and stay empty on
 * others (schema_v1_fill). The new file is written beside the old one
 * (FILE.migrate.<pid>), synced, then renamed over it, so a crash leaves
 * either the old file or the new one, never a mix. A torn last row (an
 * interrupted write, not a row) is not carried over and is counted. Appenders
 * refuse V1 files, so none can write to the old file meanwhile. */
#ifndef ATTN_RESULTS_MIGRATE_H
#define ATTN_RESULTS_MIGRATE_H

#include "schema.h"

#include <stddef.h>

typedef struct {
    schema_header from;   /* the header the file had */
    long rows;            /* rows carried over (0 when already current) */
} results_migrate_stats;

/* 0 (also for a file already current: nothing is changed), or a negative
 * code with the one-line message recorded; the old file is then untouched. */
int results_migrate(const char *path, results_migrate_stats *st);

/* Every results file directly in `dir` (its *.csv, in name order) that has
 * the V1 header, migrated as above; the current ones are left alone (what
 * ./run.sh does to results/ before a sweep). On return `names` holds the
 * migrated files' names and row counts ("kernels.csv (120 rows), ..."),
 * `*files` how many. 0, or a negative code at the first file refused (the
 * files before it stay migrated, it and those after it untouched). */
int results_migrate_dir(const char *dir, char *names, size_t len, int *files);

#endif
