/* `recycled` (Recycled Attention; recycled.h, docs/kernels/recycled.md): the
 * parameters, the plan, the cost model and the kernel object. The forward is
 * in recycled_fwd.c, the selection scoring shared with the double reference
 * in recycled_select.c, the reference and the fidelity view in
 * recycled_ref.c. */
#include "recycled.h"

#include "recycled_internal.h"

#include <string.h>

static const opt_def rc_params[] = {
    {.name = "S", .type = OPT_INT, .def = RC_DEFAULT_S, .lo = 1, .hi = 1 << 30,
     .help = "a full step every S steps (1: every step is exact)"},
    {.name = "K", .type = OPT_INT, .def = RC_DEFAULT_K, .lo = 1, .hi = (double)(INT64_MAX / 2),
     .help = "keys a full step keeps: top-K of the weights summed over the KV group"},
    {.name = "phase", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 30,
     .help = "step of the cycle query row 0 is, < S (0: a full step; j: j steps after one)"},
    {.name = "dynamic", .type = OPT_BOOL, .def = 0,
     .help = "also a full step when cos(q_t, q_full) < tau over the KV group's queries"},
    {.name = "tau", .type = OPT_DOUBLE, .def = 0.9, .lo = -1, .hi = 1, .help = "dynamic: refresh threshold"},
    {0},
};

int rc_plan_make(rc_plan *pl, const attn_args *a)
{
    memset(pl, 0, sizeof *pl);
    int rc = attn_params_check(a, "recycled", rc_params);
    if (rc)
        return rc;
    pl->S = attn_param_int(a, rc_params, "S", &rc);
    pl->K = attn_param_int(a, rc_params, "K", &rc);
    pl->phase = attn_param_int(a, rc_params, "phase", &rc);
    pl->dynamic = (int)attn_param_int(a, rc_params, "dynamic", &rc);
    pl->tau = opt_bag_double(rc_params, &a->params, "tau", &rc);
    if (rc)
        return rc;
    if (pl->phase >= pl->S)
        return attn_fail(ATTN_EINVAL, "recycled: expected phase < S = %lld, found phase=%lld", (long long)pl->S,
                         (long long)pl->phase);
    pl->G = a->H / a->H_kv;
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    return 0;
}

static int rc_init(attn_ctx *ctx, const attn_args *a)
{
    rc_plan pl;
    int rc = rc_plan_make(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = rc_thread_bytes(a, &pl) * (size_t)a->threads;
    return 0;
}

/* ---- cost model (docs/kernels/recycled.md) ----
 * Per KV group and query row, on the fixed schedule (a dynamic refresh is
 * data-dependent and not modelled): a full step at position p scores and
 * reads the n(p) keys it may attend; a recycled step the kept keys at or
 * before its full step's position pf, min(K, n(pf)), plus the keys that
 * arrived after pf; a recycled row 0 first scores the keys of its full step
 * from its own queries (the stand-in, see recycled_fwd.c), reading K only. */
typedef struct {
    double keys;    /* keys attended (QK^T and PV), summed over the rows */
    double scored;  /* keys only scored (row 0's stand-in selection) */
} rc_cost;

static rc_cost rc_cost_of(const attn_args *a, const rc_plan *pl)
{
    rc_cost c = {0, 0};
    int64_t pf = 0;
    for (int64_t i = 0; i < a->Nq; i++) {
        int64_t p = a->q_off + i, n = rc_key_end(pl, a, p);
        if (rc_scheduled_full(pl, i)) {
            c.keys += (double)n, pf = p;
            continue;
        }
        if (i == 0) {
            pf = p - pl->phase;
            c.scored += (double)rc_key_end(pl, a, pf);
        }
        int64_t j0 = rc_new_from(a, pf), before = j0 < a->Nk ? j0 : a->Nk;
        c.keys += (double)(pl->K < before ? pl->K : before) + (double)(n > j0 ? n - j0 : 0);
    }
    return c;
}

static double rc_flops(const attn_args *a, attn_pass pass)
{
    rc_plan pl;
    if (pass != ATTN_PASS_FWD || rc_plan_make(&pl, a) != 0)
        return 0;
    rc_cost c = rc_cost_of(a, &pl);
    return (double)(a->B * a->H) * (double)a->D * (4.0 * c.keys + 2.0 * c.scored);
}

/* Q, O and lse once; K and V of the attended keys, K of the scored ones. */
static double rc_bytes(const attn_args *a, attn_pass pass)
{
    rc_plan pl;
    if (pass != ATTN_PASS_FWD || rc_plan_make(&pl, a) != 0)
        return 0;
    rc_cost c = rc_cost_of(a, &pl);
    double D = (double)a->D, rows = (double)(a->B * a->H * a->Nq);
    return 4.0 * (rows * (2.0 * D + 1.0) + (double)(a->B * a->H_kv) * D * (2.0 * c.keys + c.scored));
}

/* The full cache and the small gathered copy: 2 N D + 2 (K + S) D floats
 * per KV head (bandwidth is what the method saves, not memory). */
static size_t rc_state_bytes(const attn_args *a)
{
    rc_plan pl;
    int64_t K = RC_DEFAULT_K, S = RC_DEFAULT_S;
    if (rc_plan_make(&pl, a) == 0)
        K = pl.K, S = pl.S;
    K = K < a->Nk ? K : a->Nk;
    return sizeof(float) * (size_t)(a->B * a->H_kv) * (size_t)(2 * a->Nk * a->D + 2 * (K + S) * a->D);
}

const attn_kernel attn_kernel_recycled = {
    .name = "recycled",
    .family = "recycled",
    .reference = "Xu, Goyal, Choi 2024 (Recycled Attention, arXiv 2411.05787)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_DECODE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC |
             ATTN_GROUP_LOCAL,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = rc_params,
    .notes = "query rows are successive decode steps; top-K of the weights summed over the KV group, ties to the "
             "lower position; a recycled row 0 selects with its own queries as the full step's",
    .init = rc_init,
    .forward = rc_forward,
    .backward = NULL,
    .flops = rc_flops,
    .bytes = rc_bytes,
    .state_bytes = rc_state_bytes,
    .fini = NULL,
    .ref_forward = rc_ref_forward,
    .ref_view = rc_ref_view,
};
