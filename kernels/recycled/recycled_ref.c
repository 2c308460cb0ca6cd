/* Plain double reference of `recycled` (recycled.h) and its fidelity view.
 * Per (b, KV head) the rows are walked in position order as decode steps;
 * each row's attended keys are a set over the original keys (all it may
 * attend at a full step; the kept keys of its full step and the keys after
 * that step otherwise), and its output is a softmax over that set in
 * double, head by head. The kept keys come from rc_group_weights, the one
 * compiled scoring function the fp32 kernel also calls, on the same fp32
 * values (the reference's inputs are widened fp32 values, narrowed back
 * exactly), then a full sort of the keys by weight (ties: lower position),
 * not the kernel's quickselect. */
#include "recycled_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double w;
    int64_t j;
} rc_ref_key;

/* Best first: higher weight, ties to the lower position (rc_better). */
static int rc_ref_order(const void *x, const void *y)
{
    const rc_ref_key *p = x, *q = y;
    if (p->w != q->w)
        return p->w > q->w ? -1 : 1;
    return p->j < q->j ? -1 : p->j > q->j;
}

/* The walk over the rows of one KV group. */
typedef struct {
    const attn_args *a;
    const rc_plan *pl;
    const attn_io64 *io;
    int64_t b, hk;
    float *kf, *qg, *qfull;     /* K narrowed (Nk x D); this row's and the full step's group queries (G x D) */
    float *e, *m;               /* rc_group_weights scratch */
    double *l, *w;
    rc_ref_key *order;
    unsigned char *kept, *att;  /* Nk each */
    int64_t pf;                 /* position of the current full step */
    int have, kept_ready;
} rc_walk;

static void rc_walk_free(rc_walk *w)
{
    free(w->kf), free(w->qg), free(w->qfull), free(w->e), free(w->m), free(w->l), free(w->w);
    free(w->order), free(w->kept), free(w->att);
}

static int rc_walk_open(rc_walk *w, const attn_args *a, const rc_plan *pl, const attn_io64 *io, int64_t b,
                        int64_t hk)
{
    int64_t N = a->Nk + 1, D = a->D, G = pl->G;
    *w = (rc_walk){.a = a, .pl = pl, .io = io, .b = b, .hk = hk};
    w->kf = malloc(sizeof(float) * (size_t)(N * D)), w->qg = malloc(sizeof(float) * (size_t)(G * D));
    w->qfull = malloc(sizeof(float) * (size_t)(G * D)), w->e = malloc(sizeof(float) * (size_t)(G * N));
    w->m = malloc(sizeof(float) * (size_t)G), w->l = malloc(sizeof(double) * (size_t)G);
    w->w = malloc(sizeof(double) * (size_t)N);
    w->order = malloc(sizeof *w->order * (size_t)N), w->kept = malloc((size_t)N), w->att = malloc((size_t)N);
    if (!w->kf || !w->qg || !w->qfull || !w->e || !w->m || !w->l || !w->w || !w->order || !w->kept ||
        !w->att) {
        rc_walk_free(w);
        return attn_fail(ATTN_ENOMEM, "recycled reference: out of memory for %lld keys", (long long)a->Nk);
    }
    for (int64_t j = 0; j < a->Nk; j++)
        for (int64_t d = 0; d < D; d++)
            w->kf[j * D + d] = (float)attn_at64(&io->k, b, hk, j)[d];
    return 0;
}

/* The kept keys of the current full step, computed when a row first needs them. */
static void rc_walk_kept(rc_walk *w)
{
    if (w->kept_ready)
        return;
    const attn_args *a = w->a;
    int64_t n = rc_key_end(w->pl, a, w->pf), D = a->D;
    rc_group_weights(w->qfull, D, w->pl->G, w->kf, D, n, D, (float)attn_scale(a), w->e, w->m, w->l, w->w);
    for (int64_t j = 0; j < n; j++)
        w->order[j] = (rc_ref_key){w->w[j], j};
    qsort(w->order, (size_t)n, sizeof *w->order, rc_ref_order);
    memset(w->kept, 0, (size_t)a->Nk);
    for (int64_t r = 0; r < n && r < w->pl->K; r++)
        w->kept[w->order[r].j] = 1;
    w->kept_ready = 1;
}

/* Advances the walk to row i (rows in order, from 0) and, when `want`,
 * fills w->att with the keys row i attends. */
