/* `routing` forward (docs/kernels/routing.md; the math is in
 * routing_internal.h). One OpenMP task per (b, h): its assignment
 * (routing_assign.c), then cluster after cluster, per tile of bq member
 * queries, an online softmax over the cluster's keys in tiles of bk
 * (S = sc Q K^T and P V by cblas_sgemm; causal tiles past the last query
 * are skipped), the query's own key when keep_diag adds it, and the
 * membership merged into the row by logsumexp. Clusters are visited in
 * order, so every row's merges happen in a fixed order: bitwise the same
 * for any thread count. */
#include "routing_internal.h"

#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* One more key tile into the running (m, l, A) of n rows: S (ld RT_BK)
 * becomes P in place. */
static void rt_online_tile(const rt_plan *pl, rt_tiles *t, int64_t n, int64_t nk, rt_tally *tl)
{
    for (int64_t r = 0; r < n; r++) {
        float *s = t->S + r * RT_BK, mt = -INFINITY;
        for (int64_t c = 0; c < nk; c++)
            mt = s[c] > mt ? s[c] : mt;
        float m = t->m[r] > mt ? t->m[r] : mt;
        if (m == -INFINITY) { /* nothing allowed yet */
            memset(s, 0, sizeof(float) * (size_t)nk);
            continue;
        }
        /* exactly 1 when the max stays: a tile of keys the row may not see
         * (later ones, under a causal mask) then changes nothing in it */
        float alpha = t->m[r] == -INFINITY ? 0.0f : t->m[r] == m ? 1.0f : attn_expf(t->m[r] - m);
        for (int64_t c = 0; c < nk; c++)
            s[c] -= m;
        attn_vexp(s, s, nk);
        float sum = 0;
        for (int64_t c = 0; c < nk; c++)
            sum += s[c];
        t->l[r] = t->l[r] * alpha + sum, t->m[r] = m;
        for (int64_t d = 0; d < pl->Dv; d++)
            t->A[r * pl->Dv + d] *= alpha;
    }
    tl->exps += (double)(n * nk + n);
}

/* The own key j of query i added to its running (m, l, A) row r. */
static void rt_online_self(const rt_plan *pl, const attn_io *io, rt_tiles *t, int64_t b, int64_t hk, int64_t r,
                           int64_t j)
{
    const float *k = attn_at(&io->k, b, hk, j), *v = attn_at(&io->v, b, hk, j), *q = t->Q + r * pl->D;
    float s = 0;
    for (int64_t d = 0; d < pl->D; d++)
        s += q[d] * k[d];
    float m = t->m[r] > s ? t->m[r] : s;
    float alpha = t->m[r] == -INFINITY ? 0.0f : t->m[r] == m ? 1.0f : attn_expf(t->m[r] - m);
    float p = s == m ? 1.0f : attn_expf(s - m);
    for (int64_t d = 0; d < pl->Dv; d++)
        t->A[r * pl->Dv + d] = t->A[r * pl->Dv + d] * alpha + p * v[d];
    t->l[r] = t->l[r] * alpha + p, t->m[r] = m;
}

/* Row o, lse <- the softmax over the union of (o, lse) and the membership
 * (A / l, m + ln l). */
static void rt_merge_row(const rt_plan *pl, const rt_tiles *t, int64_t r, float *o, float *lse)
{
    if (t->l[r] == 0)
        return;
    const float *a = t->A + r * pl->Dv;
    float lm = t->m[r] + logf(t->l[r]), inv = 1.0f / t->l[r];
    if (*lse == -INFINITY) {
        for (int64_t d = 0; d < pl->Dv; d++)
            o[d] = a[d] * inv;
        *lse = lm;
        return;
    }
    float m = *lse > lm ? *lse : lm, e0 = attn_expf(*lse - m), e1 = attn_expf(lm - m), s = e0 + e1;
    float f0 = e0 / s, f1 = e1 / s * inv;
    for (int64_t d = 0; d < pl->Dv; d++)
        o[d] = o[d] * f0 + a[d] * f1;
    *lse = m + logf(s);
}

/* One tile of n member queries qi of cluster c with its nk keys kj. */
static void rt_query_tile(const rt_plan *pl, const attn_io *io, rt_tiles *t, int64_t b, int64_t h, const int32_t *qi,
                          int64_t n, const int32_t *kj, int64_t nk, void *unused, rt_tally *tl)
{
    (void)unused;
    int64_t D = pl->D, Dv = pl->Dv, hk = h / (io->q.H / io->k.H);
    rt_gather(&io->q, b, h, qi, n, pl->bq, (float)pl->scale, t->Q, D);
    for (int64_t r = 0; r < n; r++)
        t->m[r] = -INFINITY, t->l[r] = 0;
    memset(t->A, 0, sizeof(float) * (size_t)(pl->bq * Dv));
    for (int64_t k0 = 0; k0 < nk; k0 += pl->bk) {
        int64_t m = rt_tile_keys(pl, nk, k0), bk = pl->bk;
        if (pl->causal && kj[k0] > qi[n - 1] + pl->shift)
            break; /* keys ascend: this tile and the rest are after every query */
        rt_gather(&io->k, b, hk, kj + k0, m, bk, 1.0f, t->K, D);
        rt_gather(&io->v, b, hk, kj + k0, m, bk, 1.0f, t->V, Dv);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)pl->bq, (int)bk, (int)D, 1.0f, t->Q, (int)D, t->K, (int)D,
                    0.0f, t->S, RT_BK);
        rt_mask_tile(pl, qi, n, kj + k0, m, t->S);
        rt_online_tile(pl, t, n, bk, tl);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)pl->bq, (int)Dv, (int)bk, 1.0f, t->S, RT_BK, t->V,
                    (int)Dv, 1.0f, t->A, (int)Dv);
        tl->flops += 2.0 * (double)(pl->bq * bk) * (double)(D + Dv);
        tl->bytes += 4.0 * (double)(m * (D + Dv));
    }
    for (int64_t r = 0; r < n; r++) {
        int64_t j = rt_self_key(pl, t, qi[r]);
        if (j >= 0)
            rt_online_self(pl, io, t, b, hk, r, j), tl->exps += 2;
        rt_merge_row(pl, t, r, attn_at(&io->o, b, h, qi[r]), &t->lse[qi[r]]);
    }
    tl->bytes += 4.0 * (double)(n * D);
}

static void rt_head_forward(const rt_plan *pl, const attn_io *io, int64_t b, int64_t h, float *assign, rt_tiles *t,
                            void *unused, rt_tally *tl)
{
    (void)unused;
    for (int64_t i = 0; i < pl->N; i++) {
        memset(attn_at(&io->o, b, h, i), 0, sizeof(float) * (size_t)pl->Dv);
        t->lse[i] = -INFINITY;
    }
    rt_walk_clusters(pl, io, b, h, assign, t, pl->bq, rt_query_tile, NULL, tl);
    if (io->lse)
        memcpy(io->lse + (b * io->q.H + h) * pl->N, t->lse, sizeof(float) * (size_t)pl->N);
}

// q is (B,H,N,D), k is (B,H_kv,N,D), v is (B,H_kv,N,Dv), w is (1,H,1,>=kappa D); o is (B,H,N,Dv), lse (B,H,N)
int rt_forward(attn_ctx *ctx, const attn_io *io)
{
    rt_plan pl;
    rt_layout ly;
    int rc = rt_pass_open(ctx, io, &pl, &ly);
    if (!rc)
        rt_for_heads(ctx, io, &pl, &ly, rt_head_forward, NULL);
    return rc;
}
