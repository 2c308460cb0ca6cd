/* Plain double reference of `hyper` (the formulas are in hyper_internal.h),
 * sharing with the fp32 kernel only the random draws and the exact code of
 * a row (hy_hyperplanes, hy_code_f64, hy_draw_samples: "the same hashes and
 * samples"). It follows the literal recursion (a causal segment halves until
 * it has at most min_seq_len rows; a job of at most min_seq_len keys is
 * exact), sorts each job with qsort on (code, position), and writes every
 * row as one softmax over its (key, logit) pairs: the causal leaf's keys,
 * and per job its block's keys and the weighted samples outside its block.
 * Also the fidelity view (hy_ref_view): those softmax weights over the
 * original keys, and the keys themselves. */
#include "hyper_internal.h"
#include "kernels/core/ref_heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t code;
    int32_t row;
} hy_ref_item;

static int hy_ref_order(const void *x, const void *y)
{
    const hy_ref_item *p = x, *q = y;
    if (p->code != q->code)
        return p->code < q->code ? -1 : 1;
    return (p->row > q->row) - (p->row < q->row);
}

/* One head in double: the literal split, every job's sorted queries and
 * keys (slot of each row, row of each key slot) and its samples. */
typedef struct {
    const attn_args *a;
    const attn_io64 *io;
    hy_plan pl;
    hy_split sp;
    int64_t b, h, hk, N, D, Dv;
    int64_t *qoff, *koff, *soff, *nsmp; /* per job: where its rows start in qrank, kslot / krank, smp */
    int32_t *qrank, *korder, *krank, *smp;
    int64_t *cj;                        /* a row's keys and logits (N each) */
    double *cl;
} hy_ref_head;

static void hy_ref_free(void *head)
{
    hy_ref_head *x = head;
    hy_split_free(&x->sp);
    free(x->qoff), free(x->koff), free(x->soff), free(x->nsmp);
    free(x->qrank), free(x->korder), free(x->krank), free(x->smp), free(x->cj), free(x->cl);
}

/* Sorts rows [r0, r0 + n) of t (head hh) by code: slot of each row into
 * rank[], row of each slot into order[] (may be NULL). */
static int hy_ref_sort(const hy_ref_head *x, const double *R, const attn_tensor_f64 *t, int64_t hh, int64_t r0,
                       int64_t n, int32_t *rank, int32_t *order)
{
    hy_ref_item *it = malloc(sizeof *it * (size_t)(n > 0 ? n : 1));
    if (!it)
        return attn_fail(ATTN_ENOMEM, "hyper reference: out of memory for %lld rows", (long long)n);
    for (int64_t i = 0; i < n; i++)
        it[i] = (hy_ref_item){.code = hy_code_f64(attn_at64(t, x->b, hh, r0 + i), R, x->D, x->pl.r),
                              .row = (int32_t)(r0 + i)};
    qsort(it, (size_t)n, sizeof *it, hy_ref_order);
    for (int64_t s = 0; s < n; s++) {
        rank[it[s].row - r0] = (int32_t)s;
        if (order)
            order[s] = it[s].row;
    }
    free(it);
    return 0;
}

static int hy_ref_jobs(hy_ref_head *x)
{
    int64_t nj = x->sp.n_jobs, nq = 0, nk = 0, ns = 0;
    for (int64_t j = 0; j < nj; j++)
        nq += x->sp.jobs[j].nq, nk += x->sp.jobs[j].nk, ns += hy_samples_of(&x->pl, &x->sp.jobs[j]);
    x->qoff = malloc(sizeof(int64_t) * (size_t)(nj + 1)), x->koff = malloc(sizeof(int64_t) * (size_t)(nj + 1));
    x->soff = malloc(sizeof(int64_t) * (size_t)(nj + 1)), x->nsmp = malloc(sizeof(int64_t) * (size_t)(nj + 1));
    x->qrank = malloc(sizeof(int32_t) * (size_t)(nq + 1)), x->korder = malloc(sizeof(int32_t) * (size_t)(nk + 1));
    x->krank = malloc(sizeof(int32_t) * (size_t)(nk + 1)), x->smp = malloc(sizeof(int32_t) * (size_t)(ns + 1));
    double *R = malloc(sizeof(double) * (size_t)(x->D * x->pl.r));
    if (!x->qoff || !x->koff || !x->soff || !x->nsmp || !x->qrank || !x->korder || !x->krank || !x->smp || !R) {
        free(R);
        return attn_fail(ATTN_ENOMEM, "hyper reference: out of memory for %lld jobs", (long long)nj);
    }
    hy_hyperplanes(&x->pl, x->D, R);
    int rc = 0;
    nq = nk = ns = 0;
    for (int64_t j = 0; j < nj && !rc; j++) {
        const hy_job *jb = &x->sp.jobs[j];
        x->qoff[j] = nq, x->koff[j] = nk, x->soff[j] = ns;
        x->nsmp[j] = 0;
        if (!hy_job_exact(&x->pl, jb)) {
            rc = hy_ref_sort(x, R, &x->io->q, x->h, jb->q0, jb->nq, x->qrank + nq, NULL);
            if (!rc)
                rc = hy_ref_sort(x, R, &x->io->k, x->hk, jb->k0, jb->nk, x->krank + nk, x->korder + nk);
            x->nsmp[j] = hy_draw_samples(&x->pl, jb, x->b, x->hk, x->a->H_kv, x->smp + ns);
        }
        nq += jb->nq, nk += jb->nk, ns += hy_samples_of(&x->pl, jb);
    }
    free(R);
    return rc;
}

