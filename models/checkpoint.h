/* Versioned binary checkpoints: the parameter blob, optionally the AdamW
 * state, the training position (step + RNG) and a second copy of the
 * parameters (the best-validation weights a resumed run still needs), plus
 * the model/task/kernel
 * config as JSON text, all covered by a CRC32. Written atomically
 * (<path>.tmp, fsync, rename), validated field by field on load.
 *
 * Format version 1, every field little-endian, fixed width:
 *   0  char[8] magic "ATNBCKPT"
 *   8  u32     format version (1)
 *   12 u32     flags: bit 0 optimizer state present, bit 1 training state,
 *              bit 2 best parameters
 *   16 u64     header length H = byte offset of the parameter blob
 *   24 u64     nparams (floats in the blob)
 *   32 u64     config length L, then L bytes of JSON text (no NUL)
 *      u32     ntensors, then per tensor:
 *              u32 name length, name bytes, u32 dtype (0 = f32), u32 rank
 *              (0..4), i64 dims[rank], u64 offset (floats into the blob)
 *   H  f32[nparams]               parameters
 *      [bit 0] i64 optimizer step, f32 m[nparams], f32 v[nparams]
 *      [bit 1] i64 training step, u64 rng[4] (xoshiro256** state)
 *      [bit 2] f32 best[nparams]  parameters at the best validation so far
 *      u32     CRC32 (IEEE 802.3, reflected 0xEDB88320) of every byte before it */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include "optim.h"
#include "common/rng.h"

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAGIC "ATNBCKPT"
#define CKPT_VERSION 1u
#define CKPT_MAX_RANK 4
#define CKPT_MAX_NAME 255
#define CKPT_HAS_OPTIM 1u
#define CKPT_HAS_TRAIN 2u
#define CKPT_HAS_BEST 4u
#define CKPT_DTYPE_F32 0u

/* One named tensor of the blob: shape dims[0..rank) starting at `offset`
 * floats into the parameter blob. */
typedef struct {
    const char *name;
    int rank;
    int64_t dims[CKPT_MAX_RANK];
    uint64_t offset;
} ckpt_tensor;

/* Where a training run is: steps done and its RNG (data order, dropout). */
typedef struct {
    int64_t step;
    attn_rng rng;
} ckpt_train;

/* The model's side of a checkpoint. On save everything non-NULL is written;
 * on load the tensor table must match the file's (count, names, shapes,
 * offsets, nparams) and everything non-NULL is filled: asking for optimizer
 * or training state a file does not hold is an error (a resumed run must
 * not restart Adam's moments silently); pass NULL to skip them (fine-tuning,
 * evaluation). */
typedef struct {
    const ckpt_tensor *tensors;
    int ntensors;
    float *params;      /* [nparams] */
    size_t nparams;
    optim *opt;         /* NULL: no optimizer state; else opt->n == nparams */
    ckpt_train *train;  /* NULL: no training state */
    float *best;        /* NULL: no best-parameter copy; else [nparams] */
} ckpt_state;

/* Writes `path` atomically: <path>.tmp, fsync, rename, fsync of the
 * directory. config_json must parse as JSON. On failure the tmp file is
 * removed and an existing `path` is left as it was. */
int ckpt_save(const char *path, const char *config_json, const ckpt_state *s);

/* Whether ckpt_save could create <path>.tmp there now (it is created and
 * removed again): a run that writes its checkpoint at the end checks first
 * rather than failing after hours of training. */
int ckpt_check_writable(const char *path);

/* Validates the whole file (magic, version, size, CRC, header, config JSON,
 * tensor table against s) before writing anything into s, then fills it.
 * Errors are one line: "<path>: bad magic", "<path>: checksum mismatch (file
 * damaged)", "<path>: tensor 'w' shape [4,8] does not match the model's
 * [4,16]", ... */
int ckpt_load(const char *path, const ckpt_state *s);

/* What a file holds, read and validated (CRC included) before a model is
 * built from its config. config_json is malloc'd (NUL-terminated); free()
 * it. Any pointer may be NULL. */
int ckpt_inspect(const char *path, char **config_json, size_t *nparams, unsigned *flags);

#endif
