/* `routing`: Routing Transformer attention (Roy, Saffar, Vaswani, Grangier
 * 2021; docs/kernels/routing.md): parameters, plan, workspace, cost model,
 * the centroids' initial draw and the kernel object. The math is in
 * routing_internal.h; assignment in routing_assign.c, tiles in
 * routing_tile.c, forward in routing_fwd.c, backward in routing_bwd.c, the
 * double reference in routing_ref.c, the centroid EMA in routing_update.c. */
#include "routing.h"

#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const rt_assign_names[] = {"argmax", "balanced", NULL};

static const opt_def rt_params[] = {
    {.name = "clusters", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 20,
     .help = "kappa: centroids per head; 0 = round(sqrt(N)) (paper)"},
    {.name = "assign", .type = OPT_ENUM, .def = RT_ARGMAX, .names = rt_assign_names,
     .help = "argmax: nearest centroid; balanced: each centroid takes its top ceil(N/kappa) queries and keys (FULL only)"},
    {.name = "keep_diag", .type = OPT_BOOL, .def = 1,
     .help = "a query also attends its own key (causal rows are never empty)"},
    {.name = "iters", .type = OPT_INT, .def = 0, .lo = 0, .hi = 100,
     .help = "Lloyd steps on each sequence's own unit q and k, from the stored centroids, before routing (full mask)"},
    {.name = "decay", .type = OPT_DOUBLE, .def = 0.999, .lo = 0, .hi = 1,
     .help = "lambda of the centroid EMA a training step applies (train_update)"},
    {.name = "seed", .type = OPT_UINT, .def = 1, .lo = 0, .hi = (double)INT64_MAX, .flags = OPT_RECORDED,
     .help = "seed of the initial unit centroids (mixed with the caller's seed)"},
    {0},
};

int rt_plan_make(rt_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "routing", rt_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->N = a->Nk, pl->D = a->D, pl->Dv = attn_dv(a), pl->scale = attn_scale(a);
    pl->kappa = attn_param_int(a, rt_params, "clusters", &rc);
    pl->assign = attn_param_enum(a, rt_params, "assign", &rc);
    pl->keep_diag = (int)attn_param_int(a, rt_params, "keep_diag", &rc);
    pl->seed = (uint64_t)attn_param_int(a, rt_params, "seed", &rc);
    pl->iters = attn_param_int(a, rt_params, "iters", &rc);
    pl->decay = opt_bag_double(rt_params, &a->params, "decay", &rc);
    if (rc)
        return rc;
    if (pl->kappa == 0)
        pl->kappa = (int64_t)llround(sqrt((double)(a->Nk > 1 ? a->Nk : 1)));
    pl->w = (pl->N + pl->kappa - 1) / pl->kappa;
    pl->bk = (pl->w + 15) / 16 * 16 < RT_BK ? (pl->w + 15) / 16 * 16 : RT_BK;
    pl->bq = (pl->w + 15) / 16 * 16 < RT_BQ ? (pl->w + 15) / 16 * 16 : RT_BQ;
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    pl->shift = a->q_off - a->k_off;
    if (pl->assign == RT_BALANCED && pl->causal)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'routing': assign=balanced needs mask full (a cluster's keys are "
                                            "chosen over the whole sequence), found causal");
    if (pl->iters > 0 && pl->causal)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'routing': iters > 0 needs mask full (the centroids are fitted "
                                            "to the whole sequence), found causal");
    return 0;
}

int rt_check_weights(const rt_plan *pl, const attn_io *io)
{
    if (!io->w.data || io->w.D < pl->kappa * pl->D)
        return attn_fail(ATTN_EINVAL, "kernel 'routing': io.w: expected %lld centroid columns per head (clusters=%lld "
                                      "x D=%lld), found %lld", (long long)(pl->kappa * pl->D), (long long)pl->kappa,
                         (long long)pl->D, (long long)(io->w.data ? io->w.D : 0));
    return 0;
}

/* ---- workspace ---- */

static size_t rt_round16(size_t n) { return (n + 15) / 16 * 16; }

rt_layout rt_layout_of(const rt_plan *pl, const attn_args *a)
{
    rt_layout ly = {0};
    ly.assign_floats = rt_round16(rt_assign_floats(pl));
    ly.tile_floats = rt_round16(rt_tile_floats(pl));
    ly.slot_floats = ly.assign_floats + ly.tile_floats;
    ly.head_grad_floats = a->backward ? rt_round16((size_t)(pl->N * (pl->D + pl->Dv))) : 0;
    return ly;
}

float *rt_thread_slot(const attn_ctx *ctx, const rt_layout *ly, int thread)
{
    return (float *)ctx->workspace + (size_t)thread * ly->slot_floats;
}

float *rt_head_grads(const attn_ctx *ctx, const rt_layout *ly, int64_t bh)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + (size_t)a->threads * ly->slot_floats + (size_t)bh * ly->head_grad_floats;
}

