/* The fp32 forward of `probsparse` in three passes, each an OpenMP loop over
 * independent tasks whose split depends on the sizes only (so the result is
 * the same at any thread count):
 *   1. measure  (b, h, tile of rows): M(q_i) from the sampled keys, in double
 *   2. select   (b, h): the top-u rows; every other row gets the (cumulative)
 *               mean of V from one running sum
 *   3. attend   (b, h, tile of active rows): softmax attention of the active
 *               rows over their keys in blocks, S = Q Kᵀ and PV by sgemm, an
 *               online softmax between them. */
#include "probsparse_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define PS_ROW_TILE 256 /* query rows per measure task */
#define PS_BR 32        /* active rows per attention task */
#define PS_BC 512       /* keys per score block */

/* Workspace: M of every row, the active rows of every head, then one slot
 * per thread, each part 64-byte aligned. */
typedef struct {
    size_t act_off, slot_off, slot_bytes;
    int64_t u_cap;      /* active rows stored per head (>= 1) */
} ps_layout;

static size_t ps_align(size_t n) { return (n + 63) / 64 * 64; }

static size_t ps_max(size_t x, size_t y) { return x > y ? x : y; }

static ps_layout ps_layout_of(const ps_plan *pl, const attn_args *a)
{
    int64_t D = a->D, Dv = attn_dv(a), heads = a->B * a->H;
    ps_layout ly;
    ly.u_cap = pl->u > 0 ? pl->u : 1;
    ly.act_off = ps_align(sizeof(double) * (size_t)(heads * a->Nq));
    ly.slot_off = ly.act_off + ps_align(sizeof(int64_t) * (size_t)(heads * ly.u_cap));
    size_t measure = sizeof(double) * (size_t)D;
    size_t lazy = ps_align(sizeof(ps_rank) * (size_t)a->Nq) + sizeof(double) * (size_t)Dv;
    size_t attend = ps_align(sizeof(float) * PS_BR * (size_t)D) + ps_align(sizeof(float) * PS_BR * PS_BC) +
                    ps_align(sizeof(float) * PS_BR * (size_t)Dv) + ps_align(sizeof(float) * 2 * PS_BR) +
                    sizeof(int64_t) * PS_BR;
    ly.slot_bytes = ps_align(ps_max(measure, ps_max(lazy, attend)));
    return ly;
}

size_t ps_workspace_bytes(const ps_plan *pl, const attn_args *a)
{
    ps_layout ly = ps_layout_of(pl, a);
    return ly.slot_off + ly.slot_bytes * (size_t)(a->threads > 0 ? a->threads : 1);
}

typedef struct {
    const attn_args *a;
    const attn_io *io;
    const ps_plan *pl;
    ps_layout ly;
    double *M;          /* [B H Nq] */
    int64_t *act;       /* [B H u_cap] */
    char *slots;
} ps_pass;

typedef struct {
    double flops, bytes, exps, tiles;
} ps_tally;

static void ps_tally_add(const ps_tally *t)
{
    attn_counter_add(ATTN_CNT_FLOPS, (long long)t->flops);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t->bytes);
    attn_counter_add(ATTN_CNT_EXPS, (long long)t->exps);
    attn_counter_add(ATTN_CNT_TILES_COMPUTED, (long long)t->tiles);
}

static void *ps_slot(const ps_pass *p) { return p->slots + p->ly.slot_bytes * (size_t)omp_get_thread_num(); }

/* ---- 1. measure ---- */

static void ps_measure_rows(const ps_pass *p, int64_t b, int64_t h, int64_t i0, int64_t i1, ps_tally *t)
{
    const attn_args *a = p->a;
    int64_t D = a->D, hk = h / (a->H / a->H_kv);
    double *qd = ps_slot(p), *M = p->M + (b * a->H + h) * a->Nq;
    const float *K = attn_at(&p->io->k, b, hk, 0);
    for (int64_t i = i0; i < i1; i++) {
        const float *q = attn_at(&p->io->q, b, h, i);
        for (int64_t d = 0; d < D; d++)
            qd[d] = q[d];
        M[i] = ps_measure(p->pl, i, qd, D, K, NULL, p->io->k.sn);
        if (M[i] > -INFINITY || isnan(M[i]))
            t->flops += 2.0 * (double)(p->pl->U * D), t->bytes += 4.0 * (double)((p->pl->U + 1) * D);
    }
}

