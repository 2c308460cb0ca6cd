/* Crossover lengths (scaling suite): for every kernel series of a
 * results CSV, the smallest length from which the kernel is faster than a
 * reference kernel (flash) at every common length measured after it. */
#ifndef ATTN_CROSSOVER_H
#define ATTN_CROSSOVER_H

#include "schema.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char series[ATTN_CELL_MAX * 10];   /* mask|pass|D|Dv|B|H|H_kv|threads (room for every cell in full) */
    char kernel[ATTN_CELL_MAX * 2 + 8];    /* kernel, with [params] when given */
    int64_t n_kv;
    double ms;
} crossover_point;

typedef struct {
    crossover_point *p;
    size_t n, cap;
} crossover_points;

/* Collects the ok rows of `suite` (NULL: every suite) from a results CSV. */
int crossover_points_load(const char *path, const char *suite, crossover_points *xs);
void crossover_points_free(crossover_points *xs);

/* One line per (series, kernel != ref): the crossover length, "below" when
 * the kernel is faster at every common length, "none" when it is not faster
 * at the largest common one, "no common lengths" when the reference was not
 * measured in that series. Writes CSV (series,kernel,crossover_n,common_ns,
 * verdict) when as_csv. Returns the number of lines. */
int crossover_print(const crossover_points *xs, const char *ref, int as_csv, FILE *out);

/* Fails, naming path and the option, when the loaded points have no row
 * (of --suite) or none of the reference kernel: every line would say
 * "no common lengths" instead of a crossover. */
int crossover_check(const crossover_points *xs, const char *path, const char *suite, const char *ref);

#endif
