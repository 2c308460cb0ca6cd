/* Backward of `titans` through the memory's online training
 * (docs/kernels/titans.md). Per (batch, KV head):
 *  1. the chunked forward (titans_chunk.c, outputs skipped) stores H = W^T and
 *     S = Sigma^T at the start of every block of whole chunks;
 *  2. blocks are visited last to first: the block's states are recomputed step
 *     by step from its checkpoint, then the steps are undone in reverse with
 *     GH = dL/dH_t, GS = dL/dS_t and GH0, the gradient of the chunk's initial
 *     memory through the errors E (added to GH at the chunk's first step).
 * Step t in the transposed layout, H0 the chunk's initial memory:
 *   E = H0^T k^ - v,  S_t = eta S_{t-1} - beta k^ E^T,  H_t = a H_{t-1} + S_t,  y = H_t^T q^
 * reversed:
 *   GH += q^ dy^T,  dq^ = H_t dy                    (read=before: with H_{t-1}, after the split)
 *   da = <GH, H_{t-1}>,  GS += GH,  GH <- a GH
 *   dbeta = -<E, GS^T k^>,  dE = -beta GS^T k^,  dk^ = -beta GS E,  deta = <GS, S_{t-1}>,  GS <- eta GS
 *   dv = -dE,  dk^ += H0 dE,  GH0 += k^ dE^T
 * then dg = a da (a = exp g), drouter = eta (1 - eta) deta, and dk, dq
 * through the L2 normalisation: (dx^ - x^ <x^, dx^>) / sqrt(|x|^2 + eps). */
#include "kernels/core/counters.h"
#include "titans_internal.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* Per-thread backward buffers (after the chunk scratch of the slot). */
typedef struct {
    float *ckpt;              /* [n_blocks][2 Dk Dv]: [H; S] before each block */
    float *st;                /* [block + 1][2 Dk Dv]: the states before each step of one block */
    float *GH, *GS, *GH0;     /* Dk x Dv each (GS follows GH) */
    float *zero;              /* [H; S] = 0: the memory before a sequence */
    float *kn, *qn, *dqn, *dkn; /* Dk */
    float *E, *gsk;           /* Dv */
    int64_t *starts;          /* n_blocks + 1 block starts */
    size_t dd;                /* floats per [H; S], rounded to 16 */
} bwd_bufs;

static bwd_bufs take_bufs(const titans_plan *pl, float *ws)
{
    bwd_bufs u;
    size_t DkDv = (size_t)(pl->Dk * pl->Dv), vec = (size_t)(pl->Dk + pl->Dv);
    u.dd = (2 * DkDv + 15) / 16 * 16;
    u.ckpt = titans_take(&ws, u.dd * (size_t)pl->n_blocks);
    u.st = titans_take(&ws, u.dd * (size_t)(pl->block + 1));
    u.GH = titans_take(&ws, u.dd), u.GS = u.GH + DkDv, u.GH0 = titans_take(&ws, u.dd);
    u.zero = titans_take(&ws, u.dd);
    memset(u.zero, 0, sizeof(float) * u.dd);
    u.kn = titans_take(&ws, vec), u.qn = titans_take(&ws, vec), u.dqn = titans_take(&ws, vec);
    u.dkn = titans_take(&ws, vec), u.E = titans_take(&ws, vec), u.gsk = titans_take(&ws, vec);
    u.starts = (int64_t *)titans_take(&ws, (size_t)(2 * (pl->n_blocks + 1)));
    return u;
}

/* Normalised key into u->kn and E = H0^T k^ - v into u->E; returns 1/|k|. */
static float load_error(const titans_task *t, int64_t j, const float *H0, bwd_bufs *u)
{
    int Dk = (int)t->pl->Dk, Dv = (int)t->pl->Dv;
    const float *k = attn_at(&t->io->k, t->b, t->hk, j), *v = attn_at(&t->io->v, t->b, t->hk, j);
    float rn = titans_rnorm(k, Dk);
    for (int d = 0; d < Dk; d++)
        u->kn[d] = k[d] * rn;
    cblas_sgemv(CblasRowMajor, CblasTrans, Dk, Dv, 1.0f, H0, Dv, u->kn, 1, 0.0f, u->E, 1);
    for (int i = 0; i < Dv; i++)
        u->E[i] -= v[i];
    return rn;
}

/* next = one step from prev ([H; S] each), with the chunk's initial memory H0. */
static void step_forward(const titans_task *t, int64_t j, const float *prev, float *next, const float *H0,
                         bwd_bufs *u)
{
    int64_t DkDv = t->pl->Dk * t->pl->Dv;
    float beta, a, eta;
    titans_gates(t, j, &beta, &a, &eta);
    load_error(t, j, H0, u);
    float *Hn = next, *Sn = next + DkDv;
    for (int64_t i = 0; i < DkDv; i++)
        Sn[i] = eta * prev[DkDv + i];
    cblas_sger(CblasRowMajor, (int)t->pl->Dk, (int)t->pl->Dv, -beta, u->kn, 1, u->E, 1, Sn, (int)t->pl->Dv);
    for (int64_t i = 0; i < DkDv; i++)
        Hn[i] = a * prev[i] + Sn[i];
}

