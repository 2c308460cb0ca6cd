/* Model variants of the training engine, assembled from the layers
 * of layers.h the way llm.c assembles GPT-2: one parameter blob, one gradient
 * blob, activations planned once per (batch, length), explicit forward and
 * backward over pre-norm residual blocks
 *     x <- x + drop(attn(norm1(x)));  x <- x + drop(mlp(norm2(x)))
 * (with gating gtrxl each add is GTrXL's gate x <- g(x, ReLU(drop(...))),
 * layers.h nn_gate) with any registry kernel (with a backward, to train) in
 * each block.
 *
 * Heads: "classify" (CLS or mean pooling, then a dense layer; LRA), "twotower"
 * (both documents through the one encoder, pooled to u and v, then
 * [u, v, u*v, u-v] -> dense+ReLU -> dense+ReLU -> dense(2): the LRA retrieval
 * head), "lm" (a causal LM head over the vocabulary, evaluated only at the
 * positions whose target is not the ignore index: MQAR scores 16 of 256).
 * Variants: `encoder`, `twotower`, `lm` name the head; `hybrid` gives every
 * layer its own kernel (kernels[] per layer, e.g. linear + flash-window as
 * Based); `looped` runs the layer stack `loops` times with shared weights
 * (Universal Transformer, Dehghani et al. 2019), with halting act each
 * position stopping on its own (adaptive computation time, halt.h); `folded` runs an lm over
 * segments of --fold-segment tokens with a per-layer buffer of --fold-buffer
 * states carried from segment to segment (models/folded.c); `hmt` runs an lm over
 * segments with memory embeddings carried between them and recalled by
 * attention (Hierarchical Memory Transformer, models/hmt.c). Padding (right padding,
 * per-example lengths): pooling ignores padded positions; a kernel that masks
 * a padded batch (ATTN_PADDED: flash, linear, sigmoid) never reads the padding keys,
 * as LRA masks them; any other non-causal kernel attends to padded tokens as
 * ordinary tokens (nn_model_padding says which; causal layers never see the
 * padding, which follows the sequence). */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include "layers.h"

#include "common/options.h"

#define NN_MAX_LAYERS 16
#define NN_MAX_LOOPS 64
/* d_model's default and range, for its option row and a config's grid of widths. */
#define NN_D_MODEL_RANGE .def = 64, .lo = 1, .hi = 1 << 16

/* NN_HEAD_REGRESS: float inputs through a linear read-in (in_dim -> d_model)
 * added to the embedding of token 0 (a learned bias) and the positions, one
 * linear read-out (d_model -> 1) at the scored positions, mean squared error
 * (in-context regression, docs/icl.md); causal like the lm head. */
typedef enum { NN_HEAD_CLASSIFY = 0, NN_HEAD_TWOTOWER, NN_HEAD_LM, NN_HEAD_REGRESS } nn_head_kind;

/* The variant (the CSV "model"); NN_VARIANT_TASK: not chosen yet, the task's
 * head decides (train_run fills it in before the model is built). */
typedef enum {
    NN_VARIANT_TASK = 0, NN_VARIANT_ENCODER, NN_VARIANT_TWOTOWER, NN_VARIANT_LM, NN_VARIANT_HYBRID, NN_VARIANT_LOOPED,
    NN_VARIANT_FOLDED, NN_VARIANT_HMT
} nn_variant;
typedef enum { NN_POS_LEARNED = 0, NN_POS_SINUSOID, NN_POS_ROPE, NN_POS_NONE } nn_pos_kind;
typedef enum { NN_POOL_CLS = 0, NN_POOL_MEAN } nn_pool_kind;
/* What joins a sub-layer's output to the stream: the residual add, or GTrXL's
 * GRU-type gate (layers.h nn_gate). */
typedef enum { NN_GATING_RESIDUAL = 0, NN_GATING_GTRXL } nn_gating_kind;
/* How many times the looped model applies its stack to a position: always
 * `loops`, or adaptive computation time (models/halt.c). */
