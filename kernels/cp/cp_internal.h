/* What the context-parallel files share: the context, `flash` on one block,
 * the logsumexp merge, row packing for messages, and the time split between
 * communication and compute. */
#ifndef ATTN_CP_INTERNAL_H
#define ATTN_CP_INTERNAL_H

#include "cp.h"

#include <stdint.h>

enum { CP_TAG_KV = 1, CP_TAG_DKV = 2 };

struct cp_ctx {
    cp_kind kind;
    MPI_Comm comm;
    int P, rank;
    attn_args a;        /* the global problem, its mask bound to N */
    int64_t n;          /* rows per rank, N / P */
    attn_ctx flash;     /* `flash` on one block: args set per call, workspace for the largest block */
    /* ring: C = n / 2 rows per chunk; ulysses: heads per rank */
    int64_t C, hq, hkv;
    float *buf[12];     /* the pass's buffers (ring.c and ulysses.c say which is which) */
    size_t buf_bytes;   /* their sum */
};

/* Timer of one call: wall time since the start, the part of it spent in
 * MPI, and the compute time spent while a transfer was in flight (`flying`
 * from a post until a test or wait finds the transfers complete; `since`
 * the end of the last MPI call). */
typedef struct {
    double start, comm, mark, hidden, since;
    int flying;
} cp_clock;

static inline void cp_clock_start(cp_clock *k)
{
    k->start = k->since = MPI_Wtime(), k->comm = k->hidden = 0, k->flying = 0;
}
/* Entering MPI: compute since the last MPI call was hidden communication if a transfer was in flight. */
static inline void cp_comm_begin(cp_clock *k)
{
    k->mark = MPI_Wtime();
    if (k->flying)
        k->hidden += k->mark - k->since;
}
static inline void cp_comm_end(cp_clock *k)
{
    k->since = MPI_Wtime();
    k->comm += k->since - k->mark;
}
/* Adds the call's split to st (may be NULL). */
void cp_clock_stop(const cp_clock *k, cp_stats *st, double bytes);

/* The context's `flash` for blocks of nq = nk = n rows of H query and H_kv
 * KV heads of the global problem (its mask, scale, br/bc, threads). */
int cp_flash_init(attn_ctx *f, const attn_args *global, int64_t H, int64_t H_kv, int64_t n);
void cp_flash_fini(attn_ctx *f);
/* flash on queries at global positions [q0, q0 + n) and keys at [k0, k0 + n). */
int cp_flash_forward(attn_ctx *f, int64_t q0, int64_t k0, const attn_io *io);
int cp_flash_backward(attn_ctx *f, int64_t q0, int64_t k0, const attn_io *io, const attn_grads *g);
/* 1 if the mask allows no pair of queries [q0, q0 + n) and keys [k0, k0 + n), for any b and h. */
int cp_block_empty(const attn_args *a, int64_t q0, int64_t k0, int64_t n);

/* A contiguous [B, H, N, D] tensor over data; lse arrays are the D = 1 case. */
attn_tensor cp_tensor(float *data, int64_t B, int64_t H, int64_t N, int64_t D);
/* Rows [n0, n0 + n) of t, as a view. */
attn_tensor cp_rows(const attn_tensor *t, int64_t n0, int64_t n);
/* Floats of a contiguous [B, H, N, D] tensor. */
static inline int64_t cp_floats(int64_t B, int64_t H, int64_t N, int64_t D) { return B * H * N * D; }

/* Rows [n0, n0 + n) of heads [h0, h0 + nh) of t to dst as [B][nh][n][D], and
 * back; both return the floats moved. */
int64_t cp_pack(const attn_tensor *t, int64_t h0, int64_t nh, int64_t n0, int64_t n, float *dst);
int64_t cp_unpack(const float *src, const attn_tensor *t, int64_t h0, int64_t nh, int64_t n0, int64_t n);

/* dst += src, same shape. */
void cp_add(const attn_tensor *dst, const attn_tensor *src);
/* Sets every row of t to 0. */
void cp_zero(const attn_tensor *t);

/* Merges a block's partial attention (o, lse: [B, H, n] contiguous) into
 * the accumulated one: with m = max(lse_acc, lse_blk) the weights are
 * exp(lse - m), the output their weighted mean and lse_acc = m + log(sum of
 * weights). A row the block does not reach (lse_blk = -inf) is unchanged. */
void cp_lse_merge(const attn_tensor *acc_o, float *acc_lse, const attn_tensor *blk_o, const float *blk_lse);

/* Allocates buf[i] of sizes[i] floats for each i < n (0: none), adding to buf_bytes. */
int cp_alloc_buffers(cp_ctx *c, const int64_t *sizes, int n);

/* The passes of each kind (ring.c, ulysses.c). */
int cp_ring_alloc(cp_ctx *c);
int cp_ring_forward(cp_ctx *c, const attn_io *io, cp_stats *st);
int cp_ring_backward(cp_ctx *c, const attn_io *io, const attn_grads *g, cp_stats *st);
int cp_ulysses_alloc(cp_ctx *c);
int cp_ulysses_forward(cp_ctx *c, const attn_io *io, cp_stats *st);
int cp_ulysses_backward(cp_ctx *c, const attn_io *io, const attn_grads *g, cp_stats *st);

#endif
