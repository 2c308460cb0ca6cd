/* `routing` assignment (docs/kernels/routing.md): which cluster(s) each
 * query and key of a head belongs to.
 *
 * Scores r_c(x) = <x^, mu_c> of all N rows come from one cblas_sgemm of the
 * fp32 unit rows with the centroids. fp32 rounding moves a score by at most
 * tol = 4 (D + 2) 2^-24 max_c |mu_c| (the unit row is rounded once, the dot
 * product of D terms at most D roundings of terms bounded by |mu_c|); where
 * a decision depends on scores closer than 2 tol, the scores in question are
 * recomputed exactly (rt_unit_f64, rt_dot_f64 on the widened row), which is
 * what the double reference computes. So the kernel routes exactly as the
 * reference, and `check` compares arithmetic, not cluster flips.
 *   argmax:   candidates are the clusters within 2 tol of the fp32 best.
 *   balanced: t = the w-th largest fp32 score of cluster c; rows above
 *             t + 2 tol are in, below t - 2 tol out, the rest ranked by the
 *             exact score (ties: lower position) fill the remaining places. */
#include "routing_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void rt_unit_f64(const double *x, int64_t D, double *xh)
{
    double n2 = 0;
    for (int64_t d = 0; d < D; d++)
        n2 += x[d] * x[d];
    double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
    for (int64_t d = 0; d < D; d++)
        xh[d] = x[d] * inv;
}

double rt_dot_f64(const double *a, const double *b, int64_t D)
{
    double s = 0;
    for (int64_t d = 0; d < D; d++)
        s += a[d] * b[d];
    return s;
}

typedef struct {
    double s;
    int64_t i;
} rt_cand;

/* The thread's assignment scratch, carved from one float buffer. */
typedef struct {
    float *xh, *S, *col;      /* N x D unit rows, N x kappa scores, N scores of one cluster */
    double *mu, *xd;          /* kappa x D centroids, 2 D (a widened row, its unit row) */
    rt_cand *cand;            /* N */
    int32_t *cl;              /* N */
    unsigned char *mark;      /* N */
    int32_t *members;         /* 2 (kappa + 1) + 2 rt_members_max */
    rt_kmeans_sums km;        /* iters > 0: the sequence's own centroids and their sums */
} rt_scratch;

static size_t rt_members_ints(const rt_plan *pl) { return (size_t)(2 * (pl->kappa + 1) + 2 * rt_members_max(pl)); }

size_t rt_assign_floats(const rt_plan *pl)
{
    size_t N = (size_t)pl->N, D = (size_t)pl->D, K = (size_t)pl->kappa;
    size_t km = pl->iters ? rt_kmeans_floats(pl) : 0;
    return N * D + N * K + N + 2 * (K * D + 2 * D) + 4 * N + N + (N + 3) / 4 + rt_members_ints(pl) + km + 32;
}

static rt_scratch rt_scratch_at(const rt_plan *pl, float *p)
{
    size_t N = (size_t)pl->N, D = (size_t)pl->D, K = (size_t)pl->kappa;
    rt_scratch s;
    s.mu = (double *)p; /* doubles first: the slot is 64-byte aligned */
    s.xd = s.mu + K * D;
    s.cand = (rt_cand *)(s.xd + 2 * D);
    s.xh = (float *)(s.cand + N);
    s.S = s.xh + N * D;
    s.col = s.S + N * K;
    s.cl = (int32_t *)(s.col + N);
    s.members = s.cl + N;
    s.mark = (unsigned char *)(s.members + rt_members_ints(pl));
    float *km = (float *)(((uintptr_t)(s.mark + N) + 63) & ~(uintptr_t)63); /* doubles inside */
    s.km = pl->iters ? rt_kmeans_at(pl, km) : (rt_kmeans_sums){0};
    return s;
}

/* A head's centroids (kappa x D) widened, and the rounding bound of a score. */
static double rt_load_centroids(const rt_plan *pl, const float *mu32, double *mu)
{
    double nmax = 0;
    for (int64_t c = 0; c < pl->kappa; c++) {
        const float *m = mu32 + c * pl->D;
        for (int64_t d = 0; d < pl->D; d++)
            mu[c * pl->D + d] = m[d];
        nmax = fmax(nmax, sqrt(rt_dot_f64(mu + c * pl->D, mu + c * pl->D, pl->D)));
    }
    return 4.0 * (double)(pl->D + 2) * 0x1p-24 * nmax;
}

