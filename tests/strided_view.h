/* Strided-view check shared by the streaming and local_linear tests
 * (one [B, N, H, D] view per kernel, docs/testing.md): the kernel run on
 * [B, N, H, D] copies with padded rows must give the bits it gives on the
 * contiguous [B, H, N, D] tensors of the same problem. */
#ifndef ATTN_TEST_STRIDED_VIEW_H
#define ATTN_TEST_STRIDED_VIEW_H

#include "harness/measure/fixture.h"

#include <stdlib.h>
#include <string.h>

/* A [B, N, H, D] copy of a contiguous [B, H, N, D] tensor, rows padded (sn > H*D). */
static inline attn_tensor sv_bnhd_copy(const attn_tensor *x)
{
    attn_tensor y = *x;
    y.sn = x->H * x->D + 3, y.sh = x->D, y.sb = x->N * y.sn;
    y.data = calloc((size_t)(x->B * y.sb), sizeof(float));
    for (int64_t b = 0; b < x->B; b++)
        for (int64_t h = 0; h < x->H; h++)
            for (int64_t n = 0; n < x->N; n++)
                memcpy(attn_at(&y, b, h, n), attn_at(x, b, h, n), sizeof(float) * (size_t)x->D);
    return y;
}

/* 1 if every (b, h, n) row of x and y holds the same bits (any strides). */
static inline int sv_same_rows(const attn_tensor *x, const attn_tensor *y)
{
    for (int64_t b = 0; b < x->B; b++)
        for (int64_t h = 0; h < x->H; h++)
            for (int64_t n = 0; n < x->N; n++)
                if (memcmp(attn_at(x, b, h, n), attn_at(y, b, h, n), sizeof(float) * (size_t)x->D))
                    return 0;
    return 1;
}

/* Runs k forward and backward on p (contiguous), then on [B, N, H, D] views
 * of the same inputs; *ok = 1 when O, lse, dQ, dK and dV agree bitwise.
 * Returns the kernel's code. */
static inline int sv_check_views(const attn_kernel *k, fx_problem *p, int *ok)
{
    int rc = fx_run(k, p, 1);
    attn_tensor t[8] = {sv_bnhd_copy(&p->q), sv_bnhd_copy(&p->k),  sv_bnhd_copy(&p->v),  sv_bnhd_copy(&p->o),
                        sv_bnhd_copy(&p->d_o), sv_bnhd_copy(&p->dq), sv_bnhd_copy(&p->dk), sv_bnhd_copy(&p->dv)};
    for (int i = 3; i < 8; i++)
        if (i != 4)
            memset(t[i].data, 0, sizeof(float) * (size_t)(t[i].B * t[i].sb));
    size_t nl = sizeof(float) * (size_t)(p->a.B * p->a.H * p->a.Nq);
    float *lse = calloc(1, nl);
    attn_args ab = p->a;
    ab.backward = 1;
    attn_ctx ctx;
    if (!rc && (rc = attn_ctx_create(k, &ab, &ctx)) == 0) {
        attn_io io = {.q = t[0], .k = t[1], .v = t[2], .o = t[3], .lse = lse};
        attn_grads g = {.d_o = t[4], .dq = t[5], .dk = t[6], .dv = t[7]};
        rc = k->forward(&ctx, &io);
        if (!rc)
            rc = k->backward(&ctx, &io, &g);
        attn_ctx_destroy(&ctx);
    }
    *ok = !rc && sv_same_rows(&t[3], &p->o) && memcmp(lse, p->lse, nl) == 0 && sv_same_rows(&t[5], &p->dq) &&
          sv_same_rows(&t[6], &p->dk) && sv_same_rows(&t[7], &p->dv);
    for (int i = 0; i < 8; i++)
        free(t[i].data);
    free(lse);
    return rc;
}

#endif
