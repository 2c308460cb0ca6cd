/* The kernel interface every attention implementation registers against
 * (docs/kernel-interface.md).
 *
 * Tensors are fp32 [B, H, N, D] with explicit b/h/n strides (d stride 1), so a
 * [B, N, H, D] buffer is a view. Q is [B, H, Nq, D]; K and V are
 * [B, H_kv, Nk, D] and query head h reads KV head h / (H / H_kv) (GQA).
 * O is [B, H, Nq, D]; LSE is contiguous [B, H, Nq], natural log. */
#ifndef ATTN_H
#define ATTN_H

#include "common/alloc.h"
#include "common/attn_error.h"
#include "common/options.h"
#include "common/params.h"
#include "dtype.h"
#include "kv_format.h"
#include "mask.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *data;                 /* element (b,h,n,d) at data[b*sb + h*sh + n*sn + d] */
    int64_t B, H, N, D;
    int64_t sb, sh, sn;
} attn_tensor;

typedef struct {
    double *data;
    int64_t B, H, N, D;
    int64_t sb, sh, sn;
} attn_tensor_f64;

static inline float *attn_at(const attn_tensor *t, int64_t b, int64_t h, int64_t n)
{
    return t->data + b * t->sb + h * t->sh + n * t->sn;
}

static inline double *attn_at64(const attn_tensor_f64 *t, int64_t b, int64_t h, int64_t n)
{
    return t->data + b * t->sb + h * t->sh + n * t->sn;
}

/* Capability flags (docs/kernel-interface.md). */
enum {
    ATTN_EXACT = 1u << 0,        /* equals softmax attention up to rounding */
    ATTN_APPROX = 1u << 1,       /* reports fidelity against the oracle */
    ATTN_CAUSAL = 1u << 2,       /* supports causal masking */
    ATTN_TRAINABLE = 1u << 3,    /* has a backward */
    ATTN_DECODE = 1u << 4,
    ATTN_RECURRENT = 1u << 5,
    ATTN_DISTRIBUTED = 1u << 6,
    ATTN_GQA = 1u << 7,          /* H_kv may be < H */
    ATTN_CROSS = 1u << 8,        /* Nq may differ from Nk */
    ATTN_VARLEN = 1u << 9,
    ATTN_DETERMINISTIC = 1u << 10, /* bitwise identical results for any thread count */
    ATTN_STATEFUL = 1u << 11,
    ATTN_REFERENCE = 1u << 12,   /* a correctness reference, never a benchmark competitor */
    ATTN_DV = 1u << 13,          /* V and O may have Dv != D columns */
    ATTN_ONE_QUERY = 1u << 14,   /* Q is one (learned) row per head, Nq = 1, and O has
                                    Nk rows: the output at every key position (Aaren) */
    ATTN_PADDED = 1u << 15,      /* right-padded self-attention batch (attn_args.seq_len) */
    ATTN_ROUTED = 1u << 16,      /* which earlier keys a query attends is chosen from the content
                                    of every row (LSH buckets sorted over the whole sequence):
                                    causal reads no later key or value, but later queries move
                                    the chunk boundaries, so a prefix is not a problem of its
                                    own. Leakage checks perturb later K and V (not Q) and the
                                    bench gate checks whole sequences */
    ATTN_SHARED_QK = 1u << 17,   /* keys are the head's own queries divided by their norm (the
                                    K input is not read, dK = 0) and a query attends its own key
                                    only when it has no other: the fidelity reference is softmax
                                    over those keys without the diagonal */
    ATTN_GROUP_LOCAL = 1u << 18, /* head h's output depends only on the rows of its own GQA
                                    group (its query heads and KV head) and on h's place in
                                    that group: no per-head seed, schedule or weights, no
                                    other group. The bench gate then runs the kernel's own
                                    reference on that one group (H = G, H_kv = 1), not on all
                                    H heads; a registry-wide test checks the claim */
    ATTN_RANKED = 1u << 19,      /* which query rows take the exact path is a ranking over every
                                    row (ProbSparse's top u by a measure from Q and sampled
                                    earlier K): under a causal mask no row's output reads a later
                                    key or value, but later rows compete for the same places, so
                                    a prefix is not a problem of its own. Leakage checks perturb
                                    later V only and the bench gate checks whole sequences */
    ATTN_NO_SCALE = 1u << 20,    /* the math has no score scale (a feature map of raw q and k):
                                    the `scale` parameter every other kernel takes is refused */
};