/* fp32 unit rows of (b, hx) of x and their scores S = X^ mu^T (N x kappa). */
static double rt_scores(const rt_plan *pl, const attn_tensor *x, const float *mu, int64_t b, int64_t hx,
                        const rt_scratch *s)
{
    int64_t N = pl->N, D = pl->D;
    for (int64_t i = 0; i < N; i++) {
        const float *r = attn_at(x, b, hx, i);
        double n2 = 0;
        for (int64_t d = 0; d < D; d++)
            n2 += (double)r[d] * r[d];
        double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
        for (int64_t d = 0; d < D; d++)
            s->xh[i * D + d] = (float)(r[d] * inv);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)pl->kappa, (int)D, 1.0f, s->xh, (int)D,
                mu, (int)D, 0.0f, s->S, (int)pl->kappa);
    return 2.0 * (double)(N * D * pl->kappa);
}

/* The exact unit row of row i of (b, hx) of x into s->xd + D. */
static const double *rt_exact_unit(const rt_plan *pl, const attn_tensor *x, int64_t b, int64_t hx, int64_t i,
                                   const rt_scratch *s)
{
    const float *r = attn_at(x, b, hx, i);
    for (int64_t d = 0; d < pl->D; d++)
        s->xd[d] = r[d];
    rt_unit_f64(s->xd, pl->D, s->xd + pl->D);
    return s->xd + pl->D;
}

/* Argmax cluster of every row into s->cl (see the file comment). */
static void rt_argmax_all(const rt_plan *pl, const attn_tensor *x, int64_t b, int64_t hx, double tol,
                          const rt_scratch *s)
{
    int64_t K = pl->kappa;
    for (int64_t i = 0; i < pl->N; i++) {
        const float *r = s->S + i * K;
        float best = -INFINITY, second = -INFINITY;
        int64_t c_best = 0;
        for (int64_t c = 0; c < K; c++) {
            if (r[c] > best)
                second = best, best = r[c], c_best = c;
            else if (r[c] > second)
                second = r[c];
        }
        if ((double)best - (double)second > 2 * tol) {
            s->cl[i] = (int32_t)c_best;
            continue;
        }
        const double *xh = rt_exact_unit(pl, x, b, hx, i, s);
        double e_best = -INFINITY;
        int64_t c_exact = 0;
        for (int64_t c = 0; c < K; c++) { /* only clusters that may tie with the best */
            if ((double)r[c] < (double)best - 2 * tol)
                continue;
            double e = rt_dot_f64(xh, s->mu + c * pl->D, pl->D);
            if (e > e_best) /* the first of the largest, as the reference */
                e_best = e, c_exact = c;
        }
        s->cl[i] = (int32_t)c_exact;
    }
}

/* Members by cluster from s->cl: off (kappa + 1), idx ascending per cluster. */
static void rt_group(const rt_plan *pl, const int32_t *cl, int32_t *off, int32_t *idx)
{
    memset(off, 0, sizeof(int32_t) * (size_t)(pl->kappa + 1));
    for (int64_t i = 0; i < pl->N; i++)
        off[cl[i] + 1]++;
    for (int64_t c = 0; c < pl->kappa; c++)
        off[c + 1] += off[c];
    for (int64_t i = 0; i < pl->N; i++)
        idx[off[cl[i]]++] = (int32_t)i;
    for (int64_t c = pl->kappa; c > 0; c--) /* the fill advanced each start to the next one's */
        off[c] = off[c - 1];
    off[0] = 0;
}

