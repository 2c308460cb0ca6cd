/* `probsparse`: parameters, plan, cost model and the kernel object (Zhou et
 * al. 2021, Informer; docs/kernels/probsparse.md). The math is in
 * probsparse_internal.h, the selection in probsparse_select.c, the fp32
 * forward in probsparse_fwd.c, the double reference in probsparse_ref.c. */
#include "probsparse.h"

#include "probsparse_internal.h"

#include <string.h>

static const char *const ps_divisors[] = {"samples", "keys", NULL};
static const char *const ps_samplings[] = {"past", "all", NULL};
static const char *const ps_lazies[] = {"mean", "sum", NULL};

static const opt_def ps_params[] = {
    {.name = "factor", .type = OPT_INT, .def = 5, .lo = 1, .hi = 1 << 20,
     .help = "c: U = c ceil(ln Nk) sampled keys per query, u = c ceil(ln Nq) active queries (each capped at N)"},
    {.name = "seed", .type = OPT_UINT, .def = 1, .lo = 0, .hi = (double)INT64_MAX, .flags = OPT_RECORDED,
     .help = "seed of the key samples (drawn per query row, shared by batch entries and heads)"},
    {.name = "divisor", .type = OPT_ENUM, .names = ps_divisors, .def = PS_DIV_SAMPLES,
     .help = "M = max - sum / (samples: U, the sample mean; keys: Nk, the authors' code)"},
    {.name = "causal_samples", .type = OPT_ENUM, .names = ps_samplings, .def = PS_SAMPLE_PAST,
     .help = "causal: sample keys at or before the query (past) or any key (all: the authors' code, reads the future)"},
    {.name = "lazy", .type = OPT_ENUM, .names = ps_lazies, .def = PS_LAZY_MEAN,
     .help = "causal lazy rows: cumulative mean of V (mean) or cumulative sum (sum: the authors' code)"},
    {0},
};

int ps_plan_make(ps_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "probsparse", ps_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->factor = attn_param_int(a, ps_params, "factor", &rc);
    pl->seed = (uint64_t)attn_param_int(a, ps_params, "seed", &rc);
    pl->divisor = (ps_divisor)attn_param_enum(a, ps_params, "divisor", &rc);
    pl->sampling = (ps_sampling)attn_param_enum(a, ps_params, "causal_samples", &rc);
    pl->lazy = (ps_lazy)attn_param_enum(a, ps_params, "lazy", &rc);
    if (rc)
        return rc;
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    pl->shift = a->q_off - a->k_off;
    pl->Nq = a->Nq, pl->Nk = a->Nk;
    pl->U = ps_budget(pl->factor, a->Nk);
    pl->U = pl->U > 0 ? pl->U : 1; /* one key: its one sample */
    pl->u = ps_budget(pl->factor, a->Nq);
    return 0;
}

static int ps_init(attn_ctx *ctx, const attn_args *a)
{
    ps_plan pl;
    int rc = ps_plan_make(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = ps_workspace_bytes(&pl, a);
    return 0;
}

/* ---- cost model (docs/kernels/probsparse.md) ---- */

/* Forward per (b, head): 2 Nq U D for the sampled scores and 2 u Nk (D + Dv)
 * for the active rows' scores and PV: 2 Nq U D + 4 u Nk D at Dv = D. Under
 * a causal mask the active rows are data-dependent, so the bound (u rows of
 * Nk keys) is counted; the counters say what ran. No backward. */
static double ps_flops(const attn_args *a, attn_pass pass)
{
    ps_plan pl;
    if (pass != ATTN_PASS_FWD || ps_plan_make(&pl, a) != 0)
        return 0;
    double D = (double)a->D, Dv = (double)attn_dv(a);
    double head = 2.0 * (double)a->Nq * (double)pl.U * D + 2.0 * (double)pl.u * (double)a->Nk * (D + Dv);
    return head * (double)(a->B * a->H);
}

/* Minimum traffic, fp32: Q once, K and V once (the means need all of V,
 * the active rows all of K), O and lse written. */
static double ps_bytes(const attn_args *a, attn_pass pass)
{
    if (pass != ATTN_PASS_FWD)
        return 0;
    double D = (double)a->D, Dv = (double)attn_dv(a), H = (double)a->H, Hk = (double)a->H_kv;
    double q = (double)a->Nq, k = (double)a->Nk;
    return 4.0 * (double)a->B * (H * q * D + Hk * k * (D + Dv) + H * q * Dv + H * q);
}

/* The KV cache a decoder keeps: 2 N D per KV head (its state size). */
static size_t ps_state_bytes(const attn_args *a)
{
    return sizeof(float) * (size_t)(a->B * a->H_kv * a->Nk * (a->D + attn_dv(a)));
}

const attn_kernel attn_kernel_probsparse = {
    .name = "probsparse",
    .family = "probsparse",
    .reference = "Zhou et al. 2021 (Informer: Beyond Efficient Transformer for Long Sequence Time-Series Forecasting)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_GQA | ATTN_CROSS | ATTN_DV | ATTN_DETERMINISTIC | ATTN_RANKED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = ps_params,
    .notes = "top-u queries by the sampled measure get exact softmax, the others the mean of their allowed V "
             "(lse ln n_i, as a zero query); forward only",
    .init = ps_init,
    .forward = ps_forward,
    .flops = ps_flops,
    .bytes = ps_bytes,
    .state_bytes = ps_state_bytes,
    .ref_forward = ps_ref_forward,
    .ref_view = ps_ref_view,
};
