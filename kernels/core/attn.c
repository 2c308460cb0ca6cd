/* Shared plumbing of the kernel interface: argument checks, kernel
 * parameters, the softmax cost model and context lifetime. */
#include "attn.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* Positions the mask must cover: keys [k_off, k_off + Nk), queries [q_off, q_off + Nq). */
static int64_t mask_positions(const attn_args *a)
{
    int64_t q = a->q_off + a->Nq, k = a->k_off + a->Nk;
    return q > k ? q : k;
}

double attn_param_scale(const param_bag *p)
{
    const char *v = param_bag_get(p, ATTN_SCALE_PARAM);
    char *end;
    double x = v ? strtod(v, &end) : 0;
    return v && end != v && !*end && isfinite(x) && x > 0 ? x : 0;
}

void attn_args_defaults(attn_args *a)
{
    double sc = attn_param_scale(&a->params);
    if (sc > 0)
        a->scale = sc;
    if (a->q_off == 0 && a->k_off == 0)
        a->q_off = a->Nk - a->Nq;
    if (a->threads < 1)
        a->threads = 1;
    if (a->Dv == 0)
        a->Dv = a->D;
    /* a failure leaves the mask unbound; attn_args_validate reports it */
    attn_mask_bind(&a->mask, mask_positions(a));
}

/* A KV cache format the kernel reads, on rows the format can hold. */
static int kv_dtype_validate(const attn_kernel *k, const attn_args *a)
{
    if (a->kv_dtype == ATTN_KV_FP32)
        return 0;
    const char *name = attn_kv_dtype_names[a->kv_dtype];
    if (!(k->kv_dtypes & ATTN_KV_BIT(a->kv_dtype)))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' does not read a %s KV cache", k->name, name);
    if (a->D % ATTN_KV_BLOCK != 0)
        return attn_fail(ATTN_EUNSUPPORTED, "kv dtype %s: expected D a multiple of %d, found %lld", name,
                         ATTN_KV_BLOCK, (long long)a->D);
    return 0;
}

/* 16-bit operands for a kernel that declares them; not with a stored KV
 * cache (no kernel reads both). */
static int dtype_validate(const attn_kernel *k, const attn_args *a)
{
    if (a->dtype == ATTN_DT_FP32)
        return 0;
    if (!(k->dtypes & ATTN_DT_BIT(a->dtype)))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' does not take %s operands", k->name,
                         attn_dtype_names[a->dtype]);
    if (a->kv_dtype != ATTN_KV_FP32)
        return attn_fail(ATTN_EUNSUPPORTED, "dtype %s: expected an fp32 KV cache with 16-bit operands, found kv_dtype %s",
                         attn_dtype_names[a->dtype], attn_kv_dtype_names[a->kv_dtype]);
    return 0;
}

