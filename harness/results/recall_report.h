/* Best-of-grid summary of the recall suite (as Zoology, Arora et al.
 * 2023, report the best learning rate per (model, width, sequence length)).
 * Reads the final test rows of trainings from a results CSV, groups them into
 * cells (task, kernel, model, task parameters), averages seeds per learning
 * rate and keeps the best learning rate of every cell. */
#ifndef ATTN_RECALL_REPORT_H
#define ATTN_RECALL_REPORT_H

#include <stdio.h>

#define RECALL_MAX_CELLS 512
#define RECALL_MAX_LRS 8

typedef struct {
    char task[32], kernel[96], model[160], setting[160]; /* setting: task params, e.g. "L=256;D=16;V=512" */
    int d_model;
    int n_lr;
    double lr[RECALL_MAX_LRS], acc_sum[RECALL_MAX_LRS], lo_sum[RECALL_MAX_LRS], hi_sum[RECALL_MAX_LRS];
    int runs[RECALL_MAX_LRS];
    double state_bytes;            /* the model's recurrent/KV state as the row reports it (NAN: NA) */
    char source[64];
} recall_cell;

typedef struct {
    recall_cell cell[RECALL_MAX_CELLS];
    int n;
    int dropped;                   /* rows beyond the table's capacity */
} recall_table;

/* Loads the test rows (split=test; not reloads or length/depth evaluations). */
int recall_table_load(const char *path, recall_table *t);

/* Best learning rate of cell c (index into lr[]); -1 if the cell is empty. */
int recall_best_lr(const recall_cell *c);

/* results/recall_best.csv: one line per cell at its best learning rate. */
void recall_table_csv(const recall_table *t, FILE *f);

/* results/RECALL.md: one table per (task, setting), kernels as rows, widths as columns. */
void recall_table_markdown(const recall_table *t, FILE *f);

#endif
