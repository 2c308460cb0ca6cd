/* Backward of `deltanet` / `gated_deltanet` in the recurrent form
 * (docs/kernels/deltanet.md). Per (batch, KV head):
 *  1. the chunked forward (deltanet.c, chunks of DELTA_BWD_BLOCK, outputs
 *     skipped) stores the state at the start of every block;
 *  2. blocks are visited last to first: the block's states S_{t-1}, S_t are
 *     recomputed step by step from its checkpoint, then the steps are undone
 *     in reverse with G = dL/dS_t.
 * With P = a_t S_{t-1}, r = v_t - P k^_t, S_t = P + b_t r k^_t^T, o = sc S_t q
 * and G_t += sc sum_h do_h q_h^T (the group's query heads):
 *   dq_h = sc S_t^T do_h,     dv_t = b_t G k^,        db_t = r^T G k^,
 *   dk^  = b_t (G^T r - P^T G k^),   dg_t = <G, P> - b_t (G k^)^T (P k^),
 *   G_{t-1} = a_t G (I - b_t k^ k^^T)   (zero at a document start),
 * then dk = (dk^ - k^ <k^, dk^>) / sqrt(|k|^2 + eps), the Jacobian of the
 * L2 normalisation. dg is the gradient of the log decay g_t = ln a_t.
 * Layout: states and G are kept transposed ([Dk, Dv]), as in deltanet.c. */
#include "kernels/core/counters.h"
#include "deltanet_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Per-thread backward buffers (after the chunk scratch of the slot). */
typedef struct {
    float *ckpt;      /* [n_ckpt][Dk*Dv]: state before each block */
    float *st;        /* [DELTA_BWD_BLOCK + 1][Dk*Dv]: S_{j0-1} .. S_{j1-1} of one block */
    float *G;         /* Dk*Dv */
    float *kn, *dkn;  /* Dk */
    float *pk, *r, *gk; /* Dv */
    int64_t *starts;  /* n_ckpt + 1 block starts */
    size_t dd;        /* floats per state, rounded to 16 */
} bwd_bufs;

static bwd_bufs take_bufs(const delta_plan *pl, float *ws)
{
    bwd_bufs u;
    size_t DkDv = (size_t)(pl->Dk * pl->Dv), vec = (size_t)(pl->Dk + pl->Dv);
    u.dd = (DkDv + 15) / 16 * 16;
    u.ckpt = delta_take(&ws, u.dd * (size_t)pl->n_ckpt);
    u.st = delta_take(&ws, u.dd * (DELTA_BWD_BLOCK + 1));
    u.G = delta_take(&ws, DkDv);
    u.kn = delta_take(&ws, vec), u.dkn = delta_take(&ws, vec);
    u.pk = delta_take(&ws, vec), u.r = delta_take(&ws, vec), u.gk = delta_take(&ws, vec);
    u.starts = (int64_t *)delta_take(&ws, (size_t)(2 * (pl->n_ckpt + 1)));
    return u;
}

/* The token's normalised key (into u->kn), decay and write strength; returns 1/|k|. */
static float load_token(const delta_task *t, int64_t j, bwd_bufs *u, float *alpha, float *beta)
{
    const attn_io *io = t->io;
    const float *k = attn_at(&io->k, t->b, t->hk, j);
    float rn = delta_key_rnorm(k, t->pl->Dk);
    for (int64_t d = 0; d < t->pl->Dk; d++)
        u->kn[d] = k[d] * rn;
    *alpha = t->pl->gated ? expf(attn_at(&io->gate, t->b, t->hk, j)[0]) : 1.0f;
    *beta = attn_at(&io->beta, t->b, t->hk, j)[0];
    return rn;
}

/* The per-token products are matrix-vector products on Dk x Dv matrices:
 * single-threaded OpenBLAS level 2 (vectorised; a plain C dot product is a
 * sequential float reduction the compiler may not reorder). */

/* u->pk = a Hp^T k^ (= P k^) and u->r = v - P k^, for Hp = S_{t-1}^T (Dk x Dv). */
static void residual(const delta_task *t, int64_t j, const float *Hp, float alpha, bwd_bufs *u)
{
    int Dk = (int)t->pl->Dk, Dv = (int)t->pl->Dv;
    const float *v = attn_at(&t->io->v, t->b, t->hk, j);
    cblas_sgemv(CblasRowMajor, CblasTrans, Dk, Dv, alpha, Hp, Dv, u->kn, 1, 0.0f, u->pk, 1);
    for (int i = 0; i < Dv; i++)
        u->r[i] = v[i] - u->pk[i];
}

