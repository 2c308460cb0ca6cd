/* `tcnca` double reference: the formulas of tcnca.h in plain loops, one
 * output element at a time: every conv layer as a direct sum over taps,
 * every chunk row as a softmax over the keys of its chunk (max subtracted),
 * with no tiling, buffers shared between rows or BLAS. */
#include "tcnca.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The TCN of rows t (b, h) of x into out (N x D), through two N x D buffers. */
static void ref_stack(const tcnca_plan *pl, const attn_tensor_f64 *x, int64_t b, int64_t h, const double *w,
                      double *cur, double *next, double *out)
{
    int64_t N = x->N, D = x->D;
    for (int64_t t = 0; t < N; t++)
        memcpy(cur + t * D, attn_at64(x, b, h, t), sizeof(double) * (size_t)D);
    for (int64_t l = 0; l < pl->layers; l++) {
        int64_t dil = attn_tcnca_dilation(pl, l), s = attn_tcnca_shift(pl, l);
        for (int64_t t = 0; t < N; t++)
            for (int64_t d = 0; d < D; d++) {
                double y = 0;
                for (int64_t tau = 0; tau < pl->taps; tau++) {
                    int64_t src = t - tau * dil + s;
                    if (src >= 0 && src < N)
                        y += w[(l * pl->taps + tau) * D + d] * cur[src * D + d];
                }
                next[t * D + d] = y;
            }
        memcpy(cur, next, sizeof(double) * (size_t)(N * D));
    }
    memcpy(out, cur, sizeof(double) * (size_t)(N * D));
}

/* Row i of the chunked attention of q, k (N x D) over v into o and lse. */
static void ref_row(const tcnca_plan *pl, const attn_tensor_f64 *v, int64_t b, int64_t h, int64_t D,
                    const double *q, const double *k, int64_t i, double *p, double *o, double *lse)
{
    int64_t N = v->N, Dv = v->D, lo = i / pl->c * pl->c, hi = pl->full ? lo + pl->c : i + 1;
    hi = hi < N ? hi : N;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = lo; j < hi; j++) {
        double z = 0;
        for (int64_t d = 0; d < D; d++)
            z += q[i * D + d] * k[j * D + d];
        p[j - lo] = pl->sc * z;
        mx = fmax(mx, p[j - lo]);
    }
    for (int64_t j = lo; j < hi; j++)
        sum += p[j - lo] = exp(p[j - lo] - mx);
    for (int64_t e = 0; e < Dv; e++) {
        double acc = 0;
        for (int64_t j = lo; j < hi; j++)
            acc += p[j - lo] / sum * attn_at64(v, b, h, j)[e];
        o[e] = acc;
    }
    if (lse)
        *lse = mx + log(sum);
}

int attn_tcnca_ref_forward(const attn_args *a, const attn_io64 *io)
{
    tcnca_plan pl;
    int rc = attn_tcnca_plan(&pl, a);
    if (rc)
        return rc;
    int64_t N = a->Nq, D = a->D;
    size_t nd = (size_t)(N * D);
    double *buf = malloc(sizeof(double) * (4 * nd + (size_t)pl.c));
    if (!buf)
        return attn_fail(ATTN_ENOMEM, "tcnca ref: out of memory for N=%lld D=%lld", (long long)N, (long long)D);
    double *qp = buf, *kp = qp + nd, *t0 = kp + nd, *t1 = t0 + nd, *p = t1 + nd;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            const double *w = io->w.data ? attn_at64(&io->w, 0, h, 0) : NULL;
            ref_stack(&pl, &io->q, b, h, w, t0, t1, qp);
            ref_stack(&pl, &io->k, b, h, w, t0, t1, kp);
            for (int64_t i = 0; i < N; i++)
                ref_row(&pl, &io->v, b, h, D, qp, kp, i, p, attn_at64(&io->o, b, h, i),
                        io->lse ? io->lse + (b * a->H + h) * N + i : NULL);
        }
    free(buf);
    return 0;
}
