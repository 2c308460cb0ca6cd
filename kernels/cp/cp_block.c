/* The pieces both context-parallel kernels are built from: `flash` run on
 * one block of the global problem, the logsumexp merge of partial results,
 * and moving rows between tensors and message buffers. */
#include "cp_internal.h"
#include "kernels/flash/flash.h"

#include <math.h>
#include <string.h>

void cp_clock_stop(const cp_clock *k, cp_stats *st, double bytes)
{
    if (!st)
        return;
    double total = MPI_Wtime() - k->start;
    st->bytes_sent += bytes;
    st->comm_s += k->comm;
    st->compute_s += total - k->comm;
    st->hidden_s += k->hidden;
}

/* The block's args are the global problem's (mask bound to N, so positions
 * stay absolute) with the block's shape; they never go through
 * attn_args_validate, which would bind the mask to the block's end. */
int cp_flash_init(attn_ctx *f, const attn_args *global, int64_t H, int64_t H_kv, int64_t n)
{
    memset(f, 0, sizeof *f);
    f->kernel = &attn_kernel_flash;
    f->args = *global;
    f->args.H = H, f->args.H_kv = H_kv;
    f->args.Nq = f->args.Nk = n;
    f->args.q_off = f->args.k_off = 0;
    int rc = attn_kernel_flash.init(f, &f->args);
    if (rc)
        return rc;
    f->workspace = attn_alloc(f->workspace_bytes);
    if (!f->workspace)
        return attn_fail(ATTN_ENOMEM, "cp: %zu bytes of flash workspace", f->workspace_bytes);
    return 0;
}

void cp_flash_fini(attn_ctx *f)
{
    attn_free(f->workspace);
    f->workspace = NULL;
}

int cp_flash_forward(attn_ctx *f, int64_t q0, int64_t k0, const attn_io *io)
{
    f->args.q_off = q0, f->args.k_off = k0;
    return attn_kernel_flash.forward(f, io);
}

int cp_flash_backward(attn_ctx *f, int64_t q0, int64_t k0, const attn_io *io, const attn_grads *g)
{
    f->args.q_off = q0, f->args.k_off = k0;
    return attn_kernel_flash.backward(f, io, g);
}

int cp_block_empty(const attn_args *a, int64_t q0, int64_t k0, int64_t n)
{
    int varies = attn_mask_varies(&a->mask);
    for (int64_t b = 0; b < ((varies & 2) ? a->B : 1); b++)
        for (int64_t h = 0; h < ((varies & 1) ? a->H : 1); h++)
            if (attn_mask_tile(&a->mask, b, h, q0, q0 + n, k0, k0 + n) != ATTN_TILE_EMPTY)
                return 0;
    return 1;
}

attn_tensor cp_tensor(float *data, int64_t B, int64_t H, int64_t N, int64_t D)
{
    return (attn_tensor){.data = data, .B = B, .H = H, .N = N, .D = D, .sb = H * N * D, .sh = N * D, .sn = D};
}

attn_tensor cp_rows(const attn_tensor *t, int64_t n0, int64_t n)
{
    attn_tensor v = *t;
    v.data = t->data + n0 * t->sn;
    v.N = n;
    return v;
}

int64_t cp_pack(const attn_tensor *t, int64_t h0, int64_t nh, int64_t n0, int64_t n, float *dst)
{
    size_t row = sizeof(float) * (size_t)t->D;
    float *p = dst;
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = h0; h < h0 + nh; h++)
            for (int64_t i = n0; i < n0 + n; i++, p += t->D)
                memcpy(p, attn_at(t, b, h, i), row);
    return p - dst;
}

int64_t cp_unpack(const float *src, const attn_tensor *t, int64_t h0, int64_t nh, int64_t n0, int64_t n)
{
    size_t row = sizeof(float) * (size_t)t->D;
    const float *p = src;
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = h0; h < h0 + nh; h++)
            for (int64_t i = n0; i < n0 + n; i++, p += t->D)
                memcpy(attn_at(t, b, h, i), p, row);
    return p - src;
}

void cp_add(const attn_tensor *dst, const attn_tensor *src)
{
    for (int64_t b = 0; b < dst->B; b++)
        for (int64_t h = 0; h < dst->H; h++)
            for (int64_t i = 0; i < dst->N; i++) {
                float *d = attn_at(dst, b, h, i);
                const float *s = attn_at(src, b, h, i);
                for (int64_t x = 0; x < dst->D; x++)
                    d[x] += s[x];
            }
}

void cp_zero(const attn_tensor *t)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t i = 0; i < t->N; i++)
                memset(attn_at(t, b, h, i), 0, sizeof(float) * (size_t)t->D);
}

void cp_lse_merge(const attn_tensor *acc_o, float *acc_lse, const attn_tensor *blk_o, const float *blk_lse)
{
    int64_t rows = acc_o->N, D = acc_o->D;
    for (int64_t b = 0; b < acc_o->B; b++)
        for (int64_t h = 0; h < acc_o->H; h++)
            for (int64_t i = 0; i < rows; i++) {
                int64_t r = (b * acc_o->H + h) * rows + i;
                float la = acc_lse[r], lb = blk_lse[r];
                if (lb == -INFINITY)
                    continue;
                float m = la > lb ? la : lb;
                /* la = -inf (nothing yet) gives wa = 0: the block's row is copied */
                float wa = expf(la - m), wb = expf(lb - m), s = wa + wb;
                float *o = attn_at(acc_o, b, h, i);
                const float *ob = attn_at(blk_o, b, h, i);
                for (int64_t d = 0; d < D; d++)
                    o[d] = (wa * o[d] + wb * ob[d]) / s;
                acc_lse[r] = m + logf(s);
            }
}
