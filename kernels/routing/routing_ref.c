/* Plain double reference of `routing` (the formulas are in
 * routing_internal.h), written as the paper states it and sharing with the
 * fp32 kernel only the exact routing score (rt_unit_f64, rt_dot_f64: "the
 * same routing") and, with iters, the k-means step (rt_sum_unit,
 * rt_kmeans_step: the same fp32 centroids): every score r_c of every row, the argmax cluster or each
 * cluster's top w by qsort on (score desc, position asc), then per query
 * the multiset of its memberships' candidates and one softmax over it.
 * Also the fidelity view (rt_ref_view): those softmax rows over the
 * original keys and the candidate sets. */
#include "routing_internal.h"
#include "kernels/core/ref_heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double s;
    int64_t i;
} rt_ref_item;

typedef struct {
    rt_plan pl;
    const attn_io64 *io;
    int64_t b, h, hk;
    double *mu;                /* kappa x D: the stored centroids, or the sequence's own (iters) */
    unsigned char *qin, *kin;  /* kappa x N: row i is a member of cluster c */
    double *s;                 /* a row's candidate scores (with multiplicity) */
    int64_t *j;                /* and their keys */
} rt_ref_head;

static void rt_ref_free(void *head)
{
    rt_ref_head *x = head;
    free(x->qin), free(x->kin), free(x->s), free(x->j), free(x->mu);
}

