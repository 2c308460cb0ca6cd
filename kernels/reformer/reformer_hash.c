/* `reformer` pieces the forward and backward share (docs/kernels/reformer.md):
 * the workspace layout, the random rotations, hashing with its exact
 * fallback, the stable counting sort, a chunk's geometry, its adjusted
 * scores and the row gathers. */
#include "reformer_internal.h"

#include "common/rng.h"
#include "kernels/core/counting_sort.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- workspace ---- */

int rf_layout_make(rf_layout *ly, const attn_args *a)
{
    memset(ly, 0, sizeof *ly);
    int rc = rf_plan_make(&ly->pl, a);
    if (rc)
        return rc;
    int64_t c = ly->pl.c, R = ly->pl.rounds;
    ly->N = a->Nq, ly->D = a->D, ly->Dv = attn_dv(a);
    for (int64_t b = 0; b < a->B; b++) { /* auto buckets follow each sequence's length */
        rf_hash_shape hs = rf_hash_of(&ly->pl, rf_len(a, b));
        ly->nb_max = hs.nb > ly->nb_max ? hs.nb : ly->nb_max;
        ly->cols_max = hs.cols > ly->cols_max ? hs.cols : ly->cols_max;
    }
    int64_t ldD = RF_ROUND16(ly->D), ldV = RF_ROUND16(ly->Dv), ldK = RF_ROUND16(2 * c);
    ly->tables_ints = (size_t)(3 * R * ly->N);
    ly->head_floats = (size_t)(2 * ly->N);
    /* rotation in double and in float, projections of a row tile, one row and its projections in
     * double, bucket counts */
    ly->hash_floats = (size_t)RF_ROUND16(3 * ly->D * ly->cols_max + RF_HASH_TILE * ly->cols_max + 2 * ly->D +
                                         2 * ly->cols_max + ly->nb_max + 1);
    /* chunk header and rows, Qc, Kc, Vc, S; forward: Oc, the rows' lse */
    ly->tile_floats = (size_t)RF_ROUND16(16 + 2 * c) + (size_t)(c * ldD + 2 * c * ldD + 2 * c * ldV + c * ldK);
    ly->chunk_floats = ly->tile_floats + (size_t)(c * ldV + RF_ROUND16(c));
    /* backward: dOc, dP, dQc, dKc, dVc, and per head D_i [N], dK-hat [N x D] */
    ly->bwd_floats = ly->tile_floats + (size_t)(c * ldV + c * ldK + c * ldD + 2 * c * ldD + 2 * c * ldV) +
                     (size_t)RF_ROUND16(ly->N) + (size_t)(ly->N * ldD);
    size_t work = a->backward && ly->bwd_floats > ly->chunk_floats ? ly->bwd_floats : ly->chunk_floats;
    ly->slot_floats = (size_t)RF_ROUND16(ly->hash_floats + work); /* 64-byte slots: doubles and int64 inside */
    return 0;
}

static size_t rf_shared_bytes(const rf_layout *ly, const attn_args *a)
{
    size_t per_head = sizeof(int32_t) * ly->tables_ints + sizeof(float) * ly->head_floats;
    return (per_head + 63) / 64 * 64 * (size_t)(a->B * a->H);
}

size_t rf_workspace_bytes(const rf_layout *ly, const attn_args *a)
{
    return rf_shared_bytes(ly, a) + sizeof(float) * ly->slot_floats * (size_t)a->threads;
}

static char *rf_head_base(const attn_ctx *ctx, const rf_layout *ly, int64_t bh)
{
    size_t per_head = (sizeof(int32_t) * ly->tables_ints + sizeof(float) * ly->head_floats + 63) / 64 * 64;
    return (char *)ctx->workspace + per_head * (size_t)bh;
}