int attn_args_validate(const attn_kernel *k, const attn_args *a)
{
    if (k && param_bag_get(&a->params, ATTN_SCALE_PARAM)) {
        char owner[64];
        snprintf(owner, sizeof owner, "kernel '%s'", k->name);
        int rc = attn_params_validate(k, &a->params, owner);
        if (rc)
            return rc;
    }
    if (a->B < 1)
        return attn_fail(ATTN_EINVAL, "B: expected an integer >= 1, found %lld", (long long)a->B);
    if (a->H < 1)
        return attn_fail(ATTN_EINVAL, "H: expected an integer >= 1, found %lld", (long long)a->H);
    if (a->H_kv < 1 || a->H % a->H_kv != 0)
        return attn_fail(ATTN_EINVAL, "H_kv: expected a divisor of H=%lld, found %lld",
                         (long long)a->H, (long long)a->H_kv);
    if (a->Nq < 1)
        return attn_fail(ATTN_EINVAL, "N: expected an integer >= 1, found %lld", (long long)a->Nq);
    if (a->Nk < 1)
        return attn_fail(ATTN_EINVAL, "N_kv: expected an integer >= 1, found %lld", (long long)a->Nk);
    if (a->D < 1)
        return attn_fail(ATTN_EINVAL, "D: expected an integer >= 1, found %lld", (long long)a->D);
    if (a->Dv < 0)
        return attn_fail(ATTN_EINVAL, "Dv: expected an integer >= 1 (0 = D), found %lld", (long long)a->Dv);
    if (a->threads < 1)
        return attn_fail(ATTN_EINVAL, "threads: expected an integer >= 1, found %d", a->threads);
    if ((unsigned)a->kv_dtype >= ATTN_KV__COUNT)
        return attn_fail(ATTN_EINVAL, "kv_dtype: expected one of fp32, bf16, fp16, q8_0, q4_0 (0..4), found %d", (int)a->kv_dtype);
    if ((unsigned)a->dtype >= ATTN_DT__COUNT)
        return attn_fail(ATTN_EINVAL, "dtype: expected one of fp32, bf16, fp16 (0..2), found %d", (int)a->dtype);
    if (!(a->scale >= 0))
        return attn_fail(ATTN_EINVAL, "scale: expected a non-negative number (0 = 1/sqrt(D))");
    for (int64_t b = 0; a->kv_len && b < a->B; b++)
        if (a->kv_len[b] < 0 || a->kv_len[b] > a->Nk)
            return attn_fail(ATTN_EINVAL, "kv_len[%lld]: expected an integer in [0, N_kv=%lld], found %lld",
                             (long long)b, (long long)a->Nk, (long long)a->kv_len[b]);
    if (a->seq_len && a->kv_len)
        return attn_fail(ATTN_EINVAL, "seq_len: expected either a padded batch (seq_len) or a ragged one (kv_len), "
                                      "found both");
    if (a->seq_len && (a->Nq != a->Nk || a->q_off != a->k_off))
        return attn_fail(ATTN_EINVAL, "seq_len: a padded batch is self-attention, expected N_kv == N and q_off == "
                                      "k_off, found N=%lld N_kv=%lld q_off=%lld k_off=%lld",
                         (long long)a->Nq, (long long)a->Nk, (long long)a->q_off, (long long)a->k_off);
    for (int64_t b = 0; a->seq_len && b < a->B; b++)
        if (a->seq_len[b] < 0 || a->seq_len[b] > a->Nq)
            return attn_fail(ATTN_EINVAL, "seq_len[%lld]: expected an integer in [0, N=%lld], found %lld",
                             (long long)b, (long long)a->Nq, (long long)a->seq_len[b]);
    attn_mask bound = a->mask; /* the mask must bind to this length (attn_args_defaults binds it) */
    int brc = attn_mask_bind(&bound, mask_positions(a));
    if (brc)
        return brc;
    if (!k)
        return 0;
    if (!(k->masks & ATTN_MASK_BIT(a->mask.kind)) ||
        ((a->mask.causal || a->mask.kind == ATTN_MASK_CAUSAL) && !(k->flags & ATTN_CAUSAL))) {
        char m[128];
        attn_mask_format(&a->mask, m, sizeof m);
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' does not support mask '%s'", k->name, m);
    }
    if (a->H_kv != a->H && !(k->flags & ATTN_GQA))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' needs H_kv == H (no GQA)", k->name);
    if (a->Nq != a->Nk && !(k->flags & (ATTN_CROSS | ATTN_ONE_QUERY)))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' needs N_kv == N", k->name);
    if (attn_dv(a) != a->D && !(k->flags & ATTN_DV))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' needs Dv == D (found Dv=%lld, D=%lld)", k->name,
                         (long long)attn_dv(a), (long long)a->D);
    if ((k->flags & ATTN_ONE_QUERY) && a->Nq != 1)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' reads one learned query per head: expected N=1, found %lld",
                         k->name, (long long)a->Nq);
    if (a->kv_len && !(k->flags & ATTN_VARLEN))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' needs one KV length for the batch (no VARLEN)",
                         k->name);
    if (a->seq_len && !(k->flags & ATTN_PADDED))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s' does not mask a padded batch (no PADDED)", k->name);
    int rc = kv_dtype_validate(k, a);
    return rc ? rc : dtype_validate(k, a);
}

/* p without its `scale` (which no table declares) into out. */
static void without_scale(const param_bag *p, param_bag *out)
{
    out->n = 0;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->key[i], ATTN_SCALE_PARAM) != 0) {
            memcpy(out->key[out->n], p->key[i], sizeof out->key[0]);
            memcpy(out->val[out->n++], p->val[i], sizeof out->val[0]);
        }
}

int attn_params_check(const attn_args *a, const char *kernel, const opt_def *rows)
{
    char owner[64];
    param_bag rest;
    snprintf(owner, sizeof owner, "kernel '%s'", kernel);
    without_scale(&a->params, &rest);
    return opt_bag_check(rows, &rest, owner);
}