/* Hn = a Hp + b k^ r^T: one recurrent step in the transposed layout. */
static void step_forward(const delta_task *t, int64_t j, const float *Hp, float *Hn, bwd_bufs *u)
{
    int Dk = (int)t->pl->Dk, Dv = (int)t->pl->Dv;
    float alpha, beta;
    load_token(t, j, u, &alpha, &beta);
    residual(t, j, Hp, alpha, u);
    memcpy(Hn, Hp, sizeof(float) * (size_t)(Dk * Dv));
    if (alpha != 1.0f)
        cblas_sscal(Dk * Dv, alpha, Hn, 1);
    cblas_sger(CblasRowMajor, Dk, Dv, beta, u->kn, 1, u->r, 1, Hn, Dv);
}

/* Undoes step j: adds the outputs' gradients into G, writes dq of the group's
 * heads and dk, dv, dbeta (dgate) of the token, and moves G to S_{j-1}.
 * Hp = S_{j-1}^T, Hn = S_j^T. */
static void step_backward(const delta_task *t, const attn_grads *g, int64_t j, const float *Hp,
                          const float *Hn, bwd_bufs *u)
{
    const delta_plan *pl = t->pl;
    const attn_io *io = t->io;
    int64_t b = t->b, hk = t->hk;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv;
    float *G = u->G, sc = t->sc;
    for (int64_t h = hk * pl->G; h < (hk + 1) * pl->G; h++) {
        const float *q = attn_at(&io->q, b, h, j), *dO = attn_at(&g->d_o, b, h, j);
        // dq = sc S_j^T do,  G += sc q do^T (G is dL/dS_j^T)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, sc, Hn, Dv, dO, 1, 0.0f, attn_at(&g->dq, b, h, j), 1);
        cblas_sger(CblasRowMajor, Dk, Dv, sc, q, 1, dO, 1, G, Dv);
    }
    float alpha, beta, rn = load_token(t, j, u, &alpha, &beta);
    residual(t, j, Hp, alpha, u);
    // gk = G k^ (in S's orientation), dk^ = b (G^T r - P^T G k^)
    cblas_sgemv(CblasRowMajor, CblasTrans, Dk, Dv, 1.0f, G, Dv, u->kn, 1, 0.0f, u->gk, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, beta, G, Dv, u->r, 1, 0.0f, u->dkn, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, -alpha * beta, Hp, Dv, u->gk, 1, 1.0f, u->dkn, 1);
    float db = 0, dg = 0, kdk = 0;
    float *dv = attn_at(&g->dv, b, hk, j), *dk = attn_at(&g->dk, b, hk, j);
    for (int i = 0; i < Dv; i++) {
        db += u->r[i] * u->gk[i];
        dg -= beta * u->gk[i] * u->pk[i];
        dv[i] = beta * u->gk[i];
    }
    for (int d = 0; d < Dk; d++)
        kdk += u->kn[d] * u->dkn[d];
    for (int d = 0; d < Dk; d++)
        dk[d] = rn * (u->dkn[d] - u->kn[d] * kdk);
    attn_at(&g->dbeta, b, hk, j)[0] = db;
    if (pl->gated) // dg = <G, P> - b (G k^)^T (P k^), P = a S_{j-1}
        attn_at(&g->dgate, b, hk, j)[0] = dg + alpha * cblas_sdot(Dk * Dv, G, 1, Hp, 1);
    if (attn_key_starts_seq(t->a, j)) { /* S_j does not depend on S_{j-1} */
        memset(G, 0, sizeof(float) * (size_t)(Dk * Dv));
        return;
    }
    // G <- a G (I - b k^ k^^T), transposed: a (G - b k^ gk^T)
    cblas_sger(CblasRowMajor, Dk, Dv, -beta, u->kn, 1, u->gk, 1, G, Dv);
    if (alpha != 1.0f)
        cblas_sscal(Dk * Dv, alpha, G, 1);
}

