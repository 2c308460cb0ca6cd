/* What the `recycled` forward (recycled_fwd.c), its double reference
 * (recycled_ref.c) and the kernel object (recycled.c) share: the plan, the
 * step schedule, and the selection scoring (recycled_select.c), which both
 * the fp32 kernel and the reference run from the same fp32 inputs through
 * the same compiled code, so they select the same keys bit for bit. */
#ifndef ATTN_RECYCLED_INTERNAL_H
#define ATTN_RECYCLED_INTERNAL_H

#include "kernels/core/attn.h"

#include <stdint.h>

typedef struct {
    int64_t S;      /* a full step every S steps */
    int64_t K;      /* keys kept by a full step */
    int64_t phase;  /* cycle step of query row 0 (0: a full step) */
    int dynamic;    /* also refresh when cos(q_t, q_full) < tau */
    double tau;
    int64_t G;      /* query heads per KV head */
    int causal;
} rc_plan;

/* Reads the parameters (0, or a negative code with a message). */
int rc_plan_make(rc_plan *pl, const attn_args *a);

/* Keys [0, end) the query at absolute position p may attend: all of them
 * (FULL, bottom-right decode) or those at positions <= p (CAUSAL). */
static inline int64_t rc_key_end(const rc_plan *pl, const attn_args *a, int64_t p)
{
    if (!pl->causal)
        return a->Nk;
    int64_t e = p - a->k_off + 1;
    return e < 0 ? 0 : e > a->Nk ? a->Nk : e;
}

/* Row i is a full step of the fixed schedule. */
static inline int rc_scheduled_full(const rc_plan *pl, int64_t i) { return (pl->phase + i) % pl->S == 0; }

/* Selection weights of a full step of one KV group over keys [0, n):
 * e[g*n + j] = exp(s_gj - m[g]) with s_gj = sc <q_g, k_j> (fp32, in one
 * fixed order of operations; q_g at q + g*qsh, k_j at k + j*ksn),
 * m[g] = max_j s_gj, l[g] = sum_j e[g*n+j] in double (j ascending), and
 * w[j] = sum_g e[g*n + j] / l[g] in double (g ascending): the attention of
 * key j summed over the G heads. One compiled function for the kernel and
 * the reference, so both get the same bits. */
void rc_group_weights(const float *q, int64_t qsh, int64_t G, const float *k, int64_t ksn, int64_t n, int64_t D,
                      float sc, float *e, float *m, double *l, double *w);

/* Cosine between the group's queries at q and at qf (each G rows of D,
 * head strides qsh and qfsh, taken as one vector of G*D), in double. */
double rc_group_cos(const float *q, int64_t qsh, const float *qf, int64_t qfsh, int64_t G, int64_t D);

/* Is key a ahead of key b in the selection order? Higher weight first,
 * ties to the lower position: a total order on distinct keys. */
static inline int rc_better(const double *w, int64_t a, int64_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); }

/* Attended keys of a recycled step: the selected ones, and the keys that
 * arrived after the full step at position pf among [0, end). */
static inline int64_t rc_new_from(const attn_args *a, int64_t pf)
{
    int64_t j = pf - a->k_off + 1;
    return j < 0 ? 0 : j;
}

/* The fp32 forward (recycled_fwd.c) and its per-thread scratch bytes. */
int rc_forward(attn_ctx *ctx, const attn_io *io);
size_t rc_thread_bytes(const attn_args *a, const rc_plan *pl);

/* Double reference of the method (recycled_ref.c; writes io->o and io->lse)
 * and the fidelity view: each row's attention over the original keys (a
 * softmax over the attended subset) and the attended keys, sel U new. */
int rc_ref_forward(const attn_args *a, const attn_io64 *io);
int rc_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n,
                double *P, unsigned char *sel);

#endif
