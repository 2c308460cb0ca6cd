/* Plain double reference of `retrieval` (retrieval_internal.h), and its
 * fidelity view. It shares with the fp32 kernel the index build (called on
 * the same float keys) and the selection scores (ret_dot, ret_bound), so it
 * selects the same keys; the search itself is written the plain way: the
 * candidates (every index key the row sees for an exhaustive or exact=1
 * search, else the visible members of the head's nprobe best lists, picked
 * one by one) sorted by score, the first r kept. The attention is a softmax
 * in double over the static set and those keys. */
#include "retrieval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const attn_args *a;
    const attn_io64 *io;
    ret_plan pl;
    float *kf, *slot, *scratch, *qf; /* the KV head's keys in float (Nk x D), its index, build scratch, a query */
    attn_tensor K;
    const double *built_from;        /* K rows the index was built from (a stride-0 view repeats them) */
    int64_t built_sn;
    ret_hit *cand;                   /* Nk candidates */
    unsigned char *chosen;           /* nlist_max */
    double *logit;                   /* Nk */
} ret_ref;

static void ret_ref_free(ret_ref *x)
{
    free(x->kf), free(x->slot), free(x->scratch), free(x->qf), free(x->cand), free(x->chosen), free(x->logit);
}

static int ret_ref_open(ret_ref *x, const attn_args *a, const attn_io64 *io)
{
    memset(x, 0, sizeof *x);
    int rc = ret_plan_make(&x->pl, a);
    if (rc)
        return rc;
    x->a = a, x->io = io;
    size_t n = (size_t)(a->Nk > 0 ? a->Nk : 1), D = (size_t)a->D;
    x->kf = malloc(sizeof(float) * n * D);
    x->slot = malloc(sizeof(float) * (x->pl.slot_floats + 1));
    x->scratch = malloc(sizeof(float) * (ret_build_scratch_floats(&x->pl) + 1));
    x->qf = malloc(sizeof(float) * D);
    x->cand = malloc(sizeof(ret_hit) * n);
    x->chosen = malloc((size_t)x->pl.nlist_max + 1);
    x->logit = malloc(sizeof(double) * n);
    if (!x->kf || !x->slot || !x->scratch || !x->qf || !x->cand || !x->chosen || !x->logit) {
        ret_ref_free(x);
        return attn_fail(ATTN_ENOMEM, "retrieval reference: out of memory for %lld keys", (long long)a->Nk);
    }
    x->K = (attn_tensor){.data = x->kf, .B = 1, .H = 1, .N = a->Nk, .D = a->D,
                         .sb = a->Nk * a->D, .sh = a->Nk * a->D, .sn = a->D};
    return 0;
}

/* The float keys of KV head (b, hk) and their index. */
static void ret_ref_head(ret_ref *x, int64_t b, int64_t hk)
{
    const double *k0 = attn_at64(&x->io->k, b, hk, 0);
    if (k0 == x->built_from && x->io->k.sn == x->built_sn)
        return;
    for (int64_t j = 0; j < x->a->Nk; j++)
        for (int64_t d = 0; d < x->a->D; d++)
            x->kf[j * x->a->D + d] = (float)attn_at64(&x->io->k, b, hk, j)[d];
    ret_tally t = {0};
    for (int st = 0; st < x->pl.n_stages; st++)
        ret_build_stage(&x->pl, st, &x->K, 0, 0, x->slot, x->scratch, &t);
    x->built_from = k0, x->built_sn = x->io->k.sn;
}

static int ret_ref_order(const void *p, const void *q)
{
    const ret_hit *x = p, *y = q;
    return ret_better(x->s, x->j, y->s, y->j) ? -1 : ret_better(y->s, y->j, x->s, x->j) ? 1 : 0;
}

/* The visible members of the head's nprobe best lists (bound order, ties to
 * the lower list) into cand; returns how many. */
static int64_t ret_ref_probe(ret_ref *x, const ret_row *rw, int st)
{
    const ret_stage *S = &x->pl.st[st];
    ret_lists L = ret_lists_of(&x->pl, st, x->slot);
    int64_t D = x->a->D, n = 0;
    double qn = sqrt(ret_dot(x->qf, x->qf, D));
    memset(x->chosen, 0, (size_t)S->nlist);
    for (int64_t p = 0; p < S->nprobe; p++) {
        int64_t best = -1;
        double bb = 0;
        for (int64_t c = 0; c < S->nlist; c++) {
            int64_t cnt = ret_eligible(&L, c, rw->s);
            if (x->chosen[c] || cnt == 0)
                continue;
            double bc = ret_bound(&L, c, cnt, x->qf, qn, D);
            if (best < 0 || ret_list_before(bc, c, bb, best))
                best = c, bb = bc;
        }
        if (best < 0)
            break;
        x->chosen[best] = 1;
        for (int64_t e = L.start[best]; e < L.start[best] + ret_eligible(&L, best, rw->s); e++)
            x->cand[n++].j = rw->idx_lo + L.member[e];
    }
    return n;
}

