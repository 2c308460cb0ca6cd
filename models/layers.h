/* Layers of the training engine, written the way llm.c's
 * train_gpt2.c is: one `<layer>_forward` / `<layer>_backward` pair per layer,
 * the tensor shapes in a comment above each, and a plain double-precision
 * twin `<layer>_forward_ref` / `<layer>_backward_ref` that the tests check the
 * fp32 path against (tests/test_layers.c).
 *
 * Memory is planned by the caller:
 *  - Parameters live in ONE float blob and their gradients in ONE blob of the
 *    same layout. A layer struct holds pointers into both (and the offset of
 *    each tensor, so that the double references can read a double blob of the
 *    same layout). `nn_<layer>_bind` takes its tensors from an nn_blob cursor;
 *    binding onto a cursor whose data is NULL only counts, which is how a model
 *    sizes its blob before allocating it (`nn_<layer>_param_count` wraps that
 *    for one layer; for a whole model bind every layer onto ONE counting blob:
 *    the sum of per-layer counts misses the alignment padding between layers).
 *    tests/test_layers_train.c assembles a one-block LM this way.
 *  - Activations and backward scratch are caller-owned buffers; nothing here
 *    allocates in forward/backward. (nn_attn_plan allocates the kernel
 *    context and the RoPE table once per shape; the double references allocate
 *    freely: they are test code, not a hot path.)
 *
 * Gradient convention (llm.c): every backward ACCUMULATES (+=) into the
 * parameter gradients and into the input gradient dx; the caller zeroes the
 * gradient blob and the activation-gradient buffers once per step. Any dx
 * argument may be NULL (no input gradient wanted, e.g. the first layer).
 *
 * Threads (the policy): every layer takes `threads` and runs ONE OpenMP loop
 * over independent tasks of a FIXED size: rows for elementwise and row-wise
 * layers, channels or blocks of rows for parameter-gradient reductions (each
 * sum runs over rows, or over the blocks' partial sums, in a fixed order), and
 * for dense layers tiles of 64 rows (forward, dx) or 64 output features (dW,
 * db), each a cblas_sgemm call made inside the loop with
 * OpenBLAS single-threaded (openblas_set_num_threads(1), as kernels/softmax/blas.c).
 * The same sgemm call computes each output element whatever the thread count,
 * so every layer here, the attention block included when its kernel is
 * ATTN_DETERMINISTIC, gives bitwise identical results for any thread count
 * (tests: rowwise_layers_are_bitwise_independent_of_the_thread_count,
 * attn_block_is_bitwise_independent_of_the_thread_count). The alternative,
 * sgemm outside OpenMP with OpenBLAS's own threads, was rejected: its pthreads
 * compete with the kernels' OpenMP teams, and its results differed between 1
 * and 2 threads when tried. Small layers (fewer than 64 rows, 64 outputs) run
 * on one thread. Layers that read one input (the q, k, v projections:
 * nn_dense_forward_n / nn_dense_backward_n) and the MLP share one region of
 * those same tasks (models/dense_tiles.h), so fusing them changes no bit.
 * Do not call these functions from inside an OpenMP region.
 *
 * Errors: functions that can fail return 0 or a negative ATTN_E* code with a
 * message recorded through attn_fail (common/attn_error.h). */
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include "attn_lowp.h"
#include "kernels/core/attn.h"
#include "common/rng.h"

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- blobs */

/* A cursor over one float buffer (parameters: data + grad of the same layout;
 * activations: grad = NULL). Every tensor starts on a 64-byte boundary
 * (offsets rounded up to 16 floats). data == NULL: counting mode. */
typedef struct {
    float *data, *grad;
    size_t used, cap;          /* floats; cap is ignored in counting mode */
} nn_blob;

/* Takes n floats: *p = data + off, *g = grad + off (NULL in counting mode or
 * when grad is NULL); returns off. Fails (returns SIZE_MAX, records a message)
 * when the blob is too small. */
size_t nn_blob_take(nn_blob *b, size_t n, float **p, float **g);

/* Zeroes n <= 8 buffers of bytes[i] bytes in one OpenMP loop over 64 KiB blocks. */
void nn_zero_n(float *const *x, const size_t *bytes, int n, int threads);

