/* Plain double reference of `reformer` (the formulas are in
 * reformer_internal.h), written the way the paper states it and sharing
 * with the fp32 kernel only the random rotations and the bucket of a row
 * (rf_rotation, rf_bucket_f64: "the same hashes"): sort by qsort on
 * (bucket, position), then per query and round its candidates, their counts
 * over all rounds, the round's softmax of s - ln count, and the rounds
 * combined by logsumexp. Also the fidelity view (rf_ref_view): the union
 * softmax rows and the candidate sets. */
#include "reformer_internal.h"
#include "kernels/core/ref_heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t bucket, row;
} rf_ref_item;

static int rf_ref_order(const void *x, const void *y)
{
    const rf_ref_item *p = x, *q = y;
    if (p->bucket != q->bucket)
        return p->bucket < q->bucket ? -1 : 1;
    return (p->row > q->row) - (p->row < q->row);
}

/* One head in double: unit keys, every round's buckets and ranks. */
typedef struct {
    const attn_args *a;
    rf_plan pl;
    int64_t L, nc, D, Dv;
    const attn_tensor_f64 *q, *v;
    int64_t b, h, hk;
    double *khat;             /* L x D */
    int32_t *bucket, *rank, *order; /* R x L */
    double *orow, *lse_r;     /* R x Dv, R */
    int64_t *cj;              /* a round's candidates of one query (<= 2c) */
    double *cs;               /* and their adjusted scores */
} rf_ref_head;

static void rf_ref_free(void *head)
{
    rf_ref_head *x = head;
    free(x->khat), free(x->bucket), free(x->rank), free(x->order), free(x->orow), free(x->lse_r);
    free(x->cj), free(x->cs);
}

static int rf_ref_hash(rf_ref_head *x)
{
    int64_t L = x->L, D = x->D;
    rf_hash_shape hs = rf_hash_of(&x->pl, L);
    double *R = malloc(sizeof(double) * (size_t)((D + 1) * (hs.cols > 0 ? hs.cols : 1))), *p = R + D * hs.cols;
    rf_ref_item *items = malloc(sizeof *items * (size_t)(L > 0 ? L : 1));
    if (!R || !items) {
        free(R), free(items);
        return attn_fail(ATTN_ENOMEM, "reformer reference: out of memory for %lld rows", (long long)L);
    }
    for (int r = 0; r < x->pl.rounds; r++) {
        int32_t *bk = x->bucket + r * L;
        if (hs.nb > 1)
            rf_rotation(&x->pl, x->h, r, D, hs.cols, R);
        for (int64_t i = 0; i < L; i++) {
            bk[i] = hs.nb > 1 ? rf_bucket_f64(attn_at64(x->q, x->b, x->h, i), R, D, hs, p) : 0;
            items[i] = (rf_ref_item){.bucket = bk[i], .row = (int32_t)i};
        }
        qsort(items, (size_t)L, sizeof *items, rf_ref_order); /* (bucket, position) is a total order */
        for (int64_t s = 0; s < L; s++)
            x->order[r * L + s] = items[s].row, x->rank[r * L + items[s].row] = (int32_t)s;
    }
    free(R), free(items);
    return 0;
}

static int rf_ref_open(void *head, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h)
{
    rf_ref_head *x = head;
    memset(x, 0, sizeof *x);
    int rc = rf_plan_make(&x->pl, a);
    if (rc)
        return rc;
    x->a = a, x->b = b, x->h = h, x->hk = h / (a->H / a->H_kv), x->q = &io->q, x->v = &io->v;
    x->L = rf_len(a, b), x->nc = rf_chunks(&x->pl, x->L), x->D = a->D, x->Dv = attn_dv(a);
    size_t RL = (size_t)(x->pl.rounds * (x->L > 0 ? x->L : 1));
    x->khat = malloc(sizeof(double) * (size_t)((x->L > 0 ? x->L : 1) * x->D));
    x->bucket = malloc(sizeof(int32_t) * RL), x->rank = malloc(sizeof(int32_t) * RL);
    x->order = malloc(sizeof(int32_t) * RL);
    x->orow = malloc(sizeof(double) * (size_t)(x->pl.rounds * x->Dv)), x->lse_r = malloc(sizeof(double) * RF_ROUNDS_MAX);
    x->cj = malloc(sizeof(int64_t) * (size_t)(2 * x->pl.c)), x->cs = malloc(sizeof(double) * (size_t)(2 * x->pl.c));
    if (!x->khat || !x->bucket || !x->rank || !x->order || !x->orow || !x->lse_r || !x->cj || !x->cs) {
        rf_ref_free(x);
        return attn_fail(ATTN_ENOMEM, "reformer reference: out of memory for %lld rows", (long long)x->L);
    }
    for (int64_t j = 0; j < x->L; j++) {
        const double *q = attn_at64(&io->q, b, h, j);
        double n = 0;
        for (int64_t d = 0; d < x->D; d++)
            n += q[d] * q[d];
        for (int64_t d = 0; d < x->D; d++)
            x->khat[j * x->D + d] = n > 0 ? q[d] / sqrt(n) : 0;
    }
    if ((rc = rf_ref_hash(x)) != 0)
        rf_ref_free(x);
    return rc;
}

/* Slots of round r that query i reads: its chunk and the one before. */
static void rf_ref_slots(const rf_ref_head *x, int r, int64_t i, int64_t span[2][2])
{
    int64_t c = x->pl.c, ci = x->rank[r * x->L + i] / c, cp = (ci + x->nc - 1) % x->nc;
    span[0][0] = ci * c, span[0][1] = ci * c + c < x->L ? ci * c + c : x->L;
    span[1][0] = cp * c, span[1][1] = x->nc == 1 ? cp * c : cp * c + c < x->L ? cp * c + c : x->L;
}

