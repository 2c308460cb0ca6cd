/* `hyper`: HyperAttention (Han et al. 2023; docs/kernels/hyper.md):
 * parameters, plan, cost model and the kernel object. The math is in
 * hyper_internal.h, the shared pieces in hyper_hash.c, the forward in
 * hyper_fwd.c, the double reference and the view in hyper_ref.c. */
#include "hyper.h"
#include "hyper_internal.h"

#include "kernels/flash/flash.h"

#include <stdlib.h>
#include <string.h>

static const opt_def hy_params[] = {
    {.name = "r", .type = OPT_INT, .def = 8, .lo = 1, .hi = HY_R_MAX,
     .help = "hyperplanes of sortLSH: rows are sorted by the Gray-code rank of their r sign bits"},
    {.name = "bs", .type = OPT_INT, .def = 256, .lo = 1, .hi = 1 << 24,
     .help = "block size: sorted query block I attends sorted key block I"},
    {.name = "s", .type = OPT_INT, .def = 256, .lo = 0, .hi = 1 << 24,
     .help = "uniform key samples (without replacement) estimating the rest of each row"},
    {.name = "min_seq_len", .type = OPT_INT, .def = 2048, .lo = 1, .hi = 1 << 30,
     .help = "exact attention for sub-problems of at most this many keys"},
    {.name = "seed", .type = OPT_UINT, .def = 1, .lo = 0, .hi = (double)INT64_MAX, .flags = OPT_RECORDED,
     .help = "seed of the hyperplanes and of the key samples"},
    {0},
};

int hy_plan_make(hy_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "hyper", hy_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->r = (int)attn_param_int(a, hy_params, "r", &rc);
    pl->bs = attn_param_int(a, hy_params, "bs", &rc);
    pl->s = attn_param_int(a, hy_params, "s", &rc);
    pl->min_len = attn_param_int(a, hy_params, "min_seq_len", &rc);
    pl->seed = (uint64_t)attn_param_int(a, hy_params, "seed", &rc);
    if (rc)
        return rc;
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    if (a->Nq != a->Nk)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'hyper': self-attention only, expected Nq = Nk, found %lld "
                                            "and %lld", (long long)a->Nq, (long long)a->Nk);
    if (pl->causal && a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'hyper': the causal recursion halves the diagonal, expected "
                                            "q_off = k_off, found %lld and %lld",
                         (long long)a->q_off, (long long)a->k_off);
    return 0;
}

/* ---- plan ---- */

static void hy_priv_free(hy_priv *p)
{
    if (!p)
        return;
    if (p->flash.kernel && attn_kernel_flash.fini)
        attn_kernel_flash.fini(&p->flash);
    hy_split_free(&p->sp);
    free(p->by_depth), free(p->depth_start), free(p->block_start), free(p->depth_blocks);
    free(p);
}

static void hy_fini(attn_ctx *ctx)
{
    hy_priv_free(ctx->priv);
    ctx->priv = NULL;
}

/* The fused split and its jobs ordered by depth (stable: recursion order
 * within a depth), with each depth's running block count. */
static int hy_order_jobs(hy_priv *p, int64_t N)
{
    hy_split *sp = &p->sp;
    int rc = hy_split_alloc(&p->pl, N, 1, sp);
    if (rc)
        return rc;
    int64_t nd = sp->depths + 1;
    p->by_depth = malloc(sizeof *p->by_depth * (size_t)(sp->n_jobs + 1));
    p->block_start = malloc(sizeof *p->block_start * (size_t)(sp->n_jobs + 1));
    p->depth_start = calloc((size_t)nd, sizeof *p->depth_start);
    p->depth_blocks = calloc((size_t)nd, sizeof *p->depth_blocks);
    int64_t *next = calloc((size_t)nd, sizeof *next);
    if (!p->by_depth || !p->block_start || !p->depth_start || !p->depth_blocks || !next) {
        free(next);
        return attn_fail(ATTN_ENOMEM, "kernel 'hyper': cannot allocate the plan of %lld rows", (long long)N);
    }
    for (int64_t j = 0; j < sp->n_jobs; j++)
        p->depth_start[sp->jobs[j].depth + 1]++;
    for (int d = 0; d < sp->depths; d++)
        p->depth_start[d + 1] += p->depth_start[d];
    for (int64_t j = 0; j < sp->n_jobs; j++) {
        int d = sp->jobs[j].depth;
        int64_t at = p->depth_start[d] + next[d]++;
        p->by_depth[at] = (int32_t)j;
        p->block_start[at] = p->depth_blocks[d];
        p->depth_blocks[d] += hy_blocks(&p->pl, &sp->jobs[j]);
    }
    free(next);
    return 0;
}

/* The flash problem of the longest leaf: the same heads and mask, flash's
 * own default tiles (hyper's parameters are not flash's). */
static int hy_flash_init(hy_priv *p, const attn_args *a)
{
    for (int64_t i = 0; i < p->sp.n_leaves; i++)
        p->leaf_max = p->sp.leaves[i].n > p->leaf_max ? p->sp.leaves[i].n : p->leaf_max;
    if (!p->sp.n_leaves)
        return 0;
    attn_args f = *a;
    memset(&f.params, 0, sizeof f.params);
    f.Nq = f.Nk = p->leaf_max, f.q_off = f.k_off = 0, f.backward = 0;
    attn_args_defaults(&f);
    p->flash.kernel = &attn_kernel_flash;
    p->flash.args = f;
    int rc = attn_kernel_flash.init(&p->flash, &p->flash.args);
    if (rc)
        p->flash.kernel = NULL;
    return rc;
}

