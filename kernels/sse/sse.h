/* Sparse State Expansion (Pan et al. 2025, "Scaling Linear Attention with
 * Sparse State Expansion"; docs/kernels/sse.md), GLA base: per (batch, KV head) one
 * shared state S^0 and P partition states S^1..S^P (each Dk x Dv), router
 * logits e_t in R^P per token, pi_t = softmax(e_t), top-k set K_t:
 *   S^0 <- diag(alpha_t) S^0 + k_t v_t^T,                o_t  = S^0^T (sc q_t)
 *   p in K_t:     S^p <- diag(alpha_t) S^p + (pi_tp k_t) v_t^T,   o_t += S^p^T (sc pi_tp q_t)
 *   p not in K_t: S^p unchanged (no decay)
 * with alpha_t = e^{g_t}, g_t <= 0 the per-channel log-gates of io.gate
 * [B,H_kv,N,Dk] and e_t from io.router [B,H_kv,N,P].
 *
 * attnbench's choices (the reference's separate projections, key softmax,
 * SiLU and gate normaliser are model-level):
 *  - S^0 and the partitions read the same q, k, v and gates;
 *  - partition p in K_t sees the pi_tp-scaled copies q~ = pi_tp q, k~ = pi_tp k;
 *  - an unselected token leaves its partition untouched, no decay (varlen
 *    semantics: a partition's clock ticks only on its own tokens);
 *  - top-k of the logits (= of pi), ties -> lower partition index, and k > 1
 *    never selects a partition twice; the router is per KV head (the G query
 *    heads of a group share it, as they share the states);
 *  - top-k has no gradient: d pi_tp = <dq~_t, q_t> + <dk~_t, k_t> (summed over
 *    the group's query heads) flows through the softmax into the logits.
 * Masks: CAUSAL (intrinsic) and DOCUMENT (all 1 + P states restart at 0 at
 * each document start); Nq == Nk and q_off == k_off, as gla.
 * Varlen form (sse.c): the shared state is gla over all tokens; each
 * partition is gla over its gathered bucket, each document of a bucket padded
 * with inert rows to whole chunks, so rows are bitwise independent of later
 * tokens' routing (causal leakage check) at the cost of < P x documents x chunk
 * extra rows. Results are bitwise independent of the thread count. O is not
 * accumulated into: forward writes every row.
 * Params: partitions=P (4, 1..64), topk=k (1, 1..P), chunk (64, as gla).
 * After forward, ctx->workspace begins with the final states, float
 * [B][H_kv][1 + P][Dk][Dv] (S^0 first); ctx->state_bytes_used is their size. */
#ifndef ATTN_SSE_H
#define ATTN_SSE_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_sse;

#endif
