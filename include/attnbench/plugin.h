/* attnbench plugin interface: the one header a kernel built outside the
 * repository includes. A plugin is a shared object exporting
 *
 *   int attnbench_plugin_abi(void);          returns ATTNBENCH_PLUGIN_ABI
 *   const attnbench_plugin_kernel *const *attnbench_plugin_kernels(void);
 *                                            its kernels, NULL-terminated
 *
 * and is loaded with `attnbench --plugin PATH.so ...` (repeatable) or the
 * ATTNBENCH_PLUGINS variable (paths separated by ':'). Its kernels then take
 * part in list, check, bench, sweep, train and eval like the built-in ones,
 * gated against the double-precision softmax oracle: a plugin kernel
 * computes softmax attention (exactly, or approximately with fidelity rows
 * against the oracle), under the full mask and, if it says so, the causal
 * one. This header depends on nothing but the C standard library; its ABI
 * version changes whenever a struct below does. */
#ifndef ATTNBENCH_PLUGIN_H
#define ATTNBENCH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define ATTNBENCH_PLUGIN_ABI 1

/* A float tensor [B, H, N, D]: element (b, h, n, d) at
 * data[b*sb + h*sh + n*sn + d] (rows may be padded: use the strides). */
typedef struct {
    float *data;
    int64_t B, H, N, D;
    int64_t sb, sh, sn;
} attnbench_tensor;

/* One problem: Q [B, H, Nq, D], K [B, H_kv, Nk, D], V [B, H_kv, Nk, Dv],
 * O [B, H, Nq, Dv]; query head h reads KV head h / (H / H_kv). Scores are
 * scale * q.k (scale is always set). Under causal, query row i (absolute
 * position q_off + i) sees key j (position k_off + j) when k_off + j <=
 * q_off + i; with q_off = Nk - Nq the last query sees every key. */
typedef struct {
    int64_t B, H, H_kv, Nq, Nk, D, Dv;
    double scale;
    int causal;
    int64_t q_off, k_off;
    int threads;           /* threads the kernel may use (OpenMP or its own) */
} attnbench_problem;

typedef struct {
    attnbench_tensor q, k, v, o;
    float *lse;            /* [B, H, Nq] contiguous: the forward writes each row's
                              natural-log normaliser (-INFINITY for a row with no key);
                              the backward reads it */
} attnbench_io;

typedef struct {
    attnbench_tensor d_o;  /* dL/dO, shaped like O */
    attnbench_tensor dq, dk, dv; /* written in full, shaped like Q, K, V; dK and dV
                                    summed over the query heads of a KV head */
} attnbench_grads;

/* Capability flags (the values attnbench itself uses). */
enum {
    ATTNBENCH_EXACT = 1u << 0,         /* softmax attention up to rounding */
    ATTNBENCH_APPROX = 1u << 1,        /* an approximation of it: fidelity rows against the oracle */
    ATTNBENCH_CAUSAL = 1u << 2,        /* takes the causal mask as well as the full one */
    ATTNBENCH_GQA = 1u << 7,           /* H_kv may be < H */
    ATTNBENCH_CROSS = 1u << 8,         /* Nq may differ from Nk */
    ATTNBENCH_DETERMINISTIC = 1u << 10 /* bitwise identical results for any thread count */
};

/* Functions return 0, or non-zero after writing a one-line reason into
 * err [err_len]. `workspace` is workspace_bytes(p) bytes, 64-byte aligned,
 * allocated by attnbench so its size is measured (NULL when 0). */
typedef struct {
    const char *name;      /* unique among all kernels: a clash is an error at load */
    const char *family, *reference, *notes; /* notes may be NULL */
    unsigned flags;        /* ATTNBENCH_* */
    size_t (*workspace_bytes)(const attnbench_problem *p); /* NULL: none */
    int (*forward)(const attnbench_problem *p, const attnbench_io *io, void *workspace, char *err, size_t err_len);
    /* NULL: not trainable. Reads q, k, v, o and lse of the forward. */
    int (*backward)(const attnbench_problem *p, const attnbench_io *io, const attnbench_grads *g, void *workspace,
                    char *err, size_t err_len);
} attnbench_plugin_kernel;

/* Rows of a plugin kernel count softmax attention's work for the problem as
 * its useful flops and its minimum traffic as its bytes (the kernel's own
 * counts, flops_counted and sde_*, say NA: a plugin has no counters). */

#endif
