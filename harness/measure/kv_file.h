/* Attention inputs taken from a trained model (docs/fidelity.md, "Real cache
 * contents"): the queries, keys and values every layer of a checkpoint fed
 * its kernel on one example, written by 'attnbench eval --dump-kv' and read
 * by the `cache` input family of fidelity jobs, so a kernel's recall is
 * measured on what a model's cache really holds and not only on generated
 * inputs.
 *
 * The file: one line of JSON (format "attnbench-kv", version 1, layers, H,
 * H_kv, N, D, source), then per layer Q [H][N][D], K [H_kv][N][D] and
 * V [H_kv][N][D] as float32 in the writing machine's byte order. */
#ifndef ATTN_KV_FILE_H
#define ATTN_KV_FILE_H

#include "kernels/core/attn.h"

#include <stdint.h>

typedef struct {
    int64_t layers, H, H_kv, N, D;
    char source[768];        /* what the rows are: checkpoint, task, length, example */
    float *data;             /* every layer's Q, K, V in file order */
} kv_file;

/* Writes layer l's q, k, v ([1, H, N, D] / [1, H_kv, N, D] views, batch entry
 * b) for every l < layers; get(l, ...) hands them over. The file appears
 * whole or not at all (written aside and renamed, common/atomic_file.h): a
 * failed or killed write leaves an earlier file at path unchanged. */
typedef int (*kv_layer_fn)(void *ud, int64_t layer, attn_tensor *q, attn_tensor *k, attn_tensor *v);
int kv_file_write(const char *path, int64_t layers, int64_t b, const char *source, kv_layer_fn get, void *ud);

/* Loads and checks path (a bad header names the field; a short file says how
 * many bytes it expected). Free with kv_file_free. */
int kv_file_load(const char *path, kv_file *f);
void kv_file_free(kv_file *f);

/* Layer l's tensors of f as [1, heads, N, D] views. */
void kv_file_layer(const kv_file *f, int64_t layer, attn_tensor *q, attn_tensor *k, attn_tensor *v);

/* Overwrites Q, K and V of problem (a, io) with layer `layer` of f: query
 * head h reads the file's head h mod H, KV head g the file's g mod H_kv
 * (so a 32/8-head problem can take a 2-head model's rows), query row i the
 * file's row at its position q_off + i, key j row j. Fails, naming the
 * field, when D differs or a position lies beyond the file's N. */
int kv_file_fill(const kv_file *f, int64_t layer, const attn_args *a, const attn_io *io);

#endif
