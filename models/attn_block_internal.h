/* What the attention block's fp32 code (attn_block.c) and its double
 * reference (attn_block_ref.c) share: the kernel problem of a batch, the
 * gate temperature, the RoPE base and the activations of the extra inputs. */
#ifndef NN_ATTN_BLOCK_INTERNAL_H
#define NN_ATTN_BLOCK_INTERNAL_H

#include "layers.h"

#include <math.h>

/* log-gate = logsigmoid(z_g) / 16: GLA's temperature, decays start near 1 */
#define NN_ATTN_GATE_TEMP 16.0

/* The kernel's problem for a batch of B sequences of N positions (seq_len:
 * their lengths, given to the kernel only when it takes a padded batch). */
attn_args nn_attn_block_args(const nn_attn *l, int64_t B, int64_t N, int threads, const int64_t *seq_len);

static inline int nn_attn_has_beta(const nn_attn *l) { return (l->cfg.kernel->inputs & ATTN_IN_BETA) != 0; }

static inline double nn_attn_rope_base(const nn_attn *l)
{
    return l->cfg.rope_base > 0 ? l->cfg.rope_base : 10000.0;
}

/* logsigmoid(z) = -log(1 + e^-z), evaluated without overflow */
static inline double nn_logsigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }
static inline double nn_sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

#endif
