/* The fp32 forward of `hip` (hip_fwd.c) and its workspace sizing. */
#ifndef ATTN_HIP_FWD_H
#define ATTN_HIP_FWD_H

#include "hip_internal.h"
#include "kernels/flash/flash_internal.h"

/* Rows of a refresh group, and a bound on the keys one group gathers:
 * k bk selected + sinks + window + the keys that arrive during the group. */
int64_t hip_group_rows(const hip_plan *pl, const attn_args *a);
int64_t hip_gather_max(const hip_plan *pl, const attn_args *a);

/* Scratch of one thread (64-byte aligned parts). */
size_t hip_slot_bytes(const hip_plan *pl, const attn_args *a);

int hip_forward(attn_ctx *ctx, const attn_io *io);

#endif
