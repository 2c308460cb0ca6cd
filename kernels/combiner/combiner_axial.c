/* `combiner` partition=axial: the column summaries (combiner_internal.h).
 *
 * The keys are rows of s: key j is in row j / s, column j % s. Row R's
 * queries read, per column c, one summary of the column's keys in the other
 * rows (FULL) or the earlier rows (CAUSAL). One task per (b, query head,
 * column) walks the column's rows with a running (online-softmax) sum of
 * e^{a_j} k_j, e^{a_j} v_j and e^{a_j}: CAUSAL stores the prefix of rows < R
 * as row R's summary; FULL stores the prefixes, then walks back up with the
 * suffix of rows > R and merges the two. Each summary keeps its maximum m and
 * sum z, so q_u(j) = e^{a_j - m_u} / z_u is known to the backward.
 *
 * Backward, the same task shape: for each summary u of column c that some
 * row read, dk_j += q_u(j) dkbar_u + da_j w_h, dv_j += q_u(j) dvbar_u with
 * da_j = q_u(j) (g_j - sum q g), g_j = <dkbar_u, k_j> + <dvbar_u, v_j>, and
 * the column's dw part += K_c^T da: rank-1 updates on the column's rows in
 * place (leading dimension s rows), O(N / s) rows per summary. */
#include "combiner.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Running sums of a set of keys: max logit m, z = sum e^{a - m}, nk and nv
 * the e^{a - m}-weighted sums of keys and values, n keys. */
typedef struct {
    float m, z;
    float *nk, *nv;
    int64_t n;
} cb_run;

static void cb_run_reset(cb_run *u, int64_t D, int64_t Dv)
{
    u->m = -INFINITY, u->z = 0, u->n = 0;
    memset(u->nk, 0, sizeof(float) * (size_t)D);
    memset(u->nv, 0, sizeof(float) * (size_t)Dv);
}

static void cb_run_add(cb_run *u, float a, const float *k, const float *v, int64_t D, int64_t Dv)
{
    if (a > u->m) { /* rescale to the new maximum (e^{-inf} = 0 for an empty run) */
        float f = expf(u->m - a);
        for (int64_t d = 0; d < D; d++)
            u->nk[d] *= f;
        for (int64_t d = 0; d < Dv; d++)
            u->nv[d] *= f;
        u->z *= f, u->m = a;
    }
    float e = expf(a - u->m);
    for (int64_t d = 0; d < D; d++)
        u->nk[d] += e * k[d];
    for (int64_t d = 0; d < Dv; d++)
        u->nv[d] += e * v[d];
    u->z += e, u->n++;
}

/* Rows of column c (keys c, c + s, ...). */
static int64_t cb_column_rows(const cb_plan *pl, int64_t N, int64_t c) { return c < N ? (N - 1 - c) / pl->s + 1 : 0; }

/* Entry u of the table holds the run's unnormalised sums (the FULL prefix
 * pass) or, with `normalise`, the summary: kbar = nk / z, bias = ln n. */
static void cb_store(const cb_plan *pl, const cb_head *hd, int64_t u, const cb_run *r, int64_t D, int64_t Dv,
                     int normalise)
{
    float *kb = hd->kbar + u * D, *vb = hd->vbar + u * Dv;
    float inv = normalise && r->n ? 1.0f / r->z : 1.0f;
    for (int64_t d = 0; d < D; d++)
        kb[d] = r->nk[d] * inv;
    for (int64_t d = 0; d < Dv; d++)
        vb[d] = r->nv[d] * inv;
    hd->m[u] = r->m, hd->z[u] = r->z;
    hd->bias[u] = (float)r->n; /* the count until normalised */
    if (normalise)
        hd->bias[u] = r->n == 0 ? -INFINITY : pl->log_count ? logf((float)r->n) : 0.0f;
}

/* FULL: merges the prefix sums stored at u with the suffix run into the summary. */
static void cb_merge(const cb_plan *pl, const cb_head *hd, int64_t u, const cb_run *s, int64_t D, int64_t Dv)
{
    float *kb = hd->kbar + u * D, *vb = hd->vbar + u * Dv;
    int64_t n = (int64_t)hd->bias[u] + s->n;
    float mp = hd->m[u], m = mp > s->m ? mp : s->m;
    if (n == 0) {
        cb_run empty = {.m = -INFINITY, .z = 0, .nk = kb, .nv = vb, .n = 0};
        cb_store(pl, hd, u, &empty, D, Dv, 1);
        return;
    }
    float fp = hd->bias[u] > 0 ? expf(mp - m) : 0.0f, fs = s->n ? expf(s->m - m) : 0.0f;
    float z = hd->z[u] * fp + s->z * fs, inv = 1.0f / z;
    for (int64_t d = 0; d < D; d++)
        kb[d] = (kb[d] * fp + s->nk[d] * fs) * inv;
    for (int64_t d = 0; d < Dv; d++)
        vb[d] = (vb[d] * fp + s->nv[d] * fs) * inv;
    hd->m[u] = m, hd->z[u] = z;
    hd->bias[u] = pl->log_count ? logf((float)n) : 0.0f;
}

