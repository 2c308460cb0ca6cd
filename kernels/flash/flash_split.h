/* The split path of `flash` for the strided Sparse Transformer mask
 * (docs/kernels/flash.md, "Split path"). Its allowed pairs are the union of
 * a causal band (0 <= delta < l), which has tile structure, and the keys l,
 * 2l, ... behind the query, which, once queries and keys are grouped by
 * position modulo l, are l independent causal attentions of about N/l rows.
 * Both parts run tiled (each block of 16 lanes over its own keys), and each
 * row's two partial results are merged by their log-sum-exp. */
#ifndef ATTN_FLASH_SPLIT_H
#define ATTN_FLASH_SPLIT_H

#include "flash_internal.h"

/* 1 if the split path computes a's mask exactly: a strided (not fixed),
 * causal mask on self-attention (Nq == Nk, q_off == k_off) without padding
 * or ragged lengths, and with split heads only when every KV head serves
 * one query head (the G heads of a GQA group would need different parts).
 * Otherwise 0, with *why (when non-NULL) saying what was missing. */
int flash_split_fits(const attn_args *a, const char **why);

/* The split forward: the band pass, then the residue-class pass merged into
 * it (split heads: even heads the band, odd heads the classes, unmerged). */
void flash_split_forward(const attn_ctx *ctx, const flash_plan *pl, const attn_io *io);

/* The tiled forward (flash.c) over KV heads hk0, hk0 + hk_step, ... of a,
 * which may be a copy of the context's args with another mask; pl must
 * describe a's tiles within the context's workspace slots. */
void flash_tiled_forward(const attn_ctx *ctx, const attn_args *a, const flash_plan *pl, const attn_io *io,
                         int64_t hk0, int64_t hk_step);

#endif
