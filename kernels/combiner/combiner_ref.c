/* `combiner` double-precision reference and fidelity view: the formulas of
 * combiner_internal.h one query at a time, with no tiling, so the fp32
 * kernel is checked separately from how well Combiner approximates softmax
 * attention. */
#include "combiner.h"

#include <math.h>
#include <stdlib.h>

/* The summaries of one (b, query head) in double: the table of nu entries
 * (combiner_internal.h) with each one's max logit and sum, and the logits. */
typedef struct {
    double *kbar, *vbar, *bias, *m, *z, *a; /* nu x D, nu x Dv, nu, nu, nu, N */
    int64_t *keys;                          /* scratch: the keys of one summary */
} cb_ref_head;

/* The keys of summary u into keys[]; returns their count. */
static int64_t ref_members(const cb_plan *pl, int64_t N, int64_t u, int64_t *keys)
{
    int64_t n = 0;
    if (!pl->axial) {
        for (int64_t j = cb_span0(pl, u); j < cb_span0(pl, u) + cb_span_len(pl, N, u); j++)
            keys[n++] = j;
        return n;
    }
    int64_t R = u / pl->s, c = u % pl->s;
    for (int64_t r = 0; r * pl->s + c < N; r++)
        if (cb_axial_row_in(pl, R, r))
            keys[n++] = r * pl->s + c;
    return n;
}

static void ref_summaries(const attn_args *a, const cb_plan *pl, const attn_io64 *io, int64_t b, int64_t h,
                          cb_ref_head *s)
{
    const int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    for (int64_t j = 0; j < a->Nk; j++) {
        s->a[j] = 0;
        for (int64_t d = 0; pl->learned && d < D; d++)
            s->a[j] += attn_at64(&io->w, 0, h, 0)[d] * attn_at64(&io->k, b, hk, j)[d];
    }
    for (int64_t u = 0; u < pl->nu; u++) {
        int64_t n = ref_members(pl, a->Nk, u, s->keys);
        double m = -INFINITY, z = 0;
        for (int64_t t = 0; t < n; t++)
            m = fmax(m, s->a[s->keys[t]]);
        for (int64_t t = 0; t < n; t++)
            z += exp(s->a[s->keys[t]] - m);
        s->m[u] = m, s->z[u] = z;
        for (int64_t d = 0; d < D; d++) {
            s->kbar[u * D + d] = 0;
            for (int64_t t = 0; t < n; t++)
                s->kbar[u * D + d] += exp(s->a[s->keys[t]] - m) / z * attn_at64(&io->k, b, hk, s->keys[t])[d];
        }
        for (int64_t d = 0; d < Dv; d++) {
            s->vbar[u * Dv + d] = 0;
            for (int64_t t = 0; t < n; t++)
                s->vbar[u * Dv + d] += exp(s->a[s->keys[t]] - m) / z * attn_at64(&io->v, b, hk, s->keys[t])[d];
        }
        s->bias[u] = n == 0 ? -INFINITY : pl->log_count ? log((double)n) : 0.0;
    }
}

/* The summary that brings key j to a query of span R (-1: none, j is
 * direct or not reached), and the first summary row R reads. */
static int64_t ref_summary_of(const cb_plan *pl, int64_t R, int64_t j)
{
    if (!pl->axial)
        return cb_sees_summary(pl, R, j / pl->s) ? j / pl->s : -1;
    return cb_axial_row_in(pl, R, j / pl->s) ? R * pl->s + j % pl->s : -1;
}

static int64_t ref_u0(const cb_plan *pl, int64_t R) { return pl->axial ? R * pl->s : 0; }

static double ref_dot(const double *x, const double *y, int64_t n)
{
    double s = 0;
    for (int64_t d = 0; d < n; d++)
        s += x[d] * y[d];
    return s;
}

/* Row i's weights: ps[r] for the summaries it may read (u = u0 + r; 0 where
 * not attended or empty) and
 * pd[j - j0] for the direct keys j0 .. j0 + ndir (0 where masked); returns the lse. */
static double ref_row_weights(const attn_args *a, const cb_plan *pl, const attn_io64 *io, const cb_ref_head *s,
                              int64_t b, int64_t h, int64_t i, double *ps, double *pd, int64_t *j0, int64_t *ndir)
{
    const int64_t D = a->D, hk = h / (a->H / a->H_kv), R = i / pl->s;
    const double sc = attn_scale(a), *q = attn_at64(&io->q, b, h, i);
    *j0 = cb_span0(pl, R);
    *ndir = pl->causal ? i - *j0 + 1 : cb_span_len(pl, a->Nk, R);
    double m = -INFINITY, z = 0;
    for (int64_t r = 0, u0 = ref_u0(pl, R); r < pl->nsum; r++) { /* fixed: r = u; axial: u = u0 + column */
        int seen = pl->axial || cb_sees_summary(pl, R, r);
        ps[r] = seen ? sc * ref_dot(q, s->kbar + (u0 + r) * D, D) + s->bias[u0 + r] : -INFINITY;
        m = fmax(m, ps[r]);
    }
    for (int64_t c = 0; c < *ndir; c++) {
        pd[c] = sc * ref_dot(q, attn_at64(&io->k, b, hk, *j0 + c), D);
        m = fmax(m, pd[c]);
    }
    for (int64_t r = 0; r < pl->nsum; r++)
        z += ps[r] = exp(ps[r] - m);
    for (int64_t c = 0; c < *ndir; c++)
        z += pd[c] = exp(pd[c] - m);
    for (int64_t r = 0; r < pl->nsum; r++)
        ps[r] /= z;
    for (int64_t c = 0; c < *ndir; c++)
        pd[c] /= z;
    return m + log(z);
}

/* One allocation for the summaries and a row's weights. */
static double *ref_alloc(const attn_args *a, const cb_plan *pl, cb_ref_head *s, double **ps, double **pd)
{
    int64_t D = a->D, Dv = attn_dv(a), nu = pl->nu, N = a->Nk;
    double *buf = malloc(sizeof(double) * (size_t)(nu * (D + Dv + 3) + 2 * N + pl->nsum + pl->s));
    if (!buf) {
        attn_fail(ATTN_ENOMEM, "combiner ref: out of memory for N=%lld, span=%lld", (long long)N, (long long)pl->s);
        return NULL;
    }
    s->kbar = buf, s->vbar = buf + nu * D, s->bias = s->vbar + nu * Dv, s->m = s->bias + nu, s->z = s->m + nu;
    s->a = s->z + nu;
    s->keys = (int64_t *)(s->a + N); /* N slots: a summary has fewer keys */
    *ps = s->a + 2 * N, *pd = *ps + pl->nsum;
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
                    for (int64_t r = 0, u0 = ref_u0(&pl, i / pl.s); r < pl.nsum; r++)
                        acc += ps[r] * s.vbar[(u0 + r) * Dv + d];
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

/* Rows over the original keys: p(j | i) = p(u | i) q_u(j) for a key of
 * summary u, the softmax weight for a direct key, 0 for a later key under a
 * causal mask: non-negative and summing to 1 by construction. */
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
        for (int64_t j = 0, R = rows[n] / pl.s, u; j < N; j++)
            p[j] = (u = ref_summary_of(&pl, R, j)) < 0 ? 0.0 : ps[u - ref_u0(&pl, R)] * exp(s.a[j] - s.m[u]) / s.z[u];
        for (int64_t c = 0; c < pl.s && j0 + c < N; c++)
            p[j0 + c] = c < ndir ? pd[c] : 0.0;
    }
    free(buf);
    return ATTN_VIEW_ROWS;
}