static int rt_ref_order(const void *p, const void *q)
{
    const rt_ref_item *a = p, *b = q;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Memberships of the N rows of (b, hx) of x under head h's centroids into
 * in (kappa x N). */
static int rt_ref_route(rt_ref_head *x, const attn_tensor_f64 *t, int64_t hx, unsigned char *in)
{
    const rt_plan *pl = &x->pl;
    int64_t N = pl->N, D = pl->D, K = pl->kappa;
    double *r = malloc(sizeof(double) * (size_t)(N * K)), *u = malloc(sizeof(double) * (size_t)D);
    rt_ref_item *items = malloc(sizeof *items * (size_t)N);
    if (!r || !u || !items) {
        free(r), free(u), free(items);
        return attn_fail(ATTN_ENOMEM, "routing reference: out of memory for N=%lld", (long long)N);
    }
    for (int64_t i = 0; i < N; i++) {
        rt_unit_f64(attn_at64(t, x->b, hx, i), D, u);
        for (int64_t c = 0; c < K; c++)
            r[i * K + c] = rt_dot_f64(u, x->mu + c * D, D);
    }
    memset(in, 0, (size_t)(K * N));
    for (int64_t i = 0; pl->assign == RT_ARGMAX && i < N; i++) {
        int64_t best = 0;
        for (int64_t c = 1; c < K; c++)
            best = r[i * K + c] > r[i * K + best] ? c : best;
        in[best * N + i] = 1;
    }
    for (int64_t c = 0; pl->assign == RT_BALANCED && c < K; c++) {
        for (int64_t i = 0; i < N; i++)
            items[i] = (rt_ref_item){.s = r[i * K + c], .i = i};
        qsort(items, (size_t)N, sizeof *items, rt_ref_order);
        for (int64_t n = 0; n < pl->w && n < N; n++)
            in[c * N + items[n].i] = 1;
    }
    free(r), free(u), free(items);
    return 0;
}

/* The first c of largest <x^, mu_c>. */
static int64_t rt_ref_nearest(const rt_ref_head *x, const double *row, double *u)
{
    int64_t best = 0, D = x->pl.D;
    double r_best = -INFINITY;
    rt_unit_f64(row, D, u);
    for (int64_t c = 0; c < x->pl.kappa; c++) {
        double r = rt_dot_f64(u, x->mu + c * D, D);
        if (r > r_best)
            r_best = r, best = c;
    }
    return best;
}

/* iters Lloyd steps of the centroids on the sequence's unit queries and
 * keys (rt_kmeans_step with lambda 0), kept in fp32 as the kernel keeps
 * them. */
static int rt_ref_lloyd(rt_ref_head *x)
{
    const rt_plan *pl = &x->pl;
    int64_t D = pl->D, KD = pl->kappa * D;
    float *buf = malloc(sizeof(float) * rt_kmeans_floats(pl)), *mu = malloc(sizeof(float) * (size_t)KD);
    double *u = malloc(sizeof(double) * (size_t)D);
    if (!buf || !mu || !u) {
        free(buf), free(mu), free(u);
        return attn_fail(ATTN_ENOMEM, "routing reference: out of memory for the k-means sums");
    }
    rt_kmeans_sums km = rt_kmeans_at(pl, buf);
    for (int64_t e = 0; e < KD; e++)
        mu[e] = (float)x->mu[e];
    for (int64_t it = 0; it < pl->iters; it++) {
        rt_kmeans_clear(pl, &km);
        for (int64_t i = 0; i < pl->N; i++) { /* every assignment under this step's centroids */
            const double *q = attn_at64(&x->io->q, x->b, x->h, i), *k = attn_at64(&x->io->k, x->b, x->hk, i);
            int64_t cq = rt_ref_nearest(x, q, u), ck = rt_ref_nearest(x, k, u);
            rt_sum_unit(q, D, km.sq + cq * D, u), km.nq[cq]++;
            rt_sum_unit(k, D, km.sk + ck * D, u), km.nk[ck]++;
        }
        rt_kmeans_step(pl, 0.0, &km, mu);
        for (int64_t e = 0; e < KD; e++)
            x->mu[e] = mu[e];
    }
    free(buf), free(mu), free(u);
    return 0;
}

static int rt_ref_open(void *head, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h)
{
    rt_ref_head *x = head;
    memset(x, 0, sizeof *x);
    int rc = rt_plan_make(&x->pl, a);
    if (rc)
        return rc;
    if (!io->w.data || io->w.D < x->pl.kappa * a->D)
        return attn_fail(ATTN_EINVAL, "routing reference: io.w: expected %lld centroid columns per head, found %lld",
                         (long long)(x->pl.kappa * a->D), (long long)(io->w.data ? io->w.D : 0));
    x->io = io, x->b = b, x->h = h, x->hk = h / (a->H / a->H_kv);
    size_t KN = (size_t)(x->pl.kappa * x->pl.N), cap = KN + (size_t)(x->pl.kappa + x->pl.N + 1);
    x->qin = malloc(KN), x->kin = malloc(KN);
    x->s = malloc(sizeof(double) * cap), x->j = malloc(sizeof(int64_t) * cap);
    x->mu = malloc(sizeof(double) * (size_t)(x->pl.kappa * a->D));
    if (!x->qin || !x->kin || !x->s || !x->j || !x->mu) {
        rt_ref_free(x);
        return attn_fail(ATTN_ENOMEM, "routing reference: out of memory for N=%lld", (long long)x->pl.N);
    }
    memcpy(x->mu, attn_at64(&io->w, 0, h, 0), sizeof(double) * (size_t)(x->pl.kappa * a->D));
    if (x->pl.iters)
        rc = rt_ref_lloyd(x);
    if (!rc)
        rc = rt_ref_route(x, &io->q, h, x->qin);
    if (!rc)
        rc = rt_ref_route(x, &io->k, x->hk, x->kin);
    if (rc)
        rt_ref_free(x);
    return rc;
}

static double rt_ref_score(const rt_ref_head *x, int64_t i, int64_t j)
{
    const double *q = attn_at64(&x->io->q, x->b, x->h, i), *k = attn_at64(&x->io->k, x->b, x->hk, j);
    return x->pl.scale * rt_dot_f64(q, k, x->pl.D);
}

/* Query i's candidates over all its memberships, with multiplicity, into
 * x->s, x->j; returns how many. */
static int64_t rt_ref_candidates(rt_ref_head *x, int64_t i)
{
    const rt_plan *pl = &x->pl;
    int64_t N = pl->N, n = 0, self = i + pl->shift;
    for (int64_t c = 0; c < pl->kappa; c++) {
        if (!x->qin[c * N + i])
            continue;
        for (int64_t j = 0; j < N; j++)
            if (x->kin[c * N + j] && (!pl->causal || j <= i + pl->shift))
                x->s[n] = rt_ref_score(x, i, j), x->j[n++] = j;
        if (pl->keep_diag && self >= 0 && self < N && !x->kin[c * N + self])
            x->s[n] = rt_ref_score(x, i, self), x->j[n++] = self;
    }
    return n;
}

/* Row i: o (Dv) and its lse; with P / sel (N each, may be NULL) the
 * softmax weights over the original keys and the candidate set. */
static double rt_ref_row(void *head, int64_t i, double *o, double *P, unsigned char *sel)
{
    rt_ref_head *x = head;
    int64_t n = rt_ref_candidates(x, i), Dv = x->pl.Dv;
    memset(o, 0, sizeof(double) * (size_t)Dv);
    if (n == 0)
        return -INFINITY;
    double m = -INFINITY, z = 0;
    for (int64_t c = 0; c < n; c++)
        m = fmax(m, x->s[c]);
    for (int64_t c = 0; c < n; c++)
        z += exp(x->s[c] - m);
    double lse = m + log(z);
    for (int64_t c = 0; c < n; c++) {
        double p = exp(x->s[c] - lse);
        const double *v = attn_at64(&x->io->v, x->b, x->hk, x->j[c]);
        for (int64_t d = 0; d < Dv; d++)
            o[d] += p * v[d];
        if (P)
            P[x->j[c]] += p, sel[x->j[c]] = 1;
    }
    return lse;
}

static const attn_ref_heads rt_ref = {"routing", rt_ref_open, rt_ref_row, rt_ref_free};

// q is (B,H,N,D), k is (B,H_kv,N,D), v is (B,H_kv,N,Dv), w is (1,H,1,>=kappa D); o is (B,H,N,Dv)
int rt_ref_forward(const attn_args *a, const attn_io64 *io)
{
    rt_ref_head x;
    return attn_ref_heads_forward(&rt_ref, &x, a, io);
}

int rt_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    rt_ref_head x;
    return attn_ref_heads_view(&rt_ref, &x, a, io, b, h, rows, n_rows, P, sel);
}
