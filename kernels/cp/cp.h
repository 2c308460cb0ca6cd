/* Context-parallel softmax attention over MPI ranks (docs/scale-out.md):
 * `ring` (Liu et al. 2023: K/V blocks travel around a ring of ranks while
 * each rank computes on the block it holds, partial results merged by their
 * logsumexp) and `ulysses` (Jacobs et al. 2023: an all-to-all turns sequence
 * shards into head shards, each rank runs `flash` on whole sequences of its
 * heads, and a second all-to-all turns the output back). Every block is
 * computed by the `flash` kernel itself.
 *
 * Built only when CMake finds MPI (the `attncp` library); the rest of the
 * project never includes this header.
 *
 * A rank holds N/P rows of Q, K, V (all heads) of a self-attention problem
 * of N positions: io tensors are [B, H or H_kv, N/P, D] and lse is
 * [B, H, N/P] contiguous. Which global positions those rows are is
 * cp_global_row: `ring` takes the zigzag assignment (2P chunks of N/(2P)
 * rows, rank r holds chunks r and 2P-1-r, so a causal mask gives every rank
 * the same work), `ulysses` contiguous rows. */
#ifndef ATTN_CP_H
#define ATTN_CP_H

#include "kernels/core/attn.h"

#include <mpi.h>

typedef enum { CP_RING = 0, CP_ULYSSES } cp_kind;

/* What one call cost this rank: bytes it sent, seconds it spent inside MPI
 * calls (posting, testing, waiting, all-to-all: the communication compute
 * did not hide), seconds computing (flash blocks, merges, packing), and of
 * those the seconds computed while a transfer of the rank was in flight
 * (from its post to the first MPI call that finds it complete): the
 * communication hidden behind compute. Overlap = hidden / (hidden + comm). */
typedef struct {
    double bytes_sent;
    double comm_s;
    double compute_s;
    double hidden_s;
} cp_stats;

/* Per-run state of one rank: the problem, the communicator and every buffer
 * the passes need, allocated once. */
typedef struct cp_ctx cp_ctx;

/* "ring" -> CP_RING, "ulysses" -> CP_ULYSSES; -1 for any other name. */
int cp_kind_from_name(const char *name);
const char *cp_kind_name(cp_kind kind);

/* The global position of local row i of `rank` (of P) for N positions. */
int64_t cp_global_row(cp_kind kind, int64_t N, int P, int rank, int64_t i);

/* Checks that the global problem `a` (Nq = Nk = N, q_off = k_off = 0, any
 * threads and flash parameters br/bc) can be split over P ranks: the shapes
 * divide, the mask is one the kernel handles. Records the reason otherwise. */
int cp_check(cp_kind kind, const attn_args *a, int P);

/* Creates the context (collective over comm: every rank calls it with the
 * same args). a->backward = 1 sizes it for cp_backward too. */
int cp_ctx_create(cp_kind kind, MPI_Comm comm, const attn_args *a, cp_ctx **out);
void cp_ctx_destroy(cp_ctx *ctx);

/* Bytes of the rank's buffers: messages, partial results, flash's workspace. */
size_t cp_workspace_bytes(const cp_ctx *ctx);

/* Forward on this rank's shard: writes io->o and io->lse (collective). */
int cp_forward(cp_ctx *ctx, const attn_io *io, cp_stats *st);

/* Backward on this rank's shard, after cp_forward wrote io->o and io->lse:
 * writes g->dq, g->dk, g->dv of the rank's rows (collective). */
int cp_backward(cp_ctx *ctx, const attn_io *io, const attn_grads *g, cp_stats *st);

/* Bytes one rank sends in one pass, from the volume formulas (tests compare
 * them with cp_stats.bytes_sent). */
double cp_bytes_per_rank(cp_kind kind, const attn_args *a, int P, attn_pass pass);

#endif
