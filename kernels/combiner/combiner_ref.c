/* `combiner` double-precision reference and fidelity view: the formulas of
 * combiner_internal.h one query at a time, with no tiling, so the fp32
 * kernel is checked separately from how well Combiner approximates softmax
 * attention. */
#include "combiner.h"

#include <math.h>
#include <stdlib.h>

/* The summaries of one (b, query head) in double. */
typedef struct {
    double *kbar, *vbar, *bias, *qw; /* nsp x D, nsp x Dv, nsp, N */
} cb_ref_head;

static void ref_summaries(const attn_args *a, const cb_plan *pl, const attn_io64 *io, int64_t b, int64_t h,
                          cb_ref_head *s)
{
    const int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    for (int64_t r = 0; r < pl->nsp; r++) {
        int64_t j0 = cb_span0(pl, r), L = cb_span_len(pl, a->Nk, r);
        double m = -INFINITY, z = 0, *q = s->qw + j0;
        for (int64_t j = 0; j < L; j++) {
            q[j] = 0;
            const double *k = attn_at64(&io->k, b, hk, j0 + j), *w = pl->learned ? attn_at64(&io->w, 0, h, 0) : NULL;
            for (int64_t d = 0; w && d < D; d++)
                q[j] += w[d] * k[d];
            m = fmax(m, q[j]);
        }
        for (int64_t j = 0; j < L; j++)
            z += q[j] = exp(q[j] - m);
        for (int64_t j = 0; j < L; j++)
            q[j] /= z;
        for (int64_t d = 0; d < D; d++) {
            s->kbar[r * D + d] = 0;
            for (int64_t j = 0; j < L; j++)
                s->kbar[r * D + d] += q[j] * attn_at64(&io->k, b, hk, j0 + j)[d];
        }
        for (int64_t d = 0; d < Dv; d++) {
            s->vbar[r * Dv + d] = 0;
            for (int64_t j = 0; j < L; j++)
                s->vbar[r * Dv + d] += q[j] * attn_at64(&io->v, b, hk, j0 + j)[d];
        }
        s->bias[r] = pl->log_count ? log((double)L) : 0.0;
    }
}

static double ref_dot(const double *x, const double *y, int64_t n)
{
    double s = 0;
    for (int64_t d = 0; d < n; d++)
        s += x[d] * y[d];
    return s;
}

/* Row i's weights: ps[r] for the summaries (0 where not attended) and
 * pd[j - j0] for the direct keys j0 .. j0 + ndir (0 where masked); returns the lse. */
static double ref_row_weights(const attn_args *a, const cb_plan *pl, const attn_io64 *io, const cb_ref_head *s,
                              int64_t b, int64_t h, int64_t i, double *ps, double *pd, int64_t *j0, int64_t *ndir)
{
    const int64_t D = a->D, hk = h / (a->H / a->H_kv), R = i / pl->s;
    const double sc = attn_scale(a), *q = attn_at64(&io->q, b, h, i);
    *j0 = cb_span0(pl, R);
    *ndir = pl->causal ? i - *j0 + 1 : cb_span_len(pl, a->Nk, R);
    double m = -INFINITY, z = 0;
    for (int64_t r = 0; r < pl->nsp; r++) {
        ps[r] = cb_sees_summary(pl, R, r) ? sc * ref_dot(q, s->kbar + r * D, D) + s->bias[r] : -INFINITY;
        m = fmax(m, ps[r]);
    }
    for (int64_t c = 0; c < *ndir; c++) {
        pd[c] = sc * ref_dot(q, attn_at64(&io->k, b, hk, *j0 + c), D);
        m = fmax(m, pd[c]);
    }
    for (int64_t r = 0; r < pl->nsp; r++)
        z += ps[r] = exp(ps[r] - m);
    for (int64_t c = 0; c < *ndir; c++)
        z += pd[c] = exp(pd[c] - m);
    for (int64_t r = 0; r < pl->nsp; r++)
        ps[r] /= z;
    for (int64_t c = 0; c < *ndir; c++)
        pd[c] /= z;
    return m + log(z);
}

/* One allocation for the summaries and a row's weights. */
static double *ref_alloc(const attn_args *a, const cb_plan *pl, cb_ref_head *s, double **ps, double **pd)
{
    int64_t D = a->D, Dv = attn_dv(a), ns = pl->nsp, N = a->Nk;
    double *buf = malloc(sizeof(double) * (size_t)(ns * (D + Dv + 2) + 2 * N + pl->s));
    if (!buf) {
        attn_fail(ATTN_ENOMEM, "combiner ref: out of memory for N=%lld, span=%lld", (long long)N, (long long)pl->s);
        return NULL;
    }
    s->kbar = buf, s->vbar = buf + ns * D, s->bias = s->vbar + ns * Dv, s->qw = s->bias + ns;
    *ps = s->qw + N, *pd = *ps + ns;
    return buf;
}

int cb_ref_forward(const attn_args *a, const attn_io64 *io)
{
    cb_plan pl;
    int rc = cb_plan_make(&pl, a);
    if (rc)
        return rc;
    if (pl.W && (!io->w.data || io->w.D != pl.W))
        return attn_fail(ATTN_EINVAL, "combiner ref: expected io.w with %lld floats per head", (long long)pl.W);
    cb_ref_head s;
    double *ps, *pd, *buf = ref_alloc(a, &pl, &s, &ps, &pd);
    if (!buf)
        return ATTN_ENOMEM;
    const int64_t Dv = attn_dv(a), hk_of = a->H / a->H_kv;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            ref_summaries(a, &pl, io, b, h, &s);
            for (int64_t i = 0; i < a->Nq; i++) {
                int64_t j0, ndir;
                double lse = ref_row_weights(a, &pl, io, &s, b, h, i, ps, pd, &j0, &ndir), *o = attn_at64(&io->o, b, h, i);
                for (int64_t d = 0; d < Dv; d++) {
                    double acc = 0;
                    for (int64_t r = 0; r < pl.nsp; r++)
                        acc += ps[r] * s.vbar[r * Dv + d];
                    for (int64_t c = 0; c < ndir; c++)
                        acc += pd[c] * attn_at64(&io->v, b, h / hk_of, j0 + c)[d];
                    o[d] = acc;
                }
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
            }
        }
    free(buf);
    return 0;
}

/* Rows over the original keys: p(j | i) = p(span r | i) q_r(j) for a key of a
 * summarised span, the softmax weight for a direct key, 0 for a later key
 * under a causal mask: non-negative and summing to 1 by construction. */
int cb_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    (void)sel;
    cb_plan pl;
    int rc = cb_plan_make(&pl, a);
    if (rc)
        return rc;
    cb_ref_head s;
    double *ps, *pd, *buf = ref_alloc(a, &pl, &s, &ps, &pd);
    if (!buf)
        return ATTN_ENOMEM;
    ref_summaries(a, &pl, io, b, h, &s);
    const int64_t N = a->Nk;
    for (int64_t n = 0; n < n_rows; n++) {
        int64_t j0, ndir;
        double *p = P + n * N;
        ref_row_weights(a, &pl, io, &s, b, h, rows[n], ps, pd, &j0, &ndir);
        for (int64_t j = 0; j < N; j++)
            p[j] = ps[j / pl.s] * s.qw[j];
        for (int64_t c = 0; c < pl.s && j0 + c < N; c++)
            p[j0 + c] = c < ndir ? pd[c] : 0.0;
    }
    free(buf);
    return ATTN_VIEW_ROWS;
}
