/* `ulysses`: DeepSpeed Ulysses (Jacobs et al. 2023; docs/scale-out.md). Rank
 * r holds rows [r*N/P, (r+1)*N/P) of every head. One MPI_Alltoall sends
 * each rank p the rows of heads [p*H/P, (p+1)*H/P) (and KV heads likewise),
 * so every rank then holds whole sequences of H/P heads and runs `flash` on
 * them as one problem, with any mask; a second all-to-all returns the
 * output rows to their owners. Backward moves Q, K, V, O, dO and lse the
 * same way and the gradients back. The all-to-alls block: nothing overlaps
 * them here. */
#include "cp_internal.h"

enum { SEND, RECV, QH, KH, VH, OH, LSEH, DOH, DQH, DKH, DVH };

/* A tensor as the rank holds it (its rows, all heads) and as the head shard
 * (every row, nh heads). */
typedef struct {
    const attn_tensor *seq;
    attn_tensor head;
    int64_t nh;
} cp_field;

/* One all-to-all over the fields: seq -> head shards (to_heads) or back. */
static void exchange(cp_ctx *c, const cp_field *f, int nf, int to_heads, cp_clock *k, double *bytes)
{
    int64_t blk = 0;
    for (int i = 0; i < nf; i++)
        blk += cp_floats(c->a.B, f[i].nh, c->n, f[i].seq->D);
    for (int p = 0; p < c->P; p++) {
        float *seg = c->buf[SEND] + p * blk;
        for (int i = 0; i < nf; i++)
            seg += to_heads ? cp_pack(f[i].seq, p * f[i].nh, f[i].nh, 0, c->n, seg)
                            : cp_pack(&f[i].head, 0, f[i].nh, p * c->n, c->n, seg);
    }
    cp_comm_begin(k);
    MPI_Alltoall(c->buf[SEND], (int)blk, MPI_FLOAT, c->buf[RECV], (int)blk, MPI_FLOAT, c->comm);
    cp_comm_end(k);
    *bytes += 4.0 * (double)blk * (c->P - 1);
    for (int s = 0; s < c->P; s++) {
        const float *seg = c->buf[RECV] + s * blk;
        for (int i = 0; i < nf; i++)
            seg += to_heads ? cp_unpack(seg, &f[i].head, 0, f[i].nh, s * c->n, c->n)
                            : cp_unpack(seg, f[i].seq, s * f[i].nh, f[i].nh, 0, c->n);
    }
}

static attn_tensor head_shard(const cp_ctx *c, int buf, int64_t nh, int64_t D)
{
    return cp_tensor(c->buf[buf], c->a.B, nh, c->a.Nq, D);
}

int cp_ulysses_alloc(cp_ctx *c)
{
    const attn_args *a = &c->a;
    c->hq = a->H / c->P, c->hkv = a->H_kv / c->P;
    int64_t N = a->Nq, D = a->D, bwd = a->backward;
    int64_t q = cp_floats(a->B, c->hq, N, D), kv = cp_floats(a->B, c->hkv, N, D);
    /* the largest exchange: backward's Q, O, dO, lse and K, V (or forward's Q, K, V) */
    int64_t msg = bwd ? 3 * q + 2 * kv + cp_floats(a->B, c->hq, N, 1) : q + 2 * kv + cp_floats(a->B, c->hq, N, 1);
    int64_t sizes[] = {[SEND] = msg, [RECV] = msg, [QH] = q, [KH] = kv, [VH] = kv, [OH] = q,
                       [LSEH] = cp_floats(a->B, c->hq, N, 1), [DOH] = bwd ? q : 0, [DQH] = bwd ? q : 0,
                       [DKH] = bwd ? kv : 0, [DVH] = bwd ? kv : 0};
    int rc = cp_alloc_buffers(c, sizes, (int)(sizeof sizes / sizeof sizes[0]));
    if (rc)
        return rc;
    return cp_flash_init(&c->flash, a, c->hq, c->hkv, N);
}

int cp_ulysses_forward(cp_ctx *c, const attn_io *io, cp_stats *st)
{
    cp_clock k;
    cp_clock_start(&k);
    double bytes = 0;
    int64_t B = c->a.B, H = c->a.H;
    attn_tensor lse = cp_tensor(io->lse, B, H, c->n, 1);
    cp_field in[] = {{&io->q, head_shard(c, QH, c->hq, c->a.D), c->hq},
                     {&io->k, head_shard(c, KH, c->hkv, c->a.D), c->hkv},
                     {&io->v, head_shard(c, VH, c->hkv, c->a.D), c->hkv}};
    exchange(c, in, 3, 1, &k, &bytes);
    attn_io h = {.q = in[0].head, .k = in[1].head, .v = in[2].head, .o = head_shard(c, OH, c->hq, c->a.D),
                 .lse = c->buf[LSEH]};
    int rc = cp_flash_forward(&c->flash, 0, 0, &h);
    cp_field out[] = {{&io->o, h.o, c->hq}, {&lse, head_shard(c, LSEH, c->hq, 1), c->hq}};
    exchange(c, out, 2, 0, &k, &bytes);
    cp_clock_stop(&k, st, bytes);
    return rc;
}

int cp_ulysses_backward(cp_ctx *c, const attn_io *io, const attn_grads *g, cp_stats *st)
{
    cp_clock k;
    cp_clock_start(&k);
    double bytes = 0;
    int64_t D = c->a.D, hq = c->hq, hkv = c->hkv;
    attn_tensor lse = cp_tensor(io->lse, c->a.B, c->a.H, c->n, 1);
    cp_field in[] = {{&io->q, head_shard(c, QH, hq, D), hq},      {&io->k, head_shard(c, KH, hkv, D), hkv},
                     {&io->v, head_shard(c, VH, hkv, D), hkv},    {&io->o, head_shard(c, OH, hq, D), hq},
                     {&g->d_o, head_shard(c, DOH, hq, D), hq},    {&lse, head_shard(c, LSEH, hq, 1), hq}};
    exchange(c, in, 6, 1, &k, &bytes);
    attn_io h = {.q = in[0].head, .k = in[1].head, .v = in[2].head, .o = in[3].head, .lse = c->buf[LSEH]};
    attn_grads hg = {.d_o = in[4].head, .dq = head_shard(c, DQH, hq, D), .dk = head_shard(c, DKH, hkv, D),
                     .dv = head_shard(c, DVH, hkv, D)};
    int rc = cp_flash_backward(&c->flash, 0, 0, &h, &hg);
    cp_field out[] = {{&g->dq, hg.dq, hq}, {&g->dk, hg.dk, hkv}, {&g->dv, hg.dv, hkv}};
    exchange(c, out, 3, 0, &k, &bytes);
    cp_clock_stop(&k, st, bytes);
    return rc;
}
