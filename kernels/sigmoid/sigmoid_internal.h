/* Shared by the `sigmoid` forward (sigmoid.c) and backward (sigmoid_bwd.c):
 * the plan (flash's br x bc tiles plus the bias), the workspace layout and the
 * element-wise sigmoid steps in the two tile layouts of flash_internal.h
 * (lane-major S^T for the forward and the dQ pass, row-major S for the
 * dK/dV pass). */
#ifndef ATTN_SIGMOID_INTERNAL_H
#define ATTN_SIGMOID_INTERNAL_H

#include "kernels/flash/flash_internal.h"
#include "sigmoid.h"

/* The flash tile plan (same br/bc params and defaults) plus the bias
 * (Ramapuram et al. 2024: b = -ln n). */
typedef struct {
    flash_plan fp;
    int row_bias;          /* bias=row: b_i = -ln(#keys row i may attend), 0 for empty rows */
    float bias;            /* otherwise the constant b (default -ln Nk) */
    int seq_bias;          /* default bias on a padded batch: -ln(seq_len[b]) per sequence */
    size_t thread_floats;  /* per-thread slot (multiple of 16 floats) */
    size_t bias_floats;    /* bias=row: B*H*Nq per-row biases after the slots, else 0 */
} sig_plan;

/* The bias of every row of sequence b when there is no per-row array. */
static inline float attn_sigmoid_seq_bias(const sig_plan *pl, const attn_args *a, int64_t b)
{
    return pl->seq_bias ? (a->seq_len[b] > 0 ? -logf((float)a->seq_len[b]) : 0.0f) : pl->bias;
}

/* Fills *pl from args and the br/bc/bias params; fails with a message on
 * unknown keys or bad values. */
int attn_sigmoid_plan(sig_plan *pl, const attn_args *a);

/* The per-row bias array in the workspace (NULL unless bias=row), filled
 * for every (b, h, i) from the mask's exact pair counts. */
float *attn_sigmoid_row_bias(const attn_ctx *ctx, const sig_plan *pl);

/* bias[r] of lane r = g*nb + i (query row i0+i of head h0+g); padding lanes 0. */
void attn_sigmoid_lane_bias(const attn_args *a, const sig_plan *pl, const float *rowbias, int64_t b,
                            int64_t h0, int64_t G, int64_t i0, int64_t nb, int64_t lanes, float *bias);

/* Lane-major mask of one tile (forward, dQ pass): key ranges for interval
 * masks, mask bytes otherwise (flash_internal.h). */
typedef struct {
    int32_t *lo, *hi;
    unsigned char *M;
    int64_t ldm;
} sig_lane_mask;

/* Carves the lane mask buffers for `lanes` lanes of tiles `bc` keys wide:
 * the mask bytes only for masks that are not one key range per row. */
static inline sig_lane_mask sig_lane_mask_take(const attn_args *a, float **ws, int64_t lanes, int64_t bc)
{
    sig_lane_mask mk = {.ldm = bc};
    mk.lo = (int32_t *)flash_take(ws, lanes);
    mk.hi = (int32_t *)flash_take(ws, lanes);
    mk.M = attn_mask_is_interval(&a->mask) ? NULL : (unsigned char *)flash_take(ws, lanes * bc / 4 + 1);
    return mk;
}

/* Floats sig_lane_mask_take carves (with flash_take's rounding). */
static inline int64_t sig_lane_mask_floats(const attn_args *a, int64_t lanes, int64_t bc)
{
    return 2 * flash_round16(lanes) + (attn_mask_is_interval(&a->mask) ? 0 : flash_round16(lanes * bc / 4 + 1));
}

/* A PARTIAL lane-major tile (rows i0.. of the G heads h0.., keys j0..j0+nk):
 * prepares the mask and cuts the tile to the keys some row sees,
 * [*jlo, *jhi) relative to j0. */