double cb_axial_summaries(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd, int64_t b,
                          int64_t h, int64_t c, float *scratch)
{
    const int64_t D = a->D, Dv = attn_dv(a), N = a->Nk, s = pl->s, hk = h / (a->H / a->H_kv);
    const int64_t rows = cb_column_rows(pl, N, c), ks = s * io->k.sn, vs = s * io->v.sn;
    const float *K = attn_at(&io->k, b, hk, c), *V = attn_at(&io->v, b, hk, c);
    float *logit = scratch;
    cb_run run = {.nk = scratch + pl->nsp, .nv = scratch + pl->nsp + D};
    double flops = 2.0 * (double)rows * (double)(D + Dv);
    if (pl->learned && rows > 0) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)D, 1.0f, K, (int)ks, attn_at(&io->w, 0, h, 0), 1,
                    0.0f, logit, 1);
        flops += 2.0 * (double)rows * (double)D;
    } else
        memset(logit, 0, sizeof(float) * (size_t)rows);
    for (int64_t r = 0; r < rows; r++)
        hd->qw[r * s + c] = logit[r];
    cb_run_reset(&run, D, Dv);
    for (int64_t R = 0; R < pl->nsp; R++) { /* prefix: rows < R */
        cb_store(pl, hd, R * s + c, &run, D, Dv, pl->causal);
        if (R < rows)
            cb_run_add(&run, logit[R], K + R * ks, V + R * vs, D, Dv);
    }
    if (pl->causal)
        return flops;
    cb_run_reset(&run, D, Dv);
    for (int64_t R = pl->nsp - 1; R >= 0; R--) { /* suffix: rows > R, merged */
        cb_merge(pl, hd, R * s + c, &run, D, Dv);
        if (R < rows)
            cb_run_add(&run, logit[R], K + R * ks, V + R * vs, D, Dv);
    }
    return 2 * flops;
}

double cb_axial_summary_backward(const attn_args *a, const cb_plan *pl, const attn_io *io, const cb_head *hd,
                                 const cb_bwd_ws *w, int64_t b, int64_t h, int64_t c, float *scratch)
{
    const int64_t D = a->D, Dv = attn_dv(a), N = a->Nk, s = pl->s, hk = h / (a->H / a->H_kv), bh = b * a->H + h;
    const int64_t rows = cb_column_rows(pl, N, c), ks = s * io->k.sn, vs = s * io->v.sn;
    const float *K = attn_at(&io->k, b, hk, c), *V = attn_at(&io->v, b, hk, c);
    float *dK = w->dk + (bh * N + c) * D, *dV = w->dv + (bh * N + c) * Dv, *dwp = w->dwpart + (bh * pl->npart + c) * D;
    float *q = scratch, *g = scratch + pl->nsp, *da = g + pl->nsp;
    memset(dwp, 0, sizeof(float) * (size_t)D);
    double flops = 0;
    for (int64_t R = 0; R < pl->nsp; R++) {
        const int64_t u = R * s + c, nr = pl->causal ? (R < rows ? R : rows) : rows;
        if (hd->bias[u] == -INFINITY || nr == 0) /* empty: read by no one */
            continue;
        const float *dkb = w->dkbar + (bh * pl->nu + u) * D, *dvb = w->dvbar + (bh * pl->nu + u) * Dv;
        float inv = 1.0f / hd->z[u];
        for (int64_t r = 0; r < nr; r++)
            q[r] = cb_axial_row_in(pl, R, r) ? expf(hd->qw[r * s + c] - hd->m[u]) * inv : 0.0f;
        cblas_sger(CblasRowMajor, (int)nr, (int)D, 1.0f, q, 1, dkb, 1, dK, (int)(s * D));
        cblas_sger(CblasRowMajor, (int)nr, (int)Dv, 1.0f, q, 1, dvb, 1, dV, (int)(s * Dv));
        flops += 2.0 * (double)nr * (double)(D + Dv);
        if (!pl->learned)
            continue;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nr, (int)D, 1.0f, K, (int)ks, dkb, 1, 0.0f, g, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nr, (int)Dv, 1.0f, V, (int)vs, dvb, 1, 1.0f, g, 1);
        float gbar = 0;
        for (int64_t r = 0; r < nr; r++)
            gbar += q[r] * g[r];
        for (int64_t r = 0; r < nr; r++)
            da[r] = q[r] * (g[r] - gbar);
        cblas_sger(CblasRowMajor, (int)nr, (int)D, 1.0f, da, 1, attn_at(&io->w, 0, h, 0), 1, dK, (int)(s * D));
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)nr, (int)D, 1.0f, K, (int)ks, da, 1, 1.0f, dwp, 1);
        flops += 2.0 * (double)nr * (double)(3 * D + Dv);
    }
    return flops;
}