static int rt_init(attn_ctx *ctx, const attn_args *a)
{
    rt_plan pl;
    int rc = rt_plan_make(&pl, a);
    if (rc)
        return rc;
    if (pl.kappa > a->Nk)
        return attn_fail(ATTN_EINVAL, "kernel 'routing': clusters: expected at most N=%lld, found %lld",
                         (long long)a->Nk, (long long)pl.kappa);
    rt_layout ly = rt_layout_of(&pl, a);
    ctx->workspace_bytes = sizeof(float) * (ly.slot_floats * (size_t)a->threads + ly.head_grad_floats *
                                                                                       (size_t)(a->B * a->H));
    return 0;
}

static int64_t rt_input_cols(const attn_args *a, unsigned input)
{
    rt_plan pl;
    if (input != ATTN_IN_WEIGHTS || rt_plan_make(&pl, a))
        return 0; /* bad parameters: init says which */
    return pl.kappa * a->D;
}

/* Unit centroids, standard normal directions drawn per head from the
 * caller's seed and the `seed` parameter. */
static void rt_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    rt_plan pl;
    if (rt_plan_make(&pl, a))
        return;
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed ^ attn_splitmix64(pl.seed), 0x70c, (uint64_t)h);
        for (int64_t c = 0; c < pl.kappa; c++) {
            float *mu = (float *)rt_centroid(w, h, c, a->D);
            double n2 = 0;
            for (int64_t d = 0; d < a->D; d++) {
                double x = attn_rng_normal(&r);
                mu[d] = (float)x, n2 += x * x;
            }
            for (int64_t d = 0; d < a->D; d++)
                mu[d] = (float)(mu[d] / sqrt(n2));
        }
        for (int64_t d = pl.kappa * a->D; d < w->D; d++) /* columns past kappa D (a shorter plan): unused */
            attn_at(w, 0, h, 0)[d] = 0;
    }
}

/* ---- cost model (docs/kernels/routing.md) ---- */

/* Forward per head: 2 N D kappa for each of the query and key scores (iters
 * + 1 times with Lloyd steps), and the attention of N queries to w =
 * ceil(N / kappa) keys each, 2 N w (D + Dv) (half of it under a causal
 * mask); backward 2.5x the forward. */
static double rt_flops(const attn_args *a, attn_pass pass)
{
    rt_plan pl;
    if (rt_plan_make(&pl, a) != 0)
        return 0;
    double N = (double)pl.N, D = (double)pl.D, Dv = (double)pl.Dv;
    double route = 4.0 * N * D * (double)pl.kappa * (double)(1 + pl.iters), att = 2.0 * N * (double)pl.w * (D + Dv) * (pl.causal ? 0.5 : 1);
    double f = (route + att) * (double)(a->B * a->H);
    return pass == ATTN_PASS_FWD ? f : 2.5 * f;
}

/* Softmax attention's minimum traffic plus the centroids. */
static double rt_bytes(const attn_args *a, attn_pass pass)
{
    rt_plan pl;
    if (rt_plan_make(&pl, a) != 0)
        return 0;
    return attn_softmax_bytes(a, pass) + 4.0 * (double)(a->H * pl.kappa * a->D);
}

/* The KV cache a decoder would keep, and the centroids. */
static size_t rt_state_bytes(const attn_args *a)
{
    rt_plan pl;
    if (rt_plan_make(&pl, a) != 0)
        return 0;
    return attn_kv_state_bytes(a) + sizeof(float) * (size_t)(a->H * pl.kappa * a->D);
}

/* The automatic cluster count of the full problem, pinned for a prefix of
 * it (gate.c): with the same centroids, argmax routing of a row does not
 * depend on the rows after it. */
static void rt_ref_prefix_args(const attn_args *full, int64_t b, attn_args *prefix)
{
    (void)b;
    rt_plan pl;
    if (rt_plan_make(&pl, full) || param_bag_get(&full->params, "clusters") || prefix->params.n >= PARAM_BAG_MAX)
        return;
    char kv[64];
    snprintf(kv, sizeof kv, "clusters=%lld", (long long)pl.kappa);
    param_bag_add(&prefix->params, kv);
}

const attn_kernel attn_kernel_routing = {
    .name = "routing",
    .family = "routing",
    .reference = "Roy, Saffar, Vaswani, Grangier 2021 (Efficient Content-Based Sparse Attention with Routing "
                 "Transformers)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DV | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = rt_params,
    .notes = "centroids are io.w (kappa x D per head), updated by EMA through train_update, not by gradient "
             "(dw = 0); clusters from unit q and k, attention with the raw scores; causal: argmax without iters",
    .init = rt_init,
    .forward = rt_forward,
    .backward = rt_backward,
    .flops = rt_flops,
    .bytes = rt_bytes,
    .state_bytes = rt_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = rt_ref_forward,
    .input_cols = rt_input_cols,
    .init_weights = rt_init_weights,
    .check_params = "clusters=3",
    .ref_view = rt_ref_view,
    .ref_prefix_args = rt_ref_prefix_args,
    .train_update = rt_train_update,
};
