/* The double-precision reference of the attention block (attn_block.c):
 * the same graph as the fp32 block in plain double loops, with the kernel's
 * own double reference or the oracle in place of the kernel, for the models'
 * gradient checks (nn_attn_forward_ref, nn_attn_backward_ref, layers.h). */
#include "attn_block_internal.h"
#include "kernels/core/oracle.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static attn_tensor_f64 view64(double *p, int64_t B, int64_t heads, int64_t N, int64_t cols)
{
    return (attn_tensor_f64){.data = p, .B = B, .H = heads, .N = N, .D = cols, .sb = N * heads * cols,
                             .sh = cols, .sn = heads * cols};
}

/* qp, kp: q and k before RoPE; xq, xk, xv: the projection outputs before the
 * short convolution (allocated only with one). */
typedef struct {
    double *qp, *kp, *q, *k, *v, *o, *lse, *zb, *beta, *zg, *gate, *xq, *xk, *xv, *zr;
    size_t nq, nk, nb, ng, nr;
} ref_acts;

static void ref_free(ref_acts *r)
{
    double *p[] = {r->qp, r->kp, r->q, r->k, r->v, r->o, r->lse, r->zb, r->beta, r->zg, r->gate, r->xq, r->xk, r->xv, r->zr};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        free(p[i]);
}

static int ref_forward_acts(const nn_attn *l, const double *P, const double *x, int64_t B, int64_t N,
                            const int64_t *seq_len, ref_acts *r)
{
    int64_t T = B * N, H = l->cfg.H, Hk = l->cfg.H_kv, D = l->D;
    *r = (ref_acts){.nq = (size_t)(T * H * D), .nk = (size_t)(T * Hk * D),
                    .nb = nn_attn_has_beta(l) ? (size_t)(T * Hk) : 0, .ng = (size_t)(T * Hk * l->gate_cols),
                    .nr = (size_t)(T * Hk * l->router_cols)};
    r->zr = calloc(r->nr + 1, sizeof(double));
    if (r->nr)
        nn_dense_forward_ref(&l->router, P, x, r->zr, T);
    r->qp = calloc(r->nq, sizeof(double)), r->q = calloc(r->nq, sizeof(double)), r->o = calloc(r->nq, sizeof(double));
    r->kp = calloc(r->nk, sizeof(double)), r->k = calloc(r->nk, sizeof(double)), r->v = calloc(r->nk, sizeof(double));
    r->lse = calloc((size_t)(T * H), sizeof(double));
    r->zb = calloc(r->nb + 1, sizeof(double)), r->beta = calloc(r->nb + 1, sizeof(double));
    r->zg = calloc(r->ng + 1, sizeof(double)), r->gate = calloc(r->ng + 1, sizeof(double));
    if (l->cfg.short_conv) {
        r->xq = calloc(r->nq, sizeof(double)), r->xk = calloc(r->nk, sizeof(double)), r->xv = calloc(r->nk, sizeof(double));
        nn_dense_forward_ref(&l->q, P, x, r->xq, T);
        nn_dense_forward_ref(&l->k, P, x, r->xk, T);
        nn_dense_forward_ref(&l->v, P, x, r->xv, T);
        nn_short_conv_forward_ref(&l->cq, P, r->xq, r->qp, B, N);
        nn_short_conv_forward_ref(&l->ck, P, r->xk, r->kp, B, N);
        nn_short_conv_forward_ref(&l->cv, P, r->xv, r->v, B, N);
    } else {
        nn_dense_forward_ref(&l->q, P, x, r->qp, T);
        nn_dense_forward_ref(&l->k, P, x, r->kp, T);
        nn_dense_forward_ref(&l->v, P, x, r->v, T);
    }
    if (l->cfg.rope) {
        nn_rope_forward_ref(r->qp, r->q, B, N, H, D, nn_attn_rope_base(l));
        nn_rope_forward_ref(r->kp, r->k, B, N, Hk, D, nn_attn_rope_base(l));
    } else {
        memcpy(r->q, r->qp, sizeof(double) * r->nq);
        memcpy(r->k, r->kp, sizeof(double) * r->nk);
    }
    if (r->nb)
        nn_dense_forward_ref(&l->beta, P, x, r->zb, T);
    if (r->ng)
        nn_dense_forward_ref(&l->gate, P, x, r->zg, T);
    for (size_t i = 0; i < r->nb; i++)
        r->beta[i] = nn_sigmoid(r->zb[i]);
    for (size_t i = 0; i < r->ng; i++)
        r->gate[i] = nn_logsigmoid(r->zg[i]) / NN_ATTN_GATE_TEMP;
    attn_args a = nn_attn_block_args(l, B, N, 1, seq_len);
    attn_io64 io = {.q = view64(r->q, B, H, N, D), .k = view64(r->k, B, Hk, N, D), .v = view64(r->v, B, Hk, N, D),
                    .o = view64(r->o, B, H, N, D), .lse = r->lse,
                    .beta = view64(r->nb ? r->beta : NULL, B, Hk, N, 1),
                    .gate = view64(r->ng ? r->gate : NULL, B, Hk, N, l->gate_cols),
                    .router = view64(r->nr ? r->zr : NULL, B, Hk, N, l->router_cols),
                    /* the reference reads its inputs only: P's weights are not written */
                    .w = {.data = l->w_cols ? (double *)(uintptr_t)(P + l->off_w) : NULL, .B = 1, .H = H, .N = 1,
                          .D = l->w_cols, .sb = H * l->w_cols, .sh = l->w_cols, .sn = l->w_cols}};
    if (l->cfg.kernel->ref_forward)
        return l->cfg.kernel->ref_forward(&a, &io);
    attn_oracle_forward_f64(&a, &io.q, &io.k, &io.v, &io.o, io.lse);
    return 0;
}

