/* `ring`: ring attention (Liu, Zaharia, Abbeel 2023; docs/scale-out.md).
 * Rank r holds two zigzag chunks of Q, K, V (chunks r and 2P-1-r of C rows).
 * Forward: at step t it computes its queries against the K/V chunks of rank
 * r-t with `flash`, merging the partial outputs by logsumexp, while the same
 * K/V travel on to r+1 and the next ones arrive from r-1 (posted before the
 * compute, waited after it, into the other of two buffers: a buffer being
 * sent is never written). Blocks the mask empties are skipped.
 *
 * Backward: the K/V ring again, and behind it a ring of dK/dV accumulators
 * one step late: at step t the rank adds its contribution for the K/V of
 * rank r-t (computed while that accumulator was on its way from r-1) and
 * sends it on; after P steps each accumulator has visited every rank and
 * its last hop brings it home. dQ stays local. */
#include "cp_internal.h"

#include <math.h>
#include <string.h>

enum { KV_A, KV_B, BLK_O, BLK_LSE, CHUNK_LSE, DKV_A, DKV_B, DKV_MINE, TMP_DQ, TMP_DKV };

static int64_t kv_floats(const cp_ctx *c) { return cp_floats(c->a.B, c->a.H_kv, c->n, c->a.D); }

int cp_ring_alloc(cp_ctx *c)
{
    const attn_args *a = &c->a;
    c->C = c->n / 2;
    int64_t sizes[] = {
        [KV_A] = 2 * kv_floats(c), [KV_B] = 2 * kv_floats(c),
        [BLK_O] = cp_floats(a->B, a->H, c->C, a->D), [BLK_LSE] = cp_floats(a->B, a->H, c->C, 1),
        [CHUNK_LSE] = 2 * cp_floats(a->B, a->H, c->C, 1),
        [DKV_A] = a->backward ? 2 * kv_floats(c) : 0, [DKV_B] = a->backward ? 2 * kv_floats(c) : 0,
        [DKV_MINE] = a->backward ? 2 * kv_floats(c) : 0,
        [TMP_DQ] = a->backward ? cp_floats(a->B, a->H, c->C, a->D) : 0,
        [TMP_DKV] = a->backward ? 2 * cp_floats(a->B, a->H_kv, c->C, a->D) : 0,
    };
    int rc = cp_alloc_buffers(c, sizes, (int)(sizeof sizes / sizeof sizes[0]));
    if (rc)
        return rc;
    return cp_flash_init(&c->flash, a, a->H, a->H_kv, c->C);
}

/* Global position of the first row of chunk `which` (0 or 1) of `owner`. */
static int64_t chunk_start(const cp_ctx *c, int owner, int which)
{
    return (which ? 2 * (int64_t)c->P - 1 - owner : owner) * c->C;
}

/* K (half 0) or V (half 1) of a K/V buffer, chunk kc. */
static attn_tensor kv_chunk(const cp_ctx *c, float *buf, int half, int kc)
{
    attn_tensor t = cp_tensor(buf + half * kv_floats(c), c->a.B, c->a.H_kv, c->n, c->a.D);
    return cp_rows(&t, kc * c->C, c->C);
}

/* The rank's K and V into a message buffer (or back out of one). */
static void kv_pack(const cp_ctx *c, const attn_tensor *k, const attn_tensor *v, float *buf)
{
    cp_pack(k, 0, c->a.H_kv, 0, c->n, buf);
    cp_pack(v, 0, c->a.H_kv, 0, c->n, buf + kv_floats(c));
}

static void kv_unpack(const cp_ctx *c, const float *buf, const attn_tensor *k, const attn_tensor *v)
{
    cp_unpack(buf, k, 0, c->a.H_kv, 0, c->n);
    cp_unpack(buf + kv_floats(c), v, 0, c->a.H_kv, 0, c->n);
}

/* Starts sending `send` to r+1 and receiving `recv` from r-1 (either may be NULL). */
static void ring_post(const cp_ctx *c, float *send, float *recv, int tag, MPI_Request rq[2], cp_clock *k,
                      double *bytes)
{
    int count = (int)(2 * kv_floats(c)), right = (c->rank + 1) % c->P, left = (c->rank + c->P - 1) % c->P;
    cp_comm_begin(k);
    rq[0] = rq[1] = MPI_REQUEST_NULL;
    if (recv)
        MPI_Irecv(recv, count, MPI_FLOAT, left, tag, c->comm, &rq[0]);
    if (send) {
        MPI_Isend(send, count, MPI_FLOAT, right, tag, c->comm, &rq[1]);
        *bytes += 4.0 * count;
    }
    k->flying |= recv || send;
    cp_comm_end(k);
}

