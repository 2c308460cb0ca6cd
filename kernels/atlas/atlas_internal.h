/* Internals shared by the ATLAS forward (atlas.c, atlas_chunk.c), backward
 * (atlas_bwd.c) and double reference (atlas_ref.c); the math is in
 * docs/kernels/atlas.md.
 *
 * Layout as titans: the memory W (Dv x F) and its momentum S are kept
 * transposed, H = W^T and Sm = S^T, both [F, Dv] row-major and adjacent
 * (Sm = H + F*Dv), so every chunk product is a plain row-major sgemm. One
 * task is one (batch, KV head): the memory depends only on K, V and the
 * gates, so it is trained once and read by the group's G query heads. */
#ifndef ATTN_ATLAS_INTERNAL_H
#define ATTN_ATLAS_INTERNAL_H

#include "kernels/core/attn.h"
#include "kernels/core/mem_driver.h"
#include "kernels/linear/linear_internal.h"

/* 1: the exact per-token rule. Larger chunks take b stale steps from one
 * memory; along the features' shared direction (Taylor's constant term) they
 * add up, and at the harness's random gates (eta ~ 0.5) the memory diverges
 * from b = 4 on (docs/kernels/atlas.md, Stability). */
#define ATLAS_DEFAULT_CHUNK 1
#define ATLAS_MAX_CHUNK 256
#define ATLAS_DEFAULT_WINDOW 64
#define ATLAS_MAX_WINDOW 1024

/* The backward stores every step's state inside a block of whole chunks of
 * at most max(ATLAS_BWD_BLOCK, chunk) keys, and one checkpoint per block. */
#define ATLAS_BWD_BLOCK 32

/* The backward's own vectors, F + Dv + D floats each (atlas_bwd.c). */
#define ATLAS_BWD_VECTORS 6

enum { ATLAS_PHI_TAYLOR, ATLAS_PHI_IDENTITY };
enum { ATLAS_OPT_GD, ATLAS_OPT_MUON };

/* Sizes of one run, from the arguments alone (init, forward, backward agree). */
typedef struct {
    int64_t C, c, D, F, Dv, G; /* chunk, window, key size, features, value size, group */
    int muon;                  /* opt=muon: the step is NS5 of the momentum */
    lin_fmap fm;               /* the feature map of keys and queries */
    mem_plan m;                /* the driver's sizes: state [H; S] of F x Dv each, slots, backward blocks */
} atlas_plan;

int atlas_plan_make(atlas_plan *pl, const attn_args *a);

typedef struct {
    const attn_args *a;
    const attn_io *io;
    const atlas_plan *pl;
    int64_t b, hk;
} atlas_task;

/* The token's gates: step eta = io.beta, retention alpha = exp(io.gate),
 * momentum theta = sigmoid(router[0]), window weight gamma = sigmoid(router[1]). */
void atlas_gates(const atlas_task *t, int64_t j, float *eta, float *alpha, float *theta, float *gamma);

/* q and k are L2-normalised before the feature map, and the features after
 * it, as x / sqrt(|x|^2 + eps). */
#define ATLAS_NORM_EPS 1e-12

/* f = phi^(x^), the unit-length features of the unit-length rows, for n rows
 * of x (row stride ldx); xn receives the n x D normalised rows. */
void atlas_phi(const atlas_plan *pl, const float *x, int64_t ldx, int64_t n, float *xn, float *f);

/* dx = the gradient of one row x through x^, phi and the features'
 * normalisation from df = dL/dphi^ (F, overwritten); xn (D) and f (F) are scratch. */
void atlas_phi_bwd(const atlas_plan *pl, const float *x, float *df, float *xn, float *f, float *dx);

/* The double twin of atlas_phi for one row (xn: D scratch doubles). */
void atlas_phi64(const atlas_plan *pl, const double *x, double *xn, double *f);

/* Numerically safe logistic function (a logit of -1e4 gives exactly 0). */
double atlas_sigmoid(double z);

/* First token of key t's window: max(t - c + 1, start of t's sequence). */
int64_t atlas_window_lo(const attn_args *a, int64_t t, int64_t c);

/* Rows in key t's window: the Omega loss is their mean (weight 1 / n_t). */
static inline int64_t atlas_window_rows(const attn_args *a, int64_t t, int64_t c)
{
    return t - atlas_window_lo(a, t, c) + 1;
}


/* One chunk of keys [j0, j0+n) of an atlas_task (a mem_chunk_fn): advances
 * [H; Sm] and, when write_o, writes the output rows of the group's G query
 * heads. `fresh`: the chunk starts a sequence (H, Sm are zero). ws holds
 * pl->m.chunk_floats floats. Returns FLOPs. */
double atlas_chunk(const void *task, int64_t j0, int64_t n, int fresh, float *H, float *ws, int write_o);

size_t atlas_chunk_floats(const atlas_plan *pl);

/* Muon (atlas_muon.c): five Newton-Schulz iterations, normalised by |S|_F + 1e-7, none below 1e-12. */
#define ATLAS_NS_STEPS 5
#define ATLAS_NS_EPS 1e-7
#define ATLAS_NS_TINY 1e-12
size_t atlas_ns5_floats(const atlas_plan *pl);
/* Y = NS5(S) of the stored F x Dv momentum; ws (atlas_ns5_floats) keeps the iterates for the backward. */
void atlas_ns5(const atlas_plan *pl, const float *S, float *Y, float *ws);
/* dS += dL/dS from dY = dL/dY (overwritten), ws as atlas_ns5(S) left it. */
void atlas_ns5_bwd(const atlas_plan *pl, const float *S, float *dY, float *dS, float *ws);
/* The double twin on a Dv x F matrix; ws holds 3 Dv F + 3 Dv^2 doubles. */
void atlas_ns5_64(int64_t Dv, int64_t F, const double *S, double *Y, double *ws);

/* The chunk, the per-token steps and their undoing, for the driver's forward and backward. */
extern const mem_steps atlas_steps;

int atlas_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);
int atlas_ref_forward(const attn_args *a, const attn_io64 *io);

#endif