/* Extra inputs a kernel reads besides Q, K, V (attn_kernel.inputs):
 * per-token gates, router logits and conv weights come in as tensors; the
 * projections producing them belong to the model. Per-token inputs live on
 * the KV side, [B, H_kv, Nk, cols]; the harness fills them with values in
 * range (beta in (0,1), log gates in [-1, 0), router logits U(-2,2)) and, for
 * backward, expects dbeta/dgate/drouter shaped the same. */
enum {
    ATTN_IN_BETA = 1u << 0,      /* io.beta [B,H_kv,Nk,1]: write strength in (0,1) (delta rule) */
    ATTN_IN_GATE = 1u << 1,      /* io.gate [B,H_kv,Nk,1]: log decay <= 0 per token */
    ATTN_IN_GATE_VEC = 1u << 2,  /* io.gate [B,H_kv,Nk,D]: log decay <= 0 per key channel */
    ATTN_IN_ROUTER = 1u << 3,    /* io.router [B,H_kv,Nk,R]: raw logits per token the kernel
                                    interprets, R = kernel->input_cols(a, ATTN_IN_ROUTER)
                                    (SSE's router, Titans' momentum gate) */
    ATTN_IN_WEIGHTS = 1u << 4,   /* io.w [1,H,1,W]: learned weights per query head whose
                                    layout the kernel owns, W = input_cols(a, ATTN_IN_WEIGHTS);
                                    g.dw is written (not accumulated). init_weights draws a
                                    model's initial values (GAM: slot bank, conv, gates). W may
                                    be 0 for parameters that need none (nystrom without its
                                    conv skip): io.w is then not read */
};

typedef enum { ATTN_PASS_FWD = 0, ATTN_PASS_BWD = 1 } attn_pass;

/* The problem: shapes, mask, scale, thread count and kernel parameters. */
typedef struct attn_args {
    int64_t B, H, H_kv, Nq, Nk, D;
    int64_t Dv;            /* columns of V and O; 0 means D (attn_dv); != D needs ATTN_DV */
    double scale;          /* softmax scale; 0 means 1/sqrt(D) */
    int64_t q_off, k_off;  /* absolute positions of query 0 and key 0 (see mask.h) */
    attn_mask mask;
    int threads;           /* OpenMP threads the kernel may use (>= 1) */
    int backward;          /* 1 if backward() will be called: init sizes workspace for it */
    param_bag params;
    /* Ragged batch (VARLEN kernels): sequence b has kv_len[b] <= Nk keys, K/V
     * rows 0..kv_len[b]-1 (the rest is padding, never read), and its query
     * positions shift by kv_len[b] - Nk so the alignment to the end of its
     * cache is kept (bottom-right per sequence by default). NULL: all Nk. */
    const int64_t *kv_len;
    /* Right-padded batch (PADDED kernels; self-attention: Nq == Nk, q_off ==
     * k_off): sequence b is rows 0..seq_len[b]-1 of Q, K and V, at unchanged
     * positions; the rows after it are padding, never read (an encoder over
     * examples of different lengths, as LRA masks its padding). Padded query
     * rows get O = 0 and LSE = -inf, their dQ, dK and dV rows are 0. Not
     * together with kv_len. NULL: every row is real. */
    const int64_t *seq_len;
    /* Storage format of the K and V caches a decode kernel reads
     * (kv_format.h): fp32 reads io.k and io.v; any other reads io.kc and
     * io.vc, made from them before the call. Needs the format's bit in
     * attn_kernel.kv_dtypes. */
    attn_kv_dtype kv_dtype;
    /* Storage type of Q, K, V, O (and dO, dQ, dK, dV) (dtype.h): fp32 reads
     * and writes the float tensors of attn_io / attn_grads; bf16 and fp16
     * read and write their 16-bit twins (qh, kh, vh, oh; d_oh, dqh, dkh,
     * dvh), with fp32 accumulation. Needs the type's bit in
     * attn_kernel.dtypes. */
    attn_dtype dtype;
    /* Memory-budget mode (docs/memory-budget.md): the most bytes of working
     * memory (the planned workspace) the context may have; 0: no budget. A
     * kernel without attn_kernel.budget_params refuses a budgeted problem
     * (ATTN_EUNSUPPORTED), and so does any kernel whose plan is above it:
     * attn_budget_fit (mem_budget.h) chooses the sizes that keep it under. */
    uint64_t mem_budget;
} attn_args;

