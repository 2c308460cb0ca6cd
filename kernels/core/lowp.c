/* Kernels on 16-bit operands by conversion (lowp.h). Whole operands are
 * widened, not tiles: every path of the kernel (tiled or gathered, every
 * mask, padded and ragged batches) then runs unchanged on fp32 views, at the
 * cost of one pass over Q, K, V (O, dO) per call and their fp32 copies in
 * the workspace (counted in workspace_bytes). The widening is exact, so the
 * result equals the fp32 kernel's on the widened values, rounded once on the
 * way out. */
#include "lowp.h"

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* Contiguous fp32 [B, H, N, D] at *cursor, which moves past it. */
static attn_tensor carve(float **cursor, int64_t B, int64_t H, int64_t N, int64_t D)
{
    attn_tensor t = {*cursor, B, H, N, D, H * N * D, N * D, D};
    *cursor += round16(B * H * N * D);
    return t;
}

/* Floats of Q (and dQ), K (dK), V (dV) and O (dO), each rounded to 16. */
static void operand_floats(const attn_kernel *k, const attn_args *a, int64_t f[4])
{
    int64_t Dv = attn_dv(a);
    f[0] = round16(a->B * a->H * a->Nq * a->D);
    f[1] = round16(a->B * a->H_kv * a->Nk * a->D);
    f[2] = round16(a->B * a->H_kv * a->Nk * Dv);
    f[3] = round16(a->B * a->H * attn_o_rows(k, a) * Dv);
}

size_t attn_lowp_bytes(const attn_kernel *k, const attn_args *a)
{
    if (a->dtype == ATTN_DT_FP32)
        return 0;
    int64_t f[4];
    operand_floats(k, a, f);
    size_t fwd = (size_t)(f[0] + f[1] + f[2] + f[3]);
    return sizeof(float) * (a->backward ? 2 * fwd : fwd); /* and dQ, dK, dV, dO */
}

void attn_lowp_reserve(attn_ctx *ctx)
{
    size_t lowp = attn_lowp_bytes(ctx->kernel, &ctx->args);
    if (lowp)
        ctx->workspace_bytes = (ctx->workspace_bytes + 63) / 64 * 64 + lowp;
}

static void widen_tensor(const attn_args *a, const attn_tensor_h *x, const attn_tensor *y)
{
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t bh = 0; bh < y->B * y->H; bh++)
        for (int64_t n = 0; n < y->N; n++)
            attn_widen(a->dtype, attn_at_h(x, bh / y->H, bh % y->H, n), y->D, attn_at(y, bh / y->H, bh % y->H, n));
}

static void narrow_tensor(const attn_args *a, const attn_tensor *x, const attn_tensor_h *y)
{
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t bh = 0; bh < x->B * x->H; bh++)
        for (int64_t n = 0; n < x->N; n++)
            attn_narrow(a->dtype, attn_at(x, bh / x->H, bh % x->H, n), x->D, attn_at_h(y, bh / x->H, bh % x->H, n));
}

static int missing(const attn_ctx *ctx, const char *pass, const char *names)
{
    return attn_fail(ATTN_EINVAL, "kernel '%s' %s: dtype %s expects the 16-bit tensors %s, found one NULL",
                     ctx->kernel->name, pass, attn_dtype_names[ctx->args.dtype], names);
}

/* Views shaped like x at *cursor (fp32). */
static attn_tensor like(float **cursor, const attn_tensor_h *x) { return carve(cursor, x->B, x->H, x->N, x->D); }

/* The fp32 Q, K, V, O views at the start of the widened operands; Q, K, V
 * widened from io's 16-bit ones, O from io->oh when with_o. */
static attn_io widened_io(const attn_ctx *ctx, const attn_io *io, int with_o, float **cursor)
{
    const attn_args *a = &ctx->args;
    *cursor = (float *)((char *)ctx->workspace + ctx->workspace_bytes - attn_lowp_bytes(ctx->kernel, a));
    attn_io w = *io;
    w.q = like(cursor, &io->qh), w.k = like(cursor, &io->kh), w.v = like(cursor, &io->vh), w.o = like(cursor, &io->oh);
    widen_tensor(a, &io->qh, &w.q);
    widen_tensor(a, &io->kh, &w.k);
    widen_tensor(a, &io->vh, &w.v);
    if (with_o)
        widen_tensor(a, &io->oh, &w.o);
    return w;
}

int attn_lowp_forward(attn_ctx *ctx, const attn_io *io, attn_fwd_fn f32)
{
    if (ctx->args.dtype == ATTN_DT_FP32)
        return f32(ctx, io);
    if (!io->qh.data || !io->kh.data || !io->vh.data || !io->oh.data)
        return missing(ctx, "forward", "io.qh, kh, vh, oh");
    float *cursor;
    attn_io w = widened_io(ctx, io, 0, &cursor);
    int rc = f32(ctx, &w);
    if (!rc)
        narrow_tensor(&ctx->args, &w.o, &io->oh);
    return rc;
}

int attn_lowp_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g, attn_bwd_fn f32)
{
    if (ctx->args.dtype == ATTN_DT_FP32)
        return f32(ctx, io, g);
    if (!io->qh.data || !io->kh.data || !io->vh.data || !io->oh.data || !g->d_oh.data || !g->dqh.data ||
        !g->dkh.data || !g->dvh.data)
        return missing(ctx, "backward", "io.qh, kh, vh, oh and g.d_oh, dqh, dkh, dvh");
    const attn_args *a = &ctx->args;
    float *cursor;
    attn_io w = widened_io(ctx, io, 1, &cursor);
    attn_grads wg = *g;
    wg.d_o = like(&cursor, &g->d_oh), wg.dq = like(&cursor, &g->dqh);
    wg.dk = like(&cursor, &g->dkh), wg.dv = like(&cursor, &g->dvh);
    widen_tensor(a, &g->d_oh, &wg.d_o);
    int rc = f32(ctx, &w, &wg);
    if (rc)
        return rc;
    narrow_tensor(a, &wg.dq, &g->dqh);
    narrow_tensor(a, &wg.dk, &g->dkh);
    narrow_tensor(a, &wg.dv, &g->dvh);
    return 0;
}