static int hy_ref_open(void *head, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h)
{
    hy_ref_head *x = head;
    memset(x, 0, sizeof *x);
    int rc = hy_plan_make(&x->pl, a);
    if (rc)
        return rc;
    x->a = a, x->io = io, x->b = b, x->h = h, x->hk = h / (a->H / a->H_kv);
    x->N = a->Nq, x->D = a->D, x->Dv = attn_dv(a);
    if ((rc = hy_split_alloc(&x->pl, x->N, 0, &x->sp)) != 0)
        return rc;
    x->cj = malloc(sizeof(int64_t) * (size_t)x->N), x->cl = malloc(sizeof(double) * (size_t)x->N);
    rc = x->cj && x->cl ? hy_ref_jobs(x) : attn_fail(ATTN_ENOMEM, "hyper reference: out of memory");
    if (rc)
        hy_ref_free(x);
    return rc;
}

static double hy_ref_score(const hy_ref_head *x, int64_t i, int64_t j)
{
    const double *q = attn_at64(&x->io->q, x->b, x->h, i), *k = attn_at64(&x->io->k, x->b, x->hk, j);
    double s = 0;
    for (int64_t d = 0; d < x->D; d++)
        s += q[d] * k[d];
    return attn_scale(x->a) * s;
}

/* Appends keys [k0, k1) of row i with their plain logits. */
static int64_t hy_ref_all(const hy_ref_head *x, int64_t i, int64_t k0, int64_t k1, int64_t n)
{
    for (int64_t j = k0; j < k1; j++)
        x->cj[n] = j, x->cl[n++] = hy_ref_score(x, i, j);
    return n;
}

/* Appends the pairs job j gives row i (q0 <= i < q0 + nq). */
static int64_t hy_ref_job_pairs(const hy_ref_head *x, int64_t jn, int64_t i, int64_t n)
{
    const hy_job *j = &x->sp.jobs[jn];
    if (hy_job_exact(&x->pl, j))
        return hy_ref_all(x, i, j->k0, j->k0 + j->nk, n);
    int64_t bs = x->pl.bs, blk = x->qrank[x->qoff[jn] + i - j->q0] / bs;
    int64_t t0 = blk * bs, nkb = j->nk - t0 < bs ? j->nk - t0 : bs, outside = 0;
    const int32_t *order = x->korder + x->koff[jn], *rank = x->krank + x->koff[jn], *smp = x->smp + x->soff[jn];
    for (int64_t t = t0; t < t0 + nkb; t++)
        x->cj[n] = order[t], x->cl[n++] = hy_ref_score(x, i, order[t]);
    for (int64_t c = 0; c < x->nsmp[jn]; c++)
        outside += rank[smp[c] - j->k0] / bs != blk;
    double lnw = hy_sample_log_weight(j, nkb, outside);
    for (int64_t c = 0; c < x->nsmp[jn]; c++)
        if (rank[smp[c] - j->k0] / bs != blk)
            x->cj[n] = smp[c], x->cl[n++] = hy_ref_score(x, i, smp[c]) + lnw;
    return n;
}

/* Row i: its output o (Dv) and lse; with P and sel (N each, may be NULL)
 * the softmax weight of each key and the keys it attends. */
static double hy_ref_row(void *head, int64_t i, double *o, double *P, unsigned char *sel)
{
    const hy_ref_head *x = head;
    int64_t n = 0;
    for (int64_t l = 0; l < x->sp.n_leaves; l++) {
        const hy_leaf *lf = &x->sp.leaves[l];
        if (i >= lf->s && i < lf->s + lf->n)
            n = hy_ref_all(x, i, lf->s, lf->causal ? i + 1 : lf->s + lf->n, n);
    }
    for (int64_t j = 0; j < x->sp.n_jobs; j++)
        if (i >= x->sp.jobs[j].q0 && i < x->sp.jobs[j].q0 + x->sp.jobs[j].nq)
            n = hy_ref_job_pairs(x, j, i, n);
    double m = -INFINITY, z = 0;
    for (int64_t c = 0; c < n; c++)
        m = fmax(m, x->cl[c]);
    memset(o, 0, sizeof(double) * (size_t)x->Dv);
    if (m == -INFINITY)
        return -INFINITY;
    for (int64_t c = 0; c < n; c++) {
        double e = exp(x->cl[c] - m);
        z += e;
        const double *v = attn_at64(&x->io->v, x->b, x->hk, x->cj[c]);
        for (int64_t d = 0; d < x->Dv; d++)
            o[d] += e * v[d];
    }
    for (int64_t d = 0; d < x->Dv; d++)
        o[d] /= z;
    double lse = m + log(z);
    for (int64_t c = 0; P && c < n; c++)
        P[x->cj[c]] = exp(x->cl[c] - lse), sel[x->cj[c]] = 1;
    return lse;
}

static const attn_ref_heads hy_ref = {"hyper", hy_ref_open, hy_ref_row, hy_ref_free};

// q is (B,H,N,D), k and v are (B,H_kv,N,D); o is (B,H,N,Dv), lse is (B,H,N)
int hy_ref_forward(const attn_args *a, const attn_io64 *io)
{
    hy_ref_head x;
    return attn_ref_heads_forward(&hy_ref, &x, a, io);
}

int hy_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    hy_ref_head x;
    return attn_ref_heads_view(&hy_ref, &x, a, io, b, h, rows, n_rows, P, sel);
}