typedef struct {
    attn_tensor q, k, v, o;
    float *lse;            /* [B, H, Nq] contiguous; written by forward, read by backward.
                              Kernels without a normaliser leave it untouched. */
    attn_tensor beta, gate; /* per-token inputs of kernels that declare them (.inputs) */
    attn_tensor router;    /* ATTN_IN_ROUTER */
    attn_tensor w;         /* ATTN_IN_WEIGHTS */
    attn_kv_cache kc, vc;  /* K and V stored in args.kv_dtype (data NULL when fp32) */
    attn_tensor_h qh, kh, vh, oh; /* args.dtype bf16/fp16: the operands the kernel reads and
                                     writes instead of q, k, v, o (data NULL when fp32) */
} attn_io;

typedef struct {
    attn_tensor d_o;       /* input: dL/dO, shaped like O */
    attn_tensor dq, dk, dv; /* outputs, shaped like Q, K, V (dK/dV summed over the GQA group) */
    attn_tensor dbeta, dgate; /* outputs for the declared per-token inputs */
    attn_tensor drouter, dw;
    attn_tensor_h d_oh, dqh, dkh, dvh; /* args.dtype bf16/fp16: instead of d_o, dq, dk, dv */
} attn_grads;

/* The same problem in double, for a kernel's own reference (ref_forward). */
typedef struct {
    attn_tensor_f64 q, k, v, o;
    double *lse;           /* may be NULL: a reference without a normaliser ignores it */
    attn_tensor_f64 beta, gate, router, w;
} attn_io64;

struct attn_kernel;

/* Per-run state. init() fills priv and workspace_bytes; the harness then
 * allocates `workspace` (64-byte aligned) so its size is measured, not hidden. */
typedef struct attn_ctx {
    const struct attn_kernel *kernel;
    attn_args args;
    void *priv;
    size_t workspace_bytes;
    void *workspace;
    /* Bytes of recurrent state (S, z, conv tails, KV ring ...) the kernel's
     * forward keeps for the whole batch, as it actually sizes them in init:
     * tests compare it with state_bytes(args) (whole batch, bytes). 0 for kernels
     * without recurrent state. */
    size_t state_bytes_used;
} attn_ctx;

typedef struct attn_kernel {
    const char *name, *family, *reference;
    unsigned flags;
    uint32_t masks;        /* bitset of ATTN_MASK_BIT(kind) implemented natively */
    const opt_def *params;   /* its parameters (key, type, default, range, help; NULL-terminated), NULL: none */
    const char *notes;       /* conventions worth listing that are not parameters, or NULL */
    int (*init)(attn_ctx *ctx, const attn_args *args);
    int (*forward)(attn_ctx *ctx, const attn_io *io);
    int (*backward)(attn_ctx *ctx, const attn_io *io, const attn_grads *g); /* NULL: not trainable */
    double (*flops)(const attn_args *args, attn_pass pass);   /* analytic, useful work only */
    double (*bytes)(const attn_args *args, attn_pass pass);   /* minimum traffic */
    size_t (*state_bytes)(const attn_args *args);             /* KV or recurrent state */
    void (*fini)(attn_ctx *ctx);                              /* may be NULL */
    unsigned inputs;       /* ATTN_IN_* extra inputs the kernel reads (0: Q, K, V only) */
    /* Plain double-precision reference of the kernel's own math (a
     * non-softmax family is exact against its own reference), the
     * sequential/recurrent form checked by tests, `check` and the bench gate.
     * NULL: the softmax oracle is the reference. Writes io->o (all rows). */
    int (*ref_forward)(const attn_args *args, const attn_io64 *io);
    /* Columns of the ATTN_IN_ROUTER / ATTN_IN_WEIGHTS input (NULL when the
     * kernel reads neither). */
    int64_t (*input_cols)(const attn_args *args, unsigned input);
    /* Initial values of io.w [1,H,1,W] a model trains from (NULL: U(-1,1)/sqrt(D)). */
    void (*init_weights)(const attn_args *args, attn_tensor *w, uint64_t seed);
    /* "k=v k=v" parameters `attnbench check` adds for its gradient shapes, whose
     * reference gradients take two double forwards per input element (GAM's
     * 512-slot bank would make that minutes); NULL: none. */
    const char *check_params;
    /* The bench gate checks a long causal problem on a prefix of it (its first
     * rows are a problem of their own; of a padded batch, of sequence b). A
     * kernel whose result depends on the full length itself (sigmoid's default
     * bias -ln N_kv, or -ln seq_len[b]) pins that here, in the prefix
     * problem's args. NULL: nothing to pin. */
    void (*ref_prefix_args)(const attn_args *full, int64_t b, attn_args *prefix);
    /* Fidelity view of an approximate kernel, from its own double math (NULL:
     * it forms no attention rows and selects no keys). For head (b, h) of the
     * double problem and the n_rows query rows rows[0..n_rows-1] (a sample:
     * the harness never asks for all Nq x Nk at long N), it writes row r's
     * values at P[r*Nk + j] / sel[r*Nk + j] and returns which of the
     * ATTN_VIEW_* bits it wrote (or a negative code):
     * ATTN_VIEW_ROWS: P, the attention over the original keys with O = P V,
     *   only where every row is non-negative and sums to 1 by construction
     *   (feature maps with positive features, softmax over a subset,
     *   mixtures of keys with non-negative weights);
     * ATTN_VIEW_KEYS: sel, 1 for the keys query i may attend by content
     *   selection (LSH buckets, routed clusters, retrieved blocks), for top-k
     *   key recall against the oracle's largest scores.
     * Both buffers are the caller's; a bit not returned leaves its buffer unread. */
    int (*ref_view)(const attn_args *args, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                    int64_t n_rows, double *P, unsigned char *sel);
    /* Non-gradient update of the learned weights io.w (ATTN_IN_WEIGHTS) from a
     * training step's inputs: routing's centroid EMA. The model calls it once
     * per attention application after the step's backward (so forward and
     * backward saw the same weights), writing w in place; the kernel's dw is
     * 0 for such weights and the optimizer neither moves nor decays them.
     * A pure function of (args, io, w); `threads` of args may be used.
     * NULL: every weight is trained by its gradient. */
    int (*train_update)(const attn_args *args, const attn_io *io, attn_tensor *w);
    /* KV cache formats the forward reads besides fp32 (ATTN_KV_BIT of each,
     * kv_format.h); 0: fp32 only, other formats are refused as unsupported. */
    unsigned kv_dtypes;
    /* Operand types (ATTN_DT_BIT, dtype.h) forward and backward take besides
     * fp32; 0: fp32 only, other types are refused as unsupported. */
    unsigned dtypes;
    /* Memory-budget mode: the integer rows of `params` ("br,bc", at most
     * ATTN_BUDGET_KNOBS) that size the workspace and not the result, which
     * attn_budget_fit may set so the planned workspace fits args.mem_budget;
     * with it, the kernel allocates nothing per call outside that workspace.
     * NULL: the kernel does not claim the mode. */
    const char *budget_params;
    /* The values the kernel uses for budget_params when the params do not
     * set them (defaults that depend on the problem), in that order; NULL:
     * each row's .def. */
    void (*budget_defaults)(const attn_args *args, int64_t *values);
} attn_kernel;

