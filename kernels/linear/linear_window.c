/* The exact sliding-window part of `based` with a shared denominator
 * (docs/kernels/linear.md, the non-paper `mix=shared_denominator` option): for query
 * i of a segment starting at lo,
 *   o_i = (sum_{j in win(i)} e^{s_ij} v_j + sum_{lo <= j <= i-W} phi(q_i).phi(k_j) v_j)
 *       / (sum_{j in win(i)} e^{s_ij}   + sum_{lo <= j <= i-W} phi(q_i).phi(k_j) + eps),
 * win(i) = [max(lo, i-W+1), i] (the W most recent keys, the query's own
 * included), s_ij = <q_i,k_j>/sqrt(D). The linear part is the core with its
 * keys delayed by W rows (lin_load_kv's lag).
 *
 * Stability: numerator and denominator are both scaled by e^{-m_i}, with m_i
 * the window's largest score, raised to 0 when the row has linear keys (their
 * weights ((s+1)^2+1)/2 >= 1/2 then stay below 1 after scaling). The row
 * statistics keep (1/den, <dO,o> slot, m, den e^{-m}). */
#include "linear_internal.h"

#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

size_t lin_window_scratch_floats(const attn_args *a, const lin_cfg *cfg)
{
    int64_t C = cfg->C;
    return (size_t)(2 * C * (C + cfg->W) + C * attn_dv(a) + 2 * C + 64);
}

typedef struct {
    int64_t k0, nk;   /* window keys of the chunk: rows [k0, k0 + nk) */
    float *P, *dP, *wn, *wm, *wd;
} win_scratch;

static win_scratch win_of(const lin_cfg *cfg, const attn_io *io, int64_t r0, int64_t n, int64_t lo, float *p)
{
    int64_t C = cfg->C, k0 = r0 - cfg->W + 1 > lo ? r0 - cfg->W + 1 : lo;
    win_scratch s = {.k0 = k0, .nk = r0 + n - k0};
    s.P = p, s.dP = p + C * (C + cfg->W), s.wn = s.dP + C * (C + cfg->W);
    s.wm = s.wn + C * io->v.D, s.wd = s.wm + C;
    return s;
}

/* P (n x nk) = the window's e^{s - m_i} (0 outside each row's window); with
 * `stats` the m_i are taken from them, else computed (and the sums kept in wd). */
static double window_weights(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t h, int64_t r0, int64_t n,
                             int64_t lo, win_scratch *s, const float *stats)
{
    int64_t D = io->q.D, hk = h / (io->q.H / io->k.H), nk = s->nk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nk, (int)D, (float)(1.0 / sqrt((double)D)),
                attn_at(&io->q, b, h, r0), (int)io->q.sn, attn_at(&io->k, b, hk, s->k0), (int)io->k.sn, 0.0f, s->P,
                (int)nk);
    for (int64_t ii = 0; ii < n; ii++) {
        int64_t i = r0 + ii, jl = (i - cfg->W + 1 > lo ? i - cfg->W + 1 : lo) - s->k0, jh = i - s->k0;
        float *row = s->P + ii * nk, m = -INFINITY, sum = 0;
        for (int64_t j = jl; j <= jh; j++)
            m = fmaxf(m, row[j]);
        if (i - cfg->W >= lo) /* linear keys present: m >= 0 keeps their scaled weights <= 1 */
            m = fmaxf(m, 0.0f);
        if (stats)
            m = stats[4 * ii + 2];
        memset(row, 0, sizeof(float) * (size_t)jl);
        for (int64_t j = jl; j <= jh; j++)
            sum += row[j] = attn_expf(row[j] - m);
        memset(row + jh + 1, 0, sizeof(float) * (size_t)(nk - jh - 1));
        s->wm[ii] = m, s->wd[ii] = sum;
    }
    return 2.0 * (double)(n * nk * D);
}

