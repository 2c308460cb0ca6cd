/* `decode`: split-K Flash-Decoding (Dao, Haziza, Massa, Sizov 2023;
 * docs/kernels/decode.md). For few queries against a long KV cache the key axis
 * supplies the parallelism: the keys of each sequence are cut into partitions
 * of `ls` keys (a size, never derived from the thread count), every
 * (b, KV head, query tile, partition) is an independent task that runs the
 * flash inner loop and leaves a normalised partial (O_p, lse_p), and a second
 * parallel loop merges each row's partials in ascending p. The work split and
 * the reduction order depend on the sizes and `ls` only, so results are
 * bitwise identical for any thread count.
 *
 * Masks: FULL, CAUSAL, WINDOW, SINK_WINDOW, DOCUMENT and
 * RANDOM, tile by tile as flash does: EMPTY tiles are skipped, FULL ones run
 * without predicates, PARTIAL ones are cut to the keys some row sees and
 * masked by key ranges (one range per row) or by the element predicate
 * (sinks + window, random), classified head by head when the mask varies
 * by head. Positions are the sequence's own in a ragged batch.
 *
 * What `lean` (lean.c) shares is in decode_internal.h: the plan and the
 * partial over a key range (decode_partial.c), the logsumexp merge
 * (decode_merge.c) and the dot layout's products over fp32 K and V or a cache
 * stored in attn_args.kv_dtype (decode_dot.c). */
#include "decode_internal.h"
#include "kernels/flash/flash_internal.h"
#include "decode.h"

#include <omp.h>
#include <string.h>

#define DEC_DEFAULT_LS 1024

typedef struct {
    dec_plan pl;
    int64_t ls, P; /* keys per partition; partitions of the longest sequence */
} decode_plan;

static const opt_def decode_params[] = {
    {.name = "ls", .type = OPT_INT, .def = DEC_DEFAULT_LS, .lo = 1, .hi = 1 << 30, .help = "keys per partition"},
    DECODE_BC_PARAM,
    {0},
};

static int decode_make_plan(decode_plan *dp, const attn_args *a)
{
    int rc = attn_params_check(a, "decode", decode_params);
    if (rc)
        return rc;
    dp->ls = attn_param_int(a, decode_params, "ls", &rc);
    int64_t bc = attn_param_int_or(a, decode_params, "bc", attn_dec_default_bc(a), &rc);
    if (rc)
        return rc;
    attn_dec_plan(&dp->pl, a, bc);
    dp->P = (a->Nk + dp->ls - 1) / dp->ls;
    return 0;
}

/* Keys [k0, k1) of task = grp * P + p; 0 if the task has no keys or is past the end. */
static int decode_task(const attn_args *a, const decode_plan *dp, int64_t task, dec_range *r)
{
    if (task >= dp->pl.groups * dp->P)
        return 0;
    r->grp = task / dp->P;
    int64_t len = attn_kv_len(a, r->grp / (dp->pl.nqt * a->H_kv));
    r->k0 = task % dp->P * dp->ls;
    r->k1 = r->k0 + dp->ls < len ? r->k0 + dp->ls : len;
    return r->k0 < r->k1;
}

static int decode_init(attn_ctx *ctx, const attn_args *a)
{
    decode_plan dp;
    int rc = decode_make_plan(&dp, a);
    if (rc)
        return rc;
    /* per-thread scratch, then P partials of every group */
    size_t parts = dp.pl.part_floats * (size_t)(dp.pl.groups * dp.P);
    ctx->workspace_bytes = sizeof(float) * (dp.pl.thread_floats * (size_t)a->threads + parts);
    return 0;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D) with kv_len[b] valid keys; o is (B,H,Nq,D), lse (B,H,Nq)
static int decode_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    decode_plan dp;
    int rc = decode_make_plan(&dp, a);
    if (rc)
        return rc;
    if ((rc = attn_dec_kv_check(a, io, "decode")) != 0)
        return rc;
    const dec_plan *pl = &dp.pl;
    float *parts = (float *)ctx->workspace + pl->thread_floats * (size_t)a->threads;
    int64_t tasks = pl->groups * dp.P;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = (float *)ctx->workspace + pl->thread_floats * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            dec_range r, next;
            if (!decode_task(a, &dp, task, &r))
                continue; /* a shorter sequence of a ragged batch has fewer partitions */
            /* dynamic schedule: this thread's next task is likely `threads` further */
            int has_next = decode_task(a, &dp, task + a->threads, &next);
            attn_dec_partial(a, pl, io, r.grp, r.k0, r.k1, has_next ? &next : NULL, ws,
                             parts + (size_t)task * pl->part_floats, &t);
        }
#pragma omp for schedule(static)
        for (int64_t grp = 0; grp < pl->groups; grp++) {
            int64_t len = attn_kv_len(a, grp / (pl->nqt * a->H_kv));
            attn_dec_merge(a, pl, io, grp, parts + (size_t)(grp * dp.P) * pl->part_floats,
                           (len + dp.ls - 1) / dp.ls);
        }
        flash_tally_flush(&t);
    }
    return 0;
}

/* ls and bc as the plan reads them without params (memory-budget mode). */
static void decode_budget_defaults(const attn_args *a, int64_t *values)
{
    values[0] = DEC_DEFAULT_LS;
    values[1] = attn_dec_default_bc(a);
}

const attn_kernel attn_kernel_decode = {
    .name = "decode",
    .family = "softmax",
    .reference = "Dao, Haziza, Massa, Sizov 2023 (Flash-Decoding, split-K)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_GQA | ATTN_CROSS | ATTN_DECODE | ATTN_VARLEN |
             ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_WINDOW) |
             ATTN_MASK_BIT(ATTN_MASK_SINK_WINDOW) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT) | ATTN_MASK_BIT(ATTN_MASK_RANDOM),
    .params = decode_params,
    .init = decode_init,
    .forward = decode_forward,
    .backward = NULL,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
    .fini = NULL,
    .kv_dtypes = DEC_KV_DTYPES,
    .budget_params = "ls,bc",
    .budget_defaults = decode_budget_defaults,
};
