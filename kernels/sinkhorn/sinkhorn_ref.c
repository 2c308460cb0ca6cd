/* Plain double reference of `sinkhorn` (sinkhorn.h), written query by query
 * without packing, tiling or products, and its fidelity view: the attention
 * each query puts on the original keys, its local weights plus each sorted
 * slot's weight spread over the key blocks by P. */
#include "sinkhorn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One head of the double problem, with its sort computed. */
typedef struct {
    const sk_plan *pl;
    const attn_io64 *io;
    int64_t b, h, hk;
    sk_geom g;
    double *P, *mu;     /* [nb x nb], [nb] */
    double *Kt, *Vt;    /* one sorted block, [c x D] each */
    double *wts;        /* [2c]: the softmax over [own keys; sorted slots] */
} ref_head;

static const double *key_row(const ref_head *r, const attn_tensor_f64 *t, int64_t n)
{
    return attn_at64(t, r->b, r->hk, n);
}

static void ref_softmax(double *x, int64_t n, double *lse)
{
    double m = -INFINITY, l = 0;
    for (int64_t j = 0; j < n; j++)
        m = fmax(m, x[j]);
    if (m == -INFINITY) {
        memset(x, 0, sizeof(double) * (size_t)n);
        if (lse)
            *lse = -INFINITY;
        return;
    }
    for (int64_t j = 0; j < n; j++)
        l += x[j] = exp(x[j] - m);
    for (int64_t j = 0; j < n; j++)
        x[j] /= l;
    if (lse)
        *lse = m + log(l);
}

/* x - logsumexp along rows (rows = 1) or columns of the n x n matrix. */
static void ref_log_normalise(double *x, int64_t n, int rows)
{
    for (int64_t l = 0; l < n; l++) {
        double m = -INFINITY, sum = 0;
        for (int64_t k = 0; k < n; k++)
            m = fmax(m, x[rows ? l * n + k : k * n + l]);
        for (int64_t k = 0; k < n; k++)
            sum += exp(x[rows ? l * n + k : k * n + l] - m);
        for (int64_t k = 0; k < n; k++)
            x[rows ? l * n + k : k * n + l] -= m + log(sum);
    }
}

/* Summaries, sort-net logits, P and mu of the head. */
static void ref_sort(ref_head *r)
{
    const sk_plan *pl = r->pl;
    int64_t nb = r->g.nb, c = pl->c, D = pl->D;
    const double *w = attn_at64(&r->io->w, 0, r->h, 0);
    double *s = calloc((size_t)D, sizeof(double));
    for (int64_t i = 0; i < nb; i++) {
        memset(s, 0, sizeof(double) * (size_t)D);
        int64_t last = pl->causal ? 1 : sk_rows(pl, &r->g, i);
        for (int64_t t = 0; t < last; t++)
            for (int64_t d = 0; d < D; d++)
                s[d] += key_row(r, &r->io->k, i * c + t)[d];
        for (int64_t j = 0; j < nb; j++) {
            double z = w[j * pl->ldw + D];
            for (int64_t d = 0; d < D; d++)
                z += s[d] * w[j * pl->ldw + d];
            r->P[i * nb + j] = pl->causal && j >= i ? -INFINITY : z;
        }
    }
    free(s);
    if (pl->sort == SK_SORT_SOFTMAX) {
        for (int64_t i = 0; i < nb; i++)
            ref_softmax(r->P + i * nb, nb, NULL);
    } else {
        for (int64_t e = 0; e < nb * nb; e++)
            r->P[e] /= pl->temp;
        for (int64_t it = 0; it < pl->iters; it++) {
            ref_log_normalise(r->P, nb, 0);
            ref_log_normalise(r->P, nb, 1);
        }
        for (int64_t e = 0; e < nb * nb; e++)
            r->P[e] = exp(r->P[e]);
    }
    for (int64_t i = 0; i < nb; i++) {
        r->mu[i] = 0;
        for (int64_t j = 0; j < nb - 1; j++)
            r->mu[i] += r->P[i * nb + j];
    }
}

/* Weight of key block j in slot t of block i's sorted block. */
static double slot_coef(const ref_head *r, int64_t i, int64_t j, int64_t t)
{
    if (t < r->g.r)
        return r->P[i * r->g.nb + j];
    if (j == r->g.nb - 1 || !sk_slot_valid(r->pl, &r->g, i, t, r->mu[i]))
        return 0; /* the last block has no row t; a masked slot mixes nothing */
    return r->P[i * r->g.nb + j] / r->mu[i];
}

/* Kt, Vt of block i. */
static void ref_sorted_block(ref_head *r, int64_t i)
{
    int64_t c = r->pl->c, D = r->pl->D;
    memset(r->Kt, 0, sizeof(double) * (size_t)(c * D));
    memset(r->Vt, 0, sizeof(double) * (size_t)(c * D));
    for (int64_t t = 0; t < c; t++)
        for (int64_t j = 0; j < r->g.nb; j++) {
            double p = slot_coef(r, i, j, t);
            if (j * c + t >= r->g.L || p == 0)
                continue;
            const double *k = key_row(r, &r->io->k, j * c + t), *v = key_row(r, &r->io->v, j * c + t);
            for (int64_t d = 0; d < D; d++)
                r->Kt[t * D + d] += p * k[d], r->Vt[t * D + d] += p * v[d];
        }
}