rf_tables rf_head_tables(const attn_ctx *ctx, const rf_layout *ly, int64_t bh)
{
    int32_t *base = (int32_t *)rf_head_base(ctx, ly, bh);
    size_t RN = (size_t)(ly->pl.rounds * ly->N);
    return (rf_tables){.bucket = base, .rank = base + RN, .order = base + 2 * RN, .N = ly->N};
}

float *rf_head_floats(const attn_ctx *ctx, const rf_layout *ly, int64_t bh)
{
    return (float *)(rf_head_base(ctx, ly, bh) + sizeof(int32_t) * ly->tables_ints);
}

float *rf_thread_slot(const attn_ctx *ctx, const rf_layout *ly, int thread)
{
    return (float *)((char *)ctx->workspace + rf_shared_bytes(ly, &ctx->args)) + ly->slot_floats * (size_t)thread;
}

/* ---- hashing ---- */

void rf_rotation(const rf_plan *pl, int64_t h, int r, int64_t D, int64_t cols, double *R)
{
    attn_rng g;
    attn_rng_seed_item(&g, pl->seed, 0x4c5348u + (uint64_t)h, (uint64_t)r); /* "LSH" + head, item = round */
    for (int64_t i = 0; i < D * cols; i++)
        R[i] = attn_rng_normal(&g);
}

/* argmax of [p, -p] (p has half entries): the largest positive entry (first
 * index) unless a negated one is strictly larger (ties go to the earlier,
 * positive, half). */
static int64_t rf_argmax_pm(const double *p, int64_t half)
{
    int64_t pos = 0, neg = 0;
    double top = -INFINITY, ntop = -INFINITY;
    for (int64_t k = 0; k < half; k++) {
        if (p[k] > top)
            top = p[k], pos = k;
        if (-p[k] > ntop)
            ntop = -p[k], neg = k;
    }
    return ntop > top ? half + neg : pos;
}

int32_t rf_bucket_f64(const double *x, const double *R, int64_t D, rf_hash_shape hs, double *p)
{
    int64_t cols = hs.cols;
    for (int64_t k = 0; k < cols; k++)
        p[k] = x[0] * R[k];
    for (int64_t d = 1; d < D; d++) /* rows of R in order: every p[k] still sums over ascending d */
        for (int64_t k = 0; k < cols; k++)
            p[k] += x[d] * R[d * cols + k];
    int64_t b = rf_argmax_pm(p, hs.f1 / 2);
    if (hs.f2 > 1)
        b += hs.f1 * rf_argmax_pm(p + hs.f1 / 2, hs.f2 / 2);
    return (int32_t)b;
}

void rf_sort(const int32_t *bucket, int64_t L, int64_t nb, int32_t *order, int32_t *rank, int32_t *count)
{
    attn_counting_sort(bucket, L, nb, 0, order, rank, count);
}

void rf_inverse_norms(const attn_tensor *q, int64_t b, int64_t h, int64_t L, int64_t D, float *inv)
{
    for (int64_t i = 0; i < L; i++) {
        const float *x = attn_at(q, b, h, i);
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += (double)x[d] * x[d];
        inv[i] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    }
}

/* Largest Euclidean norm of R's columns. */
static double rf_max_column_norm(const double *R, int64_t D, int64_t cols)
{
    double m = 0;
    for (int64_t k = 0; k < cols; k++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += R[d * cols + k] * R[d * cols + k];
        m = fmax(m, s);
    }
    return sqrt(m);
}

/* argmax of [p, -p] from fp32 projections p[0..half), or -1 when the best
 * and second best are within tol (the exact form decides). */
static int64_t rf_argmax_pm_f32(const float *p, int64_t half, float tol)
{
    float top = -INFINITY, second = -INFINITY;
    int64_t best = 0;
    for (int64_t k = 0; k < 2 * half; k++) {
        float v = k < half ? p[k] : -p[k - half];
        if (v > top)
            second = top, top = v, best = k;
        else if (v > second)
            second = v;
    }
    return top - second > tol ? best : -1; /* NaN fails the test: exact form */
}

