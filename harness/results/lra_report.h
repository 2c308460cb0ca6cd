/* The LRA results table and bubble-chart data (lra_report.c). */
#ifndef ATTN_LRA_REPORT_H
#define ATTN_LRA_REPORT_H

#include "lra_speed.h"
#include "schema.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LRA_TASKS 6
#define LRA_MAX_KERNELS 32
#define LRA_MAX_SETTINGS 8

/* The runs of one setting of a (kernel, task) cell: same model, batch, data
 * source and params once the per-evaluation keys (step, split, best_step,
 * weights) are removed, i.e. the same task parameters, lr, wd, steps and
 * training examples; the seeds of a setting are its runs. */
typedef struct {
    char model[ATTN_CELL_MAX], params[ATTN_CELL_MAX], source[ATTN_CELL_MAX], mask[ATTN_CELL_MAX];
    int64_t batch, steps;
    double acc_sum, step_ms, peak_rss;
    int runs;                      /* test rows */
} lra_setting;

typedef struct {
    lra_setting set[LRA_MAX_SETTINGS];
    int n;
    int shown;                     /* lra_table_load: the setting the table shows, -1: no test row */
} lra_cell;

/* A row of the table is a kernel, or a kernel with a sparse mask kind
 * (`flash+block`: LRA's local attention; the full spec is the setting's). */
typedef struct {
    char kernel[LRA_MAX_KERNELS][192];
    lra_cell cell[LRA_MAX_KERNELS][LRA_TASKS];
    int n_kernels;
    int dropped;                   /* rows beyond the table's capacity */
    int runs;                      /* training rows read into cells */
    char csv[1024];                /* the file they came from, named in the table's text */
    char cpu[128], threads[16];    /* of the last training row read (the bubble chart names its machine) */
} lra_table;

/* Loads the training rows of path and picks each cell's setting: the
 * largest budget (steps x batch), then the best mean test accuracy. A file
 * without one LRA training row is an error (an empty table says nothing). */
int lra_table_load(const char *path, lra_table *t);
void lra_table_markdown(const lra_table *t, FILE *f);
/* The bubble-chart data, one line per table row: steps/s relative to flash,
 * average test accuracy, peak RSS. With speed rows (speed->n > 0) speed and
 * memory come from them at their longest length, as the paper's chart takes
 * them from its efficiency benchmark, and rows they lack get nan; without,
 * from the shown trainings (relative to flash's on the same tasks). The
 * last column names the length (0: the trainings). */
int lra_table_bubbles(const lra_table *t, const lra_speed *speed, FILE *f);

/* The table row of a training row: its kernel, joined by '+' to the kind of
 * its mask unless that is full or causal ("flash+block"); shared by the
 * accuracy table and the speed section. */
void lra_row_label(const char *kernel, const char *mask, char *out, size_t n);

/* The LRA Table 1 model a table row stands for ("Local Attention" for
 * "flash+block"), or NULL. */
const char *lra_published_model(const char *row);

#endif
