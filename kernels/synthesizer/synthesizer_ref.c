/* Plain double reference of `synthesizer` (docs/kernels/synthesizer.md): the
 * logits of one query row written out as sums, the row softmax and P V, row
 * by row with no tiling, and the same rows for the fidelity view. */
#include "synthesizer_internal.h"

#include <math.h>
#include <stdlib.h>

/* Logits of query i of head (b, h) over its nk keys (-inf where masked). */
static void ref_logits(const syn_plan *pl, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, int64_t i,
                       double *s, double *hid)
{
    int64_t D = a->D, L = pl->L, k = pl->k, nk = attn_kv_len(a, b), hk = h / (a->H / a->H_kv);
    const double *w = attn_at64(&io->w, 0, h, 0), *x = attn_at64(&io->q, b, h, i);
    if (pl->mode == SYN_DENSE)
        for (int64_t e = 0; e < D; e++) {
            double z = w[pl->off_b + e];
            for (int64_t d = 0; d < D; d++)
                z += w[e * D + d] * x[d];
            hid[e] = z > 0 ? z : 0;
        }
    for (int64_t j = 0; j < nk; j++) {
        double v = 0;
        if (pl->mode == SYN_RANDOM)
            v = w[i * L + j];
        else if (pl->mode == SYN_FACTORIZED)
            for (int64_t c = 0; c < k; c++)
                v += w[i * k + c] * w[pl->off_b + c * L + j];
        else {
            v = w[pl->off_b2 + j];
            for (int64_t e = 0; e < D; e++)
                v += w[pl->off_w2 + j * D + e] * hid[e];
        }
        if (pl->dot) {
            const double *kj = attn_at64(&io->k, b, hk, j);
            double qk = 0;
            for (int64_t d = 0; d < D; d++)
                qk += x[d] * kj[d];
            v += attn_scale(a) * qk;
        }
        s[j] = attn_mask_allowed(&a->mask, b, h, a->q_off + i, a->k_off + j) ? v : -INFINITY;
    }
}

/* Row i of P into p[0, Nk) (zeros past the keys and on a row without keys);
 * returns lse. */
static double ref_probs(const syn_plan *pl, const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, int64_t i,
                        double *p, double *hid)
{
    int64_t nk = attn_kv_len(a, b);
    for (int64_t j = 0; j < a->Nk; j++)
        p[j] = 0;
    if (i >= attn_q_len(a, b))
        return -INFINITY; /* a padded row */
    ref_logits(pl, a, io, b, h, i, p, hid);
    double m = -INFINITY, l = 0;
    for (int64_t j = 0; j < nk; j++)
        m = fmax(m, p[j]);
    if (m == -INFINITY) {
        for (int64_t j = 0; j < nk; j++)
            p[j] = 0;
        return -INFINITY;
    }
    for (int64_t j = 0; j < nk; j++)
        l += p[j] = exp(p[j] - m);
    for (int64_t j = 0; j < nk; j++)
        p[j] /= l;
    return m + log(l);
}

/* The plan with the layout io->w's row length gives. */
static int ref_plan(syn_plan *pl, const attn_args *a, const attn_io64 *io)
{
    int rc = syn_plan_make(pl, a);
    return rc ? rc : syn_layout_of_cols(pl, a, io->w.data ? io->w.D : 0);
}

int attn_synthesizer_ref_forward(const attn_args *a, const attn_io64 *io)
{
    syn_plan pl;
    int rc = ref_plan(&pl, a, io);
    if (rc)
        return rc;
    int64_t Nk = a->Nk, Dv = attn_dv(a), G = a->H / a->H_kv;
    double *p = malloc(sizeof(double) * (size_t)(Nk + a->D));
    if (!p)
        return attn_fail(ATTN_ENOMEM, "synthesizer ref: out of memory for %lld keys", (long long)Nk);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                double lse = ref_probs(&pl, a, io, b, h, i, p, p + Nk), *o = attn_at64(&io->o, b, h, i);
                if (io->lse)
                    io->lse[(b * a->H + h) * a->Nq + i] = lse;
                for (int64_t d = 0; d < Dv; d++)
                    o[d] = 0;
                for (int64_t j = 0; j < attn_kv_len(a, b); j++)
                    for (int64_t d = 0; d < Dv; d++)
                        o[d] += p[j] * attn_at64(&io->v, b, h / G, j)[d];
            }
    free(p);
    return 0;
}

/* The rows are a softmax over the original keys: non-negative, summing to 1. */
int attn_synthesizer_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                              int64_t n_rows, double *P, unsigned char *sel)
{
    (void)sel; /* no key is selected by content */
    syn_plan pl;
    int rc = ref_plan(&pl, a, io);
    if (rc)
        return rc;
    double *hid = malloc(sizeof(double) * (size_t)a->D);
    if (!hid)
        return attn_fail(ATTN_ENOMEM, "synthesizer ref_view: out of memory");
    for (int64_t r = 0; r < n_rows; r++)
        ref_probs(&pl, a, io, b, h, rows[r], P + r * a->Nk, hid);
    free(hid);
    return ATTN_VIEW_ROWS;
}
