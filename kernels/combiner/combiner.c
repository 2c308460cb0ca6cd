/* `combiner`: parameters, plan, workspace, cost model and the kernel object
 * (docs/kernels/combiner.md). The math is in combiner_internal.h, the
 * forward in combiner_fwd.c (the axial summaries in combiner_axial.c), the
 * backward in combiner_bwd.c, the double reference and the fidelity view in
 * combiner_ref.c. */
#include "combiner.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { CB_LEARNED, CB_MEAN };
static const char *const cb_summaries[] = {"learned", "mean", NULL};
enum { CB_FIXED, CB_AXIAL };
static const char *const cb_partitions[] = {"fixed", "axial", NULL};

static const opt_def cb_params[] = {
    {.name = "partition", .type = OPT_ENUM, .names = cb_partitions, .def = CB_FIXED,
     .help = "fixed: one summary per other span; axial: one per column over the other rows"},
    {.name = "span", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 30,
     .help = "s: keys per span (row); 0 = round(sqrt N) (the O(N sqrt N) optimum)"},
    {.name = "summary", .type = OPT_ENUM, .names = cb_summaries, .def = CB_LEARNED,
     .help = "inner distribution of a span: learned = softmax(<w_h, k>) with w_h in io.w, mean = uniform"},
    {.name = "log_count", .type = OPT_BOOL, .def = 1,
     .help = "1: a summary's score carries ln |span| (a span of identical keys is then exact)"},
    {.name = "tile", .type = OPT_INT, .def = CB_DEFAULT_TILE, .lo = 1, .hi = 1 << 16,
     .help = "query rows per task (a tile stays inside one span)"},
    {0},
};

/* The default span: round(sqrt N), at least 1. */
static int64_t cb_default_span(int64_t N)
{
    int64_t s = (int64_t)llround(sqrt((double)N));
    return s > 0 ? s : 1;
}

int cb_plan_make(cb_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "combiner", cb_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->axial = attn_param_enum(a, cb_params, "partition", &rc) == CB_AXIAL;
    pl->s = attn_param_int(a, cb_params, "span", &rc);
    pl->learned = attn_param_enum(a, cb_params, "summary", &rc) == CB_LEARNED;
    pl->log_count = (int)attn_param_int(a, cb_params, "log_count", &rc);
    pl->T = attn_param_int(a, cb_params, "tile", &rc);
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "combiner: spans are cut over one sequence of queries and keys, expected "
                                      "q_off == k_off, found %lld and %lld", (long long)a->q_off, (long long)a->k_off);
    int64_t N = a->Nk > 0 ? a->Nk : 1, D = a->D, Dv = attn_dv(a);
    if (pl->s == 0)
        pl->s = cb_default_span(N);
    if (pl->s > N) /* one span: every key direct */
        pl->s = N;
    pl->nsp = (N + pl->s - 1) / pl->s;
    pl->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    if (pl->T > pl->s)
        pl->T = pl->s;
    pl->tps = (pl->s + pl->T - 1) / pl->T;
    pl->W = pl->learned ? D : 0;
    pl->nsum = pl->axial ? pl->s : pl->nsp;
    pl->nu = pl->axial ? pl->nsp * pl->s : pl->nsp;
    pl->npart = pl->axial ? pl->s : pl->nsp;
    pl->ld = CB_ROUND16(pl->nsum + pl->s);
    pl->head_floats = (size_t)CB_ROUND16(pl->nu * (D + Dv + 3) + N);
    /* a score tile; axial summaries also need a column's logits, running sums
     * (forward) and its weights, g and da (backward) */
    size_t tile = (size_t)(pl->T * pl->ld), column = (size_t)(3 * pl->nsp + D + Dv + 32);
    pl->fwd_floats = pl->axial && column > tile ? column : tile;
    pl->bwd_floats = 2 * pl->fwd_floats; /* P and dP */
    return 0;
}

int cb_check_w(const cb_plan *pl, const attn_tensor *w, const char *what)
{
    if (pl->W == 0)
        return 0;
    if (!w->data)
        return attn_fail(ATTN_EINVAL, "combiner %s: summary=learned reads w_h from io.w, found no io.w", what);
    if (w->D != pl->W)
        return attn_fail(ATTN_EINVAL, "combiner %s: expected io.w with D=%lld floats per head, found %lld", what,
                         (long long)pl->W, (long long)w->D);
    return 0;
}

