/* Performer FAVOR+ attention (Choromanski et al. 2020, "Rethinking Attention
 * with Performers"; docs/kernels/performer.md): softmax attention estimated
 * with positive random features phi(x) = exp(W x - |x|^2/2) / sqrt(m), run on
 * the chunked linear-attention core of kernels/linear/. */
#ifndef ATTN_PERFORMER_H
#define ATTN_PERFORMER_H

#include "kernels/core/attn.h"

#include <stdint.h>

extern const attn_kernel attn_kernel_performer;

/* One draw of the random features: m rows w_r of D columns. */
typedef struct {
    int64_t m, D;
    float *W;       /* m x D row-major */
    float *half_sq; /* |w_r|^2 / 2 of the stored (fp32) rows */
} pf_features;

/* Draws the features of (seed, draw): orthogonal blocks (the Q factor of the
 * QR of D x D Gaussian blocks, rows rescaled by chi_D norms) or i.i.d.
 * N(0, I) rows. Allocates f->W and f->half_sq (pf_free releases them). */
int pf_draw(pf_features *f, int64_t m, int64_t D, int orthogonal, uint64_t seed, uint64_t draw);
void pf_free(pf_features *f);

/* The unstabilised positive feature of x (already scaled, D values), in
 * double: phi_r(x) = exp(<w_r, x> - |x|^2/2) / sqrt(m), so that
 * E <phi(x), phi(y)> = exp(<x, y>) over the draws. */
void pf_feature64(const pf_features *f, const double *x, double *phi);

#endif
