/* Length extrapolation and needle depth of a trained checkpoint (the NIAH
 * protocol for small models: trained from scratch at a short length, evaluated
 * at the trained length and at 2x, 4x, 8x longer; docs/tasks.md). For every (length, depth) cell
 * the test split is regenerated with the task's length parameter (len for the
 * NIAH tasks, L for MQAR and the other recall tasks: the kv-pair count D and
 * the vocabulary stay as trained) and, for tasks with a `depth` parameter,
 * the needle depth (len_min, when the run trained on variable lengths, is set
 * to the length too: every test example has exactly the cell's length); the
 * model is evaluated and one row appended per cell with
 * params "<eval task params>;lr=..;...;split=extrap;eval_len=E[;depth=d];train_len=T"
 * (depth=random when the task draws it uniformly). With a swapped kernel the
 * kernel column names it, the mask column holds its mask spec, and the params
 * end in ";trained=K[,K..][;kernel_params=k=v,..][;mask=SPEC]" (the checkpoint's
 * own kernels, then each part when given), so the rows of two swaps, or of one
 * swap into two checkpoints, never look alike and their job_ids differ. */
#ifndef ATTN_EXTRAPOLATE_H
#define ATTN_EXTRAPOLATE_H

#include "kernels/core/attn.h"
#include "train_run.h"

#include <stdint.h>

#define ATTN_EXTRAP_MAX_SCALES 16

typedef struct {
    const char *checkpoint;              /* from 'attnbench train --checkpoint' */
    const char *out;                     /* results CSV; NULL: results/<suite>.csv */
    int64_t test_n;                      /* 0: the checkpoint's test_n */
    int threads;
    int n_scales;                        /* >= 1 */
    int64_t scale[ATTN_EXTRAP_MAX_SCALES]; /* multiples of the trained length */
    int depths;                          /* 0: the task's depth as trained; else >= 2 evenly spaced in [0, 1] */
    int progress;                        /* a line per cell on stderr */
    /* Evaluate with another kernel than the trained one (every layer), e.g.
     * StreamingLLM's sink + window cache on a model trained with full causal
     * attention (Xiao et al. 2023 apply it to trained models): the weights
     * are the checkpoint's, the rows name the swapped kernel. NULL: as trained. */
    const char *kernel;
    param_bag kparams;                 /* its parameters (with kernel) */
    const char *mask;                    /* a mask spec replacing causal/full (with kernel), or NULL */
    attn_kv_dtype kv_dtype;              /* with kernel: every layer stores K and V in this format for it
                                            (a decode kernel reading a quantized cache); fp32: as computed */
    attn_dtype dtype;                    /* every layer's kernel (trained or swapped) on Q, K, V rounded to this
                                            type, O written in it; params end in ;dtype=T; fp32: as computed */
    uint64_t mem_budget;                 /* every layer's kernel (trained or swapped) in the memory-budget mode
                                            with this many bytes (docs/memory-budget.md); params end in
                                            ;mem_budget=B; 0: none */
    /* Resume (sweeps): a cell whose row (same job_id) is already in the
     * results file is not evaluated again; the model is loaded only when
     * some cell is missing. 0: every cell appends a row. */
    int skip_done;
    /* With skip_done (sweeps): the run the checkpoint was trained from. The
     * cells are then known without the file, so a checkpoint removed after
     * its cells were written is no error; a missing cell still needs it. */
    const train_run_opts *run;
    /* Instead of evaluating: write the attention inputs of every block on
     * the first test example of the first cell (first scale, first depth) to
     * this kv file (kv_dump.h); no rows. NULL: evaluate. */
    const char *dump_kv;
} extrapolate_opts;

/* Checks every cell first (a length beyond learned positions, --depths on a
 * task without depth, a task rejecting the length), then evaluates and writes
 * the rows in order of scale, then depth. *rows: rows written (with
 * skip_done, the cells that were missing). */
int extrapolate_run(const extrapolate_opts *o, int *rows);

#endif