static void ring_wait(MPI_Request *rq, int n, cp_clock *k)
{
    cp_comm_begin(k);
    MPI_Waitall(n, rq, MPI_STATUSES_IGNORE);
    k->flying = 0;
    cp_comm_end(k);
}

/* The transfers in flight while a step computes. Without a progress thread
 * an MPI library moves a large (rendezvous) message only inside MPI calls,
 * so a step tests them between its blocks; otherwise the transfer would
 * start at the wait, after the compute, and hide nothing. */
typedef struct {
    MPI_Request *rq;
    int n;
    cp_clock *k;
} ring_inflight;

static void ring_progress(const ring_inflight *f)
{
    int done;
    cp_comm_begin(f->k);
    MPI_Testall(f->n, f->rq, &done, MPI_STATUSES_IGNORE);
    if (done) /* compute from here on hides nothing */
        f->k->flying = 0;
    cp_comm_end(f->k);
}

/* Block `blk` (0..3) of a step: the rank's query chunk qc = blk / 2 against
 * K/V chunk kc = blk % 2 of `owner` in kv, as Q, K, V views and global
 * positions. 0 when the mask allows no pair in it (nothing to compute). */
typedef struct {
    int qc, kc;
    int64_t q0, k0;
    attn_io io;
} ring_block;

static int ring_block_at(const cp_ctx *c, const attn_io *io, float *kv, int owner, int blk, ring_block *b)
{
    b->qc = blk / 2, b->kc = blk % 2;
    b->q0 = chunk_start(c, c->rank, b->qc), b->k0 = chunk_start(c, owner, b->kc);
    if (cp_block_empty(&c->a, b->q0, b->k0, c->C))
        return 0;
    b->io = (attn_io){.q = cp_rows(&io->q, b->qc * c->C, c->C), .k = kv_chunk(c, kv, 0, b->kc),
                      .v = kv_chunk(c, kv, 1, b->kc)};
    return 1;
}

/* Forward of the rank's two query chunks against the K/V chunks of `owner` in kv. */
static int ring_forward_step(cp_ctx *c, const attn_io *io, float *kv, int owner, const ring_inflight *f)
{
    const attn_args *a = &c->a;
    attn_tensor blk_o = cp_tensor(c->buf[BLK_O], a->B, a->H, c->C, a->D);
    for (int i = 0; i < 4; i++) {
        ring_block b;
        if (!ring_block_at(c, io, kv, owner, i, &b))
            continue;
        b.io.o = blk_o, b.io.lse = c->buf[BLK_LSE];
        int rc = cp_flash_forward(&c->flash, b.q0, b.k0, &b.io);
        if (rc)
            return rc;
        attn_tensor acc = cp_rows(&io->o, b.qc * c->C, c->C);
        cp_lse_merge(&acc, c->buf[CHUNK_LSE] + b.qc * cp_floats(a->B, a->H, c->C, 1), &blk_o, c->buf[BLK_LSE]);
        ring_progress(f);
    }
    return 0;
}

/* lse [B,H,2C] of the rank <-> the per-chunk arrays [2][B,H,C] the blocks use. */
static void lse_chunks(const cp_ctx *c, float *lse, int to_chunks)
{
    int64_t BH = c->a.B * c->a.H, C = c->C;
    for (int qc = 0; qc < 2; qc++)
        for (int64_t bh = 0; bh < BH; bh++) {
            float *chunk = c->buf[CHUNK_LSE] + (qc * BH + bh) * C, *whole = lse + bh * 2 * C + qc * C;
            memcpy(to_chunks ? chunk : whole, to_chunks ? whole : chunk, sizeof(float) * (size_t)C);
        }
}

int cp_ring_forward(cp_ctx *c, const attn_io *io, cp_stats *st)
{
    cp_clock k;
    cp_clock_start(&k);
    double bytes = 0;
    float *cur = c->buf[KV_A], *nxt = c->buf[KV_B];
    kv_pack(c, &io->k, &io->v, cur);
    cp_zero(&io->o);
    for (int64_t i = 0; i < 2 * cp_floats(c->a.B, c->a.H, c->C, 1); i++)
        c->buf[CHUNK_LSE][i] = -INFINITY;
    int rc = 0;
    for (int t = 0; t < c->P; t++) {
        MPI_Request rq[2];
        int more = t < c->P - 1;
        ring_post(c, more ? cur : NULL, more ? nxt : NULL, CP_TAG_KV, rq, &k, &bytes);
        if (!rc) /* after a failure keep the ring moving, so no rank waits forever */
            rc = ring_forward_step(c, io, cur, (c->rank - t + c->P) % c->P, &(ring_inflight){rq, 2, &k});
        ring_wait(rq, 2, &k);
        float *s = cur;
        cur = nxt, nxt = s;
    }
    lse_chunks(c, io->lse, 0);
    cp_clock_stop(&k, st, bytes);
    return rc;
}

