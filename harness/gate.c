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
    attn_args one = *a;
    one.B = one.H = one.H_kv = one.Nq = 1;
    one.q_off = a->q_off + i;
    attn_tensor_f64 q = widen_head(&io->q, b, h, i, 1);
    attn_tensor_f64 o = {calloc((size_t)a->D, sizeof(double)), 1, 1, 1, a->D, a->D, a->D, a->D};
    double lse;
    attn_oracle_forward_f64(&one, &q, k, v, &o, &lse);
    double err = 0, got_lse = io->lse[(b * a->H + h) * a->Nq + i];
    for (int64_t d = 0; d < a->D; d++) {
        double e = fabs((double)attn_at(&io->o, b, h, i)[d] - o.data[d]) / (vmax > 0 ? vmax : 1);
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