/* dq of the group's query heads at token j from the memory Hr they read,
 * and GH += q^ dy^T. */
static void read_backward(const titans_task *t, const attn_grads *g, int64_t j, const float *Hr, bwd_bufs *u)
{
    const titans_plan *pl = t->pl;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv;
    for (int64_t h = t->hk * pl->G; h < (t->hk + 1) * pl->G; h++) {
        const float *q = attn_at(&t->io->q, t->b, h, j), *dy = attn_at(&g->d_o, t->b, h, j);
        float rn = titans_rnorm(q, Dk), qd = 0, *dq = attn_at(&g->dq, t->b, h, j);
        for (int d = 0; d < Dk; d++)
            u->qn[d] = q[d] * rn;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, 1.0f, Hr, Dv, dy, 1, 0.0f, u->dqn, 1);
        cblas_sger(CblasRowMajor, Dk, Dv, 1.0f, u->qn, 1, dy, 1, u->GH, Dv);
        for (int d = 0; d < Dk; d++)
            qd += u->qn[d] * u->dqn[d];
        for (int d = 0; d < Dk; d++)
            dq[d] = rn * (u->dqn[d] - u->qn[d] * qd);
    }
}

/* Undoes step j (prev = [H; S] before it, next after it, H0 the chunk's
 * initial memory): writes dq of the group's heads and dk, dv, dbeta, dgate,
 * drouter of the token, and moves GH, GS to the states before the step. */
static void step_backward(const titans_task *t, const attn_grads *g, int64_t j, const float *prev,
                          const float *next, const float *H0, bwd_bufs *u)
{
    const titans_plan *pl = t->pl;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv;
    int64_t DkDv = pl->Dk * pl->Dv, b = t->b, hk = t->hk;
    if (!pl->read_before)
        read_backward(t, g, j, next, u);
    float beta, a, eta;
    titans_gates(t, j, &beta, &a, &eta);
    float rn = load_error(t, j, H0, u);
    // H_t = a H_{t-1} + S_t
    float da = cblas_sdot(Dk * Dv, u->GH, 1, prev, 1);
    for (int64_t i = 0; i < DkDv; i++) {
        u->GS[i] += u->GH[i];
        u->GH[i] *= a;
    }
    // S_t = eta S_{t-1} - beta k^ E^T
    cblas_sgemv(CblasRowMajor, CblasTrans, Dk, Dv, 1.0f, u->GS, Dv, u->kn, 1, 0.0f, u->gsk, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, -beta, u->GS, Dv, u->E, 1, 0.0f, u->dkn, 1);
    float deta = cblas_sdot(Dk * Dv, u->GS, 1, prev + DkDv, 1), db = -cblas_sdot(Dv, u->E, 1, u->gsk, 1);
    cblas_sscal(Dk * Dv, eta, u->GS, 1);
    // E = H0^T k^ - v: dE = -beta GS^T k^ (in gsk, scaled)
    float *dv = attn_at(&g->dv, b, hk, j), *dk = attn_at(&g->dk, b, hk, j);
    for (int i = 0; i < Dv; i++) {
        u->gsk[i] *= -beta;
        dv[i] = -u->gsk[i];
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, 1.0f, H0, Dv, u->gsk, 1, 1.0f, u->dkn, 1);
    cblas_sger(CblasRowMajor, Dk, Dv, 1.0f, u->kn, 1, u->gsk, 1, u->GH0, Dv);
    float kd = 0;
    for (int d = 0; d < Dk; d++)
        kd += u->kn[d] * u->dkn[d];
    for (int d = 0; d < Dk; d++)
        dk[d] = rn * (u->dkn[d] - u->kn[d] * kd);
    attn_at(&g->dbeta, b, hk, j)[0] = db;
    attn_at(&g->dgate, b, hk, j)[0] = a * da;
    attn_at(&g->drouter, b, hk, j)[0] = eta * (1.0f - eta) * deta;
    if (pl->read_before)
        read_backward(t, g, j, prev, u);
}

/* Pass 1: [H; S] before every block, by the chunked forward. Returns FLOPs. */
static double checkpoints(const titans_task *t, float *chunk_ws, bwd_bufs *u)
{
    const attn_args *a = t->a;
    size_t n2 = (size_t)(2 * t->pl->Dk * t->pl->Dv);
    float *H = u->st; /* free until pass 2 */
    double flops = 0;
    int64_t n = 0;
    for (int64_t j = 0, e; j < a->Nk; j = e, n++) {
        e = titans_block_end(a, t->pl, j);
        u->starts[n] = j;
        if (attn_key_starts_seq(a, j))
            memset(H, 0, sizeof(float) * n2);
        memcpy(u->ckpt + (size_t)n * u->dd, H, sizeof(float) * n2);
        for (int64_t c0 = j, c1; c0 < e; c0 = c1) {
            c1 = titans_chunk_end(a, t->pl, c0);
            flops += titans_chunk(t, c0, c1 - c0, attn_key_starts_seq(a, c0), H, chunk_ws, 0);
        }
    }
    u->starts[n] = a->Nk;
    return flops;
}

