/* One driver for double references written head by head: a kernel gives
 * how to open a head's state, compute one query row (its output, its
 * logsumexp and, for the fidelity view, its attention weights over the
 * original keys and which keys it selected) and close the head; the
 * driver runs the whole forward or a view's sampled rows over it. */
#ifndef ATTN_REF_HEADS_H
#define ATTN_REF_HEADS_H

#include "kernels/core/attn.h"

typedef struct {
    const char *name; /* the kernel, for the out-of-memory message */
    int (*open)(void *head, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h);
    /* Row i into o [Dv] (zeros when it attends nothing); returns its
     * logsumexp (-INFINITY: nothing). With P non-NULL also adds its
     * weights into P [Nk] and marks its keys in sel [Nk] (both zeroed by
     * the driver). */
    double (*row)(void *head, int64_t i, double *o, double *P, unsigned char *sel);
    void (*close)(void *head);
} attn_ref_heads;

/* The whole forward: o and lse (when io->lse) of every (b, h, row);
 * head is the caller's storage for one head's state. */
int attn_ref_heads_forward(const attn_ref_heads *r, void *head, const attn_args *a, const attn_io64 *io);

/* A ref_view over rows [n_rows] of head (b, h): P [n_rows][Nk], sel
 * [n_rows][Nk]; returns ATTN_VIEW_ROWS | ATTN_VIEW_KEYS or an error. */
int attn_ref_heads_view(const attn_ref_heads *r, void *head, const attn_args *a, const attn_io64 *io, int64_t b,
                        int64_t h, const int64_t *rows, int64_t n_rows, double *P, unsigned char *sel);

#endif
