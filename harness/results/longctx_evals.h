/* The trained-model side of the long-context report (longctx_evals.c): a
 * checkpoint evaluated at its trained length and longer (eval --scale, a
 * config's "extrapolate") with decode kernels swapped into every layer; per
 * checkpoint and length the generated-answer score of each swap beside
 * exact `decode` swapped into the same weights, and whether each
 * approximate decode kernel keeps it within LONGCTX_EVAL_TOL at the trained
 * length. */
#ifndef ATTN_LONGCTX_EVALS_H
#define ATTN_LONGCTX_EVALS_H

#include <stdint.h>
#include <stdio.h>

#define LONGCTX_EVAL_TOL 0.02
#define LONGCTX_EVAL_MAX 256
#define LONGCTX_EVAL_LENS 8

/* One configuration of one checkpoint: the kernel as trained (swap "")
 * or a kernel swapped in with its parameters and mask. */
typedef struct {
    char task[32], model[96], setting[96], swap[160], kernel[32], metric[32];
    char trained[64];             /* the checkpoint's kernels: a swap row's trained=, else its kernel */
    int64_t train_len, seed;
    int64_t len[LONGCTX_EVAL_LENS];
    double sum[LONGCTX_EVAL_LENS];
    int n[LONGCTX_EVAL_LENS], n_len;
} longctx_eval;

typedef struct {
    longctx_eval e[LONGCTX_EVAL_MAX];
    int n, dropped;
} longctx_evals;

/* Loads the extrapolation rows of path scored on generated answers
 * (first_integer_match, string_match_all). A missing file is no error. */
int longctx_evals_load(const char *path, longctx_evals *t);
void longctx_evals_markdown(const longctx_evals *t, FILE *f);

#endif
