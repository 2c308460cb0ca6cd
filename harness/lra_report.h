/* The LRA results table and bubble-chart data (lra_report.c). */
#ifndef ATTN_LRA_REPORT_H
#define ATTN_LRA_REPORT_H

#include <stdio.h>

#define LRA_TASKS 6
#define LRA_MAX_KERNELS 32

typedef struct {
    double acc_sum, step_ms, peak_rss;
    int runs;
    char source[192];
} lra_cell;

typedef struct {
    char kernel[LRA_MAX_KERNELS][192];
    lra_cell cell[LRA_MAX_KERNELS][LRA_TASKS];
    int n_kernels;
} lra_table;

int lra_table_load(const char *path, lra_table *t);
void lra_table_markdown(const lra_table *t, FILE *f);
int lra_table_bubbles(const lra_table *t, FILE *f);

#endif