/* x[i] ~ N(0, std^2) from the rng (attn_rng_normal). */
void nn_fill_normal(float *x, size_t n, float std, attn_rng *r);

/* ---------------------------------------------------------------- dense */

/* y = x W^T + b, W is (out, in) as in PyTorch's nn.Linear. */
typedef struct {
    int64_t in, out;
    int bias;
    float *w, *b, *dw, *db;    /* b, db NULL without bias */
    size_t off_w, off_b;       /* offsets in the blob (for the double references) */
} nn_dense;

size_t nn_dense_param_count(int64_t in, int64_t out, int bias);
int nn_dense_bind(nn_dense *l, int64_t in, int64_t out, int bias, nn_blob *blob);
/* W ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's nn.Linear default), b = 0. */
void nn_dense_init(const nn_dense *l, attn_rng *r);

// x is (rows, in), y is (rows, out)
void nn_dense_forward(const nn_dense *l, const float *x, float *y, int64_t rows, int threads);
// dy is (rows, out); dx (rows, in) += dy W; dW += dy^T x; db += sum_rows dy
void nn_dense_backward(const nn_dense *l, const float *x, const float *dy, float *dx, int64_t rows,
                       int threads);
/* n <= NN_DENSE_MAX_FUSED layers reading the same input x (the q, k, v
 * projections) in one OpenMP loop instead of n: each row tile of x passes
 * through the layers in turn while in cache. The bits of n separate calls. */
#define NN_DENSE_MAX_FUSED 4
void nn_dense_forward_n(const nn_dense *const *l, int n, const float *x, float *const *y, int64_t rows, int threads);
/* ... and their backward: the dW tasks of every layer, then each dx tile
 * summing dy[i] W_i over the layers in order, into dx (accumulate = 1: +=,
 * as n nn_dense_backward calls; 0: =, the bits of those calls on a zeroed
 * dx, without zeroing it first). */
void nn_dense_backward_n(const nn_dense *const *l, int n, const float *x, const float *const *dy, float *dx,
                         int accumulate, int64_t rows, int threads);
/* P, dP: double blobs with the layout of the fp32 blob l was bound to. */
void nn_dense_forward_ref(const nn_dense *l, const double *P, const double *x, double *y, int64_t rows);
void nn_dense_backward_ref(const nn_dense *l, const double *P, const double *x, const double *dy,
                           double *dx, double *dP, int64_t rows);

/* ---------------------------------------------------------------- embeddings */

/* Token embedding wte (V, C) plus optional learned positions wpe (Nmax, C). */
typedef struct {
    int64_t V, C, Nmax;        /* Nmax = 0: no learned positions */
    float *wte, *wpe, *dwte, *dwpe;
    size_t off_wte, off_wpe;
} nn_embed;

size_t nn_embed_param_count(int64_t V, int64_t C, int64_t Nmax);
int nn_embed_bind(nn_embed *l, int64_t V, int64_t C, int64_t Nmax, nn_blob *blob);
/* N(0, 0.02^2) as GPT-2. */
void nn_embed_init(const nn_embed *l, attn_rng *r);

// tok is (B,N) in [0,V); out is (B,N,C) = wte[tok] (+ wpe[n]); fails on a bad token or N > Nmax
int nn_embed_forward(const nn_embed *l, const int32_t *tok, float *out, int64_t B, int64_t N, int threads);
// dout is (B,N,C): dwte[tok] += dout, dwpe[n] += sum_b dout
int nn_embed_backward(const nn_embed *l, const int32_t *tok, const float *dout, int64_t B, int64_t N,
                      int threads);
int nn_embed_forward_ref(const nn_embed *l, const double *P, const int32_t *tok, double *out, int64_t B,
                         int64_t N);
int nn_embed_backward_ref(const nn_embed *l, const int32_t *tok, const double *dout, double *dP, int64_t B,
                          int64_t N);

/* Sinusoidal positions (Vaswani et al. 2017, section 3.5), no parameters:
 * x (B,N,C) += PE(n, c); the backward is the identity. */