static inline void sig_lanes_cut(const attn_args *a, sig_lane_mask *mk, int64_t b, int64_t h0, int64_t G,
                                 int64_t i0, int64_t nb, int64_t j0, int64_t nk, int64_t lanes, int64_t *jlo,
                                 int64_t *jhi)
{
    int64_t r0, r1;
    if (attn_mask_is_interval(&a->mask))
        flash_partial_keys(a, i0, nb, G, j0, nk, lanes, mk->lo, mk->hi, jlo, jhi);
    else
        flash_pred_rows(a, b, h0, G, i0, nb, j0, nk, mk->M, mk->ldm, jlo, jhi, &r0, &r1);
}

/* S^T[j][r] = -inf off the mask for the cut tile (nk keys from jlo, G*nb real lanes). */
static inline void sig_lanes_mask(const attn_args *a, const sig_lane_mask *mk, float *S, int64_t jlo,
                                  int64_t nk, int64_t rows, int64_t lanes)
{
    if (attn_mask_is_interval(&a->mask))
        flash_mask_lanes(S, nk, lanes, mk->lo, mk->hi);
    else
        flash_pred_apply(mk->M + jlo, mk->ldm, rows, nk, S, 1, lanes, -INFINITY);
}

/* S^T[j][r] = sigma(S^T[j][r] + bias[r]) over nk rows of `lanes` floats:
 * P^T of the lane-major layout (-inf scores give exactly 0). */
static inline void sig_lanes_sigmoid(float *S, int64_t nk, int64_t lanes, const float *bias)
{
#ifdef ATTN_VW
    for (int64_t r = 0; r < lanes; r += ATTN_VW) {
        attn_vf bv = attn_vf_load(bias + r);
        for (int64_t j = 0; j < nk; j++) {
            float *s = S + j * lanes + r;
            attn_vf_store(s, attn_vf_sigmoid(attn_vf_add(attn_vf_load(s), bv)));
        }
    }
#else
    for (int64_t j = 0; j < nk; j++)
        for (int64_t r = 0; r < lanes; r++)
            S[j * lanes + r] = attn_sigmoidf(S[j * lanes + r] + bias[r]);
#endif
}

/* x[i] = sigma(x[i] + bias) for i < n (one row of the row-major layout). */
static inline void sig_row_sigmoid(float *x, int64_t n, float bias)
{
    int64_t i = 0;
#ifdef ATTN_VW
    attn_vf bv = attn_vf_set1(bias);
    for (; i + ATTN_VW <= n; i += ATTN_VW)
        attn_vf_storeu(x + i, attn_vf_sigmoid(attn_vf_add(attn_vf_loadu(x + i), bv)));
#endif
    for (; i < n; i++)
        x[i] = attn_sigmoidf(x[i] + bias);
}

/* dS = dP * P * (1 - P) in place in dP over n floats (sigma' = sigma (1 - sigma);
 * no softmax row term). */
static inline void sig_dscore(float *dP, const float *P, int64_t n)
{
    int64_t i = 0;
#ifdef ATTN_VW
    const attn_vf one = attn_vf_set1(1.0f);
    for (; i + ATTN_VW <= n; i += ATTN_VW) {
        attn_vf p = attn_vf_loadu(P + i);
        attn_vf_storeu(dP + i, attn_vf_mul(attn_vf_mul(attn_vf_loadu(dP + i), p), attn_vf_sub(one, p)));
    }
#endif
    for (; i < n; i++)
        dP[i] = dP[i] * P[i] * (1.0f - P[i]);
}

/* Inverse of flash_lanes_pack_q: t[b, h0+g, i0+i, d] = s * xt[d][g*nb + i]. */
static inline void sig_store_lanes(const float *xt, int64_t lanes, const attn_tensor *t, int64_t b, int64_t h0,
                                   int64_t G, int64_t i0, int64_t nb, int64_t D, float s)
{
    for (int64_t g = 0; g < G; g++)
        for (int64_t i = 0; i < nb; i++) {
            float *row = attn_at(t, b, h0 + g, i0 + i);
            const float *col = xt + g * nb + i;
            for (int64_t d = 0; d < D; d++)
                row[d] = s * col[d * lanes];
        }
}

/* Backward entry point (sigmoid_bwd.c). */
int attn_sigmoid_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

#endif
