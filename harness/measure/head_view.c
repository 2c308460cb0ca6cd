#include "head_view.h"

#include "kernels/core/kv_cache.h"

#include "kernels/core/oracle.h"

#include <math.h>
#include <stdlib.h>

attn_tensor_f64 head_widen(const attn_tensor *t, int64_t b, int64_t h, int64_t n0, int64_t rows)
{
    attn_tensor_f64 w = {NULL, 1, 1, rows, t->D, rows * t->D, rows * t->D, t->D};
    if (!t->data)
        return w;
    w.data = malloc(sizeof(double) * (size_t)(rows * t->D));
    for (int64_t n = 0; n < rows; n++)
        for (int64_t d = 0; d < t->D; d++)
            w.data[n * t->D + d] = attn_at(t, b, h, n0 + n)[d];
    return w;
}

attn_tensor_f64 head_widen_cache(const attn_kv_cache *c, int64_t b, int64_t h, int64_t n0, int64_t rows)
{
    attn_tensor_f64 w = {NULL, 1, 1, rows, c->D, rows * c->D, rows * c->D, c->D};
    float *row = malloc(sizeof(float) * (size_t)c->D);
    w.data = row ? malloc(sizeof(double) * (size_t)(rows * c->D)) : NULL;
    for (int64_t n = 0; w.data && n < rows; n++) {
        attn_kv_cache_row_f32(c, b, h, n0 + n, row);
        for (int64_t d = 0; d < c->D; d++)
            w.data[n * c->D + d] = row[d];
    }
    free(row);
    return w;
}

/* Every head's row of the learned weights io.w [1,H,1,W] in double: head h
 * of a one-head problem reads its own row, and a kernel whose weights are
 * one set spread over the rows (Linformer's E, F shared by the heads) finds
 * all of it. */
static attn_tensor_f64 weights_widen(const attn_tensor *w)
{
    attn_tensor_f64 x = {NULL, 1, w->H, 1, w->D, w->H * w->D, w->D, w->D};
    if (!w->data)
        return x;
    x.data = malloc(sizeof(double) * (size_t)(w->H * w->D));
    for (int64_t h = 0; h < w->H; h++)
        for (int64_t d = 0; d < w->D; d++)
            x.data[h * w->D + d] = attn_at(w, 0, h, 0)[d];
    return x;
}

double head_oracle_row(const attn_args *a, const attn_io *io, const attn_tensor_f64 *k,
                       const attn_tensor_f64 *v, int64_t b, int64_t h, int64_t i, double *orow)
{
    /* The oracle on one query row, run as batch b + 1, head h + 1 of a problem
     * whose Q, K and V views repeat that row and KV head (b and h strides 0),
     * so that masks which differ per batch entry or head (attn_mask_varies)
     * are evaluated at the real (b, h): the answer is the last row. */
    int64_t Dv = v->D;
    if (i >= attn_q_len(a, b)) { /* a padded row of a padded batch: no keys, O = 0 */
        for (int64_t d = 0; d < Dv; d++)
            orow[d] = 0;
        return -INFINITY;
    }
    attn_args one = *a; /* a padded batch keeps seq_len: b's keys end at its length */
    one.B = b + 1, one.H = one.H_kv = h + 1, one.Nq = 1;
    one.q_off = a->q_off + i;
    attn_tensor_f64 q = head_widen(&io->q, b, h, i, 1), kr = *k, vr = *v;
    q.sb = q.sh = kr.sb = kr.sh = vr.sb = vr.sh = 0;
    q.B = kr.B = vr.B = one.B, q.H = kr.H = vr.H = one.H;
    int64_t rows = one.B * one.H;
    attn_tensor_f64 o = {calloc((size_t)(rows * Dv), sizeof(double)), one.B, one.H, 1, Dv, one.H * Dv, Dv, Dv};
    double *lses = malloc(sizeof(double) * (size_t)rows), lse;
    attn_oracle_forward_f64(&one, &q, &kr, &vr, &o, lses);
    lse = lses[rows - 1];
    for (int64_t d = 0; d < Dv; d++)
        orow[d] = o.data[(rows - 1) * Dv + d];
    free(lses);
    free(q.data);
    free(o.data);
    return lse;
}

/* Query rows 0..nq-1 of every head of a problem with H heads in groups of G,
 * each group a copy of the query heads of KV head hk (head j reads head
 * hk*G + j%G), in double: head h gets its own rows and its group mates
 * theirs. */
static attn_tensor_f64 group_widen(const attn_tensor *q, int64_t b, int64_t hk, int64_t H, int64_t G, int64_t nq)
{
    attn_tensor_f64 w = {malloc(sizeof(double) * (size_t)(H * nq * q->D)), 1, H, nq, q->D, H * nq * q->D, nq * q->D, q->D};
    for (int64_t j = 0; j < H; j++)
        for (int64_t n = 0; n < nq; n++)
            for (int64_t d = 0; d < q->D; d++)
                w.data[(j * nq + n) * q->D + d] = attn_at(q, b, hk * G + j % G, n)[d];
    return w;
}

void head_io64(const attn_args *one, const attn_io *io, int64_t b, int64_t h, int64_t o_rows, attn_io64 *x)
{
    int64_t G = one->H / one->H_kv, hk = h / G, nq = one->Nq, L = one->Nk, Dv = attn_dv(one);
    *x = (attn_io64){.q = G > 1 ? group_widen(&io->q, b, hk, one->H, G, nq) : head_widen(&io->q, b, h, 0, nq),
                     .k = head_widen(&io->k, b, hk, 0, L),
                     .v = head_widen(&io->v, b, hk, 0, L),
                     .beta = head_widen(&io->beta, b, hk, 0, L),
                     .gate = head_widen(&io->gate, b, hk, 0, L),
                     .router = head_widen(&io->router, b, hk, 0, L),
                     .w = weights_widen(&io->w)};
    attn_tensor_f64 *in[] = {&x->q, &x->k, &x->v, &x->beta, &x->gate, &x->router};
    for (int i = G > 1; i < 6; i++) /* every head reads head h's (KV head hk's) rows */
        in[i]->sh = 0, in[i]->H = i == 0 ? one->H : one->H_kv;
    x->o = (attn_tensor_f64){calloc((size_t)(one->H * o_rows * Dv), sizeof(double)), 1, one->H, o_rows, Dv,
                             one->H * o_rows * Dv, o_rows * Dv, Dv};
    x->lse = calloc((size_t)(one->H * nq), sizeof(double));
}

void head_io64_free(attn_io64 *x)
{
    attn_tensor_f64 *t[] = {&x->q, &x->k, &x->v, &x->o, &x->beta, &x->gate, &x->router, &x->w};
    for (int i = 0; i < 8; i++)
        free(t[i]->data);
    free(x->lse);
}
