/* Plain double reference of `landmark` (Mohtashami & Jaggi 2023, Sec. 3.1
 * eq. 2-4; the formulas are in landmark.h), written from the definition one
 * query at a time and sharing no code with the fp32 kernel: every visible
 * score, the retrieved set by sorting the earlier blocks on their landmark
 * score, the own-group softmax, each retrieved block's softmax, and
 * o = sum_j w_j v_j. io->lse is not written. */
#include "landmark.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double s;      /* landmark score */
    int64_t b;     /* block */
} lm_ref_block;

/* Best first: higher landmark score, ties to the lower block index. */
static int lm_ref_order(const void *x, const void *y)
{
    const lm_ref_block *p = x, *q = y;
    if (p->s != q->s)
        return p->s > q->s ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

static double lm_ref_dot(const double *x, const double *y, int64_t n)
{
    double s = 0;
    for (int64_t d = 0; d < n; d++)
        s += x[d] * y[d];
    return s;
}

/* Weights w[0..t] of a query at key coordinate t >= 0 from its scores
 * s[0..t]; sel and order are scratch of t/l + 1 entries. */
static void lm_ref_weights(const lm_plan *pl, int64_t t, const double *s, double *w, int *sel, lm_ref_block *order)
{
    int64_t l = pl->l, c = t / l, own0 = c * l, own_lm = own0 + l - 1;
    /* retrieved blocks: all earlier ones (train) or the k best (topk) */
    for (int64_t b = 0; b < c; b++)
        order[b] = (lm_ref_block){.s = s[b * l + l - 1], .b = b};
    qsort(order, (size_t)c, sizeof *order, lm_ref_order);
    for (int64_t r = 0; r < c; r++)
        sel[order[r].b] = r < pl->k;
    /* own group: own visible tokens except the current landmark + retrieved landmarks */
    double m = -INFINITY, Z = 0;
    for (int64_t j = own0; j <= t; j++)
        if (j != own_lm)
            m = fmax(m, s[j]);
    for (int64_t b = 0; b < c; b++)
        if (sel[b])
            m = fmax(m, s[b * l + l - 1]);
    for (int64_t j = own0; j <= t; j++)
        if (j != own_lm)
            Z += exp(s[j] - m);
    for (int64_t b = 0; b < c; b++)
        if (sel[b])
            Z += exp(s[b * l + l - 1] - m);
    memset(w, 0, sizeof(double) * (size_t)(t + 1));
    for (int64_t j = own0; j <= t; j++)
        if (j != own_lm)
            w[j] = exp(s[j] - m) / Z;
    /* each retrieved block: its own softmax times its landmark's own-group weight */
    for (int64_t b = 0; b < c; b++) {
        if (!sel[b])
            continue;
        double gate = exp(s[b * l + l - 1] - m) / Z, mb = -INFINITY, Zb = 0;
        for (int64_t j = b * l; j < b * l + l - 1; j++)
            mb = fmax(mb, s[j]);
        for (int64_t j = b * l; j < b * l + l - 1; j++)
            Zb += exp(s[j] - mb);
        for (int64_t j = b * l; j < b * l + l - 1; j++)
            w[j] = gate * exp(s[j] - mb) / Zb;
    }
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,Dv)
int attn_landmark_ref_forward(const attn_args *a, const attn_io64 *io)
{
    lm_plan pl;
    int rc = attn_landmark_plan(&pl, a);
    if (rc)
        return rc;
    int64_t G = a->H / a->H_kv, Dv = attn_dv(a), Nk = a->Nk;
    double sc = attn_scale(a);
    double *s = malloc(sizeof(double) * (size_t)(Nk + 1)), *w = malloc(sizeof(double) * (size_t)(Nk + 1));
    int *sel = malloc(sizeof(int) * (size_t)(pl.nblk + 1));
    lm_ref_block *order = malloc(sizeof *order * (size_t)(pl.nblk + 1));
    if (!s || !w || !sel || !order) {
        free(s), free(w), free(sel), free(order);
        return attn_fail(ATTN_ENOMEM, "landmark reference: out of memory for %lld keys", (long long)Nk);
    }
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                int64_t t = attn_landmark_t(a, i);
                double *o = attn_at64(&io->o, b, h, i);
                memset(o, 0, sizeof(double) * (size_t)Dv);
                if (t < 0) /* before every key: nothing to attend */
                    continue;
                const double *q = attn_at64(&io->q, b, h, i);
                for (int64_t j = 0; j <= t; j++)
                    s[j] = sc * lm_ref_dot(q, attn_at64(&io->k, b, h / G, j), a->D);
                lm_ref_weights(&pl, t, s, w, sel, order);
                for (int64_t j = 0; j <= t; j++)
                    for (int64_t d = 0; d < Dv; d++)
                        o[d] += w[j] * attn_at64(&io->v, b, h / G, j)[d];
            }
    free(s), free(w), free(sel), free(order);
    return 0;
}

/* The fidelity view: each requested row's weights over the keys (the grouped
 * softmax is a distribution over the original keys: the own block and the
 * retrieved blocks' tokens, landmarks only as gates), and in top-k mode the
 * keys of the own and the retrieved blocks, chosen by landmark score. */
int attn_landmark_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                           int64_t n, double *P, unsigned char *sel_keys)
{
    lm_plan pl;
    int rc = attn_landmark_plan(&pl, a);
    if (rc)
        return rc;
    int64_t G = a->H / a->H_kv, Nk = a->Nk, l = pl.l;
    double sc = attn_scale(a), *s = malloc(sizeof(double) * (size_t)(Nk + 1));
    int *sel = malloc(sizeof(int) * (size_t)(pl.nblk + 1));
    lm_ref_block *order = malloc(sizeof *order * (size_t)(pl.nblk + 1));
    if (!s || !sel || !order) {
        free(s), free(sel), free(order);
        return attn_fail(ATTN_ENOMEM, "landmark view: out of memory for %lld keys", (long long)Nk);
    }
    for (int64_t r = 0; r < n; r++) {
        int64_t t = attn_landmark_t(a, rows[r]);
        double *w = P + r * Nk;
        unsigned char *keys = sel_keys + r * Nk;
        memset(w, 0, sizeof(double) * (size_t)Nk);
        memset(keys, 0, (size_t)Nk);
        if (t < 0)
            continue;
        const double *q = attn_at64(&io->q, b, h, rows[r]);
        for (int64_t j = 0; j <= t; j++)
            s[j] = sc * lm_ref_dot(q, attn_at64(&io->k, b, h / G, j), a->D);
        lm_ref_weights(&pl, t, s, w, sel, order);
        for (int64_t j = 0; j <= t; j++) /* own block, and the retrieved blocks */
            keys[j] = j / l == t / l || sel[j / l];
    }
    free(s), free(sel), free(order);
    return ATTN_VIEW_ROWS | (pl.topk ? ATTN_VIEW_KEYS : 0);
}