static void rc_walk_row(rc_walk *w, int64_t i, int want)
{
    const attn_args *a = w->a;
    const rc_plan *pl = w->pl;
    int64_t G = pl->G, D = a->D, p = a->q_off + i, e = rc_key_end(pl, a, p);
    for (int64_t g = 0; g < G; g++)
        for (int64_t d = 0; d < D; d++)
            w->qg[g * D + d] = (float)attn_at64(&w->io->q, w->b, w->hk * G + g, i)[d];
    int full = rc_scheduled_full(pl, i), stand_in = !full && !w->have;
    if (!full && !stand_in && pl->dynamic)
        full = rc_group_cos(w->qg, D, w->qfull, D, G, D) < pl->tau;
    if (full || stand_in) { /* a new full step (row 0 mid-cycle: its queries stand in for its full step's) */
        w->pf = full ? p : p - pl->phase, w->have = 1, w->kept_ready = 0;
        memcpy(w->qfull, w->qg, sizeof(float) * (size_t)(G * D));
    }
    if (!want)
        return;
    if (!full)
        rc_walk_kept(w);
    int64_t j0 = rc_new_from(a, w->pf);
    for (int64_t j = 0; j < a->Nk; j++)
        w->att[j] = j < e && (full || w->kept[j] || j >= j0);
}

/* Softmax of query row i of head h over the keys att: P[0..Nk) (0 off
 * att), returns the lse (-inf: no key). */
static double rc_ref_probs(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, int64_t i,
                           const unsigned char *att, double *P)
{
    int64_t G = a->H / a->H_kv, D = a->D;
    const double *q = attn_at64(&io->q, b, h, i);
    double mx = -INFINITY, z = 0;
    for (int64_t j = 0; j < a->Nk; j++) {
        double s = 0;
        const double *k = attn_at64(&io->k, b, h / G, j);
        for (int64_t d = 0; att[j] && d < D; d++)
            s += q[d] * k[d];
        P[j] = att[j] ? attn_scale(a) * s : -INFINITY;
        mx = fmax(mx, P[j]);
    }
    for (int64_t j = 0; j < a->Nk; j++)
        z += P[j] = mx > -INFINITY && att[j] ? exp(P[j] - mx) : 0;
    for (int64_t j = 0; z > 0 && j < a->Nk; j++)
        P[j] /= z;
    return z > 0 ? mx + log(z) : -INFINITY;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse (B,H,Nq) when given
int rc_ref_forward(const attn_args *a, const attn_io64 *io)
{
    rc_plan pl;
    int rc = rc_plan_make(&pl, a);
    double *P = rc ? NULL : malloc(sizeof(double) * (size_t)(a->Nk + 1));
    if (!rc && !P)
        return attn_fail(ATTN_ENOMEM, "recycled reference: out of memory for %lld keys", (long long)a->Nk);
    for (int64_t b = 0; !rc && b < a->B; b++)
        for (int64_t hk = 0; !rc && hk < a->H_kv; hk++) {
            rc_walk w;
            if ((rc = rc_walk_open(&w, a, &pl, io, b, hk)) != 0)
                break;
            for (int64_t i = 0; i < a->Nq; i++) {
                rc_walk_row(&w, i, 1);
                for (int64_t h = hk * pl.G; h < (hk + 1) * pl.G; h++) {
                    double lse = rc_ref_probs(a, io, b, h, i, w.att, P), *o = attn_at64(&io->o, b, h, i);
                    memset(o, 0, sizeof(double) * (size_t)a->D);
                    for (int64_t j = 0; j < a->Nk; j++)
                        for (int64_t d = 0; P[j] > 0 && d < a->D; d++)
                            o[d] += P[j] * attn_at64(&io->v, b, hk, j)[d];
                    if (io->lse)
                        io->lse[(b * a->H + h) * a->Nq + i] = lse;
                }
            }
            rc_walk_free(&w);
        }
    free(P);
    return rc;
}

/* Rows and keys of head h: the softmax over the attended set and the set. */
int rc_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n,
                double *P, unsigned char *sel)
{
    rc_plan pl;
    int rc = rc_plan_make(&pl, a);
    if (rc)
        return rc;
    int64_t last = -1;
    for (int64_t r = 0; r < n; r++)
        last = rows[r] > last ? rows[r] : last;
    rc_walk w;
    if ((rc = rc_walk_open(&w, a, &pl, io, b, h / pl.G)) != 0)
        return rc;
    for (int64_t i = 0; i <= last; i++) {
        int want = 0;
        for (int64_t r = 0; r < n; r++)
            want |= rows[r] == i;
        rc_walk_row(&w, i, want);
        for (int64_t r = 0; want && r < n; r++)
            if (rows[r] == i) {
                rc_ref_probs(a, io, b, h, i, w.att, P + r * a->Nk);
                memcpy(sel + r * a->Nk, w.att, (size_t)a->Nk);
            }
    }
    rc_walk_free(&w);
    return ATTN_VIEW_ROWS | ATTN_VIEW_KEYS;
}
