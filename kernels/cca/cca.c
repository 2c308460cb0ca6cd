/* `cca` kernel object: parameters, plan, workspace and cost model (Chen et al.
 * 2024, Core Context Aware attention; the math is in cca_internal.h,
 * docs/kernels/cca.md). */
#include "cca.h"
#include "cca_internal.h"

#include <string.h>

#define CCA_ROUND16(n) (((n) + 15) / 16 * 16)

static const opt_def cca_params[] = {
    {.name = "g", .type = OPT_INT, .def = CCA_DEFAULT_G, .lo = 1, .hi = 1 << 20,
     .help = "group size: each complete group of g keys outside the window becomes one core token"},
    {.name = "n_loc", .type = OPT_INT, .def = CCA_DEFAULT_N_LOC, .lo = 1, .hi = 1 << 20,
     .help = "local groups attended exactly: the query's own group and the n_loc-1 before it"},
    {0},
};

int cca_plan_make(cca_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "cca", cca_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->g = attn_param_int(a, cca_params, "g", &rc);
    pl->n_loc = attn_param_int(a, cca_params, "n_loc", &rc);
    if (rc)
        return rc;
    /* groups are pooled by a query of the same sequence: self-attention only */
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "cca: groups are pooled by the query at their last key, so queries and keys "
                                      "must share positions: expected q_off = k_off, found %lld and %lld",
                         (long long)a->q_off, (long long)a->k_off);
    int64_t N = a->Nk, Dv = attn_dv(a), span = pl->n_loc * pl->g + CCA_TILE;
    pl->T = CCA_TILE;
    pl->nqt = (a->Nq + pl->T - 1) / pl->T;
    pl->n_pool = N > 0 ? cca_cores(pl, N - 1) : 0;
    pl->ld = CCA_ROUND16(pl->n_pool + (span < N ? span : N));
    pl->head_floats = CCA_ROUND16(pl->n_pool * (a->D + Dv + pl->g));
    pl->fwd_floats = (size_t)(pl->T * pl->ld);
    /* P and dS tiles, their lse, dK̄ and dV̄ of one head, a group's dw */
    pl->bwd_floats = (size_t)(2 * pl->T * pl->ld + CCA_ROUND16(pl->T) + CCA_ROUND16(pl->n_pool * (a->D + Dv)) +
                              CCA_ROUND16(pl->g));
    return 0;
}

static size_t cca_slot_floats(const cca_plan *pl, const attn_args *a)
{
    return a->backward && pl->bwd_floats > pl->fwd_floats ? pl->bwd_floats : pl->fwd_floats;
}

static size_t cca_shared_floats(const cca_plan *pl, const attn_args *a)
{
    return (size_t)(a->B * a->H * pl->head_floats);
}

static int cca_init(attn_ctx *ctx, const attn_args *a)
{
    cca_plan pl;
    int rc = cca_plan_make(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = sizeof(float) * (cca_shared_floats(&pl, a) + cca_slot_floats(&pl, a) * (size_t)a->threads);
    return 0;
}

cca_pooled cca_pooled_of(const attn_ctx *ctx, const cca_plan *pl, int64_t b, int64_t h)
{
    const attn_args *a = &ctx->args;
    float *base = (float *)ctx->workspace + (size_t)((b * a->H + h) * pl->head_floats);
    cca_pooled pt = {.kbar = base, .vbar = base + pl->n_pool * a->D};
    pt.w = pt.vbar + pl->n_pool * attn_dv(a);
    return pt;
}

float *cca_thread_scratch(const attn_ctx *ctx, const cca_plan *pl, int thread)
{
    return (float *)ctx->workspace + cca_shared_floats(pl, &ctx->args) +
           cca_slot_floats(pl, &ctx->args) * (size_t)thread;
}

/* ---- cost model (docs/kernels/cca.md) ---- */

/* Per (b, query head): pooling 2 g (2 D + Dv) per pooled group (the group's
 * scores, K̄ and V̄ rows), attention 2 (D + Dv) per (query, core or local
 * token). Leading terms 6 N D + 2 N^2 D / g + 4 N n_loc g D at D = Dv. */
static double cca_flops_per_head(const attn_args *a, const cca_plan *pl)
{
    double D = (double)a->D, Dv = (double)attn_dv(a), tokens = 0;
    for (int64_t i = 0; i < a->Nq; i++)
        tokens += (double)(cca_cores(pl, i) + i - cca_local_start(pl, i) + 1);
    return 2.0 * (double)(pl->n_pool * pl->g) * (2.0 * D + Dv) + 2.0 * (D + Dv) * tokens;
}

static double cca_flops(const attn_args *a, attn_pass pass)
{
    cca_plan pl;
    if (cca_plan_make(&pl, a) != 0)
        return 0;
    double fwd = cca_flops_per_head(a, &pl) * (double)(a->B * a->H);
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* State a causal stream keeps after N tokens for the next query (at position
 * N): its core tokens per query head (pooling uses the head's own query) and
 * the raw keys and values from its local start on, per KV head. */
static size_t cca_state_bytes(const attn_args *a)
{
    cca_plan pl;
    if (cca_plan_make(&pl, a) != 0)
        return 0;
    int64_t N = a->Nk, cores = cca_cores(&pl, N), local = N - cores * pl.g, cols = a->D + attn_dv(a);
    return sizeof(float) * (size_t)(a->B * (a->H * cores + a->H_kv * local) * cols);
}

const attn_kernel attn_kernel_cca = {
    .name = "cca",
    .family = "cca",
    .reference = "Chen et al. 2024 (Core Context Aware Transformers, arXiv 2412.12465)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DETERMINISTIC | ATTN_GROUP_LOCAL,
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = cca_params,
    .notes = "core tokens pooled per query head by the group's last query; one softmax over core + local tokens",
    .init = cca_init,
    .forward = cca_forward,
    .backward = cca_backward,
    .flops = cca_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = cca_state_bytes,
    .ref_forward = cca_ref_forward,
    .ref_view = cca_ref_view,
    .check_params = "g=3 n_loc=1",
};