/* What attn_kernel.ref_view wrote. */
enum { ATTN_VIEW_ROWS = 1, ATTN_VIEW_KEYS = 2 };

/* Effective softmax scale. */
static inline double attn_scale(const attn_args *a)
{
    return a->scale != 0 ? a->scale : 1.0 / __builtin_sqrt((double)a->D);
}

/* Columns of V and O. */
static inline int64_t attn_dv(const attn_args *a) { return a->Dv ? a->Dv : a->D; }

/* Rows of O: Nq, or Nk for a one-query kernel (ATTN_ONE_QUERY). */
static inline int64_t attn_o_rows(const struct attn_kernel *k, const attn_args *a)
{
    return k && (k->flags & ATTN_ONE_QUERY) ? a->Nk : a->Nq;
}

/* Columns of the gate input (0 when the kernel reads none). */
static inline int64_t attn_gate_cols(const struct attn_kernel *k, const attn_args *a)
{
    return !k ? 0 : (k->inputs & ATTN_IN_GATE_VEC) ? a->D : (k->inputs & ATTN_IN_GATE) ? 1 : 0;
}

/* Columns of the router / weights input (0 when the kernel reads none). */
static inline int64_t attn_router_cols(const struct attn_kernel *k, const attn_args *a)
{
    return k && (k->inputs & ATTN_IN_ROUTER) && k->input_cols ? k->input_cols(a, ATTN_IN_ROUTER) : 0;
}

static inline int64_t attn_weight_cols(const struct attn_kernel *k, const attn_args *a)
{
    return k && (k->inputs & ATTN_IN_WEIGHTS) && k->input_cols ? k->input_cols(a, ATTN_IN_WEIGHTS) : 0;
}

/* Keys and real query rows of sequence b, and the absolute position of its
 * query 0 (a ragged batch shifts it; a padded one does not). */
static inline int64_t attn_kv_len(const attn_args *a, int64_t b)
{
    return a->kv_len ? a->kv_len[b] : a->seq_len ? a->seq_len[b] : a->Nk;
}

