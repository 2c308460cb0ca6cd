/* `retrieval` decode step (docs/kernels/retrieval.md): for one query row and
 * the G query heads of a KV head, retrieve r keys per head from the index
 * part of the cache, then attend exactly over the static set (sinks and
 * window) and the retrieved keys with one softmax over their disjoint union.
 *
 * Search, per head: the keys' scores <q, k> are ret_dot in double (the
 * reference replays them). Exhaustive when the row's index part is small
 * (fewer keys than r, or than the first stage): every key once, scored for
 * every head. IVF: lists ranked by their bound <q, mu_c> + |q| rho_c over
 * the members the row may see; nprobe: each head's nprobe first lists, the
 * union of the group's lists read once, a key scored for the heads that
 * chose its list; exact=1: the group reads lists one at a time, each offered
 * to the heads whose best unscanned bound is not yet below their r-th best
 * score, so every head returns the exhaustive top r. A head keeps its r
 * best in a heap (ties: lower row).
 *
 * Attention: the static scores by one sgemm for the G heads (K read in
 * place), the retrieved keys' logits are their search scores times the
 * scale (their K rows are not read again), softmax over both, the static
 * values by one sgemm, each retrieved value added by its weight. */
#include "retrieval_internal.h"

#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double b;
    int64_t c;
} ret_ranked;

ret_search_ws ret_search_carve(const ret_plan *pl, float *p)
{
    int64_t G = pl->G, nl = pl->nlist_max, hits = pl->hits_max + 1;
    ret_search_ws w;
    w.ranked = p, p += G * 4 * RET_ROUND16(nl);
    w.count = (int32_t *)p, p += RET_ROUND16(nl);
    w.chosen = (unsigned char *)p, p += RET_ROUND16(G * nl);
    w.hits = (ret_hit *)p, w.hits_ld = RET_ROUND16(hits), p += G * 4 * RET_ROUND16(hits);
    w.S = p, w.ldS = pl->static_max, p += RET_ROUND16(G * pl->static_max);
    w.P = p, p += G * RET_ROUND16(hits);
    w.Q = p, p += RET_ROUND16(G * pl->D);
    w.O = p;
    return w;
}

/* ---- the r best of a head: a heap whose root is the worst kept ---- */

static int ret_worse(const ret_hit *x, const ret_hit *y) { return ret_better(y->s, y->j, x->s, x->j); }

static void ret_sift_down(ret_hit *h, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, m = i;
        if (l < n && ret_worse(&h[l], &h[m]))
            m = l;
        if (l + 1 < n && ret_worse(&h[l + 1], &h[m]))
            m = l + 1;
        if (m == i)
            return;
        ret_hit x = h[i];
        h[i] = h[m], h[m] = x, i = m;
    }
}

static void ret_offer(ret_hit *h, int64_t *n, int64_t r, double s, int64_t j)
{
    ret_hit x = {s, j};
    if (*n < r) { /* sift up */
        int64_t i = (*n)++;
        while (i > 0 && ret_worse(&x, &h[(i - 1) / 2]))
            h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
        h[i] = x;
    } else if (r > 0 && ret_better(s, j, h[0].s, h[0].j)) {
        h[0] = x;
        ret_sift_down(h, *n, 0);
    }
}

static int ret_by_row(const void *x, const void *y)
{
    int64_t a = ((const ret_hit *)x)->j, b = ((const ret_hit *)y)->j;
    return (a > b) - (a < b);
}

static int ret_by_rank(const void *x, const void *y)
{
    const ret_ranked *a = x, *b = y;
    return ret_list_before(a->b, a->c, b->b, b->c) ? -1 : ret_list_before(b->b, b->c, a->b, a->c) ? 1 : 0;
}

/* ---- search ---- */

typedef struct {
    const ret_plan *pl;
    const attn_io *io;
    int64_t b, hk, i;
    const ret_row *rw;
    ret_search_ws *w;
    ret_tally *t;
    int64_t nh[RET_MAX_GROUP];
} ret_step;