void nn_sinusoid_add(float *x, int64_t B, int64_t N, int64_t C, int threads);
void nn_sinusoid_add_ref(double *x, int64_t B, int64_t N, int64_t C);

/* Rotary positions (Su et al. 2021, RoFormer eq. 34): the pair (x[2i],
 * x[2i+1]) of every head rotates by n * base^(-2i/D). D must be even.
 * cs is the (N, D/2, 2) cos/sin table, nn_rope_table_floats(N, D) floats. */
size_t nn_rope_table_floats(int64_t N, int64_t D);
void nn_rope_table(float *cs, int64_t N, int64_t D, double base);
// x is (B,N,H,D), rotated in place
void nn_rope_forward(float *x, const float *cs, int64_t B, int64_t N, int64_t H, int64_t D, int threads);
// dx is (B,N,H,D): in place, the transposed rotation (dx <- R^T dx)
void nn_rope_backward(float *dx, const float *cs, int64_t B, int64_t N, int64_t H, int64_t D, int threads);
// x, y are (B,N,H,D); backward: dx += R^T dy
void nn_rope_forward_ref(const double *x, double *y, int64_t B, int64_t N, int64_t H, int64_t D, double base);
void nn_rope_backward_ref(const double *dy, double *dx, int64_t B, int64_t N, int64_t H, int64_t D,
                          double base);

/* ---------------------------------------------------------------- norms */

/* LayerNorm (Ba et al. 2016): y = (x - mean) rstd g + b; RMSNorm (Zhang and
 * Sennrich 2019): y = x rstd g with rstd = 1/sqrt(mean(x^2) + eps). */
typedef struct {
    int64_t C;
    int rms;                   /* 1: RMSNorm (no bias, no mean) */
    float eps;                 /* 1e-5 */
    float *g, *b, *dg, *db;
    size_t off_g, off_b;
} nn_norm;

size_t nn_norm_param_count(int64_t C, int rms);
int nn_norm_bind(nn_norm *l, int64_t C, int rms, nn_blob *blob);
void nn_norm_init(const nn_norm *l);   /* g = 1, b = 0 */

// x, y are (rows,C); mean, rstd are (rows) caches (mean unused and may be NULL for RMSNorm)
void nn_norm_forward(const nn_norm *l, const float *x, float *y, float *mean, float *rstd, int64_t rows,
                     int threads);
// dy is (rows,C): dx += ..., dg += ..., db += ...
void nn_norm_backward(const nn_norm *l, const float *x, const float *mean, const float *rstd,
                      const float *dy, float *dx, int64_t rows, int threads);
void nn_norm_forward_ref(const nn_norm *l, const double *P, const double *x, double *y, int64_t rows);
void nn_norm_backward_ref(const nn_norm *l, const double *P, const double *x, const double *dy, double *dx,
                          double *dP, int64_t rows);

/* ---------------------------------------------------------------- GELU and MLP */

/* GELU, tanh form (Hendrycks and Gimpel 2016, eq. in section 2). */
// x, y are (n)
void nn_gelu_forward(const float *x, float *y, int64_t n, int threads);
// dx += gelu'(x) dy
void nn_gelu_backward(const float *x, const float *dy, float *dx, int64_t n, int threads);
void nn_gelu_forward_ref(const double *x, double *y, int64_t n);
void nn_gelu_backward_ref(const double *x, const double *dy, double *dx, int64_t n);

/* The MLP block: fc (C -> F), GELU, proj (F -> C). */
typedef struct {
    int64_t C, F;
    nn_dense fc, proj;
} nn_mlp;

size_t nn_mlp_param_count(int64_t C, int64_t F);
int nn_mlp_bind(nn_mlp *l, int64_t C, int64_t F, nn_blob *blob);
void nn_mlp_init(const nn_mlp *l, attn_rng *r);

// x is (rows,C); h (pre-GELU) and a (post-GELU) are (rows,F) caches; y is (rows,C)
void nn_mlp_forward(const nn_mlp *l, const float *x, float *h, float *a, float *y, int64_t rows, int threads);
// dy is (rows,C); scratch is (rows,F) (overwritten); dx (rows,C) += ...
void nn_mlp_backward(const nn_mlp *l, const float *x, const float *h, const float *a, const float *dy,
                     float *scratch, float *dx, int64_t rows, int threads);
