/* Internals shared by the DeltaNet forward (deltanet.c), backward
 * (deltanet_bwd.c) and double reference (deltanet_ref.c); the math is in docs/kernels/deltanet.md.
 *
 * Layout: the kernels keep the transposed state H = S^T, [Dk, Dv] row-major,
 * so every chunk product is a plain row-major sgemm (O = Q H, U' = U - W H,
 * H += K^T U'). One task is one (batch, KV head): the state depends only on
 * K, V, beta (and the gates), so it is computed once and applied to the G
 * query heads of the group. */
#ifndef ATTN_DELTANET_INTERNAL_H
#define ATTN_DELTANET_INTERNAL_H

#include "kernels/core/attn.h"
#include "kernels/core/mem_driver.h"

/* Key normalisation k^ = k / sqrt(|k|^2 + eps). FLA's l2norm uses eps = 1e-6;
 * 1e-12 keeps unit keys exactly unit in fp32 (the recall test) and still
 * maps a zero key to zero instead of NaN. */
#define DELTA_KEY_EPS 1e-12

/* Steps between the state checkpoints of the backward (its chunk size, fixed
 * so that the backward's memory does not grow with --param chunk). */
#define DELTA_BWD_BLOCK 64

#define DELTA_DEFAULT_CHUNK 64

/* Sizes of one run, from the arguments alone (init, forward, backward agree). */
typedef struct {
    int gated;
    int64_t C, Dk, Dv, G;
    int64_t n_ckpt;         /* backward: blocks of DELTA_BWD_BLOCK (documents cut them) */
    size_t chunk_floats;    /* per-thread scratch of one chunk (max of forward and backward chunk) */
    size_t bwd_floats;      /* per-thread backward buffers beyond the chunk scratch */
    size_t slot_floats;     /* per-thread slot: chunk_floats + bwd_floats */
    size_t state_floats;    /* B * H_kv * Dk * Dv: the state kept per (batch, KV head) */
} delta_plan;

/* Validates parameters, mask and offsets, and sizes the buffers. */
int delta_plan_make(delta_plan *pl, const attn_args *a, int gated);

/* 1 / sqrt(|k|^2 + eps) for one key row of D floats. */
float delta_key_rnorm(const float *k, int64_t D);

/* The (batch, KV head) a task works on, and its inputs. */
typedef struct {
    const attn_args *a;
    const attn_io *io;
    const delta_plan *pl;
    int64_t b, hk;
    float sc;
} delta_task;

/* One chunk of keys [j0, j0+c) of a delta_task (a mem_chunk_fn) in the WY/UT
 * form: advances H (Dk x Dv) and, when write_o, writes the output rows of
 * the group's G query heads. `fresh`: the chunk starts a segment (H is
 * ignored and overwritten). `ws` holds pl->chunk_floats floats. Returns the
 * FLOPs executed. */
double delta_chunk(const void *task, int64_t j0, int64_t c, int fresh, float *H, float *ws, int write_o);

/* Pointer to a 64-byte aligned sub-buffer of n floats, advancing *ws. */
static inline float *delta_take(float **ws, size_t n)
{
    float *p = *ws;
    *ws += (n + 15) / 16 * 16;
    return p;
}

/* The backward (deltanet_bwd.c) and the double reference (deltanet_ref.c). */
int delta_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int delta_ref_forward(const attn_args *a, const attn_io64 *io, int gated);

#endif
