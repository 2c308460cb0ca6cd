/* Plain double reference of `cca` (Chen et al. 2024; the formulas are in
 * cca_internal.h), written from the definition one group and one query at a
 * time and sharing no code with the fp32 kernel: each complete group pooled
 * by its last query, then per query one softmax over its core tokens and its
 * local keys. Also the fidelity view: the same weights spread over the
 * original keys (core token c gives key j of its group p_c w_cj). */
#include "cca_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double cca_ref_dot(const double *x, const double *y, int64_t n)
{
    double s = 0;
    for (int64_t d = 0; d < n; d++)
        s += x[d] * y[d];
    return s;
}

/* Pooled tokens of head (b, h) in double: kbar [n_pool x D], vbar [n_pool x Dv], w [n_pool x g]. */
typedef struct {
    double *kbar, *vbar, *w, *p; /* p: one query's token probabilities (n_pool + local) */
} cca_ref_head;

static int cca_ref_alloc(const attn_args *a, const cca_plan *pl, cca_ref_head *r)
{
    size_t n = (size_t)(pl->n_pool + 1);
    r->kbar = malloc(sizeof(double) * n * (size_t)a->D);
    r->vbar = malloc(sizeof(double) * n * (size_t)attn_dv(a));
    r->w = malloc(sizeof(double) * n * (size_t)pl->g);
    r->p = malloc(sizeof(double) * (n + (size_t)a->Nk));
    if (r->kbar && r->vbar && r->w && r->p)
        return 0;
    free(r->kbar), free(r->vbar), free(r->w), free(r->p);
    return attn_fail(ATTN_ENOMEM, "cca reference: out of memory for %lld keys", (long long)a->Nk);
}

static void cca_ref_free(cca_ref_head *r) { free(r->kbar), free(r->vbar), free(r->w), free(r->p); }

static void cca_ref_pool(const attn_args *a, const cca_plan *pl, const attn_io64 *io, int64_t b, int64_t h,
                         cca_ref_head *r)
{
    int64_t g = pl->g, D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    double sc = attn_scale(a);
    for (int64_t c = 0; c < pl->n_pool; c++) {
        const double *q = attn_at64(&io->q, b, h, c * g + g - 1);
        double *w = r->w + c * g, m = -INFINITY, Z = 0;
        for (int64_t j = 0; j < g; j++) {
            w[j] = sc * cca_ref_dot(q, attn_at64(&io->k, b, hk, c * g + j), D);
            m = fmax(m, w[j]);
        }
        for (int64_t j = 0; j < g; j++)
            Z += (w[j] = exp(w[j] - m));
        double *kb = r->kbar + c * D, *vb = r->vbar + c * Dv;
        memset(kb, 0, sizeof(double) * (size_t)D);
        memset(vb, 0, sizeof(double) * (size_t)Dv);
        for (int64_t j = 0; j < g; j++) {
            w[j] /= Z;
            for (int64_t d = 0; d < D; d++)
                kb[d] += w[j] * attn_at64(&io->k, b, hk, c * g + j)[d];
            for (int64_t d = 0; d < Dv; d++)
                vb[d] += w[j] * attn_at64(&io->v, b, hk, c * g + j)[d];
        }
    }
}

/* Token probabilities of query i: r->p[0 .. nc) its core tokens, r->p[nc ..
 * nc + i - s + 1) its local keys s .. i. Returns the logsumexp. */
static double cca_ref_probs(const attn_args *a, const cca_plan *pl, const attn_io64 *io, int64_t b, int64_t h,
                            int64_t i, cca_ref_head *r)
{
    int64_t nc = cca_cores(pl, i), s = cca_local_start(pl, i), n = nc + i - s + 1, hk = h / (a->H / a->H_kv);
    const double *q = attn_at64(&io->q, b, h, i);
    double sc = attn_scale(a), m = -INFINITY, Z = 0;
    for (int64_t c = 0; c < nc; c++)
        r->p[c] = sc * cca_ref_dot(q, r->kbar + c * a->D, a->D);
    for (int64_t j = s; j <= i; j++)
        r->p[nc + j - s] = sc * cca_ref_dot(q, attn_at64(&io->k, b, hk, j), a->D);
    for (int64_t t = 0; t < n; t++)
        m = fmax(m, r->p[t]);
    for (int64_t t = 0; t < n; t++)
        Z += (r->p[t] = exp(r->p[t] - m));
    for (int64_t t = 0; t < n; t++)
        r->p[t] /= Z;
    return m + log(Z);
}

// q is (B,H,N,D), k and v are (B,H_kv,N,D); o is (B,H,N,Dv); lse (B,H,N) when given
int cca_ref_forward(const attn_args *a, const attn_io64 *io)
{
    cca_plan pl;
    cca_ref_head r;
    int rc = cca_plan_make(&pl, a);
    if (rc || (rc = cca_ref_alloc(a, &pl, &r)) != 0)
        return rc;
    int64_t Dv = attn_dv(a);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            cca_ref_pool(a, &pl, io, b, h, &r);
            for (int64_t i = 0; i < a->Nq; i++) {
                double lse = cca_ref_probs(a, &pl, io, b, h, i, &r), *o = attn_at64(&io->o, b, h, i);
                int64_t nc = cca_cores(&pl, i), s = cca_local_start(&pl, i);
                memset(o, 0, sizeof(double) * (size_t)Dv);
                for (int64_t c = 0; c < nc; c++)
                    for (int64_t d = 0; d < Dv; d++)
                        o[d] += r.p[c] * r.vbar[c * Dv + d];
                for (int64_t j = s; j <= i; j++)
                    for (int64_t d = 0; d < Dv; d++)
                        o[d] += r.p[nc + j - s] * attn_at64(&io->v, b, h / (a->H / a->H_kv), j)[d];
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
            }
        }
    cca_ref_free(&r);
    return 0;
}

/* The fidelity view: each requested row's weights over the original keys
 * (key j of a pooled group c gets p_c w_cj, a local key its own p_j): the
 * rows are non-negative and sum to 1, and P V is the output. No content
 * selection: every earlier key is reached. */
int cca_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n,
                 double *P, unsigned char *sel)
{
    (void)sel;
    cca_plan pl;
    cca_ref_head r;
    int rc = cca_plan_make(&pl, a);
    if (rc || (rc = cca_ref_alloc(a, &pl, &r)) != 0)
        return rc;
    cca_ref_pool(a, &pl, io, b, h, &r);
    for (int64_t k = 0; k < n; k++) {
        int64_t i = rows[k], nc, s;
        double *row = P + k * a->Nk;
        memset(row, 0, sizeof(double) * (size_t)a->Nk);
        cca_ref_probs(a, &pl, io, b, h, i, &r);
        nc = cca_cores(&pl, i), s = cca_local_start(&pl, i);
        for (int64_t c = 0; c < nc; c++)
            for (int64_t j = 0; j < pl.g; j++)
                row[c * pl.g + j] = r.p[c] * r.w[c * pl.g + j];
        for (int64_t j = s; j <= i; j++)
            row[j] = r.p[nc + j - s];
    }
    cca_ref_free(&r);
    return ATTN_VIEW_ROWS;
}