int attn_params_validate(const attn_kernel *k, const param_bag *p, const char *owner)
{
    const char *v = param_bag_get(p, ATTN_SCALE_PARAM);
    if (v && (k->flags & ATTN_NO_SCALE))
        return attn_fail(ATTN_EINVAL, "%s: param scale: this kernel's math has no score scale", owner);
    if (v && attn_param_scale(p) == 0)
        return attn_fail(ATTN_EINVAL, "%s: param scale: expected a number > 0, found '%s'", owner, v);
    param_bag rest;
    without_scale(p, &rest);
    return opt_bag_validate(k->params, &rest, owner);
}

int64_t attn_param_int(const attn_args *a, const opt_def *rows, const char *key, int *rc)
{
    return opt_bag_int(rows, &a->params, key, rc);
}

int64_t attn_param_int_or(const attn_args *a, const opt_def *rows, const char *key, int64_t def, int *rc)
{
    return param_bag_get(&a->params, key) ? opt_bag_int(rows, &a->params, key, rc) : def;
}

int attn_param_enum(const attn_args *a, const opt_def *rows, const char *key, int *rc)
{
    return (int)opt_bag_int(rows, &a->params, key, rc);
}

size_t attn_params_recorded_text(const attn_kernel *k, const param_bag *given, const char *sep, char *buf, size_t n)
{
    size_t at = strlen(buf);
    for (const opt_def *d = k ? k->params : NULL; d && d->name && at < n; d++)
        if ((d->flags & OPT_RECORDED) && !param_bag_get(given, d->name))
            at += (size_t)snprintf(buf + at, n - at, "%s%s=%.17g", at ? sep : "", d->name, d->def);
    return at < n ? at : n - 1;
}

/* Allowed (i, j) pairs summed over the batch and the query heads. A job asks
 * for them three times (forward FLOPs, backward FLOPs, density) and counting
 * is O(Nq * Nk) for row-irregular masks (random, BigBird), so the last count
 * is remembered: the key is the mask's bytes and the shape (a mask holds no
 * pointers; differing padding bytes can only cause a recount). */
static double batch_pairs(const attn_args *a)
{
    if (!a->kv_len && !a->seq_len) {
        static _Thread_local struct {
            attn_mask mask;
            int64_t shape[6];
            double pairs;
            int valid;
        } memo;
        int64_t shape[6] = {a->B, a->H, a->Nq, a->Nk, a->q_off, a->k_off};
        if (memo.valid && !memcmp(&memo.mask, &a->mask, sizeof a->mask) && !memcmp(memo.shape, shape, sizeof shape))
            return memo.pairs;
        memo.pairs = attn_mask_pairs_total(&a->mask, a->B, a->H, a->Nq, a->Nk, a->q_off, a->k_off);
        memcpy(&memo.mask, &a->mask, sizeof a->mask);
        memcpy(memo.shape, shape, sizeof shape);
        memo.valid = 1;
        return memo.pairs;
    }
    double nnz = 0;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            nnz += attn_mask_pairs(&a->mask, b, h, attn_q_len(a, b), attn_kv_len(a, b), attn_q_off_of(a, b),
                                   a->k_off);
    return nnz;
}

/* Keys summed over the batch. */
static double batch_keys(const attn_args *a)
{
    double n = 0;
    for (int64_t b = 0; b < a->B; b++)
        n += (double)attn_kv_len(a, b);
    return n;
}

double attn_batch_rows(const attn_args *a)
{
    double n = 0;
    for (int64_t b = 0; b < a->B; b++)
        n += (double)attn_q_len(a, b);
    return n;
}

double attn_density(const attn_args *a)
{
    return batch_pairs(a) / ((double)a->B * (double)a->H * (double)a->Nq * (double)a->Nk);
}

