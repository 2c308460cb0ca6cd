/* The IVF index of `retrieval` (docs/kernels/retrieval.md): k-means lists over
 * the index keys of one (b, KV head), built stage by stage (the stages are in
 * retrieval_internal.h), and the selection scores the kernel and its double
 * reference both use. The build runs in fp32 with single-threaded sgemm; the
 * reference calls it on the same float keys, so both search the same lists. */
#include "retrieval_internal.h"

#include "common/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) double ret_dot(const float *x, const float *y, int64_t D)
{
    /* eight partial sums in a fixed order: vectorisable, and the same in every caller */
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t d = 0;
    for (; d + 8 <= D; d += 8)
        for (int u = 0; u < 8; u++)
            s[u] += (double)x[d + u] * (double)y[d + u];
    for (; d < D; d++)
        s[0] += (double)x[d] * (double)y[d];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

__attribute__((noinline)) double ret_dist(const float *x, const float *y, int64_t D)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t d = 0;
    for (; d + 8 <= D; d += 8)
        for (int u = 0; u < 8; u++) {
            double e = (double)x[d + u] - (double)y[d + u];
            s[u] += e * e;
        }
    for (; d < D; d++) {
        double e = (double)x[d] - (double)y[d];
        s[0] += e * e;
    }
    return sqrt(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
}

size_t ret_stage_floats(int64_t nlist, int64_t members, int64_t D)
{
    return (size_t)(RET_ROUND16(nlist * D) + RET_ROUND16(nlist + 1) + 2 * RET_ROUND16(members) +
                    RET_ROUND16(members * D));
}

ret_lists ret_lists_of(const ret_plan *pl, int t, const float *slot)
{
    const ret_stage *st = &pl->st[t];
    const float *p = slot + st->off;
    ret_lists L;
    L.cent = p;
    p += RET_ROUND16(st->nlist * pl->D);
    L.start = (const int32_t *)p;
    p += RET_ROUND16(st->nlist + 1);
    L.member = (const int32_t *)p;
    p += RET_ROUND16(st->members);
    L.prad = p;
    p += RET_ROUND16(st->members);
    L.keys = p;
    return L;
}

int64_t ret_eligible(const ret_lists *L, int64_t c, int64_t s)
{
    int64_t lo = L->start[c], hi = L->start[c + 1]; /* first member with order >= s */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (L->member[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - L->start[c];
}

double ret_bound(const ret_lists *L, int64_t c, int64_t n, const float *q, double qn, int64_t D)
{
    return ret_dot(q, L->cent + c * D, D) + qn * (double)L->prad[L->start[c] + n - 1];
}

size_t ret_index_bytes(const ret_plan *pl)
{
    size_t n = 0;
    for (int t = 0; t < pl->n_stages; t++)
        n += sizeof(float) * (size_t)(pl->st[t].nlist * pl->D) + sizeof(int32_t) * (size_t)(pl->st[t].nlist + 1) +
             (sizeof(int32_t) + sizeof(float) * (size_t)(1 + pl->D)) * (size_t)pl->st[t].members;
    return n;
}

/* ---- the build ---- */

typedef struct {
    float *X, *Sc, *cnorm;       /* RET_BLOCK x D keys, RET_BLOCK x nlist products, |mu|^2 */
    double *sums;                /* nlist x D */
    int64_t *counts;             /* nlist */
    int32_t *assign, *ids, *perm; /* members_max, train_max, train_max */
} ret_build_ws;

size_t ret_build_scratch_floats(const ret_plan *pl)
{
    int64_t D = pl->D, nl = pl->nlist_max;
    return (size_t)(RET_ROUND16(RET_BLOCK * D) + RET_ROUND16(RET_BLOCK * nl) + RET_ROUND16(nl) +
                    2 * RET_ROUND16(nl * D) + 2 * RET_ROUND16(nl) + RET_ROUND16(pl->members_max) +
                    2 * RET_ROUND16(pl->train_max));
}

static ret_build_ws ret_build_carve(const ret_plan *pl, float *p)
{
    int64_t D = pl->D, nl = pl->nlist_max;
    ret_build_ws w;
    w.X = p, p += RET_ROUND16(RET_BLOCK * D);
    w.Sc = p, p += RET_ROUND16(RET_BLOCK * nl);
    w.cnorm = p, p += RET_ROUND16(nl);
    w.sums = (double *)p, p += 2 * RET_ROUND16(nl * D);
    w.counts = (int64_t *)p, p += 2 * RET_ROUND16(nl);
    w.assign = (int32_t *)p, p += RET_ROUND16(pl->members_max);
    w.ids = (int32_t *)p, p += RET_ROUND16(pl->train_max);
    w.perm = (int32_t *)p;
    return w;
}

/* One k-means problem: the keys of index order m are K rows j_lo + m. */
typedef struct {
    const ret_plan *pl;
    const attn_tensor *K;
    int64_t b, hk, j_lo, nlist;
    float *cent;
    ret_build_ws w;
    ret_tally *tally;
} ret_km;

static const float *ret_key(const ret_km *km, int64_t m) { return attn_at(km->K, km->b, km->hk, km->j_lo + m); }

/* Nearest centroid of n keys (orders ids[i], or m0 + i when ids is NULL):
 * argmin_c |mu_c|^2 - 2 <x, mu_c> by one sgemm per block, ties to the lower
 * c, into out[i]; with `accumulate` their sums and counts per list. */
static void ret_assign(ret_km *km, const int32_t *ids, int64_t m0, int64_t n, int accumulate, int32_t *out)
{
    int64_t D = km->pl->D, nl = km->nlist;
    for (int64_t i0 = 0; i0 < n; i0 += RET_BLOCK) {
        int64_t nb = n - i0 < RET_BLOCK ? n - i0 : RET_BLOCK;
        for (int64_t i = 0; i < nb; i++)
            memcpy(km->w.X + i * D, ret_key(km, ids ? ids[i0 + i] : m0 + i0 + i), sizeof(float) * (size_t)D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nl, (int)D, 1.0f, km->w.X, (int)D,
                    km->cent, (int)D, 0.0f, km->w.Sc, (int)nl);
        km->tally->flops += 2.0 * (double)(nb * nl * D);
        km->tally->bytes += 4.0 * (double)(nb * D);
        for (int64_t i = 0; i < nb; i++) {
            const float *sc = km->w.Sc + i * nl;
            int64_t best = 0;
            float bd = km->w.cnorm[0] - 2.0f * sc[0];
            for (int64_t c = 1; c < nl; c++) {
                float d = km->w.cnorm[c] - 2.0f * sc[c];
                if (d < bd)
                    bd = d, best = c;
            }
            out[i0 + i] = (int32_t)best;
            if (!accumulate)
                continue;
            double *sum = km->w.sums + best * D;
            const float *x = km->w.X + i * D;
            for (int64_t d = 0; d < D; d++)
                sum[d] += x[d];
            km->w.counts[best]++;
        }
    }
}

static void ret_centroid_norms(ret_km *km)
{
    for (int64_t c = 0; c < km->nlist; c++)
        km->w.cnorm[c] = (float)ret_dot(km->cent + c * km->pl->D, km->cent + c * km->pl->D, km->pl->D);
}

/* The first n of a seeded shuffle of 0 .. N-1 into a[0..n) (partial Fisher-Yates over a[0..N)). */
static void ret_draw(attn_rng *rng, int32_t *a, int64_t N, int64_t n)
{
    for (int64_t i = 0; i < N; i++)
        a[i] = (int32_t)i;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i + (int64_t)attn_rng_uint_below(rng, (uint64_t)(N - i));
        int32_t x = a[i];
        a[i] = a[j], a[j] = x;
    }
}

static int ret_cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* Training keys (a seeded sample of T of the S_t keys, ascending, or all),
 * seeded initial centroids among them, then `iters` Lloyd rounds (an empty
 * list keeps its centroid). */
static void ret_kmeans(ret_km *km, const ret_stage *st, int t)
{
    int64_t D = km->pl->D, nl = km->nlist, T = st->train;
    attn_rng rng;
    /* drawn from (seed, stage, S_t) only: the same draw for every head and
     * batch entry, so a one-head view of the problem replays it */
    attn_rng_seed_item(&rng, km->pl->seed, 0x7265747200ull + (uint64_t)t, (uint64_t)st->size);
    if (T < st->size) {
        ret_draw(&rng, km->w.assign, st->size, T);
        memcpy(km->w.ids, km->w.assign, sizeof(int32_t) * (size_t)T);
        qsort(km->w.ids, (size_t)T, sizeof(int32_t), ret_cmp_i32);
    } else
        for (int64_t i = 0; i < T; i++)
            km->w.ids[i] = (int32_t)i;
    ret_draw(&rng, km->w.perm, T, nl);
    for (int64_t c = 0; c < nl; c++)
        memcpy(km->cent + c * D, ret_key(km, km->w.ids[km->w.perm[c]]), sizeof(float) * (size_t)D);
    for (int64_t it = 0; it < km->pl->iters; it++) {
        ret_centroid_norms(km);
        memset(km->w.sums, 0, sizeof(double) * (size_t)(nl * D));
        memset(km->w.counts, 0, sizeof(int64_t) * (size_t)nl);
        ret_assign(km, km->w.ids, 0, T, 1, km->w.perm);
        for (int64_t c = 0; c < nl; c++)
            for (int64_t d = 0; km->w.counts[c] > 0 && d < D; d++)
                km->cent[c * D + d] = (float)(km->w.sums[c * D + d] / (double)km->w.counts[c]);
    }
    ret_centroid_norms(km);
}

/* float >= x (x >= 0): the radius rounded up keeps the bound a bound */
static float ret_round_up(double x)
{
    float f = (float)x;
    return (double)f < x ? nextafterf(f, INFINITY) : f;
}

void ret_build_stage(const ret_plan *pl, int t, const attn_tensor *K, int64_t b, int64_t hk, float *slot,
                     float *scratch, ret_tally *tally)
{
    const ret_stage *st = &pl->st[t];
    int64_t D = pl->D, nl = st->nlist, M = st->members;
    ret_km km = {.pl = pl, .K = K, .b = b, .hk = hk, .j_lo = pl->ns, .nlist = nl,
                 .cent = slot + st->off, .w = ret_build_carve(pl, scratch), .tally = tally};
    ret_kmeans(&km, st, t);
    /* every member to its nearest centroid, then the lists by counting sort
     * (ascending order within a list) */
    ret_assign(&km, NULL, 0, M, 0, km.w.assign);
    ret_lists L = ret_lists_of(pl, t, slot);
    int32_t *start = (int32_t *)L.start, *member = (int32_t *)L.member;
    float *prad = (float *)L.prad, *keys = (float *)L.keys;
    memset(start, 0, sizeof(int32_t) * (size_t)(nl + 1));
    for (int64_t m = 0; m < M; m++)
        start[km.w.assign[m] + 1]++;
    for (int64_t c = 0; c < nl; c++)
        start[c + 1] += start[c];
    int32_t *cursor = km.w.perm; /* free again: nl <= T entries */
    memcpy(cursor, start, sizeof(int32_t) * (size_t)nl);
    for (int64_t m = 0; m < M; m++)
        member[cursor[km.w.assign[m]]++] = (int32_t)m;
    for (int64_t c = 0; c < nl; c++) {
        double rho = 0;
        for (int64_t e = start[c]; e < start[c + 1]; e++) {
            memcpy(keys + e * D, ret_key(&km, member[e]), sizeof(float) * (size_t)D);
            double d = ret_dist(keys + e * D, km.cent + c * D, D);
            rho = d > rho ? d : rho; /* a NaN distance leaves rho as it was */
            prad[e] = ret_round_up(rho);
        }
    }
    tally->flops += 2.0 * (double)(M * D);
    tally->bytes += 4.0 * (double)(M * D);
}
