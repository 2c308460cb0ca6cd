/* `retrieval` (docs/kernels/retrieval.md): the kernel object, its context,
 * the forward driver and the cost model. The forward runs two parallel
 * loops: the index build, one task per (b, KV head, stage), timed on its
 * own (attn_retrieval_stats_of), then the decode steps, one task per
 * (b, KV head, query row). Every task is computed in a fixed order from
 * its own inputs, so results are bitwise identical for any thread count.
 * The index lives in the workspace; with build=once it is kept for the next
 * forwards of the context while K is the same tensor (data pointer,
 * strides and shape), as a serving system keeps the index of its cache. */
#include "retrieval.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ret_plan pl;
    int built;            /* the workspace holds the index of `key` */
    attn_tensor key;      /* K of the last build (compared by pointer, strides and shape) */
    attn_retrieval_stats stats;
} ret_priv;

static void ret_fini(attn_ctx *ctx)
{
    free(ctx->priv);
    ctx->priv = NULL;
}

static int ret_init(attn_ctx *ctx, const attn_args *a)
{
    ret_plan pl;
    int rc = ret_plan_make(&pl, a);
    if (rc)
        return rc;
    if (pl.G > RET_MAX_GROUP)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'retrieval': expected at most %d query heads per KV head, found %lld",
                         RET_MAX_GROUP, (long long)pl.G);
    ret_priv *p = calloc(1, sizeof *p);
    if (!p)
        return attn_fail(ATTN_ENOMEM, "kernel 'retrieval': cannot allocate its context");
    p->pl = pl;
    ctx->priv = p;
    ctx->workspace_bytes =
        sizeof(float) * (pl.slot_floats * (size_t)(a->B * a->H_kv) + pl.thread_floats * (size_t)a->threads);
    return 0;
}

static int ret_same_key(const attn_tensor *x, const attn_tensor *y)
{
    return x->data == y->data && x->B == y->B && x->H == y->H && x->N == y->N && x->D == y->D && x->sb == y->sb &&
           x->sh == y->sh && x->sn == y->sn;
}

static void ret_flush(const ret_tally *t)
{
    attn_counter_add(ATTN_CNT_FLOPS, (long long)t->flops);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t->bytes);
    attn_counter_add(ATTN_CNT_EXPS, (long long)t->exps);
}

static void ret_build_all(const attn_args *a, const ret_plan *pl, const attn_io *io, float *slots, float *scratch)
{
    int64_t tasks = a->B * a->H_kv * pl->n_stages;
#pragma omp parallel num_threads(a->threads)
    {
        ret_tally t = {0};
        float *ws = scratch + pl->thread_floats * (size_t)omp_get_thread_num();
        /* dynamic: later stages are larger */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bk = task / pl->n_stages, st = pl->n_stages - 1 - task % pl->n_stages;
            ret_build_stage(pl, (int)st, &io->k, bk / a->H_kv, bk % a->H_kv, slots + pl->slot_floats * (size_t)bk,
                            ws, &t);
        }
        ret_flush(&t);
    }
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse (B,H,Nq)
static int ret_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    ret_priv *p = ctx->priv;
    const ret_plan *pl = &p->pl;
    float *slots = ctx->workspace, *scratch = slots + pl->slot_floats * (size_t)(a->B * a->H_kv);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
    p->stats.reused = pl->once && p->built && ret_same_key(&p->key, &io->k);
    p->stats.build_seconds = 0;
    if (!p->stats.reused && pl->n_stages > 0) {
        double t0 = omp_get_wtime();
        ret_build_all(a, pl, io, slots, scratch);
        p->stats.build_seconds = omp_get_wtime() - t0;
    }
    p->built = 1, p->key = io->k;
    p->stats.stages = pl->n_stages;
    p->stats.index_bytes = ret_index_bytes(pl) * (size_t)(a->B * a->H_kv);
    int64_t tasks = a->B * a->H_kv * a->Nq;
#pragma omp parallel num_threads(a->threads)
    {
        ret_tally t = {0};
        ret_search_ws w = ret_search_carve(pl, scratch + pl->thread_floats * (size_t)omp_get_thread_num());
#pragma omp for schedule(dynamic, 4)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bk = task / a->Nq;
            ret_step_row(pl, a, io, slots + pl->slot_floats * (size_t)bk, bk / a->H_kv, bk % a->H_kv, task % a->Nq,
                         &w, &t);
        }
        ret_flush(&t);
    }
    return 0;
}

