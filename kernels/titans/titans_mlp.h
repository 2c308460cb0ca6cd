/* The MLP memory of `titans` (memory=mlp; docs/kernels/titans.md): its
 * parameters theta = [W1 (Hd x Dk); W2 (Dv x Hd)], row-major and adjacent
 * (P = Hd (Dk + Dv) floats), read as M(x) = W2 silu(W1 x); the momentum S
 * has the same layout and follows theta in the driver's state [theta; S].
 * The per-token pieces the forward (titans_mlp.c) and the backward
 * (titans_mlp_bwd.c) share. */
#ifndef ATTN_TITANS_MLP_H
#define ATTN_TITANS_MLP_H

#include "titans_internal.h"

#include <math.h>

/* A token's gradient pieces at the chunk's initial memory theta0, and a read. */
typedef struct {
    float *kn, *z, *a1; /* k^ (Dk), z = W1 k^, silu(z) (Hd) */
    float *E, *p, *del; /* E = W2 silu(z) - v (Dv), p = W2^T E, del = p (.) silu'(z) (Hd) */
    float *qn, *zq, *aq; /* q^ (Dk), W1 q^, silu(W1 q^) (Hd) */
} mlp_vecs;

/* The vectors above carved from w (titans_mlp_vec_floats each); w advances. */
mlp_vecs titans_mlp_vecs(const titans_plan *pl, float **w);

static inline float titans_silu(float z) { return z / (1.0f + expf(-z)); }
/* silu'(z) = s (1 + z (1 - s)), s = sigmoid(z) */
static inline float titans_silu_d1(float z)
{
    float s = 1.0f / (1.0f + expf(-z));
    return s * (1.0f + z * (1.0f - s));
}
/* silu''(z) = s (1 - s) (2 + z (1 - 2 s)) */
static inline float titans_silu_d2(float z)
{
    float s = 1.0f / (1.0f + expf(-z));
    return s * (1.0f - s) * (2.0f + z * (1.0f - 2.0f * s));
}

/* The gradient pieces of token j at theta0 into u (kn, z, a1, E, p, del);
 * returns 1 / |k|. The gradient of |M(k^) - v|^2 / 2 is
 * [del k^^T; E silu(z)^T]. */
float titans_mlp_gradient(const titans_task *t, int64_t j, const float *theta0, mlp_vecs *u);

/* next = step j from prev ([theta; S] each; next may be prev):
 * S = eta S - beta grad (at theta0), theta = a theta + S. */
void titans_mlp_step(const titans_task *t, int64_t j, const float *prev, float *next, const float *theta0,
                     mlp_vecs *u);

/* zq = W1 q^, aq = silu(zq) of theta for the normalised query qn (u->qn). */
void titans_mlp_hidden(const titans_plan *pl, const float *theta, mlp_vecs *u);

/* [theta; S] before a sequence: W1 = [I; -I; I; ...], W2 = 0, S = 0. */
void titans_mlp_fresh(const void *task, float *state);

/* Keys [j0, j0 + c) (a mem_chunk_fn): every gradient at the chunk's initial
 * theta0, the steps walked token by token; ws holds titans_mlp_chunk_floats. */
double titans_mlp_chunk(const void *task, int64_t j0, int64_t c, int fresh, float *H, float *ws, int write_o);

#endif