/* ---- 2. select, lazy rows ---- */

static void ps_lazy_rows(const ps_pass *p, int64_t b, int64_t h, ps_tally *t)
{
    const attn_args *a = p->a;
    const ps_plan *pl = p->pl;
    int64_t Dv = attn_dv(a), hk = h / (a->H / a->H_kv), *act = p->act + (b * a->H + h) * p->ly.u_cap;
    ps_rank *rank = ps_slot(p);
    double *sum = (double *)((char *)rank + ps_align(sizeof(ps_rank) * (size_t)a->Nq));
    ps_select(p->M + (b * a->H + h) * a->Nq, a->Nq, pl->u, act, rank);
    memset(sum, 0, sizeof(double) * (size_t)Dv);
    int64_t summed = 0, next = 0; /* keys in sum; next active row in act */
    int divide = !(pl->causal && pl->lazy == PS_LAZY_SUM);
    for (int64_t i = 0; i < a->Nq; i++) {
        if (next < pl->u && act[next] == i) {
            next++;
            continue;
        }
        int64_t n = ps_keys_of(pl, i); /* non-decreasing in i: one running sum serves every row */
        for (; summed < n; summed++) {
            const float *v = attn_at(&p->io->v, b, hk, summed);
            for (int64_t d = 0; d < Dv; d++)
                sum[d] += v[d];
        }
        float *o = attn_at(&p->io->o, b, h, i);
        for (int64_t d = 0; d < Dv; d++)
            o[d] = n > 0 ? (float)(divide ? sum[d] / (double)n : sum[d]) : 0.0f;
        if (p->io->lse)
            p->io->lse[(b * a->H + h) * a->Nq + i] = n > 0 ? (float)log((double)n) : -INFINITY;
    }
    t->bytes += 4.0 * (double)(summed * Dv);
}

/* ---- 3. attend ---- */

typedef struct {
    float *Q, *S, *acc, *m, *l;
    int64_t *keys;      /* keys of each row */
} ps_tiles;

static ps_tiles ps_tiles_of(const ps_pass *p)
{
    int64_t D = p->a->D, Dv = attn_dv(p->a);
    char *c = ps_slot(p);
    ps_tiles w;
    w.Q = (float *)c, c += ps_align(sizeof(float) * PS_BR * (size_t)D);
    w.S = (float *)c, c += ps_align(sizeof(float) * PS_BR * PS_BC);
    w.acc = (float *)c, c += ps_align(sizeof(float) * PS_BR * (size_t)Dv);
    w.m = (float *)c, w.l = w.m + PS_BR, c += ps_align(sizeof(float) * 2 * PS_BR);
    w.keys = (int64_t *)c;
    return w;
}

/* Online softmax of score row s (nk keys, the first `valid` allowed) into
 * probabilities, updating the row's max m, sum l and accumulator acc. */
static void ps_softmax_block(float *s, int64_t nk, int64_t valid, float *m, float *l, float *acc, int64_t Dv)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j < valid; j++)
        mx = s[j] > mx ? s[j] : mx;
    float mnew = mx > *m ? mx : *m;
    if (mnew == -INFINITY) { /* nothing allowed yet (or -inf scores): no weight */
        memset(s, 0, sizeof(float) * (size_t)nk);
        return;
    }
    float alpha = *m == -INFINITY ? 0.0f : attn_expf(*m - mnew), z = 0;
    for (int64_t j = 0; j < valid; j++)
        s[j] -= mnew;
    attn_vexp(s, s, valid);
    for (int64_t j = 0; j < valid; j++)
        z += s[j];
    memset(s + valid, 0, sizeof(float) * (size_t)(nk - valid));
    *l = *l * alpha + z, *m = mnew;
    for (int64_t d = 0; d < Dv; d++)
        acc[d] *= alpha;
}

