/* `recycled` forward (recycled.h, docs/kernels/recycled.md). One OpenMP
 * task per (b, KV head) walks the query rows in position order, as
 * successive decode steps of the group's G heads:
 *
 *   full step at row i (position p, keys [0, n) it may attend):
 *     scores and exps of the G heads (rc_group_weights, shared with the
 *     reference), P = softmax rows, O = P V (one sgemm), the top-K
 *     keys by the weights summed over the heads (quickselect, ties to the
 *     lower position) gathered in position order into the small cache
 *     Ks, Vs (those at positions <= p: a later key is attended as new
 *     anyway under a FULL mask);
 *   recycled step: scores against Ks and against the keys after the full
 *     step read in place (two sgemm into one row), an fp32 softmax over
 *     both, O = P_s Vs + P_n V_new (two sgemm).
 *
 * Row 0 that is not a full step (phase > 0) has no full step in the call:
 * its full step was `phase` positions earlier, and its queries stand in for
 * that step's, which the call does not have (selection only: K is scored,
 * V is not read, nothing is output). Tasks are independent and each runs
 * in a fixed order, so the results do not depend on the thread count. */
#include "recycled_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Per-thread scratch of one task. */
typedef struct {
    float *P, *m;               /* G*Nk exps of a full step's scores, then probabilities; G maxima */
    double *l, *w;              /* G sums; Nk selection weights */
    int64_t *idx, *keep;        /* Nk quickselect indices, Kc kept keys (ascending) */
    float *Ks, *Vs;             /* Kc*D small cache */
    float *qf, *qs, *os;        /* G*D each: full-step queries, this step's queries and output rows,
                                   packed (the tensors' head strides may be anything) */
} rc_scratch;

static size_t rc_round64(size_t bytes) { return (bytes + 63) / 64 * 64; }

#define RC_SLOTS 11

/* Slot sizes in bytes, in the order rc_take hands them out. */
static void rc_slots(const attn_args *a, const rc_plan *pl, size_t sz[RC_SLOTS])
{
    size_t G = (size_t)pl->G, N = (size_t)a->Nk, D = (size_t)a->D;
    size_t Kc = (size_t)(pl->K < a->Nk ? pl->K : a->Nk);
    size_t s[RC_SLOTS] = {4 * G * N, 4 * G, 8 * G, 8 * N, 8 * N, 8 * Kc, 4 * Kc * D, 4 * Kc * D, 4 * G * D, 4 * G * D, 4 * G * D};
    for (int i = 0; i < RC_SLOTS; i++)
        sz[i] = rc_round64(s[i] ? s[i] : 1);
}

size_t rc_thread_bytes(const attn_args *a, const rc_plan *pl)
{
    size_t sz[RC_SLOTS], t = 0;
    rc_slots(a, pl, sz);
    for (int i = 0; i < RC_SLOTS; i++)
        t += sz[i];
    return t;
}

static rc_scratch rc_take(const attn_args *a, const rc_plan *pl, char *ws)
{
    size_t sz[RC_SLOTS];
    rc_slots(a, pl, sz);
    void *p[RC_SLOTS];
    for (int i = 0; i < RC_SLOTS; i++)
        p[i] = ws, ws += sz[i];
    return (rc_scratch){.P = p[0], .m = p[1], .l = p[2], .w = p[3], .idx = p[4], .keep = p[5], .Ks = p[6],
                        .Vs = p[7], .qf = p[8], .qs = p[9], .os = p[10]};
}

/* sc->qs = the G query rows of group (b, hk) at row i, packed. */
static void rc_pack_queries(const attn_args *a, const rc_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                            int64_t i, rc_scratch *sc)
{
    for (int64_t g = 0; g < pl->G; g++)
        memcpy(sc->qs + g * a->D, attn_at(&io->q, b, hk * pl->G + g, i), sizeof(float) * (size_t)a->D);
}

/* The packed output rows sc->os to O rows i of the group's heads. */
static void rc_store_output(const attn_args *a, const rc_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                            int64_t i, const rc_scratch *sc)
{
    for (int64_t g = 0; g < pl->G; g++)
        memcpy(attn_at(&io->o, b, hk * pl->G + g, i), sc->os + g * a->D, sizeof(float) * (size_t)a->D);
}

typedef struct {
    double flops, bytes, exps;
} rc_tally;

/* The group's state between steps: kept keys in Ks/Vs, the full step's position. */
typedef struct {
    int64_t nkeep, pf;
    int have;
} rc_state;

