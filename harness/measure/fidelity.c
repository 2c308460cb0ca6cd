/* Fidelity measures against the oracle on sampled rows (fidelity.h). */
#include "fidelity.h"

#include "head_view.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KL_FLOOR 1e-12

const char *const fid_measure_names[FID_MEASURES] = {"rel_fro_err", "cosine_mean", "cosine_min", "kl", "topk_recall"};

void fid_metrics_values(const fid_metrics *m, double v[FID_MEASURES])
{
    v[0] = m->rel_fro, v[1] = m->cos_mean, v[2] = m->cos_min, v[3] = m->kl, v[4] = m->topk_recall;
}

/* Sums over the sampled rows, turned into fid_metrics at the end. */
typedef struct {
    double diff2, ref2, cos_sum, cos_min, kl_sum, recall_sum;
    int64_t rows, kl_rows, recall_rows;
} fid_sums;

/* Up to FID_ROWS query rows spread evenly over the n real rows, first and last included. */
static int64_t sample_rows(int64_t n, int64_t *rows)
{
    if (n <= FID_ROWS) {
        for (int64_t i = 0; i < n; i++)
            rows[i] = i;
        return n;
    }
    for (int64_t s = 0; s < FID_ROWS; s++)
        rows[s] = s * (n - 1) / (FID_ROWS - 1);
    return FID_ROWS;
}

/* The oracle's attention row of query i: P[j] = exp(s_ij - lse) on allowed keys, 0 elsewhere. */
static void oracle_probs(const attn_args *a, const attn_io *io, const attn_tensor_f64 *k, int64_t b, int64_t h,
                         int64_t i, double lse, unsigned char *allowed, double *P)
{
    int64_t Nk = k->N, D = k->D;
    const float *q = attn_at(&io->q, b, h, i);
    attn_mask_row(&a->mask, b, h, attn_q_off_of(a, b) + i, a->k_off, Nk, allowed);
    for (int64_t j = 0; j < Nk; j++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += (double)q[d] * k->data[j * D + d];
        P[j] = allowed[j] && j < attn_kv_len(a, b) && isfinite(lse) ? exp(attn_scale(a) * s - lse) : 0;
    }
}

/* The exact counterpart of a shared-QK kernel (ATTN_SHARED_QK) for query i:
 * softmax over the unit keys k (the head's queries normalised) the mask
 * allows, the query's own key left out unless it is the only one. Writes
 * the output row and P (0 off the allowed keys); returns the lse. */
static double shared_qk_row(const attn_args *a, const attn_io *io, const attn_tensor_f64 *k,
                            const attn_tensor_f64 *v, int64_t b, int64_t h, int64_t i, double *orow,
                            unsigned char *allowed, double *P)
{
    int64_t Nk = k->N, D = k->D, Dv = v->D, others = 0;
    const float *q = attn_at(&io->q, b, h, i);
    double m = -INFINITY, z = 0;
    attn_mask_row(&a->mask, b, h, attn_q_off_of(a, b) + i, a->k_off, Nk, allowed);
    for (int64_t j = 0; j < Nk; j++) {
        allowed[j] = allowed[j] && j < attn_kv_len(a, b) && i < attn_q_len(a, b);
        others += allowed[j] && j != i;
    }
    if (others && i < Nk)
        allowed[i] = 0;
    for (int64_t j = 0; j < Nk; j++) {
        double s = 0;
        for (int64_t d = 0; allowed[j] && d < D; d++)
            s += (double)q[d] * k->data[j * D + d];
        P[j] = allowed[j] ? attn_scale(a) * s : -INFINITY;
        m = fmax(m, P[j]);
    }
    for (int64_t j = 0; j < Nk; j++)
        z += P[j] = m > -INFINITY ? exp(P[j] - m) : 0;
    for (int64_t d = 0; d < Dv; d++)
        orow[d] = 0;
    for (int64_t j = 0; z > 0 && j < Nk; j++) {
        P[j] /= z;
        for (int64_t d = 0; P[j] > 0 && d < Dv; d++)
            orow[d] += P[j] * v->data[j * Dv + d];
    }
    return z > 0 ? m + log(z) : -INFINITY;
}

/* Rows of t divided by their norms (0 rows stay 0). */
static void unit_rows(attn_tensor_f64 *t)
{
    for (int64_t j = 0; j < t->N; j++) {
        double n = 0, *x = t->data + j * t->D;
        for (int64_t d = 0; d < t->D; d++)
            n += x[d] * x[d];
        for (int64_t d = 0; n > 0 && d < t->D; d++)
            x[d] /= sqrt(n);
    }
}

static double kl_row(const double *Pref, const double *P, int64_t Nk)
{
    double z = 0, kl = 0;
    for (int64_t j = 0; j < Nk; j++)
        z += fmax(P[j], KL_FLOOR);
    for (int64_t j = 0; j < Nk; j++)
        if (Pref[j] > 0)
            kl += Pref[j] * log(Pref[j] / (fmax(P[j], KL_FLOOR) / z));
    return kl;
}

/* Share of the oracle's FID_TOPK most probable keys (fewer when fewer are
 * allowed) that the kernel selects. */
static double recall_row(const double *Pref, const unsigned char *sel, int64_t Nk)
{
    int64_t top[FID_TOPK];
    int n = 0;
    for (int64_t j = 0; j < Nk; j++) {
        if (Pref[j] <= 0)
            continue;
        int at = n < FID_TOPK ? n++ : FID_TOPK;
        while (at > 0 && Pref[top[at - 1]] < Pref[j]) { /* insertion into the descending list */
            if (at < FID_TOPK)
                top[at] = top[at - 1];
            at--;
        }
        if (at < FID_TOPK)
            top[at] = j;
    }
    int hit = 0;
    for (int t = 0; t < n; t++)
        hit += sel[top[t]] != 0;
    return n ? (double)hit / n : NAN;
}

