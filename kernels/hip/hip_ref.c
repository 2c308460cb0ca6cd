/* Plain double reference of `hip` (the formulas are in hip_internal.h),
 * written the way the paper states the search: per round, every child of
 * every node scored from scratch, the k best taken one at a time. It shares
 * with the fp32 kernel only hip_block_score, the score of a representative,
 * so both pick the same blocks. Then per row the set of keys it attends and
 * an exact softmax over it. Also the fidelity view: those sets (KEYS) and
 * the softmax rows over them (ROWS). */
#include "hip_internal.h"
#include "kernels/core/ref_heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One head of the double problem, and one row's key set. */
typedef struct {
    const attn_args *a;
    const attn_io64 *io;
    hip_plan pl;
    int64_t b, h, hk;
    int64_t search_row;       /* the row whose selection `chosen` holds (-1: none) */
    unsigned char *chosen;    /* [nb] selected blocks of that search */
    unsigned char *set;       /* [Nk] keys of the current row */
    double *s;                /* [Nk] its scores */
    int64_t *na, *nc;         /* [k] nodes: blocks [na[t], nc[t]) */
    int64_t *ca, *cc;         /* [2k] children of a round */
    double *score;            /* [2k] */
    unsigned char *taken;     /* [2k] */
} hip_ref_head;

static void hip_ref_close(void *head)
{
    hip_ref_head *x = head;
    free(x->chosen), free(x->set), free(x->s), free(x->na), free(x->score), free(x->taken);
}

static int hip_ref_open(void *head, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h)
{
    hip_ref_head *x = head;
    memset(x, 0, sizeof *x);
    int rc = hip_plan_make(&x->pl, a);
    if (rc)
        return rc;
    int64_t N = a->Nk > 0 ? a->Nk : 1, k2 = 2 * x->pl.k;
    x->a = a, x->io = io, x->b = b, x->h = h, x->hk = h / (a->H / a->H_kv), x->search_row = -1;
    x->chosen = malloc((size_t)N), x->set = malloc((size_t)N), x->s = malloc(sizeof(double) * (size_t)N);
    x->na = malloc(sizeof(int64_t) * (size_t)(3 * k2)), x->nc = x->na + x->pl.k, x->ca = x->nc + x->pl.k;
    x->cc = x->ca + k2;
    x->score = malloc(sizeof(double) * (size_t)k2), x->taken = malloc((size_t)k2);
    if (!x->chosen || !x->set || !x->s || !x->na || !x->score || !x->taken) {
        hip_ref_close(x);
        return attn_fail(ATTN_ENOMEM, "hip reference: out of memory for %lld keys", (long long)a->Nk);
    }
    return 0;
}

/* max over the query block of search row s of sc <q_r, k_rep>, rep = the
 * first key of block [a, c)'s middle block. */
static double hip_ref_score(const hip_ref_head *x, int64_t s, int64_t a, int64_t c)
{
    const double *key = attn_at64(&x->io->k, x->b, x->hk, (a + (c - a) / 2) * x->pl.bk);
    int64_t r0 = hip_block_first(&x->pl, s);
    return hip_block_score(attn_at64(&x->io->q, x->b, x->h, r0), x->io->q.sn, s - r0 + 1, key, x->a->D,
                           attn_scale(x->a));
}