/* The k-th largest (k >= 1) of x[0..n) (reordered), NaN treated as -inf. */
static float rt_kth_largest(float *x, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = isnan(x[i]) ? -INFINITY : x[i];
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float p = x[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) { /* Hoare partition, descending */
            while (x[i] > p)
                i++;
            while (x[j] < p)
                j--;
            if (i <= j) {
                float t = x[i];
                x[i++] = x[j], x[j--] = t;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            return x[want];
    }
    return x[want];
}

static int rt_cand_order(const void *x, const void *y)
{
    const rt_cand *p = x, *q = y;
    if (p->s != q->s)
        return p->s > q->s ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

/* Balanced members of every cluster: off (kappa + 1), idx (kappa w),
 * ascending per cluster (see the file comment). */
static void rt_balanced_all(const rt_plan *pl, const attn_tensor *x, int64_t b, int64_t hx, double tol,
                            const rt_scratch *s, int32_t *off, int32_t *idx)
{
    int64_t N = pl->N, K = pl->kappa, w = pl->w < N ? pl->w : N;
    memset(s->mark, 0, (size_t)N);
    for (int64_t c = 0; c < K; c++) {
        for (int64_t i = 0; i < N; i++)
            s->col[i] = s->S[i * K + c];
        float t = rt_kth_largest(s->col, N, w);
        int64_t n_in = 0, n_cand = 0;
        for (int64_t i = 0; i < N; i++) {
            double v = isnan(s->S[i * K + c]) ? -INFINITY : (double)s->S[i * K + c];
            if (v > (double)t + 2 * tol)
                s->mark[i] = 1, n_in++;
            else if (v >= (double)t - 2 * tol)
                s->cand[n_cand++] = (rt_cand){.s = rt_dot_f64(rt_exact_unit(pl, x, b, hx, i, s), s->mu + c * pl->D,
                                                              pl->D), .i = i};
        }
        qsort(s->cand, (size_t)n_cand, sizeof *s->cand, rt_cand_order);
        for (int64_t r = 0; r < n_cand && n_in < w; r++)
            s->mark[s->cand[r].i] = 1, n_in++;
        off[c] = (int32_t)(c * w);
        int64_t at = c * w;
        for (int64_t i = 0; i < N; i++)
            if (s->mark[i])
                idx[at++] = (int32_t)i, s->mark[i] = 0;
    }
    off[K] = (int32_t)(K * w);
}

static double rt_route_side(const rt_plan *pl, const attn_tensor *x, const float *mu, int64_t b, int64_t hx,
                            double tol, const rt_scratch *s, int32_t *off, int32_t *idx)
{
    double f = rt_scores(pl, x, mu, b, hx, s);
    if (pl->assign == RT_ARGMAX) {
        rt_argmax_all(pl, x, b, hx, tol, s);
        rt_group(pl, s->cl, off, idx);
    } else {
        rt_balanced_all(pl, x, b, hx, tol, s, off, idx);
    }
    return f;
}

/* Argmax clusters of the N rows of (b, hx) of x under centroids mu into
 * s->cl; returns the FLOPs. */
static double rt_argmax_side(const rt_plan *pl, const attn_tensor *x, const float *mu, int64_t b, int64_t hx,
                             const rt_scratch *s)
{
    double tol = rt_load_centroids(pl, mu, s->mu);
    double f = rt_scores(pl, x, mu, b, hx, s);
    rt_argmax_all(pl, x, b, hx, tol, s);
    return f;
}

/* Adds the exact unit rows of (b, hx) of x to the sums of their clusters s->cl. */
static void rt_sum_side(const rt_plan *pl, const attn_tensor *x, int64_t b, int64_t hx, const rt_scratch *s,
                        double *sum, int64_t *cnt)
{
    for (int64_t i = 0; i < pl->N; i++) {
        const float *r = attn_at(x, b, hx, i);
        for (int64_t d = 0; d < pl->D; d++)
            s->xd[d] = r[d];
        rt_sum_unit(s->xd, pl->D, sum + s->cl[i] * pl->D, s->xd + pl->D);
        cnt[s->cl[i]]++;
    }
}

/* iters Lloyd steps on the sequence's own rows from mu0 (see rt_kmeans_step). */
static const float *rt_sequence_centroids(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t hk,
                                          const float *mu0, const rt_scratch *s, double *flops)
{
    const rt_kmeans_sums *km = &s->km;
    memcpy(km->mu, mu0, sizeof(float) * (size_t)(pl->kappa * pl->D));
    for (int64_t it = 0; it < pl->iters; it++) {
        rt_kmeans_clear(pl, km);
        *flops += rt_argmax_side(pl, &io->q, km->mu, b, h, s);
        rt_sum_side(pl, &io->q, b, h, s, km->sq, km->nq);
        *flops += rt_argmax_side(pl, &io->k, km->mu, b, hk, s);
        rt_sum_side(pl, &io->k, b, hk, s, km->sk, km->nk);
        rt_kmeans_step(pl, 0.0, km, km->mu);
    }
    return km->mu;
}

double rt_assign_head(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *scratch, rt_members *m)
{
    rt_scratch s = rt_scratch_at(pl, scratch);
    int64_t hk = h / (io->q.H / io->k.H), M = rt_members_max(pl);
    m->qoff = s.members, m->koff = m->qoff + pl->kappa + 1;
    m->qidx = m->koff + pl->kappa + 1, m->kidx = m->qidx + M;
    double f = 0;
    const float *mu = rt_centroid(&io->w, h, 0, pl->D);
    if (pl->iters)
        mu = rt_sequence_centroids(pl, io, b, h, hk, mu, &s, &f);
    double tol = rt_load_centroids(pl, mu, s.mu);
    return f + rt_route_side(pl, &io->q, mu, b, h, tol, &s, m->qoff, m->qidx) +
           rt_route_side(pl, &io->k, mu, b, hk, tol, &s, m->koff, m->kidx);
}

double rt_argmax_sums(const rt_plan *pl, const attn_tensor *x, const float *mu, int64_t b, int64_t hx, float *scratch,
                      double *sum, int64_t *cnt)
{
    rt_scratch s = rt_scratch_at(pl, scratch);
    double f = rt_argmax_side(pl, x, mu, b, hx, &s);
    rt_sum_side(pl, x, b, hx, &s, sum, cnt);
    return f;
}