static int hy_layout(hy_priv *p, const attn_args *a)
{
    size_t BHN = (size_t)(a->B * a->H * a->Nq), BKN = (size_t)(a->B * a->H_kv * a->Nk), off = 0;
    int jobs = p->sp.n_jobs > 0;
    p->lse = hy_align(&off, sizeof(float) * BHN);
    p->qcode = hy_align(&off, jobs ? sizeof(int32_t) * BHN : 0);
    p->qord = hy_align(&off, jobs ? sizeof(int32_t) * BHN : 0);
    p->kcode = hy_align(&off, jobs ? sizeof(int32_t) * BKN : 0);
    p->kord = hy_align(&off, jobs ? sizeof(int32_t) * BKN : 0);
    p->krank = hy_align(&off, jobs ? sizeof(int32_t) * BKN : 0);
    p->smp = hy_align(&off, jobs ? sizeof(int32_t) * BKN : 0);
    p->rd = hy_align(&off, sizeof(double) * (size_t)(a->D * p->pl.r));
    p->rf = hy_align(&off, sizeof(float) * (size_t)(a->D * p->pl.r));
    p->leaf_lse = hy_align(&off, sizeof(float) * (size_t)(a->B * a->H * p->leaf_max));
    p->flash_ws = hy_align(&off, p->flash.kernel ? p->flash.workspace_bytes : 0);
    p->G = a->H / a->H_kv;
    p->ldD = HY_ROUND16(a->D), p->ldV = HY_ROUND16(attn_dv(a));
    p->rows_max = p->G * p->pl.bs, p->cols_max = p->pl.bs + p->pl.s, p->ldC = HY_ROUND16(p->cols_max);
    p->slot_bytes = jobs ? hy_slot_carve(p, a, NULL, NULL) : 0;
    p->slots = off;
    return 0;
}

static int hy_init(attn_ctx *ctx, const attn_args *a)
{
    hy_priv *p = calloc(1, sizeof *p);
    if (!p)
        return attn_fail(ATTN_ENOMEM, "kernel 'hyper': cannot allocate its context");
    int rc = hy_plan_make(&p->pl, a);
    if (!rc)
        rc = hy_order_jobs(p, a->Nq);
    if (!rc)
        rc = hy_flash_init(p, a);
    if (!rc)
        rc = hy_layout(p, a);
    if (rc) {
        hy_priv_free(p); /* attn_ctx_create does not call fini after a failed init */
        return rc;
    }
    ctx->priv = p;
    ctx->workspace_bytes = p->slots + p->slot_bytes * (size_t)a->threads;
    return 0;
}

/* ---- cost model (docs/kernels/hyper.md) ---- */

/* Forward per (b, query head), over the fused split: an exact causal leaf
 * of n rows (D + Dv) n (n + 1), a full one 2 (D + Dv) n^2; a job
 * 2 (D + Dv) (sum over blocks I of nq_I nk_I + nq samples); with any job the
 * hash projections 2 N D r of the queries, and of the keys per KV head.
 * No backward. */
static double hy_flops(const attn_args *a, attn_pass pass)
{
    hy_plan pl;
    if (pass != ATTN_PASS_FWD || hy_plan_make(&pl, a) != 0)
        return 0;
    hy_split sp;
    if (hy_split_alloc(&pl, a->Nq, 1, &sp) != 0)
        return 0;
    double DD = (double)(a->D + attn_dv(a)), head = 0;
    for (int64_t i = 0; i < sp.n_leaves; i++) {
        double n = (double)sp.leaves[i].n;
        head += sp.leaves[i].causal ? DD * n * (n + 1) : 2 * DD * n * n;
    }
    for (int64_t i = 0; i < sp.n_jobs; i++) {
        const hy_job *j = &sp.jobs[i];
        double pairs = (double)(j->nq * hy_samples_of(&pl, j));
        for (int64_t t0 = 0; t0 < j->nq; t0 += pl.bs) {
            int64_t nq = j->nq - t0 < pl.bs ? j->nq - t0 : pl.bs, nk = j->nk - t0 < pl.bs ? j->nk - t0 : pl.bs;
            pairs += (double)(nq * nk);
        }
        head += 2 * DD * pairs;
    }
    double hash = sp.n_jobs ? 2.0 * (double)(a->Nq * a->D * pl.r) * (double)(a->H + a->H_kv) : 0;
    hy_split_free(&sp);
    return (double)a->B * (head * (double)a->H + hash);
}

/* Minimum traffic: Q, K, V read once, O and lse written. */
static double hy_bytes(const attn_args *a, attn_pass pass)
{
    return pass == ATTN_PASS_FWD ? attn_softmax_bytes(a, pass) : 0;
}

const attn_kernel attn_kernel_hyper = {
    .name = "hyper",
    .family = "hyper",
    .reference = "Han, Jayaram, Karbasi, Mirrokni, Woodruff, Zandieh 2023 (HyperAttention: Long-context Attention in "
                 "Near-Linear Time)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_GQA | ATTN_DETERMINISTIC | ATTN_ROUTED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = hy_params,
    .notes = "exact (flash) at or below min_seq_len keys; causal: recursive halving, the off-diagonal quarter "
             "non-causal hyper merged by lse; hyperplanes shared by all heads, samples per KV head",
    .init = hy_init,
    .forward = hy_forward,
    .fini = hy_fini,
    .flops = hy_flops,
    .bytes = hy_bytes,
    .state_bytes = attn_kv_state_bytes,
    .ref_forward = hy_ref_forward,
    .ref_view = hy_ref_view,
};
