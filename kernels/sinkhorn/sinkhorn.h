/* `sinkhorn`: Sparse Sinkhorn attention (Tay, Bahri, Yang, Metzler, Juan,
 * "Sparse Sinkhorn Attention", ICML 2020; docs/kernels/sinkhorn.md).
 *
 * Per (batch, head), with blocks of c = min(block, N) tokens and n_b =
 * ceil(L / c) blocks of a sequence of L tokens (the last one holds r =
 * L - (n_b - 1) c rows; its missing rows are padding):
 *
 *   summaries  s_i = sum_{t in block i} k_t      (causal: s_i = k_{ic}, the block's first key)
 *   sort net   R_ij = <s_i, w_j> + beta_j        (w_j, beta_j: row j of the learned table)
 *              causal: R_ij = -inf for j >= i     (block i mixes earlier blocks only)
 *   P          row softmax of R (sort=softmax), or Sinkhorn balancing of R / temp
 *              (sort=sinkhorn: `iters` rounds of column then row log-normalisation,
 *              so every row of P sums to 1)
 *   sorted     Kt_i[t] = sum_j P_ij K_j[t] for t < r (every block has row t);
 *              for t >= r only the n_b - 1 full blocks have row t and the slot is
 *              their renormalised mix sum_{j < n_b-1} P_ij K_j[t] / mu_i,
 *              mu_i = sum_{j < n_b-1} P_ij (masked when mu_i = 0: n_b = 1); Vt alike
 *   output     query t of block i: one softmax over [sc q K_i^T, sc q Kt_i^T]
 *              (2c keys; local keys causal inside the block under CAUSAL,
 *              padding keys masked), O = A [V_i; Vt_i], lse its normaliser.
 *
 * With one block (c >= L) the sorted block is the block itself and O is exact
 * softmax attention over every key listed twice. The learned table arrives as
 * ATTN_IN_WEIGHTS: rows j = 0, 1, ... of (D weights, 1 bias) per query head,
 * covering ceil(max(max_len, N) / c) blocks. */
#ifndef ATTN_SINKHORN_H
#define ATTN_SINKHORN_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_sinkhorn;

#endif