/* ---- workspace: [summaries per (b, h)][backward buffers][thread slots] ---- */

static size_t cb_heads_floats(const attn_args *a, const cb_plan *pl)
{
    return (size_t)(a->B * a->H) * pl->head_floats;
}

static size_t cb_bwd_floats(const attn_args *a, const cb_plan *pl)
{
    if (!a->backward)
        return 0;
    size_t bh = (size_t)(a->B * a->H), N = (size_t)a->Nk, D = (size_t)a->D, Dv = (size_t)attn_dv(a),
           nu = (size_t)pl->nu, np = (size_t)pl->npart;
    return CB_ROUND16(bh * (N * (D + Dv) + nu * (D + Dv) + np * D + N));
}

static size_t cb_slot_floats(const attn_args *a, const cb_plan *pl)
{
    return a->backward ? pl->bwd_floats : pl->fwd_floats;
}

cb_head cb_head_at(const attn_ctx *ctx, const cb_plan *pl, int64_t bh)
{
    const int64_t D = ctx->args.D, Dv = attn_dv(&ctx->args);
    float *base = (float *)ctx->workspace + (size_t)bh * pl->head_floats;
    cb_head hd = {.kbar = base, .vbar = base + pl->nu * D, .bias = base + pl->nu * (D + Dv)};
    hd.m = hd.bias + pl->nu;
    hd.z = hd.m + pl->nu;
    hd.qw = hd.z + pl->nu;
    return hd;
}

cb_bwd_ws cb_bwd_ws_at(const attn_ctx *ctx, const cb_plan *pl)
{
    const attn_args *a = &ctx->args;
    size_t bh = (size_t)(a->B * a->H), N = (size_t)a->Nk, D = (size_t)a->D, Dv = (size_t)attn_dv(a),
           nu = (size_t)pl->nu;
    cb_bwd_ws w;
    w.dk = (float *)ctx->workspace + cb_heads_floats(a, pl);
    w.dv = w.dk + bh * N * D;
    w.dkbar = w.dv + bh * N * Dv;
    w.dvbar = w.dkbar + bh * nu * D;
    w.dwpart = w.dvbar + bh * nu * Dv;
    w.delta = w.dwpart + bh * (size_t)pl->npart * D;
    return w;
}

float *cb_thread_slot(const attn_ctx *ctx, const cb_plan *pl, int thread)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + cb_heads_floats(a, pl) + cb_bwd_floats(a, pl) +
           (size_t)thread * cb_slot_floats(a, pl);
}

