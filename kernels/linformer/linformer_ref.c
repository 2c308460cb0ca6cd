/* `linformer` double-precision reference: the formulas of linformer.h
 * straight from the weight layout, one (b, head) and one query at a time, so
 * the fp32 kernel is checked separately from how well Linformer approximates
 * softmax attention. */
#include "linformer.h"

#include <math.h>
#include <stdlib.h>

/* K~ (mat 0) or V~ (mat 1) of (b, h): [k x D], from the first L keys. */
static void ref_project(const attn_args *a, const lf_plan *pl, const attn_io64 *io, int64_t b, int64_t h, int mat,
                        double *out)
{
    int64_t L = attn_kv_len(a, b), D = a->D, off = (pl->share_ef ? 0 : mat) * pl->k * pl->n;
    const attn_tensor_f64 *x = mat ? &io->v : &io->k;
    for (int64_t r = 0; r < pl->k; r++)
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t j = 0; j < L; j++)
                s += *lf_theta_at64(pl, &io->w, off + r * pl->n + j) * attn_at64(x, b, h, j)[d];
            out[r * D + d] = s;
        }
}

/* One query row: softmax over the k projected keys, o = p V~; returns the lse. */
static double ref_row(const lf_plan *pl, int64_t D, double sc, const double *q, const double *kt, const double *vt,
                      double *s, double *o)
{
    double m = -INFINITY, l = 0;
    for (int64_t r = 0; r < pl->k; r++) {
        s[r] = 0;
        for (int64_t d = 0; d < D; d++)
            s[r] += q[d] * kt[r * D + d];
        s[r] *= sc;
        m = fmax(m, s[r]);
    }
    for (int64_t r = 0; r < pl->k; r++)
        l += s[r] = exp(s[r] - m);
    for (int64_t d = 0; d < D; d++) {
        o[d] = 0;
        for (int64_t r = 0; r < pl->k; r++)
            o[d] += s[r] / l * vt[r * D + d];
    }
    return m + log(l);
}

int attn_linformer_ref_forward(const attn_args *a, const attn_io64 *io)
{
    lf_plan pl;
    int rc = attn_linformer_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->w.data || io->w.D != pl.W)
        return attn_fail(ATTN_EINVAL, "linformer ref: expected io.w with %lld floats per head, found %lld",
                         (long long)pl.W, io->w.data ? (long long)io->w.D : 0LL);
    int64_t D = a->D, k = pl.k;
    double *kt = malloc(sizeof(double) * (size_t)(2 * k * D + k)), *vt = kt + k * D, *s = vt + k * D;
    if (!kt)
        return attn_fail(ATTN_ENOMEM, "linformer ref: out of memory for k=%lld, D=%lld", (long long)k, (long long)D);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            ref_project(a, &pl, io, b, h / (a->H / a->H_kv), 0, kt);
            ref_project(a, &pl, io, b, h / (a->H / a->H_kv), 1, vt);
            for (int64_t i = 0; i < a->Nq; i++) {
                double *o = attn_at64(&io->o, b, h, i), lse = -INFINITY;
                if (i < attn_q_len(a, b))
                    lse = ref_row(&pl, D, attn_scale(a), attn_at64(&io->q, b, h, i), kt, vt, s, o);
                else
                    for (int64_t d = 0; d < D; d++)
                        o[d] = 0;
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
            }
        }
    free(kt);
    return 0;
}