static inline int64_t attn_q_len(const attn_args *a, int64_t b)
{
    return a->seq_len ? a->seq_len[b] : a->Nq;
}

static inline int64_t attn_q_off_of(const attn_args *a, int64_t b)
{
    return a->kv_len ? a->q_off + a->kv_len[b] - a->Nk : a->q_off;
}

/* Recurrent kernels under a DOCUMENT mask: 1 if key j starts a sequence (j =
 * 0, or position k_off + j may not see its predecessor), where the state
 * restarts from zero; and the end (exclusive) of the block of at most C keys
 * from j0, cut at Nk and at the next sequence start. */
int attn_key_starts_seq(const attn_args *a, int64_t j);
int64_t attn_key_block_end(const attn_args *a, int64_t j0, int64_t C);

/* End (exclusive) of the run of whole blocks of C keys (as above) from j0
 * spanning at most `most` keys; a longer block is a run of its own. The
 * test-time-trained memories checkpoint their backward per such run. */
int64_t attn_key_chunks_end(const attn_args *a, int64_t j0, int64_t C, int64_t most);

/* Validates shapes and the mask against the kernel's capabilities, with a
 * one-line message naming the offending field. */
int attn_args_validate(const attn_kernel *k, const attn_args *a);

/* Sets defaults: q_off = Nk - Nq, k_off = 0, threads >= 1, scale from the
 * `scale` parameter when given. */
void attn_args_defaults(attn_args *a);

/* Kernel parameters, read through the kernel's table (attn_kernel.params).
 * `scale=X` (X > 0) is the one parameter no table declares: every kernel
 * without ATTN_NO_SCALE takes it as attn_args.scale (attn_args_defaults
 * copies it there). */
#define ATTN_SCALE_PARAM "scale"
/* Fails, naming the kernel, if a parameter is not a row of the table (or
 * `scale`). */
int attn_params_check(const attn_args *a, const char *kernel, const opt_def *rows);
/* Before any job: every parameter of p known to k and in range, `scale`
 * a number > 0 and only for a kernel with a scale; owner names it. */
int attn_params_validate(const attn_kernel *k, const param_bag *p, const char *owner);
/* p's `scale` (0 when absent or not a number > 0). */
double attn_param_scale(const param_bag *p);
/* The integer row `key`: its default when absent. Errors (not an integer,
 * out of the row's range) are recorded and reported through *rc. */
int64_t attn_param_int(const attn_args *a, const opt_def *rows, const char *key, int *rc);
/* The same with a default that depends on the problem (flash's bc on D). */
int64_t attn_param_int_or(const attn_args *a, const opt_def *rows, const char *key, int64_t def, int *rc);
/* The enum row `key`: the index of its name (its default when absent). */
int attn_param_enum(const attn_args *a, const opt_def *rows, const char *key, int *rc);
/* Appends "k=v" for every OPT_RECORDED row of k's table that `given` does not
 * set, with its default (the seed of a random draw a result must name), each
 * preceded by `sep` unless it is the first item of buf. Returns the length of buf. */
size_t attn_params_recorded_text(const attn_kernel *k, const param_bag *given, const char *sep, char *buf, size_t n);


/* Softmax-attention cost model shared by exact kernels (docs/kernel-interface.md):
 * forward 4*D*nnz per head, backward 2.5x forward; minimum fp32 traffic. */
double attn_softmax_flops(const attn_args *a, attn_pass pass);
double attn_softmax_bytes(const attn_args *a, attn_pass pass);
size_t attn_kv_state_bytes(const attn_args *a);
double attn_density(const attn_args *a);   /* nnz(mask) / (Nq*Nk) */
double attn_batch_rows(const attn_args *a); /* real query rows over the batch: B * Nq unless padded */

/* A backward called on a context created without args.backward = 1 (its
 * workspace was sized for the forward): records the message naming the
 * kernel and returns ATTN_EINVAL. */
int attn_backward_unplanned(const attn_ctx *ctx);

/* Creates a context: validate, init, allocate workspace. */
int attn_ctx_create(const attn_kernel *k, const attn_args *a, attn_ctx *ctx);
void attn_ctx_destroy(attn_ctx *ctx);

/* What attn_ctx_create would allocate, without allocating it: validate and
 * init (which size the workspace but leave it to the caller), then fini.
 * *workspace_bytes is the context's workspace; a kernel refusing the problem
 * (ATTN_EUNSUPPORTED: its own caps, such as the score matrices' max_ws_mib)
 * refuses it here, before any tensor of the problem exists. */
int attn_ctx_plan(const attn_kernel *k, const attn_args *a, size_t *workspace_bytes);

#endif
