/* What a benchmark job's Q, K and V hold: a generated input family
 * (fidelity.h: uniform, gaussian, lowrank, peaked, longtail) or the
 * attention inputs of one layer of a trained model, read from a kv file
 * (kv_file.h), spelled "cache:FILE" (last layer) or "cache:FILE@LAYER". Any
 * but uniform adds the fidelity rows. */
#ifndef ATTN_BENCH_INPUTS_H
#define ATTN_BENCH_INPUTS_H

#include "fidelity.h"

#include <stdint.h>

typedef struct {
    fid_inputs family;        /* FID_UNIFORM when the inputs come from a kv file */
    char kv_file[192];        /* "" unless they do */
    int64_t kv_layer;         /* -1: the file's last layer */
} bench_inputs;

/* Parses text into *in; a bad spelling fails naming `where`. The file is
 * not opened here (a dry run lists jobs without it). */
int bench_inputs_parse(const char *text, bench_inputs *in, const char *where);
/* The spelling parse reads back ("peaked", "cache:m.kv@1"). */
void bench_inputs_format(const bench_inputs *in, char *buf, size_t n);
/* Whether the job measures fidelity (anything but uniform). */
int bench_inputs_measured(const bench_inputs *in);
/* Orders two inputs (config job order). */
int bench_inputs_cmp(const bench_inputs *a, const bench_inputs *b);
/* The rows' data_source: "generated", or "kv-file" (params name the file,
 * whose header says which checkpoint, task and length it holds). Fixed by
 * the spelling alone, so a job's identity never depends on a file. */
const char *bench_inputs_source(const bench_inputs *in);
/* Fills Q, K and V of (a, io): the family from seed, or the kv file's layer. */
/* A cache:FILE family's file read and its layer checked (0 for generated
 * inputs): what bench does before any job, so a missing or bad file is a
 * usage error naming it and not an error row per job. */
int bench_inputs_check(const bench_inputs *in);

int bench_inputs_fill(const bench_inputs *in, const attn_args *a, uint64_t seed, const attn_io *io);

#endif