void nn_mlp_forward_ref(const nn_mlp *l, const double *P, const double *x, double *y, int64_t rows);
void nn_mlp_backward_ref(const nn_mlp *l, const double *P, const double *x, const double *dy, double *dx,
                         double *dP, int64_t rows);

/* ---------------------------------------------------------------- gate */

/* The GRU-type gate GTrXL (Parisotto et al. 2019) puts in place of a residual
 * add y = x + s: with u = ReLU(s),
 *     r = sigma(W_r u + U_r x),  z = sigma(W_z u + U_z x - b_g),
 *     h = tanh(W_g u + U_g (r * x)),  y = (1 - z) * x + z * h.
 * -b_g is the bias of the W_z map, initialised to -NN_GATE_BIAS so every
 * block starts near the identity (z ~ 0.12); the other maps have no bias. */
#define NN_GATE_BIAS 2.0f
typedef struct {
    int64_t C;
    nn_dense wr, ur, wz, uz, wg, ug;
} nn_gate;

/* What the backward reads, each (rows, C): u = ReLU(s), r, z, r * x, h. */
typedef struct {
    float *u, *r, *z, *rx, *h;
} nn_gate_acts;

int nn_gate_bind(nn_gate *l, int64_t C, nn_blob *blob);
void nn_gate_init(const nn_gate *l, attn_rng *r);
/* Takes the five activation buffers of one application from buf. */
int nn_gate_acts_bind(const nn_gate *l, int64_t rows, nn_blob *buf, nn_gate_acts *a);

// x, s, y, tmp are (rows,C); tmp is overwritten; y may not alias x or s
void nn_gate_forward(const nn_gate *l, const float *x, const float *s, nn_gate_acts *a, float *tmp, float *y,
                     int64_t rows, int threads);
// dy is (rows,C); dx and ds (rows,C) are OVERWRITTEN with the gradients at x
// and at s (through the ReLU); t1, t2 (rows,C) are scratch
void nn_gate_backward(const nn_gate *l, const float *x, const nn_gate_acts *a, const float *dy, float *dx,
                      float *ds, float *t1, float *t2, int64_t rows, int threads);
int nn_gate_forward_ref(const nn_gate *l, const double *P, const double *x, const double *s, double *y,
                        int64_t rows);

/* ---------------------------------------------------------------- dropout */

/* Inverted dropout (Srivastava et al. 2014) with a counter-based mask: element
 * i is dropped iff splitmix(key(seed, step, layer) ^ i) < p 2^64, so the mask
 * depends on (seed, step, layer, i) only, never on the thread count, and the
 * backward recomputes exactly the forward's mask. p in [0, 1); p = 0 is the
 * identity. */
typedef struct {
    float p;
    uint64_t seed, step, layer;
} nn_dropout;

/* 1 if element i is kept. */
int nn_dropout_keep(const nn_dropout *d, int64_t i);
// x, y are (n) (y may equal x)
int nn_dropout_forward(const nn_dropout *d, const float *x, float *y, int64_t n, int threads);
// dx += mask dy / (1 - p)
int nn_dropout_backward(const nn_dropout *d, const float *dy, float *dx, int64_t n, int threads);
void nn_dropout_forward_ref(const nn_dropout *d, const double *x, double *y, int64_t n);
void nn_dropout_backward_ref(const nn_dropout *d, const double *dy, double *dx, int64_t n);

/* ---------------------------------------------------------------- pooling */

// x is (B,N,C); valid is (B,N) with 1 = real token, 0 = padding (NULL: all valid); out is (B,C)
// out[b] = mean of the valid rows of x[b] (0 if there are none)
void nn_meanpool_forward(const float *x, const uint8_t *valid, float *out, int64_t B, int64_t N, int64_t C,
                         int threads);
// dout is (B,C); dx (B,N,C) += dout / count on valid rows
void nn_meanpool_backward(const uint8_t *valid, const float *dout, float *dx, int64_t B, int64_t N, int64_t C,
                          int threads);
void nn_meanpool_forward_ref(const double *x, const uint8_t *valid, double *out, int64_t B, int64_t N,
                             int64_t C);
