/* `infini`: Infini-attention (Munkhdalai, Faruqui, Gopal 2024, "Leave No
 * Context Behind: Efficient Infinite Context Transformers with
 * Infini-attention", arXiv 2404.07143; docs/kernels/infini.md). Shared by the
 * forward (infini.c), the backward (infini_bwd.c) and the double reference
 * (infini_ref.c).
 *
 * Per (batch, KV head) the sequence is cut into segments of L keys (a
 * DOCUMENT mask also cuts at every document start and resets the memory
 * there). The compressive memory M [Dk x Dv] and normaliser z [Dk] depend on
 * K and V only, so one task per (batch, KV head) carries them and serves the
 * G = H / H_kv query heads of its group; the gate g_h = sigmoid(beta_h) is a
 * learned per-query-head scalar, the ATTN_IN_WEIGHTS input io.w [1,H,1,1]. */
#ifndef ATTN_INFINI_H
#define ATTN_INFINI_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_infini;

/* Paper eq. (3)-(5): the memory read divides by sigma(q) z; a denominator at
 * or below this is treated as "nothing stored" (A_mem row = 0, our
 * choice: the paper leaves 0/0 open), which is always the case in a document's first segment. */
#define INFINI_DEN_EPS 1e-6

#define INFINI_DEFAULT_L 2048
#define INFINI_DEFAULT_TILE 128

/* Buffers inside the workspace start on 16-float (64-byte) boundaries. */
static inline size_t infini_round16(int64_t n) { return (size_t)(n + 15) / 16 * 16; }

/* n floats at base + *off (NULL when base is NULL: only counting); advances *off. */
static inline float *infini_take(float *base, size_t *off, int64_t n)
{
    float *p = base ? base + *off : NULL;
    *off += infini_round16(n);
    return p;
}

/* Sizes of one run, from the arguments alone (init, forward, backward agree). */
typedef struct {
    int64_t L;             /* keys per segment */
    int64_t Lc;            /* min(L, N): the longest segment of this problem */
    int64_t T;             /* query rows per block of the in-segment softmax (<= L) */
    int delta;             /* update=delta (1) or linear (0) */
    int64_t G, Dk, Dv;
    int64_t nseg;          /* segments of one sequence (documents cut them) */
    size_t state_floats;   /* per (batch, KV head): M, z, then the K and V rows of the open segment */
    size_t fwd_floats;     /* per-thread forward scratch */
    size_t bwd_floats;     /* per-thread backward scratch (0 without backward) */
    size_t slot_floats;    /* per-thread slot: max of the two */
} infini_plan;

/* Validates parameters (L, update, tile), mask and offsets; sizes the buffers. */
int attn_infini_plan(infini_plan *pl, const attn_args *a);

/* The learned gate of query head h: sigmoid(beta_h), beta_h = io.w (0, h, 0, 0). */
float attn_infini_gate(const attn_tensor *w, int64_t h);

/* Fails with a message unless io.w holds one beta per query head. */
int attn_infini_check_w(const attn_args *a, const attn_tensor *w);

/* sigma = elu + 1 on n rows of D (x row stride ldx) into f (row stride D). */
void attn_infini_elu1(const float *x, int64_t ldx, int64_t n, int64_t D, float *f);

/* Causal softmax of the score rows of one block, in place: row r (of nb) is
 * query i0 + r of the segment and keeps keys [0, i0 + r] of the ncols
 * columns (row stride ncols); the rest becomes 0. With inv non-NULL the rows
 * are left unnormalised (exp(s - max)) and inv[r] = 1 / their sum, for the
 * caller to scale the nb x Dv product instead of the nb x ncols block. */
void attn_infini_softmax_block(float *S, int64_t nb, int64_t i0, int64_t ncols, float *inv);

/* Folds segment [j0, j0 + l) of (b, hk) into the memory (paper eq. (4)
 * linear, (5) delta): M += sigma(K)^T U, z += colsum
 * sigma(K), U = V (linear, or delta in a document's first segment, `read` =
 * 0) or V - sigma(K) M / (sigma(K) z) with the old M, z (delta; rows whose
 * denominator is <= INFINI_DEN_EPS retrieve 0). sK [l x Dk] receives
 * sigma(K); U is [l x Dv] scratch. Returns the FLOPs executed. */
double attn_infini_update(const infini_plan *pl, const attn_io *io, int64_t b, int64_t hk, int64_t j0, int64_t l,
                          float *M, float *z, int read, float *sK, float *U);

/* The state a streaming continuation needs, kept by the last forward of ctx
 * for (batch b, KV head hk): M [Dk x Dv] and z [Dk] as of the start of the
 * open (incomplete) segment, and that segment's *rows K rows [rows x Dk]
 * and V rows [rows x Dv] (rows = 0 when N ends on a full segment: M and z
 * then include it). NULL on bad arguments. */
const float *attn_infini_state(const attn_ctx *ctx, int64_t b, int64_t hk, const float **z, const float **k,
                               const float **v, int64_t *rows);

/* Floats of the backward's per-thread scratch (infini_bwd.c). */
size_t attn_infini_bwd_floats(const infini_plan *pl);

/* Streaming (decode) form: token t of one (batch, KV head), the forward's
 * math one row at a time on a caller-owned state laid out as
 * attn_infini_state's: M [Dk x Dv], z [Dk], the open segment's rows
 * Kseg [L x Dk], Vseg [L x Dv] and their count *rows (all zero at a sequence
 * or document start: the caller resets them there). Appends k [Dk], v [Dv],
 * writes o [G x Dv] for the group's G query rows q [G x Dk] (query head
 * hk G + g reads beta from w), and when the segment reaches L rows folds it
 * into M, z and sets *rows = 0. An empty memory (z = 0) reads as 0, which is
 * the forward's first-segment rule. scratch holds attn_infini_step_floats(a)
 * floats. */
int attn_infini_step(const attn_args *a, const attn_tensor *w, int64_t hk, float *M, float *z, float *Kseg, float *Vseg,
                     int64_t *rows, const float *q, const float *k, const float *v, float *o, float *scratch);
size_t attn_infini_step_floats(const attn_args *a);

/* Backward (infini_bwd.c) and the plain double reference (infini_ref.c). */
int attn_infini_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int attn_infini_ref_forward(const attn_args *a, const attn_io64 *io);

#endif
