#include "gate.h"

#include "oracle.h"

#include <math.h>
#include <stdlib.h>

static attn_tensor_f64 widen_head(const attn_tensor *t, int64_t b, int64_t h, int64_t n0, int64_t rows)
{
    attn_tensor_f64 w = {NULL, 1, 1, rows, t->D, rows * t->D, rows * t->D, t->D};
    w.data = malloc(sizeof(double) * (size_t)(rows * t->D));
    for (int64_t n = 0; n < rows; n++)
        for (int64_t d = 0; d < t->D; d++)
            w.data[n * t->D + d] = attn_at(t, b, h, n0 + n)[d];
    return w;
}

/* Error of one query row (b, h, i) against the oracle. */
static double row_error(const attn_args *a, const attn_io *io, const attn_tensor_f64 *k,
                        const attn_tensor_f64 *v, double vmax, int64_t b, int64_t h, int64_t i)
{
    /* The oracle on one query row, run as batch b + 1, head h + 1 of a problem
     * whose Q, K and V views repeat that row and KV head (b and h strides 0),
     * so that masks which differ per batch entry or head (attn_mask_varies)
     * are evaluated at the real (b, h): the answer is the last row. */
    attn_args one = *a;
    one.B = b + 1, one.H = one.H_kv = h + 1, one.Nq = 1;
    one.q_off = a->q_off + i;
    attn_tensor_f64 q = widen_head(&io->q, b, h, i, 1), kr = *k, vr = *v;
    q.sb = q.sh = kr.sb = kr.sh = vr.sb = vr.sh = 0;
    q.B = kr.B = vr.B = one.B, q.H = kr.H = vr.H = one.H;
    int64_t rows = one.B * one.H;
    attn_tensor_f64 o = {calloc((size_t)(rows * a->D), sizeof(double)), one.B, one.H, 1, a->D,
                         one.H * a->D, a->D, a->D};
    double *lses = malloc(sizeof(double) * (size_t)rows), lse;
    attn_oracle_forward_f64(&one, &q, &kr, &vr, &o, lses);
    lse = lses[rows - 1];
    free(lses);
    const double *orow = o.data + (rows - 1) * a->D;
    double err = 0, got_lse = io->lse[(b * a->H + h) * a->Nq + i];
    for (int64_t d = 0; d < a->D; d++) {
        double e = fabs((double)attn_at(&io->o, b, h, i)[d] - orow[d]) / (vmax > 0 ? vmax : 1);
        err = e <= err ? err : (isnan(e) ? INFINITY : e);
    }
    if (isinf(lse) || isinf(got_lse))
        err = lse == got_lse ? err : INFINITY;
    else
        err = fmax(err, fabs(got_lse - lse) / (1 + fabs(lse)) * 2); /* lse tol is half O's */
    free(q.data);
    free(o.data);
    return err;
}

void attn_gate_sampled_rows(const attn_args *a, const attn_io *io, double *err)
{
    int64_t G = a->H / a->H_kv, heads = a->B * a->H, step = heads > 4 ? heads / 4 : 1;
    *err = 0;
    for (int64_t bh = 0; bh < heads; bh += step) {
        int64_t b = bh / a->H, h = bh % a->H;
        attn_tensor_f64 k = widen_head(&io->k, b, h / G, 0, a->Nk);
        attn_tensor_f64 v = widen_head(&io->v, b, h / G, 0, a->Nk);
        double vmax = 0;
        for (int64_t n = 0; n < a->Nk * a->D; n++)
            vmax = fmax(vmax, fabs(v.data[n]));
        int64_t rows[3] = {0, a->Nq / 2, a->Nq - 1};
        for (int r = 0; r < 3; r++)
            *err = fmax(*err, row_error(a, io, &k, &v, vmax, b, h, rows[r]));
        free(k.data);
        free(v.data);
    }
}