/* Pass 1: the state before every block, by the chunked forward. Returns FLOPs. */
static double checkpoints(const delta_task *t, float *chunk_ws, bwd_bufs *u)
{
    const attn_args *a = t->a;
    size_t DkDv = (size_t)(t->pl->Dk * t->pl->Dv);
    float *H = u->st; /* free until pass 2 */
    double flops = 0;
    int64_t n = 0;
    for (int64_t j = 0, e; j < a->Nk; j = e, n++) {
        int fresh = attn_key_starts_seq(a, j);
        e = attn_key_block_end(a, j, DELTA_BWD_BLOCK);
        u->starts[n] = j;
        if (fresh)
            memset(u->ckpt + (size_t)n * u->dd, 0, sizeof(float) * DkDv);
        else
            memcpy(u->ckpt + (size_t)n * u->dd, H, sizeof(float) * DkDv);
        flops += delta_chunk(t, j, e - j, fresh, H, chunk_ws, 0);
    }
    u->starts[n] = a->Nk;
    return flops;
}

/* Pass 2 over one (batch, KV head). Returns FLOPs. */
static double backward_task(const delta_task *t, const attn_grads *g, float *ws)
{
    const delta_plan *pl = t->pl;
    bwd_bufs u = take_bufs(pl, ws + pl->chunk_floats);
    double flops = checkpoints(t, ws, &u);
    size_t DkDv = (size_t)(pl->Dk * pl->Dv);
    memset(u.G, 0, sizeof(float) * DkDv);
    for (int64_t n = pl->n_ckpt - 1; n >= 0; n--) {
        int64_t j0 = u.starts[n], c = u.starts[n + 1] - j0;
        memcpy(u.st, u.ckpt + (size_t)n * u.dd, sizeof(float) * DkDv);
        for (int64_t s = 0; s < c; s++)
            step_forward(t, j0 + s, u.st + (size_t)s * u.dd, u.st + (size_t)(s + 1) * u.dd, &u);
        for (int64_t s = c - 1; s >= 0; s--)
            step_backward(t, g, j0 + s, u.st + (size_t)s * u.dd, u.st + (size_t)(s + 1) * u.dd, &u);
    }
    /* per token, in Dk Dv units: the recomputed step 4; per query head 4
     * (G += q do^T, dq); P k^ again, G k^, G^T r, P^T G k^ and the G update,
     * 10; <G, P> when gated, 2 */
    double per_tok = (double)DkDv * (14.0 + 4.0 * (double)pl->G + 2.0 * pl->gated);
    return flops + per_tok * (double)t->a->Nk;
}

typedef struct {
    delta_task all; /* b, hk set per task */
    const attn_grads *g;
} bwd_env;

static double task_backward(const void *env, int64_t b, int64_t hk, float *state, float *ws)
{
    const bwd_env *e = env;
    delta_task t = e->all;
    t.b = b, t.hk = hk;
    (void)state;
    return backward_task(&t, e->g, ws);
}

int delta_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    int gated = (ctx->kernel->inputs & ATTN_IN_GATE) != 0;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "kernel '%s': backward called on a context created without "
                                      "args.backward = 1 (workspace too small)", ctx->kernel->name);
    delta_plan pl;
    int rc = delta_plan_make(&pl, a, gated);
    if (rc)
        return rc;
    if (!io->beta.data || !g->dbeta.data || (gated && (!io->gate.data || !g->dgate.data)))
        return attn_fail(ATTN_EINVAL, "kernel '%s': expected beta%s and its gradient, found NULL",
                         ctx->kernel->name, gated ? ", gate" : "");
    float *slots = (float *)ctx->workspace + mem_round(pl.state_floats);
    /* One task per (b, KV head): it owns dK, dV, dbeta, dgate of that head and dQ of its G heads. */
    bwd_env env = {{a, io, &pl, 0, 0, (float)attn_scale(a)}, g};
    long long flops = mem_each_task(a, NULL, 0, slots, pl.slot_floats, task_backward, &env);
    int64_t tasks = a->B * a->H_kv;
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    /* K, V, beta (gate) twice (both passes), Q and dO once per query head */
    double per_task = (double)a->Nk * (2.0 * (double)(pl.Dk + pl.Dv + 1 + gated) +
                                       (double)(pl.G * (pl.Dk + pl.Dv)));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}