typedef enum { NN_HALTING_NONE = 0, NN_HALTING_ACT } nn_halting_kind;
#define NN_PONDER_COST_DEFAULT 0.01f

/* Names in enum order (NULL-terminated); nn_variant_names[NN_VARIANT_TASK] is "". */
extern const char *const nn_variant_names[];
extern const char *const nn_variant_help[]; /* one line per variant, for 'attnbench list models' */
extern const char *const nn_pos_names[];
extern const char *const nn_pool_names[];
extern const char *const nn_gating_names[];
extern const char *const nn_halting_names[];

typedef struct {
    nn_variant variant;
    nn_head_kind head;
    int64_t vocab, n_classes, max_len;
    int64_t in_dim;            /* regress head: floats per input position (the read-in's width); else 0 */
    int64_t layers, d_model, heads, heads_kv, mlp;   /* mlp = 0: no MLP sub-layer (Zoology's Identity) */
    int n_kernels;             /* 1: every layer uses kernels[0]; else one per layer */
    char kernels[NN_MAX_LAYERS][32];
    param_bag kparams;       /* parameters of every layer's kernel */
    int causal;                /* causal attention mask (the lm head requires it) */
    nn_pos_kind pos;
    nn_pool_kind pool;         /* cls (position 0) | mean (over non-padded positions) */
    int rms;                   /* RMSNorm instead of LayerNorm */
    float dropout;             /* on the attention and MLP outputs, training only */
    nn_gating_kind gating;     /* residual: x + s; gtrxl: the gate g(x, ReLU(s)) after each sub-layer */
    int loops;                 /* >= 1; with halting act the most steps a position takes */
    nn_halting_kind halting;   /* act: the looped model halts per position (models/halt.c) */
    float ponder_cost;         /* act: tau, the weight of the mean ponder N + R in the loss */
    int64_t fold_segment;      /* folded: tokens per segment (C) */
    int64_t fold_buffer;       /* folded: states each block application keeps between segments (m) */
    int64_t hmt_segment;       /* hmt: tokens per segment (L) */
    int64_t hmt_summary;       /* hmt: tokens of a segment its summary query reads (j) */
    int64_t hmt_sensory;       /* hmt: tokens of the previous segment prepended (k) */
    int64_t hmt_memories;      /* hmt: memory embeddings the recall searches (N_m) */
    int64_t hmt_unroll;        /* hmt: segments a loss reaches back (1: memories constant; 2: also the
                                  newest memory's own segment) */
    int64_t tower_mlp;         /* two-tower head width (LRA: the model's mlp dim) */
    int eval_only;             /* kernels without backward allowed (no training) */
    char mask[96];             /* canonical mask spec of every layer in training and evaluation
                                  (LRA's local, sparse, Longformer and BigBird rows); "": full, or
                                  causal for the lm head */
    int has_eval_mask;         /* evaluation only, not saved: eval_mask replaces the mask */
    attn_mask eval_mask;       /* (e.g. sink:n=4,w=64 for a streaming kernel swapped in), parsed
                                  by the harness where the option is read */
    int short_conv;            /* K > 0: short causal conv (width K) + SiLU on q, k, v of every layer
                                  (DeltaNet / Zoology: 4); 0: none */
    attn_kv_dtype eval_kv_dtype; /* evaluation only, not saved: every layer's K and V stored in this
                                  format for the kernel (a decode kernel swapped in reading a quantized
                                  cache); fp32: as computed */
    attn_dtype eval_dtype;     /* evaluation only, not saved: every layer's kernel reads Q, K, V rounded to
                                  this type and writes O in it (a kernel that takes it: flash, linear, gla,
                                  deltanet); fp32: attn_dtype */
    attn_dtype attn_dtype;     /* saved: the kernels' operand type in training and evaluation (attn_lowp.h);
                                  fp32 master weights and optimizer state whatever it is */
    uint64_t eval_mem_budget;  /* evaluation only, not saved: every layer's kernel in the memory-budget mode
                                  with this many bytes of working memory (docs/memory-budget.md); 0: none */
} nn_model_cfg;

