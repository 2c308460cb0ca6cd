/* Empirical scaling exponent (the "scaling" suite): the least-squares
 * slope of log(time) against log(N_kv) over one series of rows, using the
 * points at N_kv >= ATTN_SCALING_MIN_N up to the row's own length. A series
 * is every identity column but the lengths (N joins the key when it differs
 * from N_kv, as in decode rows, where only the KV length grows). The row at
 * the largest length of a sweep thus carries the exponent over the whole
 * 16K..max range; 1 means linear time, 2 quadratic. */
#ifndef ATTN_SCALING_H
#define ATTN_SCALING_H

#include "schema.h"

#include <stddef.h>

#define ATTN_SCALING_MIN_N 16384

typedef struct {
    char (*key)[256];
    double *log_n, *log_t;
    size_t n, cap;
} scaling_points;

void scaling_init(scaling_points *s);
void scaling_free(scaling_points *s);

/* A finished run as a series sees it. */
typedef struct {
    int ok;              /* finished without error */
    double n_kv, median_ms;
} scaling_run;

/* The series a row belongs to, from its identity cells (see above). */
void scaling_series_key(const csvw_row *identity, char key[256]);

/* Records a finished run's (length, median time) in its series. */
void scaling_note(scaling_points *s, const char *series, const scaling_run *run);

/* The exponent of a finished run from the points noted so far in its series
 * plus the run itself, or NA (shorter than the fit range, fewer than 2
 * points); NONE for a run that is not ok or has no length or time. */
schema_num scaling_exponent(const scaling_points *s, const char *series, const scaling_run *run);

#endif