/* Row i of head h: the retrieved keys into cand[0..return). */
static int64_t ret_ref_select(ret_ref *x, int64_t b, int64_t h, int64_t i, const ret_row *rw)
{
    const double *q = attn_at64(&x->io->q, b, h, i);
    for (int64_t d = 0; d < x->a->D; d++)
        x->qf[d] = (float)q[d];
    if (x->pl.r == 0 || rw->s == 0)
        return 0;
    int st = ret_stage_of(&x->pl, rw->s);
    int64_t n = 0;
    if (rw->s <= x->pl.r || st < 0 || x->pl.exact)
        for (; n < rw->s; n++)
            x->cand[n].j = rw->idx_lo + n;
    else
        n = ret_ref_probe(x, rw, st);
    for (int64_t c = 0; c < n; c++)
        x->cand[c].s = ret_dot(x->qf, x->kf + x->cand[c].j * x->a->D, x->a->D);
    qsort(x->cand, (size_t)n, sizeof *x->cand, ret_ref_order);
    return n < x->pl.r ? n : x->pl.r;
}

static double ret_ref_logit(const ret_ref *x, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const double *q = attn_at64(&x->io->q, b, h, i), *k = attn_at64(&x->io->k, b, h / x->pl.G, j);
    double s = 0;
    for (int64_t d = 0; d < x->a->D; d++)
        s += q[d] * k[d];
    return attn_scale(x->a) * s;
}

/* Row i of head h: O row o, lse, and with P / sel (Nk each, may be NULL) the
 * attention weights over the original keys and the attended keys. */
static double ret_ref_row(ret_ref *x, int64_t b, int64_t h, int64_t i, double *o, double *P, unsigned char *sel)
{
    ret_row rw = ret_row_of(&x->pl, x->a, i);
    int64_t nr = ret_ref_select(x, b, h, i, &rw), n = 0, D = x->a->D;
    int64_t *keys = malloc(sizeof(int64_t) * (size_t)(x->pl.static_max + nr + 1));
    for (int64_t j = 0; rw.hj >= 0 && j < rw.sink_end; j++)
        keys[n++] = j;
    for (int64_t j = rw.win_lo; rw.hj >= 0 && j <= rw.hj; j++)
        keys[n++] = j;
    for (int64_t c = 0; c < nr; c++)
        keys[n++] = x->cand[c].j;
    double m = -INFINITY, z = 0;
    for (int64_t u = 0; u < n; u++)
        x->logit[u] = ret_ref_logit(x, b, h, i, keys[u]), m = fmax(m, x->logit[u]);
    memset(o, 0, sizeof(double) * (size_t)D);
    for (int64_t u = 0; u < n; u++) {
        double e = exp(x->logit[u] - m);
        const double *v = attn_at64(&x->io->v, b, h / x->pl.G, keys[u]);
        z += e;
        for (int64_t d = 0; d < D; d++)
            o[d] += e * v[d];
    }
    for (int64_t d = 0; n > 0 && d < D; d++)
        o[d] /= z;
    double lse = n > 0 ? m + log(z) : -INFINITY;
    for (int64_t u = 0; P && u < n; u++)
        P[keys[u]] = exp(x->logit[u] - lse), sel[keys[u]] = 1;
    free(keys);
    return lse;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse (B,H,Nq) when given
int ret_ref_forward(const attn_args *a, const attn_io64 *io)
{
    ret_ref x;
    int rc = ret_ref_open(&x, a, io);
    if (rc)
        return rc;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            ret_ref_head(&x, b, h / x.pl.G);
            for (int64_t i = 0; i < a->Nq; i++) {
                double l = ret_ref_row(&x, b, h, i, attn_at64(&io->o, b, h, i), NULL, NULL);
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = l;
            }
        }
    ret_ref_free(&x);
    return 0;
}

int ret_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                 double *P, unsigned char *sel)
{
    ret_ref x;
    int rc = ret_ref_open(&x, a, io);
    if (rc)
        return rc;
    double *o = malloc(sizeof(double) * (size_t)a->D);
    if (!o) {
        ret_ref_free(&x);
        return attn_fail(ATTN_ENOMEM, "retrieval view: out of memory");
    }
    ret_ref_head(&x, b, h / x.pl.G);
    for (int64_t r = 0; r < n_rows; r++) {
        memset(P + r * a->Nk, 0, sizeof(double) * (size_t)a->Nk);
        memset(sel + r * a->Nk, 0, (size_t)a->Nk);
        ret_ref_row(&x, b, h, rows[r], o, P + r * a->Nk, sel + r * a->Nk);
    }
    free(o);
    ret_ref_free(&x);
    return ATTN_VIEW_ROWS | ATTN_VIEW_KEYS;
}