static int cb_init(attn_ctx *ctx, const attn_args *a)
{
    cb_plan pl;
    int rc = cb_plan_make(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes =
        sizeof(float) * (cb_heads_floats(a, &pl) + cb_bwd_floats(a, &pl) + (size_t)a->threads * cb_slot_floats(a, &pl));
    return 0;
}

static int64_t cb_input_cols(const attn_args *a, unsigned input)
{
    cb_plan pl;
    if (input != ATTN_IN_WEIGHTS || cb_plan_make(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.W;
}

/* A causal prefix keeps the full problem's span (the default depends on N). */
static void cb_ref_prefix_args(const attn_args *full, int64_t b, attn_args *prefix)
{
    (void)b;
    cb_plan pl;
    if (cb_plan_make(&pl, full) || param_bag_get(&prefix->params, "span") || prefix->params.n >= PARAM_BAG_MAX)
        return;
    char kv[40];
    snprintf(kv, sizeof kv, "span=%lld", (long long)pl.s);
    param_bag_add(&prefix->params, kv);
}

/* ---- cost model (docs/kernels/combiner.md) ---- */

/* Summaries a query of span R reads: fixed, the other (earlier) spans;
 * axial, the non-empty columns over the other (earlier) rows. */
static double cb_summaries_read(const cb_plan *pl, int64_t N, int64_t R)
{
    if (!pl->axial)
        return (double)(pl->causal ? R : pl->nsp - 1);
    if (pl->causal)
        return R > 0 ? (double)pl->s : 0;
    double n = 0;
    for (int64_t c = 0; c < pl->s; c++) { /* column c has rows 0 .. rows_c - 1 */
        int64_t rows_c = c < N ? (N - 1 - c) / pl->s + 1 : 0;
        n += rows_c - (R < rows_c) > 0;
    }
    return n;
}

/* (query, column) pairs of one head: summaries and direct keys each row
 * scores (fixed FULL: N (nsp - 1) + sum_R L_R^2; fixed CAUSAL:
 * sum_R L_R R + sum_R L_R (L_R + 1) / 2). */
static double cb_pairs(const cb_plan *pl, int64_t N)
{
    double p = 0;
    for (int64_t R = 0; R < pl->nsp; R++) {
        double L = (double)cb_span_len(pl, N, R);
        p += L * cb_summaries_read(pl, N, R) + (pl->causal ? L * (L + 1) / 2 : L * L);
    }
    return p;
}

/* Per (b, query head): summaries 2 N (D + Dv) (kbar, vbar; axial FULL twice:
 * a prefix and a suffix run per column) plus 2 N D for the logits <w_h, k>
 * when learned; attention 2 (D + Dv) per pair (scores and
 * P V). Backward: 2 (3 D + 2 Dv) per pair (scores again, dP, dQ, dK, dV:
 * 2.5x when Dv = D, the softmax convention) plus twice the summaries (their
 * vector-Jacobian product: <dkbar, k> + <dvbar, v>, q-weighted dK and dV, dw). */
static double cb_flops(const attn_args *a, attn_pass pass)
{
    cb_plan pl;
    if (cb_plan_make(&pl, a))
        return 0;
    double N = (double)a->Nk, D = (double)a->D, Dv = (double)attn_dv(a), pairs = cb_pairs(&pl, a->Nk);
    double summ = 2 * N * (D + Dv) * (pl.axial && !pl.causal ? 2 : 1) + (pl.learned ? 2 * N * D : 0);
    double f = pass == ATTN_PASS_FWD ? 2 * pairs * (D + Dv) + summ : 2 * pairs * (3 * D + 2 * Dv) + 2 * summ;
    return f * (double)(a->B * a->H);
}

/* Minimum traffic: the softmax convention (Q, K, V, O, lse; backward also
 * dO, dQ, dK, dV) plus w_h read (and dw written). */
static double cb_bytes(const attn_args *a, attn_pass pass)
{
    cb_plan pl;
    if (cb_plan_make(&pl, a))
        return 0;
    double w = 4.0 * (double)(a->H * pl.W);
    return attn_softmax_bytes(a, pass) + (pass == ATTN_PASS_FWD ? w : 2 * w);
}

/* What a causal stream keeps: the summaries of the closed spans (fixed) or
 * of the columns (axial: s running summaries, nsum = s) per query head (they
 * depend on w_h), and the open span's keys and values per KV head, fp32. */
static size_t cb_state_bytes(const attn_args *a)
{
    cb_plan pl;
    if (cb_plan_make(&pl, a))
        return 0;
    size_t dd = (size_t)(a->D + attn_dv(a));
    return sizeof(float) * (size_t)a->B * ((size_t)(a->H * pl.nsum) * dd + (size_t)(a->H_kv * pl.s) * dd);
}

int cb_forward(attn_ctx *ctx, const attn_io *io);

const attn_kernel attn_kernel_combiner = {
    .name = "combiner",
    .family = "combiner",
    .reference = "Ren et al. 2021 (Combiner: Full Attention Transformer with Sparse Computation Cost)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = cb_params,
    .notes = "own span exact; fixed: every other (earlier) span one summary, axial: every column over the other "
             "(earlier) rows one summary; scored sc<q,kbar>+ln|set|, one softmax; w_h per query head in io.w",
    .init = cb_init,
    .forward = cb_forward,
    .backward = cb_backward,
    .flops = cb_flops,
    .bytes = cb_bytes,
    .state_bytes = cb_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = cb_ref_forward,
    .input_cols = cb_input_cols,
    .check_params = "span=3",
    .ref_prefix_args = cb_ref_prefix_args,
    .ref_view = cb_ref_view,
};
