/* Plain double reference of `probsparse` (formulas in
 * probsparse_internal.h), sharing with the fp32 kernel the measure and the
 * ranking (ps_measure, ps_select: the same draws, the same rows). Each
 * active row is a two-pass softmax over its keys; each lazy row the mean
 * (or sum) of a running sum of V. Also the fidelity view (ps_ref_view):
 * the softmax rows of active queries and the uniform rows of lazy ones. */
#include "probsparse_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One head's selection: active[r] marks row r. */
typedef struct {
    ps_plan pl;
    unsigned char *active;
} ps_ref_head;

static int ps_ref_open(ps_ref_head *x, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h)
{
    memset(x, 0, sizeof *x);
    int rc = ps_plan_make(&x->pl, a);
    if (rc)
        return rc;
    int64_t Nq = a->Nq, hk = h / (a->H / a->H_kv);
    double *M = malloc(sizeof(double) * (size_t)(Nq > 0 ? Nq : 1));
    ps_rank *rank = malloc(sizeof(ps_rank) * (size_t)(Nq > 0 ? Nq : 1));
    int64_t *act = malloc(sizeof(int64_t) * (size_t)(x->pl.u > 0 ? x->pl.u : 1));
    x->active = calloc((size_t)(Nq > 0 ? Nq : 1), 1);
    if (!M || !rank || !act || !x->active) {
        free(M), free(rank), free(act), free(x->active);
        return attn_fail(ATTN_ENOMEM, "probsparse reference: out of memory for %lld rows", (long long)Nq);
    }
    const double *K = attn_at64(&io->k, b, hk, 0);
    for (int64_t i = 0; i < Nq; i++)
        M[i] = ps_measure(&x->pl, i, attn_at64(&io->q, b, h, i), a->D, NULL, K, io->k.sn);
    ps_select(M, Nq, x->pl.u, act, rank);
    for (int64_t t = 0; t < x->pl.u; t++)
        x->active[act[t]] = 1;
    free(M), free(rank), free(act);
    return 0;
}

/* Softmax of active row i over its n keys: o (Dv), and P (n weights) when
 * not NULL; s is scratch of n doubles. Returns lse. */
static double ps_ref_softmax_row(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, int64_t i, int64_t n,
                                 double *s, double *o, double *P)
{
    int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    const double *q = attn_at64(&io->q, b, h, i);
    double m = -INFINITY, z = 0;
    for (int64_t j = 0; j < n; j++) {
        const double *k = attn_at64(&io->k, b, hk, j);
        double dot = 0;
        for (int64_t d = 0; d < D; d++)
            dot += q[d] * k[d];
        s[j] = attn_scale(a) * dot;
        m = fmax(m, s[j]);
    }
    for (int64_t j = 0; j < n; j++)
        z += s[j] = exp(s[j] - m);
    memset(o, 0, sizeof(double) * (size_t)Dv);
    for (int64_t j = 0; j < n; j++) {
        const double *v = attn_at64(&io->v, b, hk, j);
        for (int64_t d = 0; d < Dv; d++)
            o[d] += s[j] / z * v[d];
        if (P)
            P[j] = s[j] / z;
    }
    return n > 0 ? m + log(z) : -INFINITY;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D|Dv), o is (B,H,Nq,Dv)
int ps_ref_forward(const attn_args *a, const attn_io64 *io)
{
    int64_t Dv = attn_dv(a);
    double *sum = malloc(sizeof(double) * (size_t)Dv), *s = malloc(sizeof(double) * (size_t)(a->Nk > 0 ? a->Nk : 1));
    if (!sum || !s) {
        free(sum), free(s);
        return attn_fail(ATTN_ENOMEM, "probsparse reference: out of memory for %lld keys", (long long)a->Nk);
    }
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            ps_ref_head x;
            int rc = ps_ref_open(&x, a, io, b, h);
            if (rc) {
                free(sum), free(s);
                return rc;
            }
            int64_t hk = h / (a->H / a->H_kv), summed = 0;
            memset(sum, 0, sizeof(double) * (size_t)Dv);
            for (int64_t i = 0; i < a->Nq; i++) {
                int64_t n = ps_keys_of(&x.pl, i);
                double *o = attn_at64(&io->o, b, h, i), lse;
                if (x.active[i]) {
                    lse = ps_ref_softmax_row(a, io, b, h, i, n, s, o, NULL);
                } else {
                    for (; summed < n; summed++) /* n grows with i: the running sum is V's prefix sum */
                        for (int64_t d = 0; d < Dv; d++)
                            sum[d] += attn_at64(&io->v, b, hk, summed)[d];
                    double div = x.pl.causal && x.pl.lazy == PS_LAZY_SUM ? 1.0 : (double)n;
                    for (int64_t d = 0; d < Dv; d++)
                        o[d] = n > 0 ? sum[d] / div : 0;
                    lse = n > 0 ? log((double)n) : -INFINITY;
                }
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
            }
            free(x.active);
        }
    free(sum), free(s);
    return 0;
}

int ps_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    (void)sel; /* the selection is of queries, not keys: no key view */
    ps_ref_head x;
    int rc = ps_ref_open(&x, a, io, b, h);
    if (rc)
        return rc;
    if (x.pl.causal && x.pl.lazy == PS_LAZY_SUM) { /* lazy rows sum to n_i: not attention rows */
        free(x.active);
        return 0;
    }
    double *o = malloc(sizeof(double) * (size_t)attn_dv(a)), *s = malloc(sizeof(double) * (size_t)(a->Nk > 0 ? a->Nk : 1));
    if (!o || !s) {
        free(o), free(s), free(x.active);
        return attn_fail(ATTN_ENOMEM, "probsparse view: out of memory");
    }
    for (int64_t r = 0; r < n_rows; r++) {
        double *p = P + r * a->Nk;
        int64_t i = rows[r], n = ps_keys_of(&x.pl, i);
        memset(p, 0, sizeof(double) * (size_t)a->Nk);
        if (x.active[i])
            ps_ref_softmax_row(a, io, b, h, i, n, s, o, p);
        else
            for (int64_t j = 0; j < n; j++)
                p[j] = 1.0 / (double)n;
    }
    free(o), free(s), free(x.active);
    return ATTN_VIEW_ROWS;
}