static ret_hit *ret_hits(const ret_step *x, int64_t g) { return x->w->hits + g * x->w->hits_ld; }
static const float *ret_qrow(const ret_step *x, int64_t g) { return x->w->Q + g * x->pl->D; }

/* Key k (key row j) offered to the heads g whose flag heads[g] is set (NULL: all). */
static void ret_score_key(ret_step *x, const float *k, int64_t j, const unsigned char *heads)
{
    int64_t D = x->pl->D;
    for (int64_t g = 0; g < x->pl->G; g++)
        if (!heads || heads[g]) {
            ret_offer(ret_hits(x, g), &x->nh[g], x->pl->r, ret_dot(ret_qrow(x, g), k, D), j);
            x->t->flops += 2.0 * (double)D;
        }
    x->t->bytes += 4.0 * (double)D;
}

static void ret_search_all(ret_step *x)
{
    for (int64_t m = 0; m < x->rw->s; m++)
        ret_score_key(x, attn_at(&x->io->k, x->b, x->hk, x->rw->idx_lo + m), x->rw->idx_lo + m, NULL);
}

/* Head g's lists with visible members, ranked by bound, into rk; returns how many. */
static int64_t ret_rank_lists(ret_step *x, const ret_lists *L, int64_t nl, int64_t g, ret_ranked *rk)
{
    const float *q = ret_qrow(x, g);
    int64_t D = x->pl->D, n = 0;
    double qn = sqrt(ret_dot(q, q, D));
    for (int64_t c = 0; c < nl; c++)
        if (x->w->count[c] > 0)
            rk[n].b = ret_bound(L, c, x->w->count[c], q, qn, D), rk[n++].c = c;
    qsort(rk, (size_t)n, sizeof *rk, ret_by_rank);
    x->t->flops += 2.0 * (double)((nl + 1) * D);
    return n;
}

static void ret_scan_list(ret_step *x, const ret_lists *L, int64_t c, const unsigned char *heads)
{
    for (int64_t e = L->start[c]; e < L->start[c] + x->w->count[c]; e++)
        ret_score_key(x, L->keys + e * x->pl->D, x->rw->idx_lo + L->member[e], heads);
    x->t->bytes += 8.0 * (double)x->w->count[c]; /* member and radius entries */
}

/* exact=1: the group scans lists one at a time, each read once and offered
 * to every head still active; head g stays active while the best bound of
 * its unscanned lists is not below its r-th best score (with a margin far
 * above the bound's rounding). A head is offered every key of its lists
 * above that bound (and maybe more), so it keeps the exhaustive top r. */
static void ret_search_exact(ret_step *x, const ret_lists *L, int64_t nl)
{
    int64_t G = x->pl->G, ld = RET_ROUND16(nl), n[RET_MAX_GROUP], u[RET_MAX_GROUP];
    ret_ranked *rk = (ret_ranked *)x->w->ranked; /* head g's ranking at rk + g * ld */
    unsigned char *scanned = x->w->chosen, *active = scanned + nl;
    memset(scanned, 0, (size_t)nl);
    for (int64_t g = 0; g < G; g++)
        n[g] = ret_rank_lists(x, L, nl, g, rk + g * ld), u[g] = 0;
    for (;;) {
        int64_t pick = -1;
        for (int64_t g = 0; g < G; g++) {
            const ret_ranked *r = rk + g * ld;
            const ret_hit *h = ret_hits(x, g);
            while (u[g] < n[g] && scanned[r[u[g]].c])
                u[g]++;
            active[g] = u[g] < n[g] &&
                        !(x->nh[g] == x->pl->r && r[u[g]].b + 1e-9 * (fabs(r[u[g]].b) + 1.0) < h[0].s);
            if (active[g] && pick < 0)
                pick = r[u[g]].c;
        }
        if (pick < 0)
            return;
        scanned[pick] = 1;
        ret_scan_list(x, L, pick, active);
    }
}