double lin_window_forward(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t h, int64_t r0, int64_t n,
                          int64_t lo, lin_scratch *w, float *out, int64_t ldo, float *stats)
{
    int64_t Dv = io->v.D, Dv1 = Dv + 1, hk = h / (io->q.H / io->k.H);
    win_scratch s = win_of(cfg, io, r0, n, lo, w->win);
    double fl = window_weights(cfg, io, b, h, r0, n, lo, &s, NULL);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv, (int)s.nk, 1.0f, s.P, (int)s.nk,
                attn_at(&io->v, b, hk, s.k0), (int)io->v.sn, 0.0f, s.wn, (int)Dv);
    for (int64_t ii = 0; ii < n; ii++) {
        float e = r0 + ii - cfg->W >= lo ? attn_expf(-s.wm[ii]) : 0.0f, *ox = w->ox + ii * Dv1;
        float den = s.wd[ii] + e * (ox[Dv] + (float)cfg->eps), *o = out + ii * ldo;
        for (int64_t d = 0; d < Dv; d++)
            o[d] = (s.wn[ii * Dv + d] + e * ox[d]) / den;
        if (stats)
            stats[4 * ii] = e / den, stats[4 * ii + 1] = 0, stats[4 * ii + 2] = s.wm[ii], stats[4 * ii + 3] = den;
    }
    return fl + 2.0 * (double)(n * s.nk * Dv);
}

/* dS = P~ (dO V^T - c) with P~ = e^{s-m}/den_s the normalised window weights
 * (the softmax backward form: o is a weighted mean), then
 * dq += dS K / sqrt(D), dk += dS^T Q / sqrt(D), dv += P~^T dO. */
double lin_window_backward(const lin_cfg *cfg, const attn_io *io, const attn_grads *g, int64_t b, int64_t h,
                           int64_t r0, int64_t n, int64_t lo, lin_scratch *w, const float *stats)
{
    int64_t D = io->q.D, Dv = io->v.D, hk = h / (io->q.H / io->k.H);
    const float *st = stats + 4 * r0;
    win_scratch s = win_of(cfg, io, r0, n, lo, w->win);
    int nk = (int)s.nk;
    float sc = (float)(1.0 / sqrt((double)D));
    double fl = window_weights(cfg, io, b, h, r0, n, lo, &s, st);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, nk, (int)Dv, 1.0f, attn_at(&g->d_o, b, h, r0),
                (int)g->d_o.sn, attn_at(&io->v, b, hk, s.k0), (int)io->v.sn, 0.0f, s.dP, nk);
    for (int64_t ii = 0; ii < n; ii++)
        for (int64_t j = 0; j < nk; j++) {
            float p = s.P[ii * nk + j] / st[4 * ii + 3];
            s.P[ii * nk + j] = p;
            s.dP[ii * nk + j] = p * (s.dP[ii * nk + j] - st[4 * ii + 1]);
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, nk, sc, s.dP, nk,
                attn_at(&io->k, b, hk, s.k0), (int)io->k.sn, 1.0f, attn_at(&g->dq, b, h, r0), (int)g->dq.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, (int)D, (int)n, sc, s.dP, nk, attn_at(&io->q, b, h, r0),
                (int)io->q.sn, 1.0f, attn_at(&g->dk, b, hk, s.k0), (int)g->dk.sn);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, (int)Dv, (int)n, 1.0f, s.P, nk,
                attn_at(&g->d_o, b, h, r0), (int)g->d_o.sn, 1.0f, attn_at(&g->dv, b, hk, s.k0), (int)g->dv.sn);
    return fl + 2.0 * (double)(n * nk) * (double)(Dv + 2 * D + Dv);
}

void lin_window_keep_tail(const attn_args *a, const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t hk,
                          float *state)
{
    int64_t D = a->D, Dv = attn_dv(a), W = cfg->W, F = cfg->fm.F, N = a->Nq;
    float *tail = state + F * (Dv + 1);
    memset(tail, 0, sizeof(float) * (size_t)(W * (D + Dv)));
    for (int64_t r = 0; r < W && r < N; r++) { /* newest first */
        memcpy(tail + r * D, attn_at(&io->k, b, hk, N - 1 - r), sizeof(float) * (size_t)D);
        memcpy(tail + W * D + r * Dv, attn_at(&io->v, b, hk, N - 1 - r), sizeof(float) * (size_t)Dv);
    }
}
