/* What the performer kernel's files share (docs/kernels/performer.md): its
 * parameters, its feature maps for the linear-attention core and their
 * double twins. */
#ifndef ATTN_PERFORMER_INTERNAL_H
#define ATTN_PERFORMER_INTERNAL_H

#include "performer.h"

#include "kernels/linear/linear_internal.h"

/* Key features carry exp(DELTA - |x - w_r|^2 / 2) <= e^DELTA: bounded by
 * construction, and a constant, so a key's feature depends on that key only
 * (bitwise causal); exp(|w_r|^2/2 - DELTA) moves into the query feature. */
#define PF_DELTA 30.0

/* Denominator guard: the maps' per-row stabilisers scale the denominator by
 * e^-20 and less, so the 1e-6 of elu+1 would bias the estimate; positive
 * features need no guard but 0/0 on a row whose key features all underflow. */
#define PF_EPS 1e-30

/* Most features (the backward keeps one row of them on the stack). */
#define PF_MAX_FEATURES 4096

/* The kernel function the features estimate: FAVOR+'s softmax kernel, or
 * the generalized attention relu(W x) + PF_RELU_FLOOR (the paper's
 * Performer-ReLU; LRA's default performer attention, which with m = 0 uses
 * no projection at all). */
enum { PF_SOFTMAX = 0, PF_RELU = 1 };

/* The additive constant of LRA's generalized features (kernel_epsilon): it
 * keeps every feature, hence every denominator, positive. */
#define PF_RELU_FLOOR 1e-3f

typedef struct {
    int64_t m, C;      /* m = 0: no projection (relu only), F = D */
    int orthogonal, kernel;
    uint64_t seed, draw;
} pf_params;

/* Features the core sees: m, or D without a projection. */
static inline int64_t pf_feature_count(const pf_params *p, int64_t D) { return p->m ? p->m : D; }

/* Reads and checks the kernel's parameters. */
int pf_params_read(const attn_args *a, pf_params *p);

/* The core's configuration for features f (the maps point at f). */
int pf_cfg(lin_cfg *cfg, const attn_args *a, const pf_params *p, const pf_features *f);

/* A problem's parameters, its draw and the core's configuration over it. */
typedef struct {
    pf_params p;
    pf_features f;
    lin_cfg cfg; /* its maps point at f: the struct must not move once made */
} pf_setup;

/* Reads the parameters, draws the features, builds cfg. On failure nothing
 * stays allocated. */
int pf_setup_make(pf_setup *s, const attn_args *a);
void pf_setup_free(pf_setup *s);

/* Key and query maps of features f for a problem of scale sc (x = q sqrt(sc)). */
void pf_maps(lin_fmap *key, lin_fmap *query, const pf_features *f, double sc);

/* The relu map (one for queries and keys, x = q unscaled as in LRA's code):
 * relu(W x) + PF_RELU_FLOOR, or relu(x) + PF_RELU_FLOOR when f->m = 0 (no
 * projection, F = D). performer_relu.c. */
void pf_relu_map(lin_fmap *map, const pf_features *f, int64_t D);

/* ref_forward and ref_view of the kernel (performer_ref.c). */
int pf_ref_forward(const attn_args *a, const attn_io64 *io);
int pf_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel);

#endif