/* Is j a candidate of i in round r (self and causality aside)? */
static int rf_ref_candidate(const rf_ref_head *x, int r, int64_t i, int64_t j)
{
    if (x->pl.same_bucket && x->bucket[r * x->L + i] != x->bucket[r * x->L + j])
        return 0;
    int64_t span[2][2], sj = x->rank[r * x->L + j];
    rf_ref_slots(x, r, i, span);
    return (sj >= span[0][0] && sj < span[0][1]) || (sj >= span[1][0] && sj < span[1][1]);
}

/* Adjusted score of candidate j of query i (-inf when j is not one in round r). */
static double rf_ref_score(const rf_ref_head *x, int r, int64_t i, int64_t j)
{
    if (j == i || (x->pl.causal && j > i + x->pl.shift) || !rf_ref_candidate(x, r, i, j))
        return -INFINITY;
    int count = 0;
    for (int r2 = 0; r2 < x->pl.rounds; r2++)
        count += rf_ref_candidate(x, r2, i, j);
    const double *q = attn_at64(x->q, x->b, x->h, i);
    double s = 0;
    for (int64_t d = 0; d < x->D; d++)
        s += q[d] * x->khat[j * x->D + d];
    return attn_scale(x->a) * s - log((double)count);
}

/* The candidates of query i in round r and their adjusted scores into
 * x->cj, x->cs; returns how many. */
static int64_t rf_ref_candidates(rf_ref_head *x, int r, int64_t i)
{
    int64_t span[2][2], n = 0;
    rf_ref_slots(x, r, i, span);
    for (int sp = 0; sp < 2; sp++)
        for (int64_t s = span[sp][0]; s < span[sp][1]; s++) {
            int64_t j = x->order[r * x->L + s];
            double e = rf_ref_score(x, r, i, j);
            if (e > -INFINITY)
                x->cj[n] = j, x->cs[n++] = e;
        }
    return n;
}

/* Row i: its output o (Dv) and lse; with P / sel (Nk each, may be NULL) the
 * union softmax weights and the candidate set. */
static double rf_ref_row(rf_ref_head *x, int64_t i, double *o, double *P, unsigned char *sel)
{
    int R = x->pl.rounds;
    double lse = -INFINITY;
    for (int r = 0; r < R; r++) { /* each round's softmax and lse */
        int64_t n = rf_ref_candidates(x, r, i);
        double m = -INFINITY, z = 0, *orow = x->orow + r * x->Dv;
        memset(orow, 0, sizeof(double) * (size_t)x->Dv);
        for (int64_t c = 0; c < n; c++)
            m = fmax(m, x->cs[c]);
        for (int64_t c = 0; c < n; c++) {
            double e = exp(x->cs[c] - m);
            z += e;
            for (int64_t d = 0; d < x->Dv; d++)
                orow[d] += e * attn_at64(x->v, x->b, x->hk, x->cj[c])[d];
        }
        x->lse_r[r] = n > 0 ? m + log(z) : -INFINITY;
        for (int64_t d = 0; n > 0 && d < x->Dv; d++)
            orow[d] /= z;
        if (x->lse_r[r] > -INFINITY)
            lse = lse == -INFINITY ? x->lse_r[r] : fmax(lse, x->lse_r[r]) + log1p(exp(-fabs(lse - x->lse_r[r])));
    }
    memset(o, 0, sizeof(double) * (size_t)x->Dv);
    if (lse == -INFINITY) { /* alone in every round: the self score -1e5 is the only term */
        memcpy(o, attn_at64(x->v, x->b, x->hk, i), sizeof(double) * (size_t)x->Dv);
        if (P)
            P[i] = 1, sel[i] = 1;
        return RF_SELF_SCORE;
    }
    for (int r = 0; r < R; r++)
        for (int64_t d = 0; x->lse_r[r] > -INFINITY && d < x->Dv; d++)
            o[d] += exp(x->lse_r[r] - lse) * x->orow[r * x->Dv + d];
    for (int r = 0; P && r < R; r++) { /* the union weights: each round adds exp(s - ln count - lse) */
        int64_t n = rf_ref_candidates(x, r, i);
        for (int64_t c = 0; c < n; c++)
            P[x->cj[c]] += exp(x->cs[c] - lse), sel[x->cj[c]] = 1;
    }
    return lse;
}

/* A padded row (i >= L) attends nothing. */
static double rf_ref_row_padded(void *head, int64_t i, double *o, double *P, unsigned char *sel)
{
    rf_ref_head *x = head;
    if (i < x->L)
        return rf_ref_row(x, i, o, P, sel);
    memset(o, 0, sizeof(double) * (size_t)x->Dv);
    return -INFINITY;
}

static const attn_ref_heads rf_ref = {"reformer", rf_ref_open, rf_ref_row_padded, rf_ref_free};

// q is (B,H,N,D), v is (B,H_kv,N,Dv), k is not read; o is (B,H,N,Dv)
int rf_ref_forward(const attn_args *a, const attn_io64 *io)
{
    rf_ref_head x;
    return attn_ref_heads_forward(&rf_ref, &x, a, io);
}

int rf_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    rf_ref_head x;
    return attn_ref_heads_view(&rf_ref, &x, a, io, b, h, rows, n_rows, P, sel);
}