void nn_meanpool_backward_ref(const uint8_t *valid, const double *dout, double *dx, int64_t B, int64_t N,
                              int64_t C);
// CLS pooling: out[b] = x[b, pos]; backward dx[b, pos] += dout[b]
void nn_clspool_forward(const float *x, float *out, int64_t B, int64_t N, int64_t C, int64_t pos);
void nn_clspool_backward(const float *dout, float *dx, int64_t B, int64_t N, int64_t C, int64_t pos);
void nn_clspool_forward_ref(const double *x, double *out, int64_t B, int64_t N, int64_t C, int64_t pos);
void nn_clspool_backward_ref(const double *dout, double *dx, int64_t B, int64_t N, int64_t C, int64_t pos);

/* ---------------------------------------------------------------- losses */

#define NN_IGNORE_INDEX (-100)

/* Softmax cross-entropy, mean over the rows whose target is not
 * NN_IGNORE_INDEX. logits and dlogits are (rows,K), target and row_loss (rows).
 * Writes dlogits = (softmax - onehot) / n_valid (0 on ignored rows; dlogits
 * may equal logits: computed in place), row_loss (0 on ignored rows),
 * *loss = sum(row_loss) / n_valid (summed in row order) and *n_valid.
 * n_valid = 0 gives loss 0 and dlogits 0. A target outside [0,K) that is not
 * the ignore index fails. nn_xent_classes is the classifier head (every
 * target must be a class); nn_xent_tokens the LM head (ignore index allowed). */
int nn_xent_tokens(const float *logits, const int32_t *target, int64_t rows, int64_t K, float *dlogits,
                   float *row_loss, double *loss, int64_t *n_valid, int threads);
int nn_xent_classes(const float *logits, const int32_t *target, int64_t rows, int64_t K, float *dlogits,
                    float *row_loss, double *loss, int threads);
int nn_xent_ref(const double *logits, const int32_t *target, int64_t rows, int64_t K, double *dlogits,
                double *loss);
/* Rows whose argmax (first on ties) equals the target, ignored rows excluded. */
int64_t nn_xent_correct(const float *logits, const int32_t *target, int64_t rows, int64_t K, int threads);

/* ---------------------------------------------------------------- short convolution */

/* Depthwise causal 1-D convolution of width K over the sequence, then SiLU
 * (flash-linear-attention's ShortConvolution, as DeltaNet / Based / Zoology
 * put after the q, k, v projections):
 *   z[b,t,c] = sum_{j<K} w[c,j] x[b,t-K+1+j,c] (zero before t = 0), y = silu(z).
 * w is (C, K), PyTorch's Conv1d (C, 1, K) layout: w[c,K-1] reads the current
 * token. No bias. Causal: y[t] depends on x[t-K+1..t] only. */
typedef struct {
    int64_t C, K;
    float *w, *dw;
    size_t off_w;
} nn_short_conv;

#define NN_SHORT_CONV_MAX 64   /* widest short convolution a model accepts (published: 4) */

size_t nn_short_conv_param_count(int64_t C, int64_t K);
int nn_short_conv_bind(nn_short_conv *l, int64_t C, int64_t K, nn_blob *blob);
/* U(-1/sqrt(K), 1/sqrt(K)), PyTorch's Conv1d default for a depthwise conv. */
void nn_short_conv_init(const nn_short_conv *l, attn_rng *r);

// x, y are (B,N,C); z (B,N,C) is the pre-activation cache the backward reads
void nn_short_conv_forward(const nn_short_conv *l, const float *x, float *z, float *y, int64_t B, int64_t N,
                           int threads);
// dy is (B,N,C); dz (B,N,C) is overwritten with dL/dz and may equal dy; dx (B,N,C) += ... (may be NULL); dw += ...
void nn_short_conv_backward(const nn_short_conv *l, const float *x, const float *z, const float *dy, float *dz,
                            float *dx, int64_t B, int64_t N, int threads);
void nn_short_conv_forward_ref(const nn_short_conv *l, const double *P, const double *x, double *y, int64_t B,
                               int64_t N);
