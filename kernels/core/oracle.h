/* Double-precision naive softmax attention with logsumexp (docs/kernel-interface.md):
 * the reference every exact kernel is tested against. Never a competitor. */
#ifndef ATTN_ORACLE_H
#define ATTN_ORACLE_H

#include "attn.h"

/* o: [B,H,Nq,D], lse: [B,H,Nq] contiguous. Fully masked rows: o = 0, lse = -inf. */
void attn_oracle_forward_f64(const attn_args *a, const attn_tensor_f64 *q, const attn_tensor_f64 *k,
                             const attn_tensor_f64 *v, attn_tensor_f64 *o, double *lse);

/* Gradients of L(O) given dO; dk/dv summed over each GQA group. Recomputes P
 * from q, k and lse; o is the forward output. */
void attn_oracle_backward_f64(const attn_args *a, const attn_tensor_f64 *q, const attn_tensor_f64 *k,
                              const attn_tensor_f64 *v, const attn_tensor_f64 *o, const double *lse,
                              const attn_tensor_f64 *d_o, attn_tensor_f64 *dq, attn_tensor_f64 *dk,
                              attn_tensor_f64 *dv);

extern const attn_kernel attn_kernel_oracle;

#endif
