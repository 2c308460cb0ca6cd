/* The lane-major online-softmax step of the flash forward (flash_internal.h
 * explains the layout: S^T is [key j][query lane r], so the per-row running
 * max m, sum l and rescale alpha of 16 rows sit in one vector). Shared by
 * every kernel that runs the flash inner loop over a key range: `flash`
 * itself, `decode` and `lean`. */
#ifndef ATTN_FLASH_LANES_H
#define ATTN_FLASH_LANES_H

#include "flash_internal.h"

#include <string.h>

// qt is (D, lanes): qt[d][g*nb + i] = sc * q[b, h0 + g, i0 + i, d]; padding lanes are 0
static inline void flash_lanes_pack_q(const attn_tensor *q, int64_t b, int64_t h0, int64_t G, int64_t i0,
                                      int64_t nb, int64_t lanes, float sc, float *qt)
{
    int64_t D = q->D;
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            const float *row = attn_at(q, b, h0 + g, i0 + i);
            float *col = qt + g * nb + i;
            for (int64_t d = 0; d < D; d++)
                col[d * lanes] = sc * row[d];
        }
    for (int64_t d = 0; d < D; d++)
        memset(qt + d * lanes + G * nb, 0, sizeof(float) * (size_t)(lanes - G * nb));
}

/* tmax[r] = max(tmax[r], max_j S[j][r]) over nk rows of `lanes` (S is S^T):
 * the tile max when the product could not fold it in (PARTIAL tiles, masked
 * after the product). */
static inline void flash_lanes_max(const float *S, int64_t nk, int64_t lanes, float *tmax)
{
#ifdef ATTN_VW
    for (int64_t r = 0; r < lanes; r += ATTN_VW) {
        /* four independent chains, so the loop is not latency-bound */
        attn_vf m0 = attn_vf_load(tmax + r), m1 = m0, m2 = m0, m3 = m0;
        int64_t j = 0;
        for (; j + 4 <= nk; j += 4) {
            const float *s = S + j * lanes + r;
            m0 = attn_vf_max(m0, attn_vf_load(s));
            m1 = attn_vf_max(m1, attn_vf_load(s + lanes));
            m2 = attn_vf_max(m2, attn_vf_load(s + 2 * lanes));
            m3 = attn_vf_max(m3, attn_vf_load(s + 3 * lanes));
        }
        for (; j < nk; j++)
            m0 = attn_vf_max(m0, attn_vf_load(S + j * lanes + r));
        attn_vf_store(tmax + r, attn_vf_max(attn_vf_max(m0, m1), attn_vf_max(m2, m3)));
    }
#else
    for (int64_t j = 0; j < nk; j++)
        for (int64_t r = 0; r < lanes; r++)
            tmax[r] = fmaxf(tmax[r], S[j * lanes + r]);
#endif
}

/* The per-row half of the online-softmax step (any layout): shift = mx, or 0
 * while a row has seen no key; alpha = exp(m - shift); l *= alpha; m = mx. */
static inline void flash_lanes_rescale(int64_t rows, const float *tmax, float *m, float *l, float *alpha,
                                       float *shift)
{
    for (int64_t r = 0; r < rows; r++) {
        shift[r] = tmax[r] == -INFINITY ? 0.0f : tmax[r];
        alpha[r] = m[r] - shift[r];
        m[r] = tmax[r];
    }
    attn_vexp(alpha, alpha, rows);
    for (int64_t r = 0; r < rows; r++)
        l[r] *= alpha[r];
}

/* One key tile of the online softmax, given mx = max(m, max_j S) in tmax:
 * alpha = exp(m - mx); P = exp(S - mx) in place; l = alpha*l + sum_j P; m = mx.
 * A lane whose scores are all -inf so far keeps m = -inf and subtracts 0
 * instead, so -inf - (-inf) never occurs and its P and l stay 0. */
static inline void flash_lanes_online_softmax(float *S, int64_t nk, int64_t lanes, const float *tmax,
                                              float *m, float *l, float *alpha, float *shift)
{
    flash_lanes_rescale(lanes, tmax, m, l, alpha, shift);
    flash_exp_lanes(S, nk, lanes, shift, l);
}

#endif