/* nprobe: each head's first nprobe lists; the union read once. */
static void ret_search_probe(ret_step *x, const ret_lists *L, int64_t nl, int64_t nprobe)
{
    int64_t G = x->pl->G;
    unsigned char *chosen = x->w->chosen; /* chosen[c * G + g] */
    memset(chosen, 0, (size_t)(nl * G));
    ret_ranked *rk = (ret_ranked *)x->w->ranked;
    for (int64_t g = 0; g < G; g++) {
        int64_t n = ret_rank_lists(x, L, nl, g, rk);
        for (int64_t u = 0; u < n && u < nprobe; u++)
            chosen[rk[u].c * G + g] = 1;
    }
    for (int64_t c = 0; c < nl; c++) {
        int any = 0;
        for (int64_t g = 0; g < G; g++)
            any |= chosen[c * G + g];
        if (any)
            ret_scan_list(x, L, c, chosen + c * G);
    }
}

static void ret_search(ret_step *x, const float *slot)
{
    const ret_plan *pl = x->pl;
    int64_t s = x->rw->s;
    memset(x->nh, 0, sizeof x->nh);
    if (pl->r == 0 || s == 0)
        return;
    int st = ret_stage_of(pl, s);
    if (s <= pl->r || st < 0)
        ret_search_all(x);
    else {
        ret_lists L = ret_lists_of(pl, st, slot);
        int64_t nl = pl->st[st].nlist;
        int all = s >= pl->st[st].members; /* every member is visible: no position search */
        for (int64_t c = 0; c < nl; c++)
            x->w->count[c] = all ? L.start[c + 1] - L.start[c] : (int32_t)ret_eligible(&L, c, s);
        x->t->bytes += 4.0 * (double)(nl * pl->D + 2 * nl); /* centroids, offsets, radii */
        if (pl->exact)
            ret_search_exact(x, &L, nl);
        else
            ret_search_probe(x, &L, nl, pl->st[st].nprobe);
    }
    for (int64_t g = 0; g < pl->G; g++) /* a fixed order for the value sums */
        qsort(ret_hits(x, g), (size_t)x->nh[g], sizeof(ret_hit), ret_by_row);
}

/* ---- attention over the static set and the retrieved keys ---- */

/* Scores of the G heads against key rows [j0, j1) into S columns at col. */
static void ret_static_scores(ret_step *x, const attn_args *a, int64_t j0, int64_t j1, int64_t col)
{
    if (j1 <= j0)
        return;
    int64_t D = a->D, n = j1 - j0, G = x->pl->G;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)G, (int)n, (int)D, (float)attn_scale(a), x->w->Q,
                (int)D, attn_at(&x->io->k, x->b, x->hk, j0), (int)x->io->k.sn, 0.0f, x->w->S + col, (int)x->w->ldS);
    x->t->flops += 2.0 * (double)(G * n * D);
    x->t->bytes += 4.0 * (double)(n * D);
}

static void ret_static_values(ret_step *x, const attn_args *a, int64_t j0, int64_t j1, int64_t col, float beta)
{
    if (j1 <= j0)
        return;
    int64_t D = a->D, n = j1 - j0, G = x->pl->G;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)G, (int)D, (int)n, 1.0f, x->w->S + col,
                (int)x->w->ldS, attn_at(&x->io->v, x->b, x->hk, j0), (int)x->io->v.sn, beta, x->w->O, (int)D);
    x->t->flops += 2.0 * (double)(G * n * D);
    x->t->bytes += 4.0 * (double)(n * D);
}

/* Softmax of head g over its static scores and retrieved logits, in place;
 * returns lse (-inf when the row has no key) and its 1/l in *inv. */
