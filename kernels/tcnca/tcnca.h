/* `tcnca`: TCNCA's token mixer (Terzic et al. 2023, "TCNCA: Temporal
 * Convolution Network with Chunked Attention for Scalable Sequence
 * Processing"; docs/kernels/tcnca.md): a stack of depthwise dilated
 * convolutions (the TCN that replaces MEGA's EMA) on Q and on K, then softmax
 * attention inside non-overlapping chunks of c tokens.
 *
 * Per (b, h), TCN layer l = 0..layers-1 with dilation delta_l = base^l:
 *
 *   y_t = sum_{tau < taps} w_{l,tau} (.) x_{t - tau delta_l + s_l}
 *
 * (elementwise over the D channels, zero outside [0, N); s_l = 0 under CAUSAL,
 * (taps/2) delta_l under FULL: the centred conv). Q' = TCN(Q), K' = TCN(K)
 * with the same weights (MEGA derives Q and K from one shared TCN output by
 * per-channel affine maps, which commute with a depthwise linear conv); V is
 * read as given. Then per chunk [mc, mc + c):
 *
 *   o_i = sum_{j in chunk(i), j <= i (CAUSAL)} softmax_j(sc <Q'_i, K'_j>) V_j
 *
 * Learned weights: io.w [1, H, 1, layers * taps * D], tap tau of layer l of
 * channel d at (l * taps + tau) * D + d. No bias, activation or residual
 * inside the TCN (the block's nonlinearity and residual belong to the model). */
#ifndef ATTN_TCNCA_H
#define ATTN_TCNCA_H

#include "kernels/core/attn.h"

extern const attn_kernel attn_kernel_tcnca;

typedef struct {
    int64_t c;       /* chunk length */
    int64_t taps;    /* K: taps per layer */
    int64_t base;    /* f: layer l has dilation base^l */
    int64_t layers;  /* D_t */
    int full;        /* 1: FULL mask (centred conv, whole chunk); 0: CAUSAL */
    double sc;       /* score scale */
    int64_t W;       /* weights per head: layers * taps * D */
} tcnca_plan;

/* Parses and checks the parameters and the mask (0, or ATTN_EINVAL). */
int attn_tcnca_plan(tcnca_plan *pl, const attn_args *a);

/* Dilation and left shift of layer l. */
int64_t attn_tcnca_dilation(const tcnca_plan *pl, int64_t l);
int64_t attn_tcnca_shift(const tcnca_plan *pl, int64_t l);

/* Receptive field of the stack (tokens one output row reads on one side):
 * 1 + (taps - 1) (base^layers - 1) / (base - 1), or 1 + layers (taps - 1) at base 1. */
int64_t attn_tcnca_receptive_field(const tcnca_plan *pl);

/* One conv layer over a whole sequence: x and y are N x D contiguous, w the
 * head's weights. */
void attn_tcnca_conv(const tcnca_plan *pl, int64_t l, int64_t N, int64_t D, const float *x, const float *w, float *y);

/* Scratch buffers start on 16-float (64-byte) boundaries. */
#define TCNCA_ROUND16(n) (((n) + 15) / 16 * 16)

/* Per-thread scratch: forward and backward layouts (tcnca.c, tcnca_bwd.c). */
size_t attn_tcnca_thread_floats(const attn_args *a, const tcnca_plan *pl);
float *attn_tcnca_scratch(const attn_ctx *ctx, const tcnca_plan *pl, int thread);
/* Backward dw partial of (b, h), W floats, after the per-thread scratch. */
float *attn_tcnca_dw_partial(const attn_ctx *ctx, const tcnca_plan *pl, int64_t b, int64_t h);

/* Chunk attention of one chunk of nc rows: S = sc Q' K'^T (nc x nc, in s),
 * masked (CAUSAL), softmax; O = P V. Writes lse[i] per row. */
void attn_tcnca_chunk_probs(const tcnca_plan *pl, int64_t nc, int64_t D, const float *q, const float *k, float *s,
                            float *lse);

/* Query-key pairs inside the chunks of one (b, h) of N rows: those the mask
 * allows, or with whole_tiles every entry of the c x c tiles (computed whole). */
double attn_tcnca_pairs(const tcnca_plan *pl, int64_t N, int whole_tiles);

/* Plain double reference (writes io->o and, when given, io->lse). */
int attn_tcnca_ref_forward(const attn_args *a, const attn_io64 *io);

/* Backward (tcnca_bwd.c). */
int attn_tcnca_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g);

#endif