/* The model's options (models/model_opts.c), in the order of its canonical
 * JSON: the command line and configs set them, checkpoints and job_ids
 * record them. Adding a model option = one row here + the code using it. */
extern const opt_def nn_model_opts[];

/* The mask every layer attends with: the evaluation mask, else the model's
 * mask, else full (causal for the lm head). */
attn_mask nn_model_mask(const nn_model_cfg *c);

/* Every option at its default: 2 layers, d 64, 2 heads, MLP 128, learned
 * positions, CLS pooling, flash in every layer. */
void nn_model_cfg_defaults(nn_model_cfg *c);

typedef struct {
    nn_norm n1, n2;
    nn_attn attn;
    nn_mlp mlp;
    nn_gate g1, g2;            /* gtrxl: after the attention and after the MLP */
} nn_block;

/* One batch: tokens (B,N) and, per head, labels (B) / tokens2 (B,N) /
 * targets (B,N); lengths (B) of non-padded tokens (NULL: all N). */
typedef struct {
    int64_t B;
    const int32_t *tokens, *tokens2, *labels, *targets, *lengths, *lengths2;
    const float *inputs, *values;  /* regress head: (B,N,in_dim) and (B,N) */
    const uint8_t *scored;         /* regress head: (B,N), 1 where the value is a target */
} nn_batch;

/* Buffer rows of the folded variant (models/folded.c), a hook on a model run
 * on windows [buffer ; segment]: before block application a, rows
 * [0, valid[w]) of window w are overwritten with in[((a*Bt + w)*m + j)*C]
 * (j the row), constants for the backward (their gradient stops there).
 * out (same layout) or NULL: after application a, the last min(m, length of
 * w) rows of its output on window w, first row first. */
typedef struct {
    int64_t m;
    const int64_t *valid;
    const float *in;
    float *out;
} nn_fold_rows;

/* Injected rows of the hmt variant's window models (models/hmt.c): after
 * the embedding (and sinusoids), row row[w*n + i] of window w (-1: none) is
 * overwritten with in[(w*n + i)*C]; the backward writes the gradient at
 * those inputs into grad (same layout; zero where row is -1) and no
 * gradient flows into the placeholder token's embedding. */
typedef struct {
    int n;
    const int64_t *row;
    const float *in;
    float *grad;
} nn_inject_rows;

typedef struct nn_model {
    nn_model_cfg cfg;
    nn_embed emb;
    nn_block blk[NN_MAX_LAYERS];
    nn_norm nf;
    nn_dense h1, h2, h3;       /* classify: h1; twotower: h1, h2, h3; lm, regress: h1 */
    nn_dense readin;           /* regress: in_dim -> d_model, no bias (token 0's embedding is the bias) */
    nn_dense halt;             /* halting act: the halting unit w.h + b (C -> 1), bound last */
    nn_dense hmt_q, hmt_k;     /* hmt: the recall's query and key maps (C -> C, no bias), bound last */
    float *hmt_prompt, *hmt_dprompt; /* hmt: the learned prompt / memory-token embedding (C) */
    size_t off_hmt_prompt;
    float *params, *grads;
    size_t n_params;
    /* the plan: shapes, activation and gradient buffers (nn_model_plan) */
    int64_t B, N, rows_max;    /* rows_max: scored LM positions per batch */
    int threads, planned;
    void *plan;
    int shared;                /* parameters borrowed from another model (nn_model_init_shared) */
    const nn_fold_rows *fold;  /* a window model of the folded driver: its buffer rows; else NULL */
    void *folded;              /* a folded model: its driver (window models, buffers); else NULL */
    const nn_inject_rows *inject; /* a window model of the hmt driver: its injected rows; else NULL */
    void *hmt;                 /* an hmt model: its driver (window models, memories); else NULL */
    int keep_acts;             /* backward leaves the forward's activations for nn_model_backward_hidden */
} nn_model;

