/* The 16-bit operands of an attention block (nn_attn_cfg.dtype bf16/fp16):
 * the model keeps its activations and gradients in fp32 and rounds what
 * the kernel reads to the operand type just before the call — Q, K, V (and
 * O, dO in a backward) — and widens what the kernel writes (O; dQ, dK, dV)
 * back to fp32 just after. Weights, the rest of the model and the optimizer
 * state stay fp32 (fp32 master weights). The rounding is recomputed from
 * the fp32 activations in the backward, so one buffer serves every
 * application of a weight-shared layer (rounding an fp32 value that was
 * widened from the type gives the same bits). */
#ifndef NN_ATTN_LOWP_H
#define NN_ATTN_LOWP_H

#include "kernels/core/attn.h"

#include <stdint.h>

typedef struct {
    attn_dtype t;              /* ATTN_DT_FP32: nothing allocated, every call a no-op */
    uint16_t *q, *k, *v, *o;   /* the forward's operands */
    uint16_t *d_o, *dq, *dk, *dv; /* the backward's (allocated only for training) */
} nn_attn_lowp;

/* Buffers for nq query-side and nk key-side values of type t (with the
 * gradients' when backward). ATTN_ENOMEM with nothing held on failure. */
int nn_attn_lowp_alloc(nn_attn_lowp *b, attn_dtype t, int backward, size_t nq, size_t nk);
void nn_attn_lowp_free(nn_attn_lowp *b);

/* Rounds io's fp32 Q, K, V (and O when with_o: a backward reads the
 * forward's output) into the buffers and points io's 16-bit tensors at them. */
void nn_attn_lowp_inputs(nn_attn_lowp *b, attn_io *io, int with_o);
/* After the forward: O widened from the buffer into io->o. */
void nn_attn_lowp_output(const nn_attn_lowp *b, const attn_io *io);
/* Rounds g's dO into its buffer and points g's 16-bit tensors at the buffers. */
void nn_attn_lowp_grads(nn_attn_lowp *b, attn_grads *g);
/* After the backward: dQ, dK, dV widened into g's fp32 tensors (overwritten). */
void nn_attn_lowp_grads_out(const nn_attn_lowp *b, const attn_grads *g);

#endif