static float ret_softmax(ret_step *x, int64_t g, int64_t nst, float sc, float *inv)
{
    float *s = x->w->S + g * x->w->ldS, *p = x->w->P + g * x->w->hits_ld, mx = -INFINITY, l = 0;
    const ret_hit *h = ret_hits(x, g);
    int64_t nh = x->nh[g];
    for (int64_t m = 0; m < nh; m++)
        p[m] = (float)((double)sc * h[m].s);
    for (int64_t j = 0; j < nst; j++)
        mx = s[j] > mx ? s[j] : mx;
    for (int64_t m = 0; m < nh; m++)
        mx = p[m] > mx ? p[m] : mx;
    if (mx == -INFINITY) {
        *inv = 0;
        memset(s, 0, sizeof(float) * (size_t)nst);
        memset(p, 0, sizeof(float) * (size_t)nh);
        return -INFINITY;
    }
    for (int64_t j = 0; j < nst; j++)
        s[j] -= mx;
    for (int64_t m = 0; m < nh; m++)
        p[m] -= mx;
    attn_vexp(s, s, nst);
    attn_vexp(p, p, nh);
    for (int64_t j = 0; j < nst; j++)
        l += s[j];
    for (int64_t m = 0; m < nh; m++)
        l += p[m];
    x->t->exps += (double)(nst + nh);
    *inv = 1.0f / l;
    return mx + logf(l);
}

static void ret_attend(ret_step *x, const attn_args *a)
{
    const ret_row *rw = x->rw;
    int64_t D = a->D, G = x->pl->G, end = rw->hj + 1, nsk = rw->sink_end, nst = nsk + (end - rw->win_lo);
    if (rw->hj < 0)
        nst = 0;
    ret_static_scores(x, a, 0, nsk, 0);
    ret_static_scores(x, a, rw->win_lo, end, nsk);
    float lse[RET_MAX_GROUP], inv[RET_MAX_GROUP];
    for (int64_t g = 0; g < G; g++)
        lse[g] = ret_softmax(x, g, nst, (float)attn_scale(a), &inv[g]);
    memset(x->w->O, 0, sizeof(float) * (size_t)(G * D));
    ret_static_values(x, a, 0, nsk, 0, 0.0f);
    ret_static_values(x, a, rw->win_lo, end, nsk, 1.0f);
    for (int64_t g = 0; g < G; g++) {
        float *o = x->w->O + g * D;
        const float *p = x->w->P + g * x->w->hits_ld;
        const ret_hit *h = ret_hits(x, g);
        for (int64_t m = 0; m < x->nh[g]; m++) {
            const float *v = attn_at(&x->io->v, x->b, x->hk, h[m].j);
            for (int64_t d = 0; d < D; d++)
                o[d] += p[m] * v[d];
        }
        x->t->flops += 2.0 * (double)(x->nh[g] * D);
        x->t->bytes += 4.0 * (double)(x->nh[g] * D);
        float *out = attn_at(&x->io->o, x->b, x->hk * G + g, x->i);
        for (int64_t d = 0; d < D; d++)
            out[d] = o[d] * inv[g];
        x->io->lse[(x->b * a->H + x->hk * G + g) * a->Nq + x->i] = lse[g];
    }
}

void ret_step_row(const ret_plan *pl, const attn_args *a, const attn_io *io, const float *slot, int64_t b,
                  int64_t hk, int64_t i, ret_search_ws *w, ret_tally *t)
{
    ret_row rw = ret_row_of(pl, a, i);
    ret_step x = {.pl = pl, .io = io, .b = b, .hk = hk, .i = i, .rw = &rw, .w = w, .t = t};
    for (int64_t g = 0; g < pl->G; g++)
        memcpy(w->Q + g * pl->D, attn_at(&io->q, b, hk * pl->G + g, i), sizeof(float) * (size_t)pl->D);
    t->bytes += 4.0 * (double)(pl->G * pl->D);
    ret_search(&x, slot);
    ret_attend(&x, a);
}
