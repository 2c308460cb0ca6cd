/* `hip` forward in fp32 (the math is in hip_internal.h). One OpenMP task is
 * a refresh group of one (b, query head): its search (hip_search.c), then
 * the keys its rows attend gathered into contiguous K and V tiles (the
 * selected blocks and sinks, then the tail), S = sc Q K^T (cblas_sgemm),
 * each row masked to its own keys and turned into its softmax, O = P V
 * (cblas_sgemm). Tasks are independent and run in a fixed order inside, so
 * results are bitwise identical for any thread count. Every K/V row the task
 * reads is counted in bytes_read: representatives and gathered rows. */
#include "hip_fwd.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define HIP_ALIGN(n) (((n) + 63) / 64 * 64)

int64_t hip_group_rows(const hip_plan *pl, const attn_args *a)
{
    return pl->refresh < a->Nq ? pl->refresh : a->Nq;
}

int64_t hip_gather_max(const hip_plan *pl, const attn_args *a)
{
    int64_t n = pl->k * pl->bk + pl->sink + pl->window + hip_group_rows(pl, a);
    return n < a->Nk ? n : a->Nk;
}

/* One thread's slot: search scratch, selected blocks, key ranges, gathered
 * key indices, K and V tiles, scores. */
typedef struct {
    hip_search_ws search;
    int64_t *blocks, *ranges, *idx;
    float *K, *V, *S;
} hip_slot;

size_t hip_slot_bytes(const hip_plan *pl, const attn_args *a)
{
    size_t n = (size_t)hip_gather_max(pl, a), R = (size_t)hip_group_rows(pl, a);
    return HIP_ALIGN(hip_search_ws_bytes(pl, a)) + HIP_ALIGN(sizeof(int64_t) * (size_t)pl->k) +
           HIP_ALIGN(sizeof(int64_t) * 2 * (size_t)(pl->k + 1)) + HIP_ALIGN(sizeof(int64_t) * n) +
           HIP_ALIGN(sizeof(float) * n * (size_t)a->D) + HIP_ALIGN(sizeof(float) * n * (size_t)attn_dv(a)) +
           HIP_ALIGN(sizeof(float) * R * n);
}

static hip_slot hip_slot_at(const hip_plan *pl, const attn_args *a, char *mem)
{
    size_t n = (size_t)hip_gather_max(pl, a);
    hip_slot s;
    s.search = hip_search_ws_at(pl, a, mem);
    mem += HIP_ALIGN(hip_search_ws_bytes(pl, a));
    s.blocks = (int64_t *)mem, mem += HIP_ALIGN(sizeof(int64_t) * (size_t)pl->k);
    s.ranges = (int64_t *)mem, mem += HIP_ALIGN(sizeof(int64_t) * 2 * (size_t)(pl->k + 1));
    s.idx = (int64_t *)mem, mem += HIP_ALIGN(sizeof(int64_t) * n);
    s.K = (float *)mem, mem += HIP_ALIGN(sizeof(float) * n * (size_t)a->D);
    s.V = (float *)mem, mem += HIP_ALIGN(sizeof(float) * n * (size_t)attn_dv(a));
    s.S = (float *)mem;
    return s;
}

/* Sinks [0, min(sink, e_last)) and the selected blocks (cut at e_s) as
 * sorted, merged key ranges lo/hi in r[2t], r[2t+1]. Returns their count. */
static int64_t hip_fixed_ranges(const hip_plan *pl, const int64_t *blocks, int64_t nsel, int64_t e_s,
                                int64_t e_last, int64_t *r)
{
    int64_t n = 0, sink = pl->sink < e_last ? pl->sink : e_last;
    if (sink > 0)
        r[0] = 0, r[1] = sink, n = 1;
    for (int64_t t = 0; t < nsel; t++) { /* blocks ascend: merge with the last range */
        int64_t lo = blocks[t] * pl->bk, hi = lo + pl->bk < e_s ? lo + pl->bk : e_s;
        if (n && lo <= r[2 * n - 1]) {
            r[2 * n - 1] = hi > r[2 * n - 1] ? hi : r[2 * n - 1];
            continue;
        }
        r[2 * n] = lo, r[2 * n + 1] = hi, n++;
    }
    return n;
}

