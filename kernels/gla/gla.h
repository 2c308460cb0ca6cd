/* Decayed linear attention, one chunked implementation with three presets
 * (docs/kernels/gla.md):
 *   S_t = diag(alpha_t) S_{t-1} + k_t v_t^T,   o_t = S_t^T (sc q_t)
 * with S per KV head (Dk x Dv) and
 *   retnet     alpha = gamma_h = 1 - 2^(-5-h), h the KV head (Sun et al. 2023, section 2);
 *   lightning  alpha = lambda_h = exp(-slope_h), slopes the ALiBi schedule of
 *              Lightning Attention-2 / TransNormerLLM (_build_slope_tensor, layer 0),
 *              or param decay for every head (Qin et al. 2023, 2024);
 *   gla        alpha_t = exp(g_t), g_t <= 0 per key channel from io.gate
 *              [B,H_kv,Nk,Dk] (Yang et al. 2023, section 4).
 * The decay is per KV head (the state is shared by the G query heads of a
 * group), which is the paper's per-head schedule when H_kv == H.
 *
 * Scale: sc = args.scale (default 1/sqrt(Dk)) multiplies q, as torchscale's
 * retention (keys scaled by key_dim^-0.5, equivalent) and fla's GLA (q scaled
 * by K^-0.5); the Lightning op has no scale: pass scale=1 to match it.
 *
 * Masks: CAUSAL (intrinsic) and DOCUMENT (state reset at each document start;
 * the recurrence is causal inside a document whether or not the mask spec says
 * causal=1); queries and keys are the same positions (Nq == Nk, q_off == k_off). */
#ifndef ATTN_GLA_H
#define ATTN_GLA_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_retnet, attn_kernel_gla, attn_kernel_lightning;

typedef enum { GLA_RETNET = 0, GLA_GLA, GLA_LIGHTNING } gla_preset;

#define GLA_SUB 16          /* sub-chunk rows of the vector-gate intra-chunk product */
#define GLA_MAX_CHUNK 512
#define GLA_DECAY_FLUSH 0x1p-100f /* decay products below are 0 (no subnormals) */
#define GLA_MAX_SEGS (ATTN_MASK_MAX_SPANS + 2)

/* Which preset a kernel object is. */
gla_preset attn_gla_preset_of(const attn_kernel *k);

/* Scalar log-decay ln(alpha) of KV head hk for the retnet/lightning presets
 * (reads param decay for lightning). Returns 0 or a negative code. */
int attn_gla_log_decay(gla_preset p, const attn_args *a, int64_t hk, double *w);

/* Segment starts in key rows: 0 and every document start inside [0, Nk);
 * seg[n] = Nk. Returns the number of segments n. */
int64_t attn_gla_segments(const attn_args *a, int64_t seg[GLA_MAX_SEGS + 1]);

/* ---- shared between gla.c (forward) and gla_bwd.c ---- */

typedef struct {
    gla_preset preset;
    int vec;                  /* per-channel gates (gla) */
    int64_t C, G, Dk, Dv, kr_rows, kp_rows;
    size_t thread_floats;     /* per-thread scratch (floats) */
    size_t state_floats;      /* B*H_kv*Dk*Dv (forward's final states) */
} gla_plan;

int attn_gla_plan(gla_plan *pl, gla_preset p, const attn_args *a);

/* Workspace: the states, then one scratch slot per thread from this float offset. */
static inline size_t attn_gla_slot0(const gla_plan *pl) { return (pl->state_floats + 15) / 16 * 16; }

/* Decay of one chunk of L rows (r = 0..L-1), all relative to the state before
 * the chunk: a_r = sum_{u<=r} g_u (vector) or (r+1) w (scalar). */
typedef struct {
    int vec;
    int64_t L, Dk;
    const float *pw;          /* scalar: pw[r] = e^{r w}, r = 0..C */
    float *a;                 /* vector: a_r (L x Dk) */
    float *ea, *et, *eL;      /* vector: e^{a_r}, e^{a_{L-1} - a_r} (L x Dk), e^{a_{L-1}} (Dk) */
    float *eb;                /* vector: e^{a_r - a_{r0-1}}, r0 the first row of r's sub-chunk (L x Dk) */
    float *kr;                /* vector: K rows s <= rho_I scaled by e^{a_rho - a_s}, per block I >= 1 */
    float *kp;                /* vector: diagonal blocks, K_s * e^{a_r - a_s} for r0 <= s <= r < r0 + 16 */
    float *xt, *mt;           /* scratch: L x Dk (scaled X rows), L x max(Dk, Dv) (product) */
} gla_chunk;

/* Carves the chunk buffers from *ws (plan sizes); attn_gla_chunk_floats is what it takes. */
void attn_gla_chunk_bind(gla_chunk *ch, const gla_plan *pl, const float *pw, float **ws);
size_t attn_gla_chunk_floats(const gla_plan *pl);

/* Prepares the decay of rows [0, L) from gates g (ld lg; NULL for scalar),
 * and the scaled key blocks of K (ld lk). */
void attn_gla_chunk_prep(gla_chunk *ch, int64_t L, const float *g, int64_t lg, const float *K, int64_t lk);

/* A (L x L, ld L) = alpha * [sum_d X_r[d] K_s[d] e^{a_r[d]-a_s[d]}]_{s<=r}, 0 above
 * the diagonal (K: the rows given to chunk_prep). */
void attn_gla_scores(const gla_chunk *ch, const float *X, int64_t lx, const float *K, int64_t lk,
                     float alpha, float *A);

/* M[r] += alpha * sum_{s<=r} B[r,s] K_s * e^{a_r - a_s}   (B: L x L, ld L; may be overwritten) */
void attn_gla_apply_lower(const gla_chunk *ch, float *B, const float *K, int64_t lk, float alpha,
                          float *M, int64_t lm);

/* M[t] += alpha * sum_{r>=t} B[r,t] X_r * e^{a_r - a_t}   (B: L x L, ld L; may be overwritten) */
void attn_gla_apply_upper(const gla_chunk *ch, float *B, const float *X, int64_t lx, float alpha,
                          float *M, int64_t lm);

/* M (L x n, ld lm) *= e^{a_r} row-wise (head = 1) or e^{a_{L-1} - a_r} (head = 0);
 * n == Dk for the vector decay (elementwise), any n for the scalar one. */
void attn_gla_scale_rows(const gla_chunk *ch, int head, float *M, int64_t lm, int64_t n);

/* S (Dk x Dv, ld Dv) <- diag(e^{a_{L-1}}) S. */
void attn_gla_decay_state(const gla_chunk *ch, float *S, int64_t Dv);

/* ch->xt (L x Dk) = X (ld lx) scaled as attn_gla_scale_rows(head). */
void attn_gla_decayed_copy(gla_chunk *ch, const float *X, int64_t lx, int head);

/* S <- diag(e^{a_{L-1}}) S + (K * e^{a_{L-1} - a})^T V: the state after the chunk (uses ch->xt). */
void attn_gla_state_step(gla_chunk *ch, const float *K, int64_t lk, const float *V, int64_t lv, float *S, int64_t Dv);

/* Powers pw[r] = e^{r w}, r = 0..C. */
void attn_gla_powers(float *pw, double w, int64_t C);

/* Backward (gla_bwd.c). */
int attn_gla_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

/* Double recurrent references (gla_ref.c), one per preset. */
int attn_gla_ref_retnet(const attn_args *a, const attn_io64 *io);
int attn_gla_ref_gla(const attn_args *a, const attn_io64 *io);
int attn_gla_ref_lightning(const attn_args *a, const attn_io64 *io);

#endif