/* Bucket of one row from its fp32 projections, or -1 when a factor is too
 * close to a tie. */
static int32_t rf_bucket_f32(const float *p, rf_hash_shape hs, float tol)
{
    int64_t b1 = rf_argmax_pm_f32(p, hs.f1 / 2, tol), b2 = hs.f2 > 1 ? rf_argmax_pm_f32(p + hs.f1 / 2, hs.f2 / 2, tol) : 0;
    return b1 < 0 || b2 < 0 ? -1 : (int32_t)(b1 + hs.f1 * b2);
}

/* Buckets of the L rows of (b, h) in round r. The fp32 dot products of
 * length D are within (D + 2) 2^-24 |x| |R_k| of exact in any summation
 * order (R rounded to float included): a gap above twice that (times 2 for
 * margin) decides the argmax as the exact products would. */
static double rf_hash_round(const rf_layout *ly, const attn_tensor *q, int64_t b, int64_t h, int r, int64_t L,
                            int32_t *bucket, float *scratch)
{
    rf_hash_shape hs = rf_hash_of(&ly->pl, L);
    int64_t D = ly->D, cols = hs.cols;
    if (hs.nb == 1) {
        memset(bucket, 0, sizeof(int32_t) * (size_t)L);
        return 0;
    }
    double *Rd = (double *)scratch, *xd = Rd + D * ly->cols_max, *pd = xd + D;
    float *Rf = (float *)(pd + ly->cols_max), *P = Rf + D * ly->cols_max;
    rf_rotation(&ly->pl, h, r, D, cols, Rd);
    for (int64_t i = 0; i < D * cols; i++)
        Rf[i] = (float)Rd[i];
    double bound = 4.0 * (double)(D + 2) * 0x1p-24 * rf_max_column_norm(Rd, D, cols) * 1.01;
    for (int64_t i0 = 0; i0 < L; i0 += RF_HASH_TILE) {
        int64_t n = L - i0 < RF_HASH_TILE ? L - i0 : RF_HASH_TILE;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)cols, (int)D, 1.0f,
                    attn_at(q, b, h, i0), (int)q->sn, Rf, (int)cols, 0.0f, P, (int)cols);
        for (int64_t i = 0; i < n; i++) {
            const float *x = attn_at(q, b, h, i0 + i);
            double norm = 0;
            for (int64_t d = 0; d < D; d++)
                norm += (double)x[d] * x[d];
            int32_t k = rf_bucket_f32(P + i * cols, hs, (float)(bound * sqrt(norm)));
            if (k < 0) {
                for (int64_t d = 0; d < D; d++)
                    xd[d] = x[d];
                k = rf_bucket_f64(xd, Rd, D, hs, pd);
            }
            bucket[i0 + i] = k;
        }
    }
    return 2.0 * (double)L * (double)D * (double)cols;
}

double rf_hash_sort(const rf_layout *ly, const attn_tensor *q, int64_t b, int64_t h, int r, int64_t L,
                    const rf_tables *t, float *scratch)
{
    int32_t *count = (int32_t *)(scratch + 3 * ly->D * ly->cols_max + RF_HASH_TILE * ly->cols_max + 2 * ly->D +
                                 2 * ly->cols_max);
    size_t o = (size_t)r * (size_t)t->N;
    double flops = rf_hash_round(ly, q, b, h, r, L, t->bucket + o, scratch);
    rf_sort(t->bucket + o, L, rf_buckets(&ly->pl, L), t->order + o, t->rank + o, count);
    return flops;
}

/* ---- chunks ---- */

