/* The fidelity report (fidelity_report.c; docs/fidelity.md): error against
 * softmax attention vs time, from the fidelity rows of a results CSV. Per
 * shape (query rows N, keys N_kv, D, heads), input family and mask, every configuration's time and measures, its Pareto
 * front (no other point both faster and closer), and the long-context target:
 * a configuration faster than `flash` within a relative error bound. */
#ifndef ATTN_FIDELITY_REPORT_H
#define ATTN_FIDELITY_REPORT_H

#include "schema.h"

#include <stdint.h>
#include <stdio.h>

#define FIDREP_MAX_POINTS 4096

/* One configuration (kernel, parameters, mask, shape) on one input family. */
typedef struct {
    char kernel[64], params[ATTN_CELL_MAX], mask[96], family[ATTN_CELL_MAX]; /* a generated family or cache:FILE[@L] */
    int64_t N, Nk, D, B, H, H_kv;  /* N: query rows (1 or a few for decode shapes) */
    int exact;                  /* the kernel is exact (metric rows of flash, naive, ...) */
    double time_ms, rel_fro, cos_mean, kl, recall; /* NAN: not measured / NA */
    double bytes_read;          /* the kernel's own count of bytes read (SDE), NAN where NA */
    int pareto;                 /* on its group's front */
} fidrep_point;

typedef struct {
    fidrep_point *p;
    int n;
    int dropped;                /* points beyond FIDREP_MAX_POINTS */
    char cpu[128], threads[16]; /* of the last row read: the plots name the machine of the times */
} fidrep;

/* The "# machine: CPU, T threads" first line of the plot data (plots/plot.sh
 * passes it to the chart's title). */
void fidrep_machine_line(const fidrep *r, FILE *f);

/* Loads the ok rows of path that carry fidelity measures (params with
 * inputs=...; a later row of the same job replaces an earlier one) and marks
 * each group's Pareto front over (time, rel_fro_err). */
int fidrep_load(const char *path, fidrep *r);
void fidrep_free(fidrep *r);

/* The summary: per group the configurations by time, front marked; then the
 * target: per approximate kernel at the largest N on `peaked`, its fastest
 * configuration faster than flash with rel_fro_err <= FIDREP_TARGET_ERR, or
 * a plain statement that none is, with its nearest numbers. */
#define FIDREP_TARGET_ERR 0.1
void fidrep_markdown(const fidrep *r, FILE *f);

/* Whether two points are of one group: shape, input family and mask. */
int fidrep_same_group(const fidrep_point *a, const fidrep_point *b);
/* A markdown cell " v |" in fmt, " NA |" for NAN. */
void fidrep_cell(FILE *f, double v, const char *fmt);

/* Plot data: N,D,family,kernel,label,time_ms,rel_fro_err,pareto,exact; a blank
 * line between groups (shape, family, mask). */
void fidrep_csv(const fidrep *r, FILE *f);

#endif
