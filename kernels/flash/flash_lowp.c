/* `flash` with 16-bit operands (flash_lowp.h). Whole operands are widened,
 * not tiles: the tiled and the gathered paths, every mask and the padded
 * batch then run unchanged on fp32 views, at the cost of one pass over Q, K,
 * V (O, dO) per call and their fp32 copies in the workspace (counted in
 * workspace_bytes). The widening is exact, so the result equals the fp32
 * kernel's on the widened values, rounded once on the way out. */
#include "flash_lowp.h"

#include <string.h>

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* Contiguous fp32 [B, H, N, D] at *cursor, which moves past it. */
static attn_tensor carve(float **cursor, int64_t B, int64_t H, int64_t N, int64_t D)
{
    attn_tensor t = {*cursor, B, H, N, D, H * N * D, N * D, D};
    *cursor += round16(B * H * N * D);
    return t;
}

size_t flash_lowp_floats(const attn_args *a)
{
    if (a->dtype == ATTN_DT_FP32)
        return 0;
    int64_t q = round16(a->B * a->H * a->Nq * a->D), kv = round16(a->B * a->H_kv * a->Nk * a->D);
    size_t fwd = (size_t)(2 * q + 2 * kv); /* Q, O; K, V */
    return a->backward ? 2 * fwd : fwd;    /* and dO, dQ; dK, dV */
}

static void widen_tensor(const attn_args *a, attn_dtype t, const attn_tensor_h *x, const attn_tensor *y)
{
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t bh = 0; bh < y->B * y->H; bh++)
        for (int64_t n = 0; n < y->N; n++)
            attn_widen(t, attn_at_h(x, bh / y->H, bh % y->H, n), y->D, attn_at(y, bh / y->H, bh % y->H, n));
}

static void narrow_tensor(const attn_args *a, attn_dtype t, const attn_tensor *x, const attn_tensor_h *y)
{
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t bh = 0; bh < x->B * x->H; bh++)
        for (int64_t n = 0; n < x->N; n++)
            attn_narrow(t, attn_at(x, bh / x->H, bh % x->H, n), x->D, attn_at_h(y, bh / x->H, bh % x->H, n));
}

static int missing(const attn_args *a, const char *pass, const char *names)
{
    return attn_fail(ATTN_EINVAL, "flash %s: dtype %s expects the 16-bit tensors %s, found one NULL", pass,
                     attn_dtype_names[a->dtype], names);
}

/* The fp32 Q, K, V, O views in the workspace after `before` floats; Q, K, V
 * widened from io's 16-bit ones, O from io->oh when with_o. */
static attn_io widened_io(const attn_ctx *ctx, size_t before, const attn_io *io, int with_o, float **cursor)
{
    const attn_args *a = &ctx->args;
    *cursor = (float *)ctx->workspace + before;
    attn_io w = *io;
    w.q = carve(cursor, a->B, a->H, a->Nq, a->D);
    w.o = carve(cursor, a->B, a->H, a->Nq, a->D);
    w.k = carve(cursor, a->B, a->H_kv, a->Nk, a->D);
    w.v = carve(cursor, a->B, a->H_kv, a->Nk, a->D);
    widen_tensor(a, a->dtype, &io->qh, &w.q);
    widen_tensor(a, a->dtype, &io->kh, &w.k);
    widen_tensor(a, a->dtype, &io->vh, &w.v);
    if (with_o)
        widen_tensor(a, a->dtype, &io->oh, &w.o);
    return w;
}

int flash_lowp_forward(attn_ctx *ctx, size_t before, const attn_io *io, flash_fwd_fn f32)
{
    const attn_args *a = &ctx->args;
    if (!io->qh.data || !io->kh.data || !io->vh.data || !io->oh.data)
        return missing(a, "forward", "io.qh, kh, vh, oh");
    float *cursor;
    attn_io w = widened_io(ctx, before, io, 0, &cursor);
    int rc = f32(ctx, &w);
    if (!rc)
        narrow_tensor(a, a->dtype, &w.o, &io->oh);
    return rc;
}

int flash_lowp_backward(attn_ctx *ctx, size_t before, const attn_io *io, const attn_grads *g, flash_bwd_fn f32)
{
    const attn_args *a = &ctx->args;
    if (!io->qh.data || !io->kh.data || !io->vh.data || !io->oh.data || !g->d_oh.data || !g->dqh.data ||
        !g->dkh.data || !g->dvh.data)
        return missing(a, "backward", "io.qh, kh, vh, oh and g.d_oh, dqh, dkh, dvh");
    float *cursor;
    attn_io w = widened_io(ctx, before, io, 1, &cursor);
    attn_grads wg = *g;
    wg.d_o = carve(&cursor, a->B, a->H, a->Nq, a->D);
    wg.dq = carve(&cursor, a->B, a->H, a->Nq, a->D);
    wg.dk = carve(&cursor, a->B, a->H_kv, a->Nk, a->D);
    wg.dv = carve(&cursor, a->B, a->H_kv, a->Nk, a->D);
    widen_tensor(a, a->dtype, &g->d_oh, &wg.d_o);
    int rc = f32(ctx, &w, &wg);
    if (rc)
        return rc;
    narrow_tensor(a, a->dtype, &wg.dq, &g->dqh);
    narrow_tensor(a, a->dtype, &wg.dk, &g->dkh);
    narrow_tensor(a, a->dtype, &wg.dv, &g->dvh);
    return 0;
}