void nn_short_conv_backward_ref(const nn_short_conv *l, const double *P, const double *x, const double *dy,
                                double *dx, double *dP, int64_t B, int64_t N);

/* ---------------------------------------------------------------- attention block */

/* The attention sub-layer: x (B,N,C) -> Q (H heads), K, V (H_kv heads),
 * head dim D = C/H, optional RoPE on Q and K, then ANY registry kernel through
 * attn_kernel (tensors are views of the projection outputs stored (B,N,H,D):
 * sb = N H D, sh = D, sn = H D, so nothing is transposed), then the output
 * projection (H D -> C). Kernels declaring extra inputs get small projections
 * of x: beta = sigmoid(x W_b + b_b) per kv-head (ATTN_IN_BETA); log-gate =
 * logsigmoid(x W_g + b_g) / 16 per kv-head (ATTN_IN_GATE) or per key channel
 * (ATTN_IN_GATE_VEC), as Gated Linear Attention (Yang et al. 2024: decay
 * sigmoid(.)^(1/16)); raw logits = x W_r + b_r per kv-head (ATTN_IN_ROUTER:
 * Sparse State Expansion's router, Titans' momentum gate); a kernel's learned weights (ATTN_IN_WEIGHTS, e.g.
 * GAM's slot bank, conv taps and gates) are parameters of the block, drawn by
 * the kernel's init_weights. short_conv = K > 0 puts a short convolution + SiLU
 * (nn_short_conv) on each of q, k and v after its projection and before RoPE
 * and the kernel, for any kernel (DeltaNet / Zoology's setup). One nn_attn may be applied several times per step
 * (weight-shared / looped models) with one nn_attn_acts per application, for
 * kernels whose backward reads only the attn_io tensors (q, k, v, o, lse,
 * beta, gate) and not state left in the context by the last forward. The
 * struct owns its kernel context after nn_attn_plan: do not copy it. */
typedef struct {
    int64_t C, H, H_kv;
    const attn_kernel *kernel;
    attn_mask mask;            /* e.g. causal or full (zeroed: full) */
    param_bag params;        /* kernel parameters */
    int rope;                  /* 1: RoPE on Q and K */
    double rope_base;          /* 0: 10000 */
    int eval_only;             /* 1: allow a kernel without backward (forward only) */
    int short_conv;            /* K > 0: short causal conv of width K + SiLU on q, k, v; 0: none */
    int64_t max_len;           /* longest sequence the block serves (0: 1): the N at which the kernel's
                                  own inputs are sized (a synthesizer's learned logits are L x L) */
    attn_kv_dtype kv_dtype;    /* evaluation only: K and V are stored in this format (kv_format.h) after
                                  their projection and RoPE and the kernel reads that cache, as a decode
                                  kernel reads a quantized cache; fp32: the kernel reads K and V as computed */
    attn_dtype dtype;          /* the kernel's operand type (dtype.h, attn_lowp.h): Q, K, V (O, dO in a
                                  backward) rounded to it before the call, O (dQ, dK, dV) widened back after */
    uint64_t mem_budget;       /* evaluation only: the kernel's working memory at most this many bytes
                                  (kernels/core/mem_budget.h: it chooses its sizes at the plan); 0: none */
} nn_attn_cfg;

typedef struct {
    nn_attn_cfg cfg;
    int64_t D, gate_cols;      /* gate_cols: 0, 1 or D */
    nn_dense q, k, v, o, beta, gate;   /* beta/gate bound only if the kernel reads them */
    nn_short_conv cq, ck, cv;  /* bound only with cfg.short_conv > 0 */
    nn_dense router;           /* ATTN_IN_ROUTER: raw logits x W_r + b_r, router_cols per kv-head */
    int64_t router_cols, w_cols;
    float *w, *dw;             /* ATTN_IN_WEIGHTS: the kernel's learned weights, (H, w_cols) */
    size_t off_w;
    /* set by nn_attn_plan for one (B, N, threads) */
    int64_t B, N;
    int threads, planned;
    attn_ctx ctx;
    float *rope_cs;
    attn_kv_cache kc, vc;      /* with cfg.kv_dtype: K and V in that format, made at the first forward */
    nn_attn_lowp lowp;         /* with cfg.dtype: the 16-bit operands, allocated with the plan */
    /* The current batch's sequence lengths (B; NULL: no padding), set by the
     * model before forward and backward: a PADDED kernel (attn_args.seq_len)
     * then masks the padding keys; any other kernel attends to them. */
    const int64_t *seq_len;
} nn_attn;