static void rc_swap(int64_t *x, int64_t *y)
{
    int64_t t = *x;
    *x = *y, *y = t;
}

/* The min(K, n) best keys of [0, n) by rc_better, ascending, into keep.
 * Quickselect (median-of-three pivot, Lomuto partition: bounded loops even
 * if NaN weights break the order) finds the K-th best t; the keys better
 * than t, and t, are kept. */
static int64_t rc_top_keys(const double *w, int64_t n, int64_t K, int64_t *idx, int64_t *keep)
{
    if (K >= n) {
        for (int64_t j = 0; j < n; j++)
            keep[j] = j;
        return n;
    }
    for (int64_t j = 0; j < n; j++)
        idx[j] = j;
    int64_t lo = 0, hi = n - 1, target = K - 1;
    while (lo < hi) {
        int64_t *A = &idx[lo], *B = &idx[lo + (hi - lo) / 2], *C = &idx[hi];
        if (rc_better(w, *B, *A))
            rc_swap(A, B);
        if (rc_better(w, *C, *A))
            rc_swap(A, C);
        if (rc_better(w, *C, *B))
            rc_swap(B, C);
        rc_swap(B, C); /* the median is the pivot, at hi */
        int64_t pivot = idx[hi], at = lo;
        for (int64_t j = lo; j < hi; j++)
            if (rc_better(w, idx[j], pivot))
                rc_swap(&idx[at++], &idx[j]);
        rc_swap(&idx[at], &idx[hi]);
        if (at == target)
            break;
        if (at < target)
            lo = at + 1;
        else
            hi = at - 1;
    }
    int64_t t = idx[target], cnt = 0;
    for (int64_t j = 0; j < n && cnt < K; j++)
        if (j == t || rc_better(w, j, t))
            keep[cnt++] = j;
    return cnt;
}

/* Selection of a full step at position pf of group (b, hk) from the
 * packed queries sc->qs over keys [0, n): weights (rc_group_weights), top-K,
 * and the kept keys at positions <= pf gathered into Ks, Vs. The scores
 * stay in sc->P (exps), sc->m, sc->l for the full step's output. */
static void rc_select(const attn_args *a, const rc_plan *pl, const attn_io *io, int64_t b, int64_t hk, int64_t n,
                      int64_t pf, rc_scratch *sc, rc_state *st, rc_tally *t)
{
    int64_t G = pl->G, D = a->D;
    const float *q = sc->qs;
    rc_group_weights(q, D, G, attn_at(&io->k, b, hk, 0), io->k.sn, n, D, (float)attn_scale(a), sc->P, sc->m,
                     sc->l, sc->w);
    int64_t kept = rc_top_keys(sc->w, n, pl->K, sc->idx, sc->keep), end = rc_new_from(a, pf);
    st->nkeep = 0;
    for (int64_t r = 0; r < kept && sc->keep[r] < end; r++, st->nkeep++) {
        memcpy(sc->Ks + st->nkeep * D, attn_at(&io->k, b, hk, sc->keep[r]), sizeof(float) * (size_t)D);
        memcpy(sc->Vs + st->nkeep * D, attn_at(&io->v, b, hk, sc->keep[r]), sizeof(float) * (size_t)D);
    }
    memcpy(sc->qf, q, sizeof(float) * (size_t)(G * D));
    st->pf = pf, st->have = 1;
    t->flops += 2.0 * (double)(G * n * D);
    t->bytes += 4.0 * (double)(n * D + G * D) + 8.0 * (double)(st->nkeep * D);
    t->exps += (double)(G * n);
}

/* Full step at row i (position p, keys [0, n)): output from the selection's scores, then the state. */
static void rc_full_step(const attn_args *a, const rc_plan *pl, const attn_io *io, int64_t b, int64_t hk, int64_t i,
                         int64_t n, rc_scratch *sc, rc_state *st, rc_tally *t)
{
    int64_t G = pl->G, D = a->D;
    rc_select(a, pl, io, b, hk, n, a->q_off + i, sc, st, t);
    for (int64_t g = 0; g < G; g++) {
        float inv = sc->l[g] > 0 ? (float)(1.0 / sc->l[g]) : 0.0f;
        for (int64_t j = 0; j < n; j++)
            sc->P[g * n + j] *= inv;
        io->lse[(b * a->H + hk * G + g) * a->Nq + i] =
            sc->l[g] > 0 ? (float)((double)sc->m[g] + log(sc->l[g])) : -INFINITY;
    }
    if (n > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)G, (int)D, (int)n, 1.0f, sc->P, (int)n,
                    attn_at(&io->v, b, hk, 0), (int)io->v.sn, 0.0f, sc->os, (int)D);
    else
        memset(sc->os, 0, sizeof(float) * (size_t)(G * D));
    t->flops += 2.0 * (double)(G * n * D);
    t->bytes += 4.0 * (double)(n * D);
}