/* Key indices of the group: the fixed ranges, then the tail [t0, e_last)
 * minus them. *n_fixed gets the count of the first part. */
static int64_t hip_gather_index(const int64_t *r, int64_t nr, int64_t t0, int64_t e_last, int64_t *idx,
                                int64_t *n_fixed)
{
    int64_t n = 0;
    for (int64_t t = 0; t < nr; t++)
        for (int64_t j = r[2 * t]; j < r[2 * t + 1]; j++)
            idx[n++] = j;
    *n_fixed = n;
    int64_t t = 0;
    for (int64_t j = t0; j < e_last; j++) {
        while (t < nr && r[2 * t + 1] <= j)
            t++;
        if (t < nr && r[2 * t] <= j)
            continue; /* already a fixed key */
        idx[n++] = j;
    }
    return n;
}

/* The refresh group g of (b, h): rows [s, s + R). */
static void hip_group(const hip_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t h, int64_t g,
                      hip_slot *w, flash_tally *t)
{
    int64_t D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv);
    int64_t s = g * pl->refresh, R = s + pl->refresh < a->Nq ? pl->refresh : a->Nq - s;
    int64_t e_s = hip_row_end(a, pl, s), e_last = hip_row_end(a, pl, s + R - 1);
    w->search.reps = 0;
    int64_t nsel = hip_search(pl, a, io, b, h, s, e_s, &w->search, w->blocks);
    int64_t nr = hip_fixed_ranges(pl, w->blocks, nsel, e_s, e_last, w->ranges), nfix;
    int64_t n = hip_gather_index(w->ranges, nr, hip_tail_start(pl, e_s, e_s), e_last, w->idx, &nfix);
    for (int64_t j = 0; j < n; j++) {
        memcpy(w->K + j * D, attn_at(&io->k, b, hk, w->idx[j]), sizeof(float) * (size_t)D);
        memcpy(w->V + j * Dv, attn_at(&io->v, b, hk, w->idx[j]), sizeof(float) * (size_t)Dv);
    }
    int64_t ld = n > 0 ? n : 1;
    float *lse = io->lse + (b * a->H + h) * a->Nq + s;
    if (n > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)n, (int)D, (float)attn_scale(a),
                    attn_at(&io->q, b, h, s), (int)io->q.sn, w->K, (int)D, 0.0f, w->S, (int)ld);
    for (int64_t r = 0; r < R; r++) {
        int64_t e_i = hip_row_end(a, pl, s + r), t0 = hip_tail_start(pl, e_s, e_i);
        float *row = w->S + r * ld;
        for (int64_t j = 0; j < n; j++) /* fixed keys up to e_i; tail keys in [t0, e_i) */
            if (w->idx[j] >= e_i || (j >= nfix && w->idx[j] < t0))
                row[j] = -INFINITY;
        lse[r] = n > 0 ? attn_softmax_row(row, n) : -INFINITY;
    }
    if (n > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)Dv, (int)n, 1.0f, w->S, (int)ld, w->V,
                    (int)Dv, 0.0f, attn_at(&io->o, b, h, s), (int)io->o.sn);
    else
        for (int64_t r = 0; r < R; r++)
            memset(attn_at(&io->o, b, h, s + r), 0, sizeof(float) * (size_t)Dv);
    int64_t nq = s - hip_block_first(pl, s) + 1;
    t->flops += 2.0 * (double)(nq * D) * w->search.reps + 2.0 * (double)(R * n * (D + Dv));
    t->bytes += 4.0 * (double)D * (w->search.reps + (double)(nq + R)) + 4.0 * (double)(n * (D + Dv));
    t->exps += (double)(R * n);
    t->computed += 1;
}

int hip_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    hip_plan pl;
    int rc = hip_plan_make(&pl, a);
    if (rc)
        return rc;
    int64_t groups = (a->Nq + pl.refresh - 1) / pl.refresh, tasks = a->B * a->H * groups;
    size_t slot = hip_slot_bytes(&pl, a);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        hip_slot w = hip_slot_at(&pl, a, (char *)ctx->workspace + slot * (size_t)omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++)
            hip_group(&pl, a, io, task / groups / a->H, task / groups % a->H, task % groups, &w, &t);
        flash_tally_flush(&t);
    }
    return 0;
}