/* Validates the config (unknown kernel, a kernel without backward unless
 * eval_only, shapes), binds every layer onto one parameter blob and one
 * gradient blob, and initialises the weights from `seed`. */
int nn_model_init(nn_model *m, const nn_model_cfg *cfg, uint64_t seed);
void nn_model_free(nn_model *m);
/* A second model of owner's config on owner's parameter and gradient blobs
 * (not copied: nn_model_free leaves them to the owner); plan it for its own
 * shapes. */
int nn_model_init_shared(nn_model *m, const nn_model *owner);

/* Plans (B, N) batches: activations, kernel contexts, head buffers for up to
 * rows_max scored LM positions per batch (ignored for other heads). */
int nn_model_plan(nn_model *m, int64_t B, int64_t N, int64_t rows_max, int threads);

/* Forward on a batch (b->B <= planned B): *loss (mean over the batch's
 * examples, or over its scored positions for the lm head), *correct and
 * *scored (argmax hits and counted predictions). pred (B,N) for the lm head
 * (argmax at scored positions, -1 elsewhere) or (B) for the others, may be
 * NULL. training = 1 applies dropout with (step) and keeps what backward needs. */
int nn_model_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, double *loss, int64_t *correct,
                     int64_t *scored, int32_t *pred);

/* The queries, keys and values block application `app` (layer l of loop r
 * is r * layers + l) fed its kernel in the last forward, after RoPE and any
 * short convolution: views [Bt, H, N, D] and [Bt, H_kv, N, D] into the
 * plan's activations (valid until the next forward or plan). */
int nn_model_attn_inputs(const nn_model *m, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v);
/* The block applications the last forward ran: layers * loops, or fewer when
 * halting act stopped once every position had halted. */
int64_t nn_model_applications(const nn_model *m);

/* The encoder alone (no head, no dropout) on b: *hidden points at the
 * final norm's output (b->B, N, d_model), valid until the next forward. */
int nn_model_encode(nn_model *m, const nn_batch *b, const float **hidden);

/* The encoder alone on b (training = 1: with dropout at `step`, kept for
 * nn_model_backward_hidden); *hidden as nn_model_encode. */
int nn_model_hidden_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, const float **hidden);
/* Backward of the last training nn_model_hidden_forward from dhidden, the
 * gradient at the final norm's output (B, N, d_model); ACCUMULATES into
 * m->grads. With keep_acts, also after nn_model_backward of the same forward
 * (the hmt driver's second backward); updates = 0 then skips the
 * non-gradient weight updates (routing's centroids) the first one made. */
int nn_model_backward_hidden(nn_model *m, const float *dhidden, uint64_t step, int updates);

/* Backward of the last training forward; ACCUMULATES into m->grads, scaled by
 * `scale` (1/k for k accumulated micro-batches). */
int nn_model_backward(nn_model *m, const nn_batch *b, uint64_t step, float scale);

/* The regress head's predictions of the last forward, one per scored
 * position in (example, position) order; *n their count. NULL for other heads. */
const float *nn_model_regress_out(const nn_model *m, int64_t *n);

/* Offsets of the parameter tensors for checkpoints and AdamW's decay ranges:
 * norms, biases and embeddings are not decayed. Fills at most max entries;
 * returns the count (or the count needed when names is NULL). */
typedef struct {
    char name[48];
    size_t offset, count;
    int64_t rows, cols;
    int decay;
} nn_param_info;
int nn_model_params(const nn_model *m, nn_param_info *info, int max);

/* Halting act, of the last forward: the steps N the non-padded positions
 * took (without the remainder), their mean, least and most, and how close a
 * halting decision came to flipping (halt.h nn_act.margin). Zeros and an
 * infinite margin without act. */
typedef struct {
    double mean_steps, margin;
    int min_steps, max_steps;
} nn_halting_stats;
nn_halting_stats nn_model_halting_stats(const nn_model *m);

