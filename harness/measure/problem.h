/* One attention problem: every tensor a kernel reads or writes for an
 * attn_args (Q, K, V, O, LSE, the kernel's extra inputs, and for backward dO
 * and the gradients), filled from a seed by one rule, with an optional double
 * twin for references. bench, its correctness gate, `attnbench check` and the
 * tests all build their problems here, so one seed means the same data in a
 * benchmark row, a check line and a test.
 *
 * It lives in harness/measure rather than kernels/core because kernels never
 * build inputs (they only read the views they are given); what builds
 * problems is the harness and the tests, which link the whole library. */
#ifndef ATTN_PROBLEM_H
#define ATTN_PROBLEM_H

#include "kernels/core/attn.h"

enum {
    PROBLEM_GRADS = 1u << 0, /* dO (filled) and zeroed gradient outputs */
    PROBLEM_TWIN = 1u << 1,  /* double copies of every tensor, contiguous [B, H, N, D] */
    /* Storage as [B, N, H, D] with padded head and position rows and a base one
     * float past an aligned address: the strided, unaligned views a model
     * hands the kernels. Values are those of the contiguous layout. */
    PROBLEM_STRIDED = 1u << 2,
};

typedef struct {
    attn_args a;             /* the problem's args, defaults applied */
    unsigned opts;           /* PROBLEM_* it was made with */
    attn_tensor q, k, v, o, d_o, dq, dk, dv;   /* V, O: Dv columns; O: attn_o_rows rows */
    attn_tensor beta, gate, dbeta, dgate;      /* the kernel's ATTN_IN_* inputs (data NULL if none) */
    attn_tensor router, w, drouter, dw;
    float *lse;              /* contiguous [B, H, Nq], zeroed */
    attn_tensor_f64 q64, k64, v64, o64, do64, dq64, dk64, dv64;   /* PROBLEM_TWIN */
    attn_tensor_f64 beta64, gate64, dbeta64, dgate64;
    attn_tensor_f64 router64, w64, drouter64, dw64;
    double *lse64;
    /* K and V stored in a.kv_dtype (data NULL when fp32), made from k and v;
     * the twin's K and V then hold their dequantized values, the inputs the
     * kernel reads. */
    attn_kv_cache kc, vc;
    /* a.dtype bf16/fp16: Q, K, V, dO rounded to it from the fp32 tensors
     * (which keep the unrounded values), O and the gradients as the kernel
     * writes them (contiguous, [B, H, N, D]); qr, kr, vr: the rounded Q, K, V
     * widened back to fp32, the values the kernel reads. The twin's Q, K, V
     * and dO hold the rounded values. Data NULL when fp32. */
    attn_tensor_h qh, kh, vh, oh, d_oh, dqh, dkh, dvh;
    attn_tensor qr, kr, vr;
    /* Set by whoever computes the twin's outputs (fixture.h): the kernel whose
     * own double reference they are (NULL: the oracle's), and whether dq64 ..
     * hold reference gradients yet. */
    const attn_kernel *kernel;
    int grads_ready;
} problem;

/* Allocates the tensors of kernel k (NULL: Q, K, V only) on args a and fills
 * them from `seed`, always in this order from one xoshiro stream:
 *   Q, K, V U(-1,1); beta = sigmoid(U(-3,3)); log gates U(-1,-0.001);
 *   router logits U(-2,2); weights U(-1,1)/sqrt(D) (or k->init_weights(seed),
 *   drawing nothing); then dO U(-1,1).
 * Elements are drawn in (b, h, n, d) order whatever the storage, so a
 * PROBLEM_STRIDED problem holds the values of the contiguous one. Outputs and
 * LSE start at zero. Returns 0, or ATTN_ENOMEM with nothing left allocated. */
int problem_make(problem *p, const attn_kernel *k, const attn_args *a, uint64_t seed, unsigned opts);

/* The bytes problem_make(p, k, a, seed, opts) allocates (storage padding
 * aside), computed without allocating: what a job needs before it starts. */
double problem_bytes(const attn_kernel *k, const attn_args *a, unsigned opts);

/* The kernel-facing views of p. */
attn_io problem_io(const problem *p);
attn_grads problem_grads(const problem *p);
attn_io64 problem_io64(const problem *p);

/* p's views with the rounded operands' fp32 values as Q, K, V (a.dtype
 * bf16/fp16; otherwise problem_io): what the kernel computed on. */
attn_io problem_io_read(const problem *p);

/* After the fp32 Q, K, V or dO changed: their 16-bit forms and qr, kr, vr
 * again (nothing when a.dtype is fp32). problem_widen_inputs calls it. */
void problem_store_operands(problem *p);

/* After a kernel ran on 16-bit operands: O (and the gradients, when the
 * problem has them) widened from what it wrote into the fp32 tensors, for
 * the checks that read those (nothing when a.dtype is fp32). */
void problem_widen_outputs(problem *p);

/* Copies the fp32 inputs (and dO) into the double twin again, after a test
 * changed them (and stores K and V into the caches again: problem_store_kv). */
void problem_widen_inputs(problem *p);

/* After K or V changed: their rows into the stored caches again, and the
 * twin's K and V from the caches (nothing when kv_dtype is fp32). */
void problem_store_kv(problem *p);

void problem_free(problem *p);

/* 1 if every (b, h, n) row of x and y (one shape, any strides) holds the same bits. */
int problem_same_rows(const attn_tensor *x, const attn_tensor *y);

#endif
