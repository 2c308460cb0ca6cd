#include "head_view.h"

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

/* The query rows of head (b, h) (every head a stride-0 view of them), or for
 * a group problem the real rows of the G heads of h's KV group. */
static attn_tensor_f64 query_rows(const attn_args *one, const attn_io *io, int64_t b, int64_t h, int group)
{
    int64_t G = one->H / one->H_kv, nq = one->Nq, D = io->q.D;
    if (!group) {
        attn_tensor_f64 q = head_widen(&io->q, b, h, 0, nq);
        q.sh = 0, q.H = one->H;
        return q;
    }
    attn_tensor_f64 q = {malloc(sizeof(double) * (size_t)(G * nq * D)), 1, G, nq, D, G * nq * D, nq * D, D};
    for (int64_t g = 0; g < G; g++)
        for (int64_t n = 0; n < nq; n++)
            for (int64_t d = 0; d < D; d++)
                q.data[(g * nq + n) * D + d] = attn_at(&io->q, b, h / G * G + g, n)[d];
    return q;
}

static void fill_io64(const attn_args *one, const attn_io *io, int64_t b, int64_t h, int64_t o_rows, int group,
                      attn_io64 *x)
{
    int64_t G = one->H / one->H_kv, hk = h / G, nq = one->Nq, L = one->Nk, Dv = attn_dv(one);
    *x = (attn_io64){.q = query_rows(one, io, b, h, group),
                     .k = head_widen(&io->k, b, hk, 0, L),
                     .v = head_widen(&io->v, b, hk, 0, L),
                     .beta = head_widen(&io->beta, b, hk, 0, L),
                     .gate = head_widen(&io->gate, b, hk, 0, L),
                     .router = head_widen(&io->router, b, hk, 0, L),
                     .w = weights_widen(&io->w)};
    attn_tensor_f64 *in[] = {&x->k, &x->v, &x->beta, &x->gate, &x->router};
    for (int i = 0; i < 5; i++) /* every KV head reads KV head hk's rows */
        in[i]->sh = 0, in[i]->H = one->H_kv;
    x->o = (attn_tensor_f64){calloc((size_t)(one->H * o_rows * Dv), sizeof(double)), 1, one->H, o_rows, Dv,
                             one->H * o_rows * Dv, o_rows * Dv, Dv};
    x->lse = calloc((size_t)(one->H * nq), sizeof(double));
}

void head_io64(const attn_args *one, const attn_io *io, int64_t b, int64_t h, int64_t o_rows, attn_io64 *x)
{
    fill_io64(one, io, b, h, o_rows, 0, x);
}

int64_t head_view_heads(const attn_kernel *k, attn_args *one, int64_t h)
{
    if (!k || !(k->flags & ATTN_GROUP_SELECT))
        return h;
    int64_t G = one->H / one->H_kv;
    one->H = G, one->H_kv = 1;
    return h % G;
}

void head_io64_for(const attn_kernel *k, const attn_args *one, const attn_io *io, int64_t b, int64_t h,
                   int64_t o_rows, attn_io64 *x)
{
    fill_io64(one, io, b, h, o_rows, k && (k->flags & ATTN_GROUP_SELECT), x);
}

void head_io64_free(attn_io64 *x)
{
    attn_tensor_f64 *t[] = {&x->q, &x->k, &x->v, &x->o, &x->beta, &x->gate, &x->router, &x->w};
    for (int i = 0; i < 8; i++)
        free(t[i]->data);
    free(x->lse);
}
