/* AdamW over one flat parameter blob (llm.c style: the model owns one float
 * blob of parameters and one of gradients), gradient utilities (global-norm
 * clipping with a fixed reduction order, accumulation helpers) and the
 * learning-rate schedule.
 *
 * AdamW: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR
 * 2019, Algorithm 2; moments and bias correction as in Kingma & Ba, "Adam",
 * ICLR 2015, Algorithm 1. Learning rate and decay follow the PyTorch/llm.c
 * convention: lr is the whole step size (eta_t * alpha in the paper) and the
 * decoupled decay is p -= lr * wd * p. */
#ifndef OPTIM_H
#define OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float beta1;        /* first-moment decay, e.g. 0.9 */
    float beta2;        /* second-moment decay, e.g. 0.95 or 0.999 */
    float eps;          /* added to sqrt(v_hat), e.g. 1e-8 */
    float weight_decay; /* decoupled decay coefficient (applied where a range says so) */
    int threads;        /* OpenMP threads, 0 = the OpenMP default */
} optim_config;

/* A run of parameters [offset, offset + count) of the blob and whether the
 * decoupled weight decay applies to it (0 for norms and biases). */
typedef struct {
    size_t offset, count;
    int decay;
} optim_range;

/* Everything the optimizer keeps, planned in one 64-byte aligned allocation:
 * m[n] | v[n] | ranges[nranges] | partials[nblocks] (norm workspace). */
typedef struct {
    optim_config cfg;
    size_t n;             /* number of parameters */
    int64_t step;         /* steps taken so far (t - 1 before optim_step) */
    float *m, *v;         /* first and second moments, [n] each */
    optim_range *ranges;  /* tile [0, n) in order */
    int nranges;
    double *partials;     /* per-block squares for optim_grad_norm */
    size_t nblocks;
    void *mem;
} optim;

/* Floats per block of the gradient norm: the reduction order (sequential
 * inside a block, blocks summed in order) does not depend on threads. */
#define OPTIM_NORM_BLOCK 4096

/* Below this many parameters the loops run on one thread: a parallel region
 * costs more than the work (results are the same either way). */
#define OPTIM_PARALLEL_MIN 16384

/* Validates cfg (0 <= beta < 1, eps > 0, wd >= 0) and the ranges (they must
 * tile [0, n) in order; ranges == NULL with nranges == 0 means one decayed
 * range over everything), allocates the state and zeroes it (step 0). */
int optim_init(optim *o, size_t n, const optim_config *cfg, const optim_range *ranges, int nranges);
void optim_fini(optim *o);

/* Bytes of the one allocation optim_init makes. */
size_t optim_state_bytes(size_t n, int nranges);

/* One AdamW step (t = ++o->step) at learning rate lr:
 *   m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + lr * wd * p.
 * Elementwise, so the result is bitwise independent of the thread count.
 * params, grads are [o->n]. Fails (state untouched) if lr is not finite or < 0. */
int optim_step(optim *o, float *params, const float *grads, float lr);

/* The same step in plain double precision, for tests: p, m, v are [n] and
 * updated in place, step is the t of this step (>= 1). */
void optim_step_ref(const optim_config *cfg, const optim_range *ranges, int nranges, size_t n,
                    double *p, const double *g, double *m, double *v, int64_t step, double lr);

/* Global L2 norm of grads [o->n] in double: per-block sums of squares of
 * OPTIM_NORM_BLOCK floats, then summed in block order, so 1 and 2 threads
 * give bitwise the same value. */
double optim_grad_norm(optim *o, const float *grads);

/* Clips by global norm: if ||g|| > max_norm, scales g by max_norm / ||g||
 * (Pascanu et al. 2013, "On the difficulty of training RNNs", Alg. 1);
 * smaller gradients are left untouched. *norm_out (may be NULL) receives the
 * norm before clipping. Fails on a non-finite norm (a diverged step) or
 * max_norm <= 0, leaving g untouched. */
int optim_clip_grad_norm(optim *o, float *grads, double max_norm, double *norm_out);

/* Gradient accumulation over k micro-batches: zero the blob, let backward
 * add into it k times, then scale by 1/k to get the mean. g is [n]. */
void optim_grad_zero(float *g, size_t n, int threads);
void optim_grad_scale(float *g, size_t n, float s, int threads);

/* Learning-rate schedule: linear warm-up (lr = peak (step+1)/warmup for
 * step < warmup, as in llm.c, so step warmup-1 is at peak), then
 *   cosine: min + (peak-min) (1 + cos(pi r)) / 2   (Loshchilov & Hutter,
 *           "SGDR", ICLR 2017, Eq. 5, one cycle without restarts)
 *   linear: peak - (peak-min) r
 *   constant: peak
 * with r = (step - warmup) / (total - warmup) and min = min_lr_ratio * peak;
 * steps at or past total stay at min (peak for constant).
 *
 * rsqrt is LRA's "constant * linear_warmup * rsqrt_decay" (google-research/
 * long-range-arena, lra_benchmarks/utils/train_utils.py,
 * create_learning_rate_scheduler, evaluated at the 0-based optimizer step):
 *   lr(step) = base * min(1, step / warmup) / sqrt(max(step, warmup)).
 * Verified there: rsqrt_decay divides by sqrt(max(step, warmup)) WITHOUT the
 * sqrt(warmup) factor (that one is rsqrt_normalized_decay), so LRA's peak,
 * reached at step = warmup, is base / sqrt(warmup). Here peak_lr is that
 * peak (base = peak_lr * sqrt(warmup)), so the same --lr means the same top
 * step size under every schedule:
 *   lr(step) = peak * min(1, step / warmup) * sqrt(warmup / max(step, warmup)).
 * Step 0 gets lr 0, as in LRA; warmup >= 1; min_lr_ratio and total are not
 * used (the decay has no end). */
typedef enum { OPTIM_SCHED_CONSTANT, OPTIM_SCHED_COSINE, OPTIM_SCHED_LINEAR, OPTIM_SCHED_RSQRT } optim_sched_kind;
/* Their names in enum order, NULL-terminated. */
extern const char *const optim_sched_names[];

typedef struct {
    optim_sched_kind kind;
    double peak_lr;
    int64_t warmup_steps;
    int64_t total_steps;  /* end of the decay (ignored by constant) */
    double min_lr_ratio;  /* floor as a fraction of peak_lr, in [0, 1] */
} optim_schedule;

/* Validates the schedule: peak > 0, 0 <= warmup <= total (cosine, linear:
 * warmup < total; rsqrt: warmup >= 1, any total), ratio in [0, 1]. */
int optim_schedule_check(const optim_schedule *s);

/* The learning rate of (0-based) step; the schedule must have passed
 * optim_schedule_check. */
double optim_lr_at(const optim_schedule *s, int64_t step);

#endif