/* r->wts for query row t of block i (after ref_sorted_block(i)); returns the lse. */
static double ref_weights(ref_head *r, const attn_args *a, int64_t i, int64_t t)
{
    const sk_plan *pl = r->pl;
    int64_t c = pl->c, D = pl->D, n = sk_rows(pl, &r->g, i);
    const double *q = attn_at64(&r->io->q, r->b, r->h, i * c + t);
    double sc = attn_scale(a), lse;
    for (int64_t u = 0; u < 2 * c; u++) {
        int local = u < c, slot = u - c;
        int ok = local ? u < n && (!pl->causal || u <= t) : sk_slot_valid(pl, &r->g, i, slot, r->mu[i]);
        const double *k = local ? (ok ? key_row(r, &r->io->k, i * c + u) : NULL) : r->Kt + slot * D;
        double z = 0;
        for (int64_t d = 0; ok && d < D; d++)
            z += q[d] * k[d];
        r->wts[u] = ok ? sc * z : -INFINITY;
    }
    ref_softmax(r->wts, 2 * c, &lse);
    return lse;
}

static int ref_head_open(ref_head *r, const sk_plan *pl, const attn_args *a, const attn_io64 *io, int64_t b,
                         int64_t h)
{
    *r = (ref_head){.pl = pl, .io = io, .b = b, .h = h, .hk = h / pl->G, .g = sk_geom_of(pl, attn_q_len(a, b))};
    int64_t nb = r->g.nb, c = pl->c, D = pl->D;
    r->P = malloc(sizeof(double) * (size_t)(nb * nb + 1));
    r->mu = malloc(sizeof(double) * (size_t)(nb + 1));
    r->Kt = malloc(sizeof(double) * (size_t)(c * D));
    r->Vt = malloc(sizeof(double) * (size_t)(c * D));
    r->wts = malloc(sizeof(double) * (size_t)(2 * c));
    if (!r->P || !r->mu || !r->Kt || !r->Vt || !r->wts)
        return attn_fail(ATTN_ENOMEM, "sinkhorn ref: out of memory for %lld blocks", (long long)nb);
    ref_sort(r);
    return 0;
}

static void ref_head_close(ref_head *r)
{
    free(r->P), free(r->mu), free(r->Kt), free(r->Vt), free(r->wts);
}

static int ref_plan(sk_plan *pl, const attn_args *a, const attn_io64 *io)
{
    int rc = sk_plan_make(pl, a);
    if (!rc && (!io->w.data || io->w.D < pl->nb_max * pl->ldw))
        rc = attn_fail(ATTN_EINVAL, "sinkhorn ref: expected io.w with >= %lld weights per head",
                       (long long)(pl->nb_max * pl->ldw));
    return rc;
}

int sk_ref_forward(const attn_args *a, const attn_io64 *io)
{
    sk_plan pl;
    int rc = ref_plan(&pl, a, io);
    for (int64_t b = 0; !rc && b < a->B; b++)
        for (int64_t h = 0; !rc && h < a->H; h++) {
            ref_head r;
            if ((rc = ref_head_open(&r, &pl, a, io, b, h)) == 0) {
                int64_t c = pl.c, D = pl.D;
                for (int64_t n = 0; n < a->Nq; n++) { /* padding rows stay 0 */
                    memset(attn_at64(&io->o, b, h, n), 0, sizeof(double) * (size_t)D);
                    if (io->lse)
                        io->lse[(b * a->H + h) * a->Nq + n] = -INFINITY;
                }
                for (int64_t i = 0; i < r.g.nb; i++) {
                    ref_sorted_block(&r, i);
                    for (int64_t t = 0; t < sk_rows(&pl, &r.g, i); t++) {
                        double lse = ref_weights(&r, a, i, t), *o = attn_at64(&io->o, b, h, i * c + t);
                        for (int64_t u = 0; u < c; u++)
                            for (int64_t d = 0; d < D; d++) {
                                if (r.wts[u] != 0)
                                    o[d] += r.wts[u] * key_row(&r, &io->v, i * c + u)[d];
                                o[d] += r.wts[c + u] * r.Vt[u * D + d];
                            }
                        if (io->lse)
                            io->lse[(b * a->H + h) * a->Nq + i * c + t] = lse;
                    }
                }
            }
            ref_head_close(&r);
        }
    return rc;
}

int sk_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n_rows,
                double *P, unsigned char *sel)
{
    (void)sel; /* no hard selection: every block with P_ij > 0 contributes */
    sk_plan pl;
    int rc = ref_plan(&pl, a, io);
    ref_head r;
    if (rc)
        return rc;
    if ((rc = ref_head_open(&r, &pl, a, io, b, h)) != 0) {
        ref_head_close(&r);
        return rc;
    }
    int64_t c = pl.c, built = -1; /* the block whose sorted keys r.Kt holds */
    memset(P, 0, sizeof(double) * (size_t)(n_rows * a->Nk));
    for (int64_t s = 0; s < n_rows; s++) {
        int64_t i = rows[s] / c, t = rows[s] % c;
        if (rows[s] >= r.g.L)
            continue; /* a padding row: no attention */
        if (i != built)
            ref_sorted_block(&r, i), built = i;
        ref_weights(&r, a, i, t);
        double *row = P + s * a->Nk;
        for (int64_t u = 0; u < c; u++) {
            if (i * c + u < r.g.L)
                row[i * c + u] += r.wts[u];
            for (int64_t j = 0; j < r.g.nb && r.wts[c + u] != 0; j++)
                if (j * c + u < r.g.L)
                    row[j * c + u] += r.wts[c + u] * slot_coef(&r, i, j, u);
        }
    }
    ref_head_close(&r);
    return ATTN_VIEW_ROWS;
}