/* "masked" when no layer sees a padding key (its kernel masks a padded batch,
 * or its mask is causal), else "attended" (results rows say which). */
const char *nn_model_padding(const nn_model_cfg *c);

/* "encoder(L=2,d=128,H=4,mlp=256,pos=learned,pool=cls)[flash]"-style text. */
void nn_model_describe(const nn_model_cfg *c, char *buf, size_t n);

/* ---------------------------------------------------------------- folded (models/folded.c) */

/* Default segment and buffer: a 12-token window, the one Paeng and Kwon's
 * description of folded context names (docs/folded.md). */
#define NN_FOLD_DEFAULT 6
/* Window length of the folded variant: buffer + segment. */
int64_t nn_fold_window(const nn_model_cfg *c);
/* The folded model's driver behind nn_model_plan / forward / backward /
 * attn_inputs (model_run.c dispatches). attn_inputs views the batch pass's
 * windows: S*B of them (window s*B + b: segment s of sequence b), m + C rows. */
int nn_folded_plan(nn_model *m, int64_t B, int64_t N, int64_t rows_max, int threads);
void nn_folded_free(nn_model *m);
int nn_folded_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, double *loss, int64_t *correct,
                      int64_t *scored, int32_t *pred);
int nn_folded_backward(nn_model *m, const nn_batch *b, uint64_t step, float scale);
int nn_folded_attn_inputs(const nn_model *m, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v);

/* Streaming: the carried state of B sequences, (apps, B, fold_buffer,
 * d_model) rows of which the first `valid` per window hold states. */
typedef struct {
    float *rows;
    int64_t valid;
} nn_fold_state;
size_t nn_folded_state_floats(const nn_model *m, int64_t B);
/* One segment of c <= fold_segment tokens (B, c) of the planned B sequences
 * through the folded model (planned by nn_model_plan), updating the state
 * (zeroed, valid 0, before the first); hidden (B, c, d_model): the final norm's
 * output. The batch driver computes its buffers with this step. */
int nn_folded_step(nn_model *m, const int32_t *tokens, int64_t c, nn_fold_state *st, float *hidden);
/* The final norm's output (B, N, d_model) of the batch driver on b. */
int nn_folded_hidden(nn_model *m, const nn_batch *b, float *hidden);

/* ---------------------------------------------------------------- hmt (models/hmt.c) */

/* Defaults: segment 16, summary 8 (half the segment, as the paper), sensory
 * 4, memories 16 (docs/hmt.md says why). */
#define NN_HMT_SEGMENT 16
#define NN_HMT_SUMMARY 8
#define NN_HMT_SENSORY 4
#define NN_HMT_MEMORIES 16
#define NN_HMT_UNROLL 2
/* Rows of the hmt variant's longest window: sensory + segment, + the
 * recalled row and the memory token when N_m > 0 (learned positions cover it). */
int64_t nn_hmt_window(const nn_model_cfg *c);
/* State a stream keeps per sequence: (memories + sensory) * d_model floats. */
size_t nn_hmt_state_floats(const nn_model_cfg *c);
/* The hmt model's driver behind nn_model_plan / forward / backward /
 * attn_inputs (model_run.c dispatches); attn_inputs views the batch pass's
 * augmented windows (S*B of them, window s*B + b: segment s of sequence b). */
int nn_hmt_plan(nn_model *m, int64_t B, int64_t N, int64_t rows_max, int threads);
void nn_hmt_free(nn_model *m);
int nn_hmt_forward(nn_model *m, const nn_batch *b, int training, uint64_t step, double *loss, int64_t *correct,
                   int64_t *scored, int32_t *pred);
int nn_hmt_backward(nn_model *m, const nn_batch *b, uint64_t step, float scale);
int nn_hmt_attn_inputs(const nn_model *m, int64_t app, attn_tensor *q, attn_tensor *k, attn_tensor *v);
/* The final norm's output (B, N, d_model) at the token positions of b. */
int nn_hmt_hidden(nn_model *m, const nn_batch *b, float *hidden);

#endif