static void rf_chunk_at(const rf_plan *pl, const rf_tables *t, int r, int64_t L, int64_t k, rf_chunk *ch)
{
    const int32_t *order = t->order + (size_t)r * (size_t)t->N;
    ch->nc = rf_chunks(pl, L);
    ch->q0 = k * pl->c;
    ch->nq = L - ch->q0 < pl->c ? L - ch->q0 : pl->c;
    int64_t prev = (k + ch->nc - 1) % ch->nc;
    ch->p0 = prev * pl->c;
    ch->np = ch->nc > 1 ? (L - ch->p0 < pl->c ? L - ch->p0 : pl->c) : 0; /* one chunk: it is its own previous */
    ch->nk = ch->np + ch->nq;
    memcpy(ch->pos, order + ch->p0, sizeof(int32_t) * (size_t)ch->np);
    memcpy(ch->pos + ch->np, order + ch->q0, sizeof(int32_t) * (size_t)ch->nq);
}

static void rf_chunk_scores(const rf_plan *pl, const rf_tables *t, int r, const rf_chunk *ch, float *S, int64_t ld)
{
    float lnc[RF_ROUNDS_MAX + 1];
    for (int n = 1; n <= pl->rounds; n++)
        lnc[n] = (float)log((double)n);
    const int32_t *bucket = t->bucket + (size_t)r * (size_t)t->N;
    for (int64_t a = 0; a < ch->nq; a++) {
        int64_t i = ch->pos[ch->np + a];
        float *s = S + a * ld;
        for (int64_t j = 0; j < ch->nk; j++) {
            int64_t pj = ch->pos[j];
            if (pj == i || (pl->causal && pj > i + pl->shift) || (pl->same_bucket && bucket[pj] != bucket[i])) {
                s[j] = -INFINITY;
                continue;
            }
            int n = 0;
            for (int r2 = 0; r2 < pl->rounds; r2++)
                n += rf_in_round(pl, t, r2, ch->nc, i, pj);
            s[j] -= lnc[n];
        }
    }
}

void rf_gather(const attn_tensor *t, int64_t b, int64_t h, const int32_t *pos, int64_t n, const float *scale,
               float *X, int64_t ld)
{
    for (int64_t j = 0; j < n; j++) {
        const float *x = attn_at(t, b, h, pos[j]);
        float *y = X + j * ld;
        if (!scale) {
            memcpy(y, x, sizeof(float) * (size_t)t->D);
            continue;
        }
        float f = scale[pos[j]];
        for (int64_t d = 0; d < t->D; d++)
            y[d] = x[d] * f;
    }
}

rf_tiles rf_chunk_tiles(const rf_layout *ly, float *slot)
{
    int64_t c = ly->pl.c;
    rf_tiles w = {.ldD = RF_ROUND16(ly->D), .ldV = RF_ROUND16(ly->Dv), .ldK = RF_ROUND16(2 * c)};
    float *p = slot + ly->hash_floats;
    w.ch = (rf_chunk *)p;
    w.Q = p + RF_ROUND16(16 + 2 * c);
    w.K = w.Q + c * w.ldD, w.V = w.K + 2 * c * w.ldD, w.S = w.V + 2 * c * w.ldV;
    return w;
}

double rf_chunk_load(const rf_layout *ly, const rf_head *hd, int r, int64_t k, const rf_tiles *w)
{
    rf_chunk *ch = w->ch;
    rf_chunk_at(&ly->pl, &hd->t, r, hd->L, k, ch);
    rf_gather(&hd->io->q, hd->b, hd->h, ch->pos + ch->np, ch->nq, NULL, w->Q, w->ldD);
    rf_gather(&hd->io->q, hd->b, hd->h, ch->pos, ch->nk, hd->inv, w->K, w->ldD);
    rf_gather(&hd->io->v, hd->b, hd->hk, ch->pos, ch->nk, NULL, w->V, w->ldV);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ch->nq, (int)ch->nk, (int)ly->D,
                (float)attn_scale(hd->a), w->Q, (int)w->ldD, w->K, (int)w->ldD, 0.0f, w->S, (int)w->ldK);
    rf_chunk_scores(&ly->pl, &hd->t, r, ch, w->S, w->ldK);
    return 2.0 * (double)(ch->nq * ch->nk) * (double)ly->D;
}
