/* `hip`: HiP attention (Lee et al. 2024; docs/kernels/hip.md): parameters,
 * plan, cost model and the kernel object. The math is in hip_internal.h,
 * the search in hip_search.c, the forward in hip_fwd.c, the double
 * reference in hip_ref.c. */
#include "hip.h"

#include "hip_fwd.h"

#include <string.h>

static const opt_def hip_params[] = {
    {.name = "k", .type = OPT_INT, .def = 256, .lo = 1, .hi = 1 << 24,
     .help = "key blocks kept by the search (k bk = 512 keys by default)"},
    {.name = "bk", .type = OPT_INT, .def = 2, .lo = 1, .hi = 1 << 20, .help = "keys per block"},
    {.name = "bq", .type = OPT_INT, .def = 32, .lo = 1, .hi = 1 << 16,
     .help = "query rows whose maximum scores a block: the search row and the bq-1 before it"},
    {.name = "refresh", .type = OPT_INT, .def = 8, .lo = 1, .hi = 1 << 30,
     .help = "decode steps (rows) that share one search: rows i with i mod refresh = 0 search"},
    {.name = "sink", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 30, .help = "first keys always attended"},
    {.name = "window", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 30,
     .help = "last keys before and at the query always attended (keys newer than the search always are)"},
    {0},
};

int hip_plan_make(hip_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "hip", hip_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->k = attn_param_int(a, hip_params, "k", &rc);
    pl->bk = attn_param_int(a, hip_params, "bk", &rc);
    pl->bq = attn_param_int(a, hip_params, "bq", &rc);
    pl->refresh = attn_param_int(a, hip_params, "refresh", &rc);
    pl->sink = attn_param_int(a, hip_params, "sink", &rc);
    pl->window = attn_param_int(a, hip_params, "window", &rc);
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    if (rc)
        return rc;
    /* k beyond the blocks of the cache selects every block either way: cap the scratch it sizes */
    int64_t nb = (a->Nk + pl->bk - 1) / pl->bk;
    pl->k = pl->k < nb ? pl->k : nb > 0 ? nb : 1;
    return 0;
}

static int hip_init(attn_ctx *ctx, const attn_args *a)
{
    hip_plan pl;
    int rc = hip_plan_make(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = hip_slot_bytes(&pl, a) * (size_t)a->threads;
    return 0;
}

/* ---- cost model (docs/kernels/hip.md) ----
 * Per (b, query head) and refresh group with search row s over [0, e_s),
 * nb = ceil(e_s / bk) blocks and r = hip_rounds halvings: the search scores
 * 2k representatives per round for its nq = min(bq, s + 1) query rows
 * (2 D nq each, 4 D bytes each); row i attends at most
 *     keys_i = min(e_i, min(nb, k) bk + min(sink, e_i) + e_i - t0_i)
 * keys (overlaps of the selection with sinks and tail not subtracted), 2 D
 * (QK) + 2 Dv (PV) FLOPs each; the group reads the K and V rows of the keys
 * of its last row once. Plus Q, O and lse once. */
typedef struct {
    double flops, kv_bytes;
} hip_cost;

static int64_t hip_row_keys(const hip_plan *pl, int64_t nb, int64_t e_s, int64_t e_i)
{
    int64_t kept = (nb < pl->k ? nb : pl->k) * pl->bk, sink = pl->sink < e_i ? pl->sink : e_i;
    int64_t n = kept + sink + e_i - hip_tail_start(pl, e_s, e_i);
    return n < e_i ? n : e_i;
}

static hip_cost hip_head_cost(const hip_plan *pl, const attn_args *a)
{
    hip_cost c = {0, 0};
    double D = (double)a->D, Dv = (double)attn_dv(a);
    for (int64_t s = 0; s < a->Nq; s += pl->refresh) {
        int64_t e_s = hip_row_end(a, pl, s), nb = (e_s + pl->bk - 1) / pl->bk, last = s;
        double reps = 2.0 * (double)pl->k * (double)hip_rounds(pl, nb);
        c.flops += 2.0 * D * (double)(s - hip_block_first(pl, s) + 1) * reps;
        c.kv_bytes += 4.0 * D * reps;
        for (int64_t i = s; i < a->Nq && i < s + pl->refresh; i++, last = i - 1)
            c.flops += 2.0 * (D + Dv) * (double)hip_row_keys(pl, nb, e_s, hip_row_end(a, pl, i));
        c.kv_bytes += 4.0 * (D + Dv) * (double)hip_row_keys(pl, nb, e_s, hip_row_end(a, pl, last));
    }
    return c;
}

static double hip_flops(const attn_args *a, attn_pass pass)
{
    hip_plan pl;
    if (pass != ATTN_PASS_FWD || hip_plan_make(&pl, a) != 0)
        return 0;
    return hip_head_cost(&pl, a).flops * (double)(a->B * a->H);
}

static double hip_bytes(const attn_args *a, attn_pass pass)
{
    hip_plan pl;
    if (pass != ATTN_PASS_FWD || hip_plan_make(&pl, a) != 0)
        return 0;
    double rows = (double)(a->B * a->H * a->Nq);
    return hip_head_cost(&pl, a).kv_bytes * (double)(a->B * a->H) +
           4.0 * rows * (double)(a->D + attn_dv(a) + 1);
}

const attn_kernel attn_kernel_hip = {
    .name = "hip",
    .family = "hip",
    .reference = "Lee et al. 2024 (HiP Attention: Sparse Sub-Quadratic Attention with Hierarchical Attention Pruning)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_DECODE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC | ATTN_GROUP_LOCAL,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = hip_params,
    .notes = "rows are decode steps: row i mod refresh = 0 searches (query block: it and the bq-1 rows before), the "
             "next rows reuse its blocks plus the keys since; block scores in double (ties to the lower block)",
    .init = hip_init,
    .forward = hip_forward,
    .backward = NULL,
    .flops = hip_flops,
    .bytes = hip_bytes,
    .state_bytes = attn_kv_state_bytes,
    .ref_forward = hip_ref_forward,
    .ref_view = hip_ref_view,
};