/* Recycled step at row i: softmax over the kept keys and the keys [j0, e)
 * that arrived after the full step. */
static void rc_recycled_step(const attn_args *a, const rc_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                             int64_t i, int64_t e, const rc_scratch *sc, const rc_state *st, rc_tally *t)
{
    int64_t G = pl->G, D = a->D, ns = st->nkeep, j0 = rc_new_from(a, st->pf);
    int64_t nn = e > j0 ? e - j0 : 0, m = ns + nn;
    float sc_ = (float)attn_scale(a), *P = sc->P, *o = sc->os;
    const float *q = sc->qs;
    if (ns > 0) // P[:, 0:ns] = sc Q Ks^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)G, (int)ns, (int)D, sc_, q, (int)D, sc->Ks,
                    (int)D, 0.0f, P, (int)(m > 0 ? m : 1));
    if (nn > 0) // P[:, ns:m] = sc Q K[j0:e]^T, read in place
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)G, (int)nn, (int)D, sc_, q, (int)D,
                    attn_at(&io->k, b, hk, j0), (int)io->k.sn, 0.0f, P + ns, (int)m);
    for (int64_t g = 0; g < G; g++)
        io->lse[(b * a->H + hk * G + g) * a->Nq + i] = attn_softmax_row(P + g * m, m);
    if (m == 0)
        memset(o, 0, sizeof(float) * (size_t)(G * D));
    if (ns > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)G, (int)D, (int)ns, 1.0f, P, (int)m, sc->Vs,
                    (int)D, 0.0f, o, (int)D);
    if (nn > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)G, (int)D, (int)nn, 1.0f, P + ns, (int)m,
                    attn_at(&io->v, b, hk, j0), (int)io->v.sn, ns > 0 ? 1.0f : 0.0f, o, (int)D);
    t->flops += 4.0 * (double)(G * m * D);
    t->bytes += 8.0 * (double)(m * D) + 4.0 * (double)(G * D);
    t->exps += (double)(G * m);
}

/* The rows of group (b, hk) as successive steps. */
static void rc_group(const attn_args *a, const rc_plan *pl, const attn_io *io, int64_t b, int64_t hk, rc_scratch *sc,
                     rc_tally *t)
{
    rc_state st = {0, 0, 0};
    for (int64_t i = 0; i < a->Nq; i++) {
        int64_t p = a->q_off + i, e = rc_key_end(pl, a, p);
        int full = rc_scheduled_full(pl, i);
        rc_pack_queries(a, pl, io, b, hk, i, sc);
        if (!full && !st.have) { /* row 0 mid-cycle: its queries stand in for its full step's */
            int64_t pf = p - pl->phase;
            rc_select(a, pl, io, b, hk, rc_key_end(pl, a, pf), pf, sc, &st, t);
        } else if (!full && pl->dynamic)
            full = rc_group_cos(sc->qs, a->D, sc->qf, a->D, pl->G, a->D) < pl->tau;
        if (full)
            rc_full_step(a, pl, io, b, hk, i, e, sc, &st, t);
        else
            rc_recycled_step(a, pl, io, b, hk, i, e, sc, &st, t);
        rc_store_output(a, pl, io, b, hk, i, sc);
    }
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse (B,H,Nq)
int rc_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    rc_plan pl;
    int rc = rc_plan_make(&pl, a);
    if (rc)
        return rc;
    size_t per_thread = rc_thread_bytes(a, &pl);
    int64_t tasks = a->B * a->H_kv;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        rc_tally t = {0, 0, 0};
        rc_scratch sc = rc_take(a, &pl, (char *)ctx->workspace + per_thread * (size_t)omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++)
            rc_group(a, &pl, io, task / a->H_kv, task % a->H_kv, &sc, &t);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)t.flops);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t.bytes);
        attn_counter_add(ATTN_CNT_EXPS, (long long)t.exps);
    }
    return 0;
}
