/* The small model whose checkpoints seed the checkpoint target
 * (fuzz/checkpoint_seeds.c writes them, fuzz/targets/checkpoint.c loads
 * into it): two tensors, 16 parameters. */
#ifndef ATTN_FUZZ_CHECKPOINT_MODEL_H
#define ATTN_FUZZ_CHECKPOINT_MODEL_H

#include "models/checkpoint.h"

#define FUZZ_CKPT_NPARAMS 16

static const ckpt_tensor fuzz_ckpt_tensors[2] = {
    {.name = "w", .rank = 2, .dims = {3, 4}, .offset = 0},
    {.name = "b", .rank = 1, .dims = {4}, .offset = 12},
};

#endif