/* Forward caches, (B,N,...) each; lse is (B,H,N). zb/beta and zg/gate are
 * pre- and post-activation of the extra inputs (NULL when not used). With a
 * short convolution, qp/kp/vp are the projection outputs and zq/zk/zv the
 * convolution outputs before SiLU (NULL without). */
typedef struct {
    float *q, *k, *v, *o, *lse, *zb, *beta, *zg, *gate, *qp, *kp, *vp, *zq, *zk, *zv;
    float *zr;                 /* router logits (B,N,H_kv,router_cols) */
} nn_attn_acts;

/* Backward scratch, overwritten by nn_attn_backward (can be shared by layers).
 * dpre: gradient at a projection output under a short convolution (NULL without). */
typedef struct {
    float *dq, *dk, *dv, *d_o, *dbeta, *dgate, *dpre;
    float *drouter, *dw;       /* the kernel's router-logit and weight gradients (NULL when unused) */
} nn_attn_scratch;

/* Validates the config against the kernel (trainable unless eval_only,
 * C % H == 0, H % H_kv == 0, even D for RoPE, not a one-query kernel,
 * 0 <= short_conv <= NN_SHORT_CONV_MAX) and
 * binds the parameters. */
int nn_attn_bind(nn_attn *l, const nn_attn_cfg *cfg, nn_blob *blob);
size_t nn_attn_param_count(const nn_attn_cfg *cfg);   /* SIZE_MAX if the config is invalid */
void nn_attn_init(const nn_attn *l, attn_rng *r);
/* Creates the kernel context (backward = !eval_only) and RoPE table for
 * (B, N, threads); call again to change the shape. nn_attn_free releases them. */
int nn_attn_plan(nn_attn *l, int64_t B, int64_t N, int threads);
void nn_attn_free(nn_attn *l);

/* Floats of the caches / scratch for (B, N), and binding them onto a buffer. */
size_t nn_attn_acts_floats(const nn_attn *l, int64_t B, int64_t N);
int nn_attn_acts_bind(const nn_attn *l, int64_t B, int64_t N, nn_blob *buf, nn_attn_acts *a);
size_t nn_attn_scratch_floats(const nn_attn *l, int64_t B, int64_t N);
int nn_attn_scratch_bind(const nn_attn *l, int64_t B, int64_t N, nn_blob *buf, nn_attn_scratch *s);

// x is (B,N,C), y is (B,N,C), shapes as planned
int nn_attn_forward(nn_attn *l, const float *x, const nn_attn_acts *a, float *y);
// dy is (B,N,C); dx (B,N,C) += ..., parameter gradients += ...
int nn_attn_backward(nn_attn *l, const float *x, const nn_attn_acts *a, const float *dy,
                     const nn_attn_scratch *s, float *dx);

/* The kernel's non-gradient update of its learned weights (attn_kernel.
 * train_update: routing's centroid EMA) from the inputs of the planned
 * forward whose activations are a; nothing for other kernels. The model
 * calls it after a training step's backward, once per application. */
int nn_attn_train_update(nn_attn *l, const nn_attn_acts *a);

/* Double references: the softmax oracle (kernels/core/oracle.h) for softmax
 * kernels (ref_forward == NULL), the kernel's own ref_forward otherwise.
 * The backward needs the oracle (ATTN_EUNSUPPORTED for ref_forward kernels:
 * test those by central differences of nn_attn_forward_ref). seq_len (B;
 * NULL: no padding) as nn_attn.seq_len. */
int nn_attn_forward_ref(const nn_attn *l, const double *P, const double *x, double *y, int64_t B, int64_t N,
                        const int64_t *seq_len);
int nn_attn_backward_ref(const nn_attn *l, const double *P, const double *x, const double *dy, double *dx,
                         double *dP, int64_t B, int64_t N, const int64_t *seq_len);

#endif