/* The state before step s of the block starting at jb (zero at a sequence start). */
static float *state_before(const titans_task *t, bwd_bufs *u, int64_t jb, int64_t s)
{
    return attn_key_starts_seq(t->a, s) ? u->zero : u->st + (size_t)(s - jb) * u->dd;
}

/* Undoes steps [j0, j1) of one chunk inside the block starting at jb, in reverse. */
static void chunk_backward(const titans_task *t, const attn_grads *g, int64_t jb, int64_t j0, int64_t j1,
                           bwd_bufs *u)
{
    size_t n2 = (size_t)(2 * t->pl->Dk * t->pl->Dv);
    const float *H0 = state_before(t, u, jb, j0);
    for (int64_t s = j1 - 1; s >= j0; s--) {
        const float *prev = state_before(t, u, jb, s), *next = u->st + (size_t)(s + 1 - jb) * u->dd;
        step_backward(t, g, s, prev, next, H0, u);
        if (s == j0) { /* the chunk's errors were taken at H_{j0-1}: its gradient joins GH */
            cblas_saxpy((int)(n2 / 2), 1.0f, u->GH0, 1, u->GH, 1);
            memset(u->GH0, 0, sizeof(float) * n2 / 2);
        }
        if (attn_key_starts_seq(t->a, s)) /* the memory before a sequence is zero, not an input */
            memset(u->GH, 0, sizeof(float) * n2);
    }
}

/* Pass 2 over one (batch, KV head). Returns FLOPs. */
static double backward_task(const titans_task *t, const attn_grads *g, float *ws)
{
    const titans_plan *pl = t->pl;
    const attn_args *a = t->a;
    bwd_bufs u = take_bufs(pl, ws + pl->chunk_floats);
    double flops = checkpoints(t, ws, &u);
    size_t n2 = (size_t)(2 * pl->Dk * pl->Dv);
    memset(u.GH, 0, sizeof(float) * n2);
    memset(u.GH0, 0, sizeof(float) * n2 / 2);
    for (int64_t n = pl->n_blocks - 1; n >= 0; n--) {
        int64_t jb = u.starts[n], je = u.starts[n + 1];
        memcpy(u.st, u.ckpt + (size_t)n * u.dd, sizeof(float) * n2);
        for (int64_t c0 = jb, c1; c0 < je; c0 = c1) {
            c1 = titans_chunk_end(a, pl, c0);
            const float *H0 = state_before(t, &u, jb, c0);
            for (int64_t s = c0; s < c1; s++)
                step_forward(t, s, state_before(t, &u, jb, s), u.st + (size_t)(s + 1 - jb) * u.dd, H0, &u);
        }
        /* chunks of the block last to first */
        for (int64_t c1 = je; c1 > jb;) {
            int64_t c0 = jb;
            while (titans_chunk_end(a, pl, c0) < c1)
                c0 = titans_chunk_end(a, pl, c0);
            chunk_backward(t, g, jb, c0, c1, &u);
            c1 = c0;
        }
    }
    /* per token, in Dk Dv units: the recomputed step 6; per query head 4
     * (dq^, GH += q^ dy^T); the errors, <GH, H>, GS^T k^, GS E, <GS, S>,
     * H0 dE, GH0 and the scalings, about 16 */
    return flops + (double)(pl->Dk * pl->Dv) * (22.0 + 4.0 * (double)pl->G) * (double)a->Nk;
}

int titans_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    titans_plan pl;
    int rc = titans_plan_make(&pl, a);
    if (rc || (rc = titans_inputs_present(ctx, io, g)))
        return rc;
    float *slots = (float *)ctx->workspace + (pl.state_floats + 15) / 16 * 16;
    int64_t tasks = a->B * a->H_kv;
    long long flops = 0;
    openblas_set_num_threads(1);
    /* One task per (b, KV head): it owns dK, dV and the gates' gradients of that head and dQ of its G heads. */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t t = 0; t < tasks; t++) {
        titans_task tk = {a, io, &pl, t / a->H_kv, t % a->H_kv};
        flops += (long long)backward_task(&tk, g, slots + (size_t)omp_get_thread_num() * pl.slot_floats);
    }
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    /* K, V and the gates twice (both passes), Q and dO once per query head */
    double per_task = (double)a->Nk * (2.0 * (double)(pl.Dk + pl.Dv + 3) + (double)(pl.G * (pl.Dk + pl.Dv)));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}
