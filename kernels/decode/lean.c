/* `lean`: stream-K decode, Lean Attention (Sanovar et al. 2024;
 * docs/kernels/decode.md). The work is the flat list of units (b, KV head, query tile, key tile
 * of bc keys), ordered group by group and by ascending keys inside a group,
 * so it spans heads and sequences. W workers take equal contiguous ranges of
 * it; each worker emits one partial per group its range touches (a segment),
 * and a fix-up pass merges every group's segments in ascending key order
 * with the logsumexp merge of decode_internal.h. Unlike split-K with fixed
 * partitions, every worker gets the same number of key tiles however ragged
 * the batch is (one long sequence and several short ones). The partials
 * are decode's (attn_dec_partial), and so are the masks.
 *
 * Determinism: segment boundaries depend on W. Results are bitwise
 * reproducible for a pinned `workers=W` at any thread count, but the
 * default W = threads makes them depend on the thread count, so the kernel
 * does not claim ATTN_DETERMINISTIC. */
#include "decode_internal.h"
#include "decode.h"

#include <omp.h>
#include <string.h>

typedef struct {
    int64_t grp, u0, u1; /* units [u0, u1) of group grp (key tiles, relative to the group) */
} lean_seg;

typedef struct {
    dec_plan pl;
    int64_t W;
    size_t max_segs; /* W + groups: each worker range adds at most one segment per group boundary */
} lean_plan;

static const opt_def lean_params[] = {
    {.name = "workers", .type = OPT_INT, .def_str = "threads", .lo = 1, .hi = 1 << 16,
     .help = "pin it for bitwise reproducible results"},
    DECODE_BC_PARAM,
    {0},
};

static int lean_make_plan(lean_plan *lp, const attn_args *a)
{
    int rc = attn_params_check(a, "lean", lean_params);
    if (rc)
        return rc;
    lp->W = attn_param_int_or(a, lean_params, "workers", a->threads, &rc);
    int64_t bc = attn_param_int_or(a, lean_params, "bc", attn_dec_default_bc(a), &rc);
    if (rc)
        return rc;
    attn_dec_plan(&lp->pl, a, bc);
    lp->max_segs = (size_t)(lp->W + lp->pl.groups);
    return 0;
}

/* Workspace: per-thread scratch | max_segs partials | unit offsets of the
 * groups (groups+1) | first segment of each group (groups+1) | first segment
 * of each worker (W+1) | segments. */
static size_t lean_floats(const lean_plan *lp, int threads)
{
    return lp->pl.thread_floats * (size_t)threads + lp->pl.part_floats * lp->max_segs;
}

static size_t lean_table_bytes(const lean_plan *lp)
{
    return sizeof(int64_t) * (size_t)(2 * (lp->pl.groups + 1) + lp->W + 1) + sizeof(lean_seg) * lp->max_segs;
}