double attn_softmax_flops(const attn_args *a, attn_pass pass)
{
    double fwd = 4.0 * (double)a->D * batch_pairs(a);
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Bytes of one stored K or V row: the KV cache format (kv_dtype), or 2*D
 * with 16-bit operands (dtype). */
static double kv_row_bytes(const attn_args *a)
{
    return a->dtype != ATTN_DT_FP32 ? 2.0 * (double)a->D : (double)attn_kv_row_bytes(a->kv_dtype, a->D);
}

double attn_softmax_bytes(const attn_args *a, attn_pass pass)
{
    /* rows = B*Nq unless padded, keys = B*Nk unless ragged or padded */
    double Hq = (double)a->H, Hkv = (double)a->H_kv, rows = attn_batch_rows(a), keys = batch_keys(a), D = (double)a->D;
    /* Q, O (and dO, dQ, dK, dV) in the operand type; the LSE is fp32 */
    double e = a->dtype != ATTN_DT_FP32 ? 2 : 4;
    if (pass == ATTN_PASS_FWD)
        return e * (2 * Hq * rows * D) + 4 * Hq * rows + 2 * Hkv * keys * kv_row_bytes(a);
    return e * (4 * Hq * rows * D + 4 * Hkv * keys * D) + 4 * Hq * rows;
}

size_t attn_kv_state_bytes(const attn_args *a)
{
    return (size_t)(2 * (double)a->H_kv * batch_keys(a) * kv_row_bytes(a));
}

/* Validate and init: the context without its workspace. */
static int ctx_init(const attn_kernel *k, const attn_args *a, attn_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->kernel = k;
    ctx->args = *a;
    attn_args_defaults(&ctx->args);
    int rc = attn_args_validate(k, &ctx->args);
    if (rc)
        return rc;
    uint64_t budget = ctx->args.mem_budget;
    if (budget && !k->budget_params)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': does not claim the memory-budget mode (--mem-budget)",
                         k->name);
    rc = k->init ? k->init(ctx, &ctx->args) : 0;
    /* the budget is a promise about what the context allocates: checked on
     * the plan itself, whatever chose the sizes */
    if (!rc && budget && ctx->workspace_bytes > budget) {
        size_t ws = ctx->workspace_bytes;
        if (k->fini)
            k->fini(ctx);
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': workspace %zu B > --mem-budget %llu B", k->name, ws,
                         (unsigned long long)budget);
    }
    return rc;
}

int attn_ctx_plan(const attn_kernel *k, const attn_args *a, size_t *workspace_bytes)
{
    attn_ctx ctx;
    int rc = ctx_init(k, a, &ctx);
    *workspace_bytes = ctx.workspace_bytes;
    if (!rc) /* as attn_ctx_create: a failed init has nothing to release */
        attn_ctx_destroy(&ctx);
    return rc;
}

int attn_ctx_create(const attn_kernel *k, const attn_args *a, attn_ctx *ctx)
{
    int rc = ctx_init(k, a, ctx);
    if (rc)
        return rc;
    if (ctx->workspace_bytes) {
        ctx->workspace = attn_alloc(ctx->workspace_bytes);
        if (!ctx->workspace) {
            attn_ctx_destroy(ctx);
            return attn_fail(ATTN_ENOMEM, "kernel '%s': cannot allocate %zu bytes of workspace",
                             k->name, ctx->workspace_bytes);
        }
    }
    return 0;
}

void attn_ctx_destroy(attn_ctx *ctx)
{
    if (ctx->kernel && ctx->kernel->fini)
        ctx->kernel->fini(ctx);
    attn_free(ctx->workspace);
    ctx->workspace = NULL;
    ctx->priv = NULL;
}

int attn_key_starts_seq(const attn_args *a, int64_t j)
{
    if (j == 0)
        return 1;
    if (a->mask.kind != ATTN_MASK_DOCUMENT)
        return 0;
    return !attn_mask_allowed(&a->mask, 0, 0, a->k_off + j, a->k_off + j - 1);
}

int64_t attn_key_block_end(const attn_args *a, int64_t j0, int64_t C)
{
    int64_t end = j0 + C < a->Nk ? j0 + C : a->Nk;
    for (int64_t j = j0 + 1; a->mask.kind == ATTN_MASK_DOCUMENT && j < end; j++)
        if (attn_key_starts_seq(a, j))
            return j;
    return end;
}

int64_t attn_key_chunks_end(const attn_args *a, int64_t j0, int64_t C, int64_t most)
{
    int64_t e = attn_key_block_end(a, j0, C);
    while (e < a->Nk) {
        int64_t next = attn_key_block_end(a, e, C);
        if (next - j0 > most)
            break;
        e = next;
    }
    return e;
}

int attn_backward_unplanned(const attn_ctx *ctx)
{
    return attn_fail(ATTN_EINVAL, "kernel '%s': backward called on a context created without args.backward = 1 "
                                  "(workspace too small)", ctx->kernel ? ctx->kernel->name : "?");
}
