/* Internals shared by the Titans forward (titans.c, titans_chunk.c), backward
 * (titans_bwd.c) and double reference (titans_ref.c); the math is in
 * docs/kernels/titans.md.
 *
 * Layout: the memory W (Dv x Dk) and its momentum Sigma are kept transposed,
 * H = W^T and S = Sigma^T, both [Dk, Dv] row-major, so every chunk product is
 * a plain row-major sgemm (Y = Q^ H, E = K^ H - V, H -= K^T E). One task is
 * one (batch, KV head): the memory depends only on K, V and the gates, so it
 * is trained once and read by the group's G query heads. */
#ifndef ATTN_TITANS_INTERNAL_H
#define ATTN_TITANS_INTERNAL_H

#include "kernels/core/attn.h"
#include "kernels/core/mem_driver.h"

/* q and k are L2-normalised as x / sqrt(|x|^2 + eps): a zero row maps to 0. */
#define TITANS_NORM_EPS 1e-12

#define TITANS_DEFAULT_CHUNK 16
#define TITANS_MAX_CHUNK 256

/* The backward stores every step's memory inside a block of whole chunks of
 * at most max(TITANS_BWD_BLOCK, chunk) keys, and one checkpoint per block. */
#define TITANS_BWD_BLOCK 64

/* The backward's own vectors, Dk + Dv floats each (titans_bwd.c). */
#define TITANS_BWD_VECTORS 6

enum { TITANS_READ_AFTER, TITANS_READ_BEFORE };
enum { TITANS_MEMORY_LINEAR, TITANS_MEMORY_MLP };

/* The MLP memory's hidden width is expand x Dk (titans_mlp.c). */
#define TITANS_DEFAULT_EXPAND 2
#define TITANS_MAX_EXPAND 4

/* The MLP memory's backward vectors, each max-size (titans_mlp_bwd.c). */
#define TITANS_MLP_BWD_VECTORS 18

/* Sizes of one run, from the arguments alone (init, forward, backward agree). */
typedef struct {
    int64_t C, Dk, Dv, G;
    int read_before;        /* y_t = W_{t-1} q^_t instead of W_t q^_t */
    int mlp;                /* memory=mlp: M(x) = W2 silu(W1 x), hidden width Hd */
    int64_t Hd, P;          /* mlp: hidden width, parameters Hd Dk + Dv Hd (W1 then W2, row-major) */
    mem_plan m;             /* the driver's sizes: state [H; S] (Dk x Dv or P each), slots, backward blocks */
} titans_plan;

/* Validates parameters, mask and offsets, and sizes the buffers. */
int titans_plan_make(titans_plan *pl, const attn_args *a);

/* The (batch, KV head) a task works on, and its inputs. */
typedef struct {
    const attn_args *a;
    const attn_io *io;
    const titans_plan *pl;
    int64_t b, hk;
} titans_task;

/* 1 / sqrt(|x|^2 + eps) for one row of D floats. */
float titans_rnorm(const float *x, int64_t D);

/* The token's gates: write step beta (= 2 theta), decay a = 1 - alpha =
 * exp(gate), momentum eta = sigmoid(router logit). */
void titans_gates(const titans_task *t, int64_t j, float *beta, float *a, float *eta);


/* One chunk of keys [j0, j0+c) of a titans_task (a mem_chunk_fn): advances
 * H and S (each Dk x Dv, adjacent: S = H + Dk*Dv) and, when write_o, writes
 * the output rows of the group's G query heads. `fresh`: the chunk starts a
 * sequence (H, S are zero). `ws` holds pl->m.chunk_floats floats. Returns
 * the FLOPs executed. */
double titans_chunk(const void *task, int64_t j0, int64_t c, int fresh, float *H, float *ws, int write_o);

/* Floats of titans_chunk's scratch for chunks of at most c keys. */
size_t titans_chunk_floats(int64_t c, int64_t Dk, int64_t Dv);

/* The chunk, the per-token steps and their undoing, for the driver's
 * forward and backward: the linear memory (titans_bwd.c) and the MLP
 * memory (titans_mlp.c, titans_mlp_bwd.c). */
extern const mem_steps titans_steps;
extern const mem_steps titans_mlp_steps;

/* The task of (b, hk) from the template `all` (the driver's place). */
void titans_place(const void *all, int64_t b, int64_t hk, void *task);

/* dx = the gradient through x^ = x / sqrt(|x|^2 + eps) from dx^ (xn = x^, rn = 1 / sqrt(|x|^2 + eps)). */
void titans_unit_bwd(const float *xn, float rn, const float *dxn, float *dx, int64_t D);

/* The MLP memory's pieces (titans_mlp.c). */
size_t titans_mlp_chunk_floats(int64_t Hd, int64_t Dk, int64_t Dv, int64_t P);
size_t titans_mlp_vec_floats(int64_t Hd, int64_t Dk, int64_t Dv);
/* out = x / sqrt(|x|^2 + eps), the references' normalisation in double. */
void titans_normalise64(double *out, const double *x, int64_t D);
int titans_mlp_ref_forward(const attn_args *a, const attn_io64 *io, const titans_plan *pl);

int titans_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int titans_ref_forward(const attn_args *a, const attn_io64 *io);

#endif