static int lean_init(attn_ctx *ctx, const attn_args *a)
{
    lean_plan lp;
    int rc = lean_make_plan(&lp, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = sizeof(float) * lean_floats(&lp, a->threads) + lean_table_bytes(&lp);
    return 0;
}

/* Cuts the unit list into the workers' segments (sequential, O(W + groups)):
 * off[g] = first unit of group g, wfirst[w] = first segment of worker w,
 * gfirst[g] = first segment of group g. Returns the number of segments. */
static int64_t lean_schedule(const attn_args *a, const lean_plan *lp, int64_t *off, int64_t *gfirst,
                             int64_t *wfirst, lean_seg *seg)
{
    const dec_plan *pl = &lp->pl;
    off[0] = 0;
    for (int64_t g = 0; g < pl->groups; g++) {
        int64_t len = attn_kv_len(a, g / (pl->nqt * a->H_kv));
        off[g + 1] = off[g] + (len + pl->bc - 1) / pl->bc;
    }
    int64_t U = off[pl->groups], n = 0, g = 0;
    for (int64_t w = 0; w < lp->W; w++) {
        int64_t u = U * w / lp->W, end = U * (w + 1) / lp->W;
        wfirst[w] = n;
        while (u < end) {
            while (off[g + 1] <= u)
                g++; /* groups without keys have no units */
            int64_t e = end < off[g + 1] ? end : off[g + 1];
            seg[n++] = (lean_seg){g, u - off[g], e - off[g]};
            u = e;
        }
    }
    wfirst[lp->W] = n;
    for (int64_t gg = 0, s = 0; gg <= pl->groups; gg++) { /* first segment with grp >= gg */
        while (s < n && seg[s].grp < gg)
            s++;
        gfirst[gg] = s;
    }
    return n;
}

/* The keys of a segment: whole tiles, the last one clipped to the sequence. */
static dec_range lean_range(const attn_args *a, const dec_plan *pl, const lean_seg *sg)
{
    int64_t len = attn_kv_len(a, sg->grp / (pl->nqt * a->H_kv));
    dec_range r = {sg->grp, sg->u0 * pl->bc, sg->u1 * pl->bc < len ? sg->u1 * pl->bc : len};
    return r;
}

/* The segment the thread running worker w runs after segment s (for the
 * prefetch): the worker's next one, else the first of its next worker
 * (schedule(static, 1) gives a thread workers w, w + threads, ...); -1 if none. */
static int64_t lean_next_segment(const lean_plan *lp, const int64_t *wfirst, int64_t w, int64_t s, int threads)
{
    if (s + 1 < wfirst[w + 1])
        return s + 1;
    for (int64_t x = w + threads; x < lp->W; x += threads)
        if (wfirst[x] < wfirst[x + 1])
            return wfirst[x];
    return -1;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D) with kv_len[b] valid keys; o is (B,H,Nq,D), lse (B,H,Nq)
static int lean_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    lean_plan lp;
    int rc = lean_make_plan(&lp, a);
    if (rc || (rc = attn_dec_kv_check(a, io, "lean")) != 0)
        return rc;
    const dec_plan *pl = &lp.pl;
    float *parts = (float *)ctx->workspace + pl->thread_floats * (size_t)a->threads;
    int64_t *off = (int64_t *)((float *)ctx->workspace + lean_floats(&lp, a->threads));
    int64_t *gfirst = off + pl->groups + 1, *wfirst = gfirst + pl->groups + 1;
    lean_seg *seg = (lean_seg *)(wfirst + lp.W + 1);
    lean_schedule(a, &lp, off, gfirst, wfirst, seg);

#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = (float *)ctx->workspace + pl->thread_floats * (size_t)omp_get_thread_num();
        /* one worker's range per iteration: workers are balanced by construction */
#pragma omp for schedule(static, 1)
        for (int64_t w = 0; w < lp.W; w++)
            for (int64_t s = wfirst[w]; s < wfirst[w + 1]; s++) {
                int64_t sn = lean_next_segment(&lp, wfirst, w, s, a->threads);
                dec_range r = lean_range(a, pl, &seg[s]), next = r;
                if (sn >= 0)
                    next = lean_range(a, pl, &seg[sn]);
                attn_dec_partial(a, pl, io, r.grp, r.k0, r.k1, sn >= 0 ? &next : NULL, ws,
                                 parts + (size_t)s * pl->part_floats, &t);
            }
        /* fix-up: a group's segments are consecutive, in ascending keys */
#pragma omp for schedule(static)
        for (int64_t g = 0; g < pl->groups; g++)
            attn_dec_merge(a, pl, io, g, parts + (size_t)gfirst[g] * pl->part_floats, gfirst[g + 1] - gfirst[g]);
        flash_tally_flush(&t);
    }
    return 0;
}

/* workers and bc as the plan reads them without params (memory-budget mode). */
static void lean_budget_defaults(const attn_args *a, int64_t *values)
{
    values[0] = a->threads;
    values[1] = attn_dec_default_bc(a);
}

const attn_kernel attn_kernel_lean = {
    .name = "lean",
    .family = "softmax",
    .reference = "Sanovar et al. 2024 (Lean Attention, stream-K decode)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_GQA | ATTN_CROSS | ATTN_DECODE | ATTN_VARLEN,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_WINDOW) |
             ATTN_MASK_BIT(ATTN_MASK_SINK_WINDOW) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT) | ATTN_MASK_BIT(ATTN_MASK_RANDOM),
    .params = lean_params,
    .init = lean_init,
    .forward = lean_forward,
    .backward = NULL,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
    .fini = NULL,
    .kv_dtypes = DEC_KV_DTYPES,
    .budget_params = "workers,bc",
    .budget_defaults = lean_budget_defaults,
};
