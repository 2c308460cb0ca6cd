/* Correctness checks of a kernel against its reference: the double-precision
 * oracle, or the kernel's own double reference. The same functions and the
 * same case table back `attnbench check` and the Criterion tests, so what the
 * CLI verifies is what CI verifies. */
#ifndef ATTN_CHECK_H
#define ATTN_CHECK_H

#include "fidelity.h"
#include "kernels/core/attn.h"

#include <stdio.h>

/* Forward on a random problem: err_O = max|O-O_ref|/max|V|, err_lse as in
 * fx_err_lse (+inf when a -inf row does not match). Returns the kernel's code. */
int check_kernel_forward(const attn_kernel *k, const attn_args *a, uint64_t seed, double *err_o,
                       double *err_lse);

/* The same, also naming the first non-finite output (nonfinite.h) in
 * nonfinite ("" when O and lse are finite; a row left unwritten reads NaN). */
#define CHECK_WHY 160
int check_kernel_forward_named(const attn_kernel *k, const attn_args *a, uint64_t seed, double *err_o,
                               double *err_lse, char nonfinite[CHECK_WHY]);

/* Backward vs the reference gradients (the oracle's, or central differences of
 * the kernel's own double reference): err[0..6] = relative max error of dQ, dK,
 * dV, dbeta, dgate, drouter, dw (0 for inputs the kernel does not read). */
#define ATTN_CHECK_GRADS 7
int check_kernel_backward(const attn_kernel *k, const attn_args *a, uint64_t seed, double err[ATTN_CHECK_GRADS]);
/* The same, also naming the first non-finite gradient in nonfinite. */
int check_kernel_backward_named(const attn_kernel *k, const attn_args *a, uint64_t seed,
                                double err[ATTN_CHECK_GRADS], char nonfinite[CHECK_WHY]);

/* Fidelity against the oracle (fidelity.h): the kernel's forward on family f
 * drawn from seed (its learned weights, if any, at their initial values),
 * measured on sampled rows. Returns the kernel's code. */
int check_kernel_fidelity(const attn_kernel *k, const attn_args *a, fid_inputs f, uint64_t seed, fid_metrics *m);

/* Causal leakage: perturbing Q/K/V rows >= t leaves outputs of rows < t
 * bitwise unchanged (K/V only for ATTN_ROUTED kernels: later queries may
 * move their chunk boundaries; V only for ATTN_RANKED ones: later rows may
 * outrank earlier ones). *ok = 1 when no leak. */
int check_kernel_causal_leakage(const attn_kernel *k, const attn_args *a, int64_t t, int *ok);

/* O, lse (and gradients when trainable) bitwise equal at 1 and `threads` threads. */
int check_kernel_thread_determinism(const attn_kernel *k, const attn_args *a, int threads, int *ok);

/* Fully masked rows: queries placed before every key under a causal mask get
 * O = 0 and lse = -inf. *ok = 1 when they do. */
int check_kernel_masked_rows(const attn_kernel *k, int threads, int *ok);

/* ---- the case table behind `attnbench check` ---- */

/* Tolerances: O within 2e-5 of max|V| for softmax kernels (outputs are convex
 * combinations of V rows), within 5e-5 of max|O_ref| for kernels with their
 * own reference (non-convex outputs), both growing as sqrt(Nk/4096) past 4096
 * keys; lse 1e-5 relative; gradients 1e-4 of max|g_ref|. */
double check_tol_o(const attn_kernel *k, int64_t Nk);
#define CHECK_TOL_LSE 1e-5
#define CHECK_TOL_GRAD 1e-4
/* 16-bit operands (attn_args.dtype): the gradient tolerance grows by this
 * many unit roundoffs of the type (each gradient rounded once, and the
 * backward reads the rounded O); O's by one. */
#define CHECK_GRAD_ROUNDOFFS 3

/* The mask cases every kernel is checked on (those it claims), NULL-terminated:
 * one or more specs per kind, shared by `attnbench check` and the tests. */
extern const char *const check_mask_cases[];
size_t check_mask_case_count(void);

typedef enum {
    CHECK_FORWARD,     /* O (and logsumexp) against the reference */
    CHECK_BACKWARD,    /* gradients against the reference gradients */
    CHECK_CAUSAL_LEAK, /* outputs before row t ignore rows >= t */
    CHECK_MASKED_ROWS, /* rows with no key: O = 0, lse = -inf */
    CHECK_THREADS,     /* bitwise equal at 1 and T threads */
} check_kind;

typedef enum {
    CHECK_PASS,
    CHECK_ABOVE_TOLERANCE, /* an error measure exceeds its tolerance */
    CHECK_PROPERTY_BROKEN, /* a yes/no property (leak, masked rows, threads) does not hold */
    CHECK_NONFINITE,       /* an output or gradient holds NaN or an infinity (reason names it) */
} check_status;

/* Names of err_grad's entries: dQ, dK, dV, dbeta, dgate, drouter, dw. */
extern const char *const check_grad_names[ATTN_CHECK_GRADS];

/* One case of the table and what was measured. */
typedef struct {
    const attn_kernel *kernel;
    check_kind kind;
    char what[160];          /* the case: mask, shape, padding, kernel parameters */
    double err_o, tol_o;     /* CHECK_FORWARD */
    double err_lse, tol_lse; /* CHECK_FORWARD of a softmax kernel; NAN without a normaliser */
    double err_grad[ATTN_CHECK_GRADS]; /* CHECK_BACKWARD; NAN for inputs the kernel does not read */
    double tol_grad;
    check_status status;
    char reason[CHECK_WHY];  /* empty when CHECK_PASS, else which measure and by how much,
                              * or which output is not finite */
} check_result;

typedef void (*check_sink)(const check_result *r, void *ctx);

/* Runs the case table for kernel k: forward on a table of shapes and every
 * mask of check_mask_cases it claims (only `mask_filter` if not NULL),
 * backward on small shapes (trainable kernels), a padded batch (PADDED
 * kernels), causal leakage, fully masked rows and thread determinism (DET
 * kernels). Hands each case's result to sink as it is measured. Returns 0,
 * or the negative code of a kernel that failed to run (or of a bad filter). */
int check_kernel_cases(const attn_kernel *k, const char *mask_filter, int threads, check_sink sink, void *ctx);
/* The same with the K and V caches stored in kv_dtype (kv_format.h): the
 * forward cases only, on the shapes the format holds (D a multiple of 32),
 * each against the oracle on the values the kernel read (the cache
 * dequantized by the plain loop), at the fp32 tolerances. A kernel that does
 * not read the format returns ATTN_EUNSUPPORTED with the reason. */
int check_kernel_cases_kv(const attn_kernel *k, const char *mask_filter, int threads, attn_kv_dtype kv_dtype,
                          check_sink sink, void *ctx);
/* The same with Q, K, V, O (dO and the gradients) in operand type dtype
 * (dtype.h) as well: with a 16-bit type, the forward and backward cases of
 * every mask against the oracle on the rounded operands, the tolerances
 * grown by the type's rounding of the outputs (one unit roundoff for O,
 * CHECK_GRAD_ROUNDOFFS for the gradients); the property cases are left to
 * the fp32 run, whose pass the 16-bit one runs unchanged. A kernel without
 * the type returns ATTN_EUNSUPPORTED with the reason. */
int check_kernel_cases_typed(const attn_kernel *k, const char *mask_filter, int threads, attn_kv_dtype kv_dtype,
                             attn_dtype dtype, check_sink sink, void *ctx);

#endif
