/* Backward of `titans` through the memory's online training
 * (docs/kernels/titans.md). Per (batch, KV head), by the memory kernels' driver
 * (kernels/core/mem_driver.h), with this file's steps:
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
#include <string.h>

/* The driver's adjoints and this kernel's vectors (carved from mem_bwd_bufs.vec). */
typedef struct {
    float *GH, *GS, *GH0;       /* Dk x Dv each (GS follows GH) */
    float *kn, *qn, *dqn, *dkn; /* Dk */
    float *E, *gsk;             /* Dv */
} bwd_bufs;

static bwd_bufs bufs_of(const titans_plan *pl, mem_bwd_bufs *m)
{
    bwd_bufs u = {.GH = m->GH, .GS = m->GS, .GH0 = m->GH0};
    size_t vec = (size_t)(pl->Dk + pl->Dv);
    float *w = m->vec; /* TITANS_BWD_VECTORS of them */
    u.kn = mem_take(&w, vec), u.qn = mem_take(&w, vec), u.dqn = mem_take(&w, vec);
    u.dkn = mem_take(&w, vec), u.E = mem_take(&w, vec), u.gsk = mem_take(&w, vec);
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
static void step_forward(const void *task, int64_t j, const float *prev, float *next, const float *H0,
                         mem_bwd_bufs *m)
{
    const titans_task *t = task;
    bwd_bufs bufs = bufs_of(t->pl, m), *u = &bufs;
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
        float rn = titans_rnorm(q, Dk);
        for (int d = 0; d < Dk; d++)
            u->qn[d] = q[d] * rn;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Dk, Dv, 1.0f, Hr, Dv, dy, 1, 0.0f, u->dqn, 1);
        cblas_sger(CblasRowMajor, Dk, Dv, 1.0f, u->qn, 1, dy, 1, u->GH, Dv);
        titans_unit_bwd(u->qn, rn, u->dqn, attn_at(&g->dq, t->b, h, j), Dk);
    }
}

/* Undoes step j (prev = [H; S] before it, next after it, H0 the chunk's
 * initial memory): writes dq of the group's heads and dk, dv, dbeta, dgate,
 * drouter of the token, and moves GH, GS to the states before the step. */
static void step_backward(const void *task, const attn_grads *g, int64_t j, const float *prev,
                          const float *next, const float *H0, mem_bwd_bufs *m)
{
    const titans_task *t = task;
    bwd_bufs bufs = bufs_of(t->pl, m), *u = &bufs;
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
    titans_unit_bwd(u->kn, rn, u->dkn, dk, Dk);
    attn_at(&g->dbeta, b, hk, j)[0] = db;
    attn_at(&g->dgate, b, hk, j)[0] = a * da;
    attn_at(&g->drouter, b, hk, j)[0] = eta * (1.0f - eta) * deta;
    if (pl->read_before)
        read_backward(t, g, j, prev, u);
}

_Static_assert(sizeof(titans_task) <= MEM_TASK_BYTES, "the driver holds the task");

void titans_place(const void *all, int64_t b, int64_t hk, void *task)
{
    titans_task *t = task;
    *t = *(const titans_task *)all;
    t->b = b, t->hk = hk;
}

/* Per token, in Dk Dv units: the recomputed step 6; per query head 4 (dq^,
 * GH += q^ dy^T); the errors, <GH, H>, GS^T k^, GS E, <GS, S>, H0 dE, GH0 and
 * the scalings, about 16. */
static double steps_flops(const void *task)
{
    const titans_task *t = task;
    return (double)(t->pl->Dk * t->pl->Dv) * (22.0 + 4.0 * (double)t->pl->G) * (double)t->a->Nk;
}

const mem_steps titans_steps = {titans_place, NULL, step_forward, step_backward, titans_chunk, NULL, steps_flops};

int titans_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    titans_plan pl;
    int rc = titans_plan_make(&pl, a);
    if (rc || (rc = mem_inputs_present("titans", io, g)))
        return rc;
    float *slots = (float *)ctx->workspace + mem_round(pl.m.state_floats);
    /* One task per (b, KV head): it owns dK, dV and the gates' gradients of that head and dQ of its G heads. */
    titans_task all = {a, io, &pl, 0, 0};
    long long flops = mem_backward(a, &pl.m, pl.mlp ? &titans_mlp_steps : &titans_steps, &all, g, slots);
    int64_t tasks = a->B * a->H_kv;
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    /* K, V and the gates twice (both passes), Q and dO once per query head */
    double per_task = (double)a->Nk * (2.0 * (double)(pl.Dk + pl.Dv + 3) + (double)(pl.G * (pl.Dk + pl.Dv)));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}