static void ps_attend_rows(const ps_pass *p, int64_t b, int64_t h, const int64_t *rows, int64_t nr, ps_tally *t)
{
    const attn_args *a = p->a;
    int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    float sc = (float)attn_scale(a);
    ps_tiles w = ps_tiles_of(p);
    int64_t nmax = 0;
    for (int64_t r = 0; r < nr; r++) {
        const float *q = attn_at(&p->io->q, b, h, rows[r]);
        for (int64_t d = 0; d < D; d++)
            w.Q[r * D + d] = sc * q[d];
        w.keys[r] = ps_keys_of(p->pl, rows[r]);
        nmax = w.keys[r] > nmax ? w.keys[r] : nmax;
        w.m[r] = -INFINITY, w.l[r] = 0;
    }
    memset(w.acc, 0, sizeof(float) * (size_t)(nr * Dv));
    for (int64_t j0 = 0; j0 < nmax; j0 += PS_BC) {
        int64_t nk = nmax - j0 < PS_BC ? nmax - j0 : PS_BC;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nk, (int)D, 1.0f, w.Q, (int)D,
                    attn_at(&p->io->k, b, hk, j0), (int)p->io->k.sn, 0.0f, w.S, PS_BC);
        for (int64_t r = 0; r < nr; r++) {
            int64_t valid = w.keys[r] - j0 < 0 ? 0 : w.keys[r] - j0 > nk ? nk : w.keys[r] - j0;
            ps_softmax_block(w.S + r * PS_BC, nk, valid, &w.m[r], &w.l[r], w.acc + r * Dv, Dv);
            t->exps += (double)valid;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)Dv, (int)nk, 1.0f, w.S, PS_BC,
                    attn_at(&p->io->v, b, hk, j0), (int)p->io->v.sn, 1.0f, w.acc, (int)Dv);
        t->flops += 2.0 * (double)(nr * nk * (D + Dv)), t->bytes += 4.0 * (double)(nk * (D + Dv)), t->tiles += 1;
    }
    for (int64_t r = 0; r < nr; r++) {
        float *o = attn_at(&p->io->o, b, h, rows[r]);
        int empty = !(w.l[r] > 0);
        for (int64_t d = 0; d < Dv; d++)
            o[d] = empty ? 0.0f : w.acc[r * Dv + d] / w.l[r];
        if (p->io->lse)
            p->io->lse[(b * a->H + h) * a->Nq + rows[r]] = empty ? -INFINITY : w.m[r] + logf(w.l[r]);
    }
    t->bytes += 4.0 * (double)(nr * D);
}

int ps_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    ps_plan pl;
    int rc = ps_plan_make(&pl, a);
    if (rc)
        return rc;
    ps_pass p = {.a = a, .io = io, .pl = &pl, .ly = ps_layout_of(&pl, a)};
    p.M = ctx->workspace, p.act = (int64_t *)((char *)ctx->workspace + p.ly.act_off);
    p.slots = (char *)ctx->workspace + p.ly.slot_off;
    int64_t heads = a->B * a->H, row_tiles = (a->Nq + PS_ROW_TILE - 1) / PS_ROW_TILE;
    int64_t act_tiles = (pl.u + PS_BR - 1) / PS_BR;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
#pragma omp parallel num_threads(a->threads)
    {
        ps_tally t = {0, 0, 0, 0};
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < heads * row_tiles; task++) {
            int64_t bh = task / row_tiles, i0 = task % row_tiles * PS_ROW_TILE;
            ps_measure_rows(&p, bh / a->H, bh % a->H, i0, i0 + PS_ROW_TILE < a->Nq ? i0 + PS_ROW_TILE : a->Nq, &t);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < heads; bh++)
            ps_lazy_rows(&p, bh / a->H, bh % a->H, &t);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < heads * act_tiles; task++) {
            int64_t bh = task / act_tiles, r0 = task % act_tiles * PS_BR;
            int64_t nr = pl.u - r0 < PS_BR ? pl.u - r0 : PS_BR;
            ps_attend_rows(&p, bh / a->H, bh % a->H, p.act + bh * p.ly.u_cap + r0, nr, &t);
        }
        ps_tally_add(&t);
    }
    return 0;
}
