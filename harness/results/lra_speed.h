/* LRA Table 2's analogue in results/LRA.md (lra_speed.c): training speed and
 * peak memory of every LRA model row at byte-level Text lengths, each as a
 * ratio to flash at the same length in the same file, beside the paper's
 * ratios. Rows come from 'attnbench bench --suite lra_speed'. */
#ifndef ATTN_LRA_SPEED_H
#define ATTN_LRA_SPEED_H

#include <stdint.h>
#include <stdio.h>

#define LRA_SPEED_ROWS 32
#define LRA_SPEED_NS 8

typedef struct {
    char label[160];                    /* kernel, or kernel+mask kind (as the LRA table's rows) */
    double step_ms[LRA_SPEED_NS];       /* median training step; 0: not measured */
    double peak_rss[LRA_SPEED_NS];      /* bytes */
} lra_speed_row;

typedef struct {
    int64_t N[LRA_SPEED_NS];
    int n_N;
    lra_speed_row row[LRA_SPEED_ROWS];
    int n;
    char threads[16], cpu[128];         /* of the last row read (a report names its machine) */
} lra_speed;

/* Loads the ok rows of suite lra_speed (a later row of a (row, N) replaces
 * an earlier one). A missing file is no error: s->n stays 0. */
int lra_speed_load(const char *path, lra_speed *s);

/* The section: steps/s and its ratio to flash per N, peak RSS at the
 * smallest and largest N and its ratio to flash, and the paper's ratios. */
void lra_speed_markdown(const lra_speed *s, FILE *f);

/* Row `label` at the longest length where it and flash were both measured:
 * steps/s relative to flash, peak RSS (bytes) and that length. Returns 0
 * when there is no such length (the values are then untouched). The LRA
 * paper's bubble chart takes speed and memory from its efficiency benchmark
 * at 4K, not from the task trainings, whose step times differ in length and
 * batch per task. */
int lra_speed_at_longest(const lra_speed *s, const char *label, double *rel, double *rss, int64_t *N);

#endif