int nn_attn_forward_ref(const nn_attn *l, const double *P, const double *x, double *y, int64_t B, int64_t N,
                        const int64_t *seq_len)
{
    ref_acts r;
    int rc = ref_forward_acts(l, P, x, B, N, seq_len, &r);
    if (!rc)
        nn_dense_forward_ref(&l->o, P, r.o, y, B * N);
    ref_free(&r);
    return rc;
}

int nn_attn_backward_ref(const nn_attn *l, const double *P, const double *x, const double *dy, double *dx,
                         double *dP, int64_t B, int64_t N, const int64_t *seq_len)
{
    if (l->cfg.kernel->ref_forward)
        return attn_fail(ATTN_EUNSUPPORTED, "attention block reference: kernel '%s' has no double backward "
                                            "(use central differences of nn_attn_forward_ref)",
                         l->cfg.kernel->name);
    ref_acts r;
    int rc = ref_forward_acts(l, P, x, B, N, seq_len, &r);
    int64_t T = B * N, H = l->cfg.H, Hk = l->cfg.H_kv, D = l->D;
    double *d_o = calloc(r.nq, sizeof(double)), *dq = calloc(r.nq, sizeof(double)),
           *dqp = calloc(r.nq, sizeof(double)), *dk = calloc(r.nk, sizeof(double)),
           *dkp = calloc(r.nk, sizeof(double)), *dv = calloc(r.nk, sizeof(double));
    nn_dense_backward_ref(&l->o, P, r.o, dy, d_o, dP, T);
    attn_args a = nn_attn_block_args(l, B, N, 1, seq_len);
    attn_tensor_f64 tq = view64(r.q, B, H, N, D), tk = view64(r.k, B, Hk, N, D), tv = view64(r.v, B, Hk, N, D),
                    to = view64(r.o, B, H, N, D), tdo = view64(d_o, B, H, N, D), tdq = view64(dq, B, H, N, D),
                    tdk = view64(dk, B, Hk, N, D), tdv = view64(dv, B, Hk, N, D);
    attn_oracle_backward_f64(&a, &tq, &tk, &tv, &to, r.lse, &tdo, &tdq, &tdk, &tdv);
    if (l->cfg.rope) {
        nn_rope_backward_ref(dq, dqp, B, N, H, D, nn_attn_rope_base(l));
        nn_rope_backward_ref(dk, dkp, B, N, Hk, D, nn_attn_rope_base(l));
    } else {
        memcpy(dqp, dq, sizeof(double) * r.nq);
        memcpy(dkp, dk, sizeof(double) * r.nk);
    }
    const nn_dense *d[3] = {&l->q, &l->k, &l->v};
    const nn_short_conv *cv[3] = {&l->cq, &l->ck, &l->cv};
    const double *pre[3] = {r.xq, r.xk, r.xv};
    double *dpost[3] = {dqp, dkp, dv}, *dpre = calloc(r.nq, sizeof(double));
    for (int i = 0; i < 3; i++) {
        if (l->cfg.short_conv) { /* gradient at the projection output, through SiLU and the conv */
            memset(dpre, 0, sizeof(double) * r.nq);
            nn_short_conv_backward_ref(cv[i], P, pre[i], dpost[i], dpre, dP, B, N);
        }
        nn_dense_backward_ref(d[i], P, x, l->cfg.short_conv ? dpre : dpost[i], dx, dP, T);
    }
    double *bufs[] = {d_o, dq, dqp, dk, dkp, dv, dpre};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    ref_free(&r);
    return rc;
}