/* The kernel's view of the sampled rows of head (b, h), as its own reference
 * sees the head as a problem of its own. Returns the ATTN_VIEW_* bits, or a
 * negative code. */
static int kernel_view(const attn_kernel *k, const attn_args *a, const attn_io *io, int64_t b, int64_t h,
                       const int64_t *rows, int64_t n, double *P, unsigned char *sel)
{
    if (!k || !k->ref_view)
        return 0;
    attn_args one = *a;
    one.B = 1, one.Nq = attn_q_len(a, b), one.Nk = attn_kv_len(a, b);
    one.q_off = attn_q_off_of(a, b), one.kv_len = NULL, one.seq_len = NULL;
    int64_t hv = head_view_heads(k, &one, h); /* head h's index in the view's problem */
    attn_io64 x;
    head_io64_for(k, &one, io, b, h, 1, &x);
    int bits = k->ref_view(&one, &x, 0, hv, rows, n, P, sel);
    head_io64_free(&x);
    return bits;
}

/* Head (b, h): every sampled row's measures into s. */
static int measure_head(const attn_kernel *kern, const attn_args *a, const attn_io *io, int64_t b, int64_t h,
                        fid_sums *s)
{
    int64_t G = a->H / a->H_kv, Nk = a->Nk, Dv = attn_dv(a), rows[FID_ROWS];
    int64_t n = sample_rows(attn_q_len(a, b), rows);
    int shared = kern && (kern->flags & ATTN_SHARED_QK); /* keys: the head's own queries, normalised */
    attn_tensor_f64 k = shared ? head_widen(&io->q, b, h, 0, Nk) : head_widen(&io->k, b, h / G, 0, Nk);
    attn_tensor_f64 v = head_widen(&io->v, b, h / G, 0, Nk);
    if (shared)
        unit_rows(&k);
    double *orow = malloc(sizeof(double) * (size_t)Dv), *Pref = malloc(sizeof(double) * (size_t)Nk);
    double *P = malloc(sizeof(double) * (size_t)(n * Nk));
    unsigned char *sel = malloc((size_t)(n * Nk)), *allowed = malloc((size_t)Nk);
    int bits = kernel_view(kern, a, io, b, h, rows, n, P, sel);
    for (int64_t r = 0; bits >= 0 && r < n; r++) {
        double lse = shared ? shared_qk_row(a, io, &k, &v, b, h, rows[r], orow, allowed, Pref)
                            : head_oracle_row(a, io, &k, &v, b, h, rows[r], orow);
        double dot = 0, g2 = 0, o2 = 0;
        const float *got = attn_at(&io->o, b, h, rows[r]);
        for (int64_t d = 0; d < Dv; d++) {
            s->diff2 += (got[d] - orow[d]) * (got[d] - orow[d]);
            dot += got[d] * orow[d], g2 += (double)got[d] * got[d], o2 += orow[d] * orow[d];
        }
        s->ref2 += o2;
        double cos = g2 > 0 && o2 > 0 ? dot / sqrt(g2 * o2) : g2 == o2 ? 1 : 0;
        s->cos_sum += cos, s->cos_min = fmin(s->cos_min, cos), s->rows++;
        if (!(bits & (ATTN_VIEW_ROWS | ATTN_VIEW_KEYS)) || !isfinite(lse))
            continue;
        if (!shared)
            oracle_probs(a, io, &k, b, h, rows[r], lse, allowed, Pref);
        if (bits & ATTN_VIEW_ROWS)
            s->kl_sum += kl_row(Pref, P + r * Nk, Nk), s->kl_rows++;
        double rec = bits & ATTN_VIEW_KEYS ? recall_row(Pref, sel + r * Nk, Nk) : NAN;
        if (!isnan(rec))
            s->recall_sum += rec, s->recall_rows++;
    }
    free(k.data), free(v.data), free(orow), free(Pref), free(P), free(sel), free(allowed);
    return bits < 0 ? bits : 0;
}

int fid_measure(const attn_kernel *k, const attn_args *a, const attn_io *io, fid_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->rel_fro = m->cos_mean = m->cos_min = m->kl = m->topk_recall = NAN;
    if (k && (k->flags & ATTN_ONE_QUERY)) {
        snprintf(m->kl_na, sizeof m->kl_na, "one learned query: no softmax counterpart");
        snprintf(m->topk_na, sizeof m->topk_na, "%s", m->kl_na);
        return 0;
    }
    fid_sums s = {.cos_min = INFINITY};
    int rc = 0;
    FOR_SAMPLED_HEADS(a, b, h) {
        if ((rc = measure_head(k, a, io, b, h, &s)) != 0)
            return rc;
    }
    m->rows = s.rows;
    if (s.rows) {
        m->rel_fro = s.ref2 > 0 ? sqrt(s.diff2 / s.ref2) : sqrt(s.diff2);
        m->cos_mean = s.cos_sum / (double)s.rows, m->cos_min = s.cos_min;
    }
    if (s.kl_rows)
        m->kl = s.kl_sum / (double)s.kl_rows;
    else
        snprintf(m->kl_na, sizeof m->kl_na, "%s", k && k->ref_view ? "no attention rows over the original keys"
                                                                    : "kernel exposes no attention rows");
    if (s.recall_rows)
        m->topk_recall = s.recall_sum / (double)s.recall_rows;
    else
        snprintf(m->topk_na, sizeof m->topk_na, "kernel selects no keys by content");
    return 0;
}