/* Backward of the rank's query chunks against the K/V of `owner`: dQ into
 * g->dq, the dK/dV contribution into `mine` (zeroed here). */
static int ring_backward_step(cp_ctx *c, const attn_io *io, const attn_grads *g, float *kv, float *mine,
                              int owner, const ring_inflight *f)
{
    const attn_args *a = &c->a;
    memset(mine, 0, sizeof(float) * (size_t)(2 * kv_floats(c)));
    attn_tensor tdq = cp_tensor(c->buf[TMP_DQ], a->B, a->H, c->C, a->D);
    attn_tensor tdk = cp_tensor(c->buf[TMP_DKV], a->B, a->H_kv, c->C, a->D);
    attn_tensor tdv = cp_tensor(c->buf[TMP_DKV] + cp_floats(a->B, a->H_kv, c->C, a->D), a->B, a->H_kv, c->C, a->D);
    for (int i = 0; i < 4; i++) {
        ring_block b;
        if (!ring_block_at(c, io, kv, owner, i, &b))
            continue;
        b.io.o = cp_rows(&io->o, b.qc * c->C, c->C);
        b.io.lse = c->buf[CHUNK_LSE] + b.qc * cp_floats(a->B, a->H, c->C, 1);
        attn_grads bg = {.d_o = cp_rows(&g->d_o, b.qc * c->C, c->C), .dq = tdq, .dk = tdk, .dv = tdv};
        int rc = cp_flash_backward(&c->flash, b.q0, b.k0, &b.io, &bg);
        if (rc)
            return rc;
        attn_tensor dq = cp_rows(&g->dq, b.qc * c->C, c->C);
        attn_tensor dk = kv_chunk(c, mine, 0, b.kc), dv = kv_chunk(c, mine, 1, b.kc);
        cp_add(&dq, &tdq);
        cp_add(&dk, &tdk);
        cp_add(&dv, &tdv);
        ring_progress(f);
    }
    return 0;
}

/* Adds src to dst, n floats. */
static void add_floats(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

int cp_ring_backward(cp_ctx *c, const attn_io *io, const attn_grads *g, cp_stats *st)
{
    cp_clock k;
    cp_clock_start(&k);
    double bytes = 0;
    float *cur = c->buf[KV_A], *nxt = c->buf[KV_B], *mine = c->buf[DKV_MINE];
    float *acc[2] = {c->buf[DKV_A], c->buf[DKV_B]};
    MPI_Request sent[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}; /* the last send out of acc[i] */
    int64_t nf = 2 * kv_floats(c);
    kv_pack(c, &io->k, &io->v, cur);
    lse_chunks(c, io->lse, 1);
    cp_zero(&g->dq);
    int rc = 0, P = c->P;
    for (int t = 0; t < P; t++) {
        MPI_Request rq[4], *kv = rq, *in = rq + 2; /* K/V on, dK/dV accumulator in */
        int more = t < P - 1, slot = t % 2;
        ring_wait(&sent[slot], 1, &k); /* acc[slot] is free once its last send is done */
        ring_post(c, more ? cur : NULL, more ? nxt : NULL, CP_TAG_KV, kv, &k, &bytes);
        ring_post(c, NULL, t > 0 ? acc[slot] : NULL, CP_TAG_DKV, in, &k, &bytes);
        if (!rc)
            rc = ring_backward_step(c, io, g, cur, mine, (c->rank - t + P) % P, &(ring_inflight){rq, 4, &k});
        ring_wait(in, 2, &k);
        if (t == 0)
            memcpy(acc[slot], mine, sizeof(float) * (size_t)nf);
        else
            add_floats(acc[slot], mine, nf);
        if (P > 1) { /* on to r+1: the next rank that holds these K/V, or, after step P-1, their owner */
            ring_post(c, acc[slot], NULL, CP_TAG_DKV, in, &k, &bytes);
            sent[slot] = in[1];
        }
        ring_wait(kv, 2, &k);
        float *s = cur;
        cur = nxt, nxt = s;
    }
    float *home = acc[(P - 1) % 2];
    if (P > 1) { /* the rank's own accumulator, complete, from r-1 */
        MPI_Request in[2];
        home = acc[P % 2];
        ring_wait(&sent[P % 2], 1, &k);
        ring_post(c, NULL, home, CP_TAG_DKV, in, &k, &bytes);
        ring_wait(in, 2, &k);
        ring_wait(sent, 2, &k);
    }
    kv_unpack(c, home, &g->dk, &g->dv);
    cp_clock_stop(&k, st, bytes);
    return rc;
}