/* The selection of search row s over keys [0, e) into x->chosen. */
static void hip_ref_search(hip_ref_head *x, int64_t s, int64_t e)
{
    int64_t k = x->pl.k, nb = (e + x->pl.bk - 1) / x->pl.bk, n = k;
    memset(x->chosen, nb <= k, (size_t)(nb > 0 ? nb : 0));
    x->search_row = s;
    if (nb <= k)
        return;
    int64_t *a = x->na, *c = x->nc, *ca = x->ca, *cc = x->cc;
    for (int64_t t = 0; t < k; t++)
        a[t] = t * nb / k, c[t] = (t + 1) * nb / k;
    for (;;) {
        int64_t m = 0, wide = 0;
        for (int64_t t = 0; t < n; t++)
            wide |= c[t] - a[t] > 1;
        if (!wide)
            break;
        for (int64_t t = 0; t < n; t++) {
            if (c[t] - a[t] == 1) {
                ca[m] = a[t], cc[m++] = c[t];
                continue;
            }
            int64_t mid = a[t] + (c[t] - a[t]) / 2;
            ca[m] = a[t], cc[m++] = mid;
            ca[m] = mid, cc[m++] = c[t];
        }
        for (int64_t t = 0; t < m; t++)
            x->score[t] = hip_ref_score(x, s, ca[t], cc[t]), x->taken[t] = 0;
        for (int64_t p = 0; p < k; p++) { /* the best child not taken; ties to the lower first block */
            int64_t best = -1;
            for (int64_t t = 0; t < m; t++)
                if (!x->taken[t] && (best < 0 || x->score[t] > x->score[best] ||
                                     (x->score[t] == x->score[best] && ca[t] < ca[best])))
                    best = t;
            x->taken[best] = 1;
        }
        n = 0;
        for (int64_t t = 0; t < m; t++) /* children in ascending position */
            if (x->taken[t])
                a[n] = ca[t], c[n++] = cc[t];
    }
    memset(x->chosen, 0, (size_t)nb);
    for (int64_t t = 0; t < n; t++)
        x->chosen[a[t]] = 1;
}

/* Row i's keys into x->set and their scores into x->s; returns the row's lse. */
static double hip_ref_keys(hip_ref_head *x, int64_t i)
{
    const attn_args *a = x->a;
    const hip_plan *pl = &x->pl;
    int64_t s = hip_search_row(pl, i), e_s = hip_row_end(a, pl, s), e_i = hip_row_end(a, pl, i);
    if (x->search_row != s)
        hip_ref_search(x, s, e_s);
    int64_t t0 = hip_tail_start(pl, e_s, e_i);
    double m = -INFINITY, z = 0;
    const double *q = attn_at64(&x->io->q, x->b, x->h, i);
    for (int64_t j = 0; j < a->Nk; j++) {
        x->set[j] = j < e_i && ((j < e_s && x->chosen[j / pl->bk]) || j < pl->sink || j >= t0);
        double dot = 0;
        for (int64_t d = 0; x->set[j] && d < a->D; d++)
            dot += q[d] * attn_at64(&x->io->k, x->b, x->hk, j)[d];
        x->s[j] = x->set[j] ? attn_scale(a) * dot : -INFINITY;
        m = x->s[j] > m ? x->s[j] : m;
    }
    for (int64_t j = 0; m > -INFINITY && j < a->Nk; j++)
        z += x->set[j] ? exp(x->s[j] - m) : 0;
    return z > 0 ? m + log(z) : -INFINITY;
}

/* Row i: the softmax over its key set, into o and (view) P and sel. */
static double hip_ref_row(void *head, int64_t i, double *o, double *P, unsigned char *sel)
{
    hip_ref_head *x = head;
    const attn_args *a = x->a;
    int64_t Dv = attn_dv(a);
    double lse = hip_ref_keys(x, i);
    memset(o, 0, sizeof(double) * (size_t)Dv);
    for (int64_t j = 0; j < a->Nk; j++) {
        double p = x->set[j] && lse > -INFINITY ? exp(x->s[j] - lse) : 0;
        for (int64_t d = 0; p > 0 && d < Dv; d++)
            o[d] += p * attn_at64(&x->io->v, x->b, x->hk, j)[d];
        if (P)
            P[j] = p, sel[j] = x->set[j];
    }
    return lse;
}

static const attn_ref_heads hip_ref = {"hip", hip_ref_open, hip_ref_row, hip_ref_close};

int hip_ref_forward(const attn_args *a, const attn_io64 *io)
{
    hip_ref_head x;
    return attn_ref_heads_forward(&hip_ref, &x, a, io);
}

int hip_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                 double *P, unsigned char *sel)
{
    hip_ref_head x;
    return attn_ref_heads_view(&hip_ref, &x, a, io, b, h, rows, n_rows, P, sel);
}