int attn_retrieval_stats_of(const attn_ctx *ctx, attn_retrieval_stats *s)
{
    if (!ctx || ctx->kernel != &attn_kernel_retrieval || !ctx->priv)
        return attn_fail(ATTN_EINVAL, "attn_retrieval_stats_of: expected a context of kernel 'retrieval'");
    *s = ((const ret_priv *)ctx->priv)->stats;
    return 0;
}

/* ---- cost model (docs/kernels/retrieval.md) ----
 * Per query row and head: 4 D |static| + 2 D (lists ranked + keys scored)
 * + 2 D min(r, s) (retrieved values), the keys scored being the expected
 * s nprobe / nlist of an IVF stage (every key of an exhaustive search);
 * exact=1 is counted as nprobe lists. Build (build=each): per stage
 * 2 D nlist (iters T + M) + 2 D M (radii). Bytes: Q, O and lse once, per
 * row and KV group the static K and V rows and the centroids, per head
 * the scored K rows and the retrieved V rows, and the build's key reads. */
typedef struct {
    double flops, bytes;
} ret_cost;

static void ret_row_cost(const ret_plan *pl, const attn_args *a, int64_t i, ret_cost *c)
{
    ret_row rw = ret_row_of(pl, a, i);
    double D = (double)a->D, G = (double)pl->G, end = (double)(rw.hj + 1);
    double nst = rw.hj < 0 ? 0 : (double)rw.sink_end + end - (double)rw.win_lo, cent = 0, scored = 0, got = 0;
    if (pl->r > 0 && rw.s > 0) {
        int st = ret_stage_of(pl, rw.s);
        got = (double)(pl->r < rw.s ? pl->r : rw.s);
        if (rw.s <= pl->r || st < 0)
            scored = (double)rw.s;
        else
            cent = (double)pl->st[st].nlist,
            scored = (double)rw.s * (double)pl->st[st].nprobe / (double)pl->st[st].nlist;
    }
    c->flops += G * (4 * D * nst + 2 * D * (cent + scored + got));
    c->bytes += 4 * D * (2 * nst + cent + G * (scored + got));
}

static ret_cost ret_costs(const attn_args *a)
{
    ret_cost c = {0, 0}, per = {0, 0};
    ret_plan pl;
    if (ret_plan_make(&pl, a) != 0)
        return c;
    for (int64_t i = 0; i < a->Nq; i++)
        ret_row_cost(&pl, a, i, &per);
    double D = (double)a->D, groups = (double)(a->B * a->H_kv);
    for (int t = 0; !pl.once && t < pl.n_stages; t++) {
        const ret_stage *st = &pl.st[t];
        double T = (double)st->train, M = (double)st->members, nl = (double)st->nlist;
        per.flops += 2 * D * nl * ((double)pl.iters * T + M) + 2 * D * M;
        per.bytes += 4 * D * ((double)pl.iters * T + 2 * M);
    }
    c.flops = per.flops * groups;
    double rows = (double)(a->B * a->H * a->Nq);
    c.bytes = per.bytes * groups + rows * (8 * D + 4);
    return c;
}

static double ret_flops(const attn_args *a, attn_pass pass)
{
    return pass == ATTN_PASS_FWD ? ret_costs(a).flops : 0;
}

static double ret_bytes(const attn_args *a, attn_pass pass)
{
    return pass == ATTN_PASS_FWD ? ret_costs(a).bytes : 0;
}

/* The K/V cache (kept whole: retrieved keys are read from it) and the index. */
static size_t ret_state_bytes(const attn_args *a)
{
    ret_plan pl;
    size_t index = ret_plan_make(&pl, a) == 0 ? ret_index_bytes(&pl) : 0;
    return (size_t)(a->B * a->H_kv) * (sizeof(float) * (size_t)(2 * a->Nk * a->D) + index);
}

const attn_kernel attn_kernel_retrieval = {
    .name = "retrieval",
    .family = "retrieval",
    .reference = "Liu et al. 2024 (RetrievalAttention, arXiv 2409.10516)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_DECODE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC | ATTN_GROUP_LOCAL,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = attn_retrieval_params,
    .notes = "rows are decode steps in position order; static set = first n_sink + last w positions; IVF index "
             "trained on each row's causal past (stages doubling from min_index); no backward",
    .init = ret_init,
    .forward = ret_forward,
    .backward = NULL,
    .flops = ret_flops,
    .bytes = ret_bytes,
    .state_bytes = ret_state_bytes,
    .fini = ret_fini,
    .ref_forward = ret_ref_forward,
    .ref_view = ret_ref_view,
};
