/* Backward of `atlas` through the memory's online training
 * (docs/kernels/atlas.md). Per (batch, KV head), by the memory kernels' driver
 * (kernels/core/mem_driver.h), with this file's steps:
 *  1. the chunked forward (atlas_chunk.c, outputs skipped) stores [H; S] at
 *     the start of every block of whole chunks;
 *  2. blocks are visited last to first: the block's states are recomputed step
 *     by step from its checkpoint, then the steps are undone in reverse with
 *     GH = dL/dH_t, GS = dL/dS_t and GH0, the gradient of the chunk's start
 *     memory through the window errors (added to GH at the chunk's first step).
 * Step t in the transposed layout, H0 the chunk's start memory, p_i = phi^(k^_i) (unit features),
 * w = 1 / n_t (the window's mean):
 *   E_i = H0^T p_i - v_i,  S_t = theta S_{t-1} + w sum_i 2 gamma_i p_i E_i^T,
 *   H_t = alpha H_{t-1} - eta S_t,  y = H_t^T phi^(q^)
 * reversed:
 *   GH += phi^(q^) dy^T,  dphi^(q^) = H_t dy
 *   dalpha = <GH, H_{t-1}>,  deta = -<GH, S_t>,  GS -= eta GH,  GH <- alpha GH
 *   dtheta = <GS, S_{t-1}>;  per window row i, g = GS^T p_i:
 *     dgamma_i += 2 w <E_i, g>,  dE_i = 2 w gamma_i g,  dp_i += 2 w gamma_i GS E_i + H0 dE_i,
 *     dv_i -= dE_i,  GH0 += p_i dE_i^T
 *   GS <- theta GS
 * then the gates' chain rule (alpha = exp(gate), theta, gamma logistic) and
 * dk, dq through the features' normalisation, the map and the L2 normalisation. A row sits in up to c windows, so dk, dv
 * and the window-weight logit's gradient are accumulated. */
#include "atlas_internal.h"
#include "kernels/core/counters.h"

#include <cblas.h>
#include <string.h>

/* The driver's adjoints and this kernel's vectors (carved from mem_bwd_bufs.vec). */
typedef struct {
    float *GH, *GS, *GH0;         /* F x Dv each (GS follows GH) */
    float *ph, *dph, *E, *g, *dx; /* F, F, Dv, Dv, D */
    float *xn;                    /* D: a normalised row */
    float *ns, *Y;                /* opt=muon: NS5's scratch and NS5(S_t) (F x Dv) */
} bwd_bufs;

static bwd_bufs bufs_of(const atlas_plan *pl, mem_bwd_bufs *m)
{
    bwd_bufs u = {.GH = m->GH, .GS = m->GS, .GH0 = m->GH0};
    size_t vec = (size_t)(pl->F + pl->Dv + pl->D);
    float *w = m->vec; /* ATLAS_BWD_VECTORS of them */
    u.ph = mem_take(&w, vec), u.dph = mem_take(&w, vec), u.E = mem_take(&w, vec);
    u.g = mem_take(&w, vec), u.dx = mem_take(&w, vec), u.xn = mem_take(&w, vec);
    u.ns = pl->muon ? mem_take(&w, atlas_ns5_floats(pl)) : NULL;
    u.Y = pl->muon ? mem_take(&w, (size_t)(pl->F * pl->Dv)) : NULL;
    return u;
}

/* Features of key i into u->ph and its error at H0 into u->E. */
static void load_row(const atlas_task *t, int64_t i, const float *H0, bwd_bufs *u)
{
    const atlas_plan *pl = t->pl;
    int F = (int)pl->F, Dv = (int)pl->Dv;
    const float *v = attn_at(&t->io->v, t->b, t->hk, i);
    atlas_phi(pl, attn_at(&t->io->k, t->b, t->hk, i), pl->D, 1, u->xn, u->ph);
    cblas_sgemv(CblasRowMajor, CblasTrans, F, Dv, 1.0f, H0, Dv, u->ph, 1, 0.0f, u->E, 1);
    for (int e = 0; e < Dv; e++)
        u->E[e] -= v[e];
}

static float gamma_of(const atlas_task *t, int64_t i)
{
    return (float)atlas_sigmoid(attn_at(&t->io->router, t->b, t->hk, i)[1]);
}

/* next = one step j from prev ([H; S] each), with the chunk's start memory H0. */
static void step_forward(const void *task, int64_t j, const float *prev, float *next, const float *H0,
                         mem_bwd_bufs *m)
{
    const atlas_task *t = task;
    bwd_bufs bufs = bufs_of(t->pl, m), *u = &bufs;
    const atlas_plan *pl = t->pl;
    int64_t FDv = pl->F * pl->Dv;
    float eta, alpha, theta, gamma;
    atlas_gates(t, j, &eta, &alpha, &theta, &gamma);
    float *Hn = next, *Sn = next + FDv;
    for (int64_t x = 0; x < FDv; x++)
        Sn[x] = theta * prev[FDv + x];
    float w = 1.0f / (float)atlas_window_rows(t->a, j, pl->c);
    for (int64_t i = atlas_window_lo(t->a, j, pl->c); i <= j; i++) {
        load_row(t, i, H0, u);
        cblas_sger(CblasRowMajor, (int)pl->F, (int)pl->Dv, 2.0f * w * gamma_of(t, i), u->ph, 1, u->E, 1, Sn,
                   (int)pl->Dv);
    }
    const float *step = Sn;
    if (pl->muon) {
        atlas_ns5(pl, Sn, u->Y, u->ns);
        step = u->Y;
    }
    for (int64_t x = 0; x < FDv; x++)
        Hn[x] = alpha * prev[x] - eta * step[x];
}

/* dq of the group's query heads at token j from the memory Hr they read, and GH += phi(q) dy^T. */
static void read_backward(const atlas_task *t, const attn_grads *g, int64_t j, const float *Hr, bwd_bufs *u)
{
    const atlas_plan *pl = t->pl;
    int F = (int)pl->F, Dv = (int)pl->Dv;
    for (int64_t h = t->hk * pl->G; h < (t->hk + 1) * pl->G; h++) {
        const float *q = attn_at(&t->io->q, t->b, h, j), *dy = attn_at(&g->d_o, t->b, h, j);
        atlas_phi(pl, q, pl->D, 1, u->xn, u->ph);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, F, Dv, 1.0f, Hr, Dv, dy, 1, 0.0f, u->dph, 1);
        cblas_sger(CblasRowMajor, F, Dv, 1.0f, u->ph, 1, dy, 1, u->GH, Dv);
        atlas_phi_bwd(pl, q, u->dph, u->xn, u->ph, attn_at(&g->dq, t->b, h, j));
    }
}

/* The window rows' part of undoing step j: GS holds dL/dG_t. */
static void window_backward(const atlas_task *t, const attn_grads *g, int64_t j, const float *H0, bwd_bufs *u)
{
    const atlas_plan *pl = t->pl;
    int F = (int)pl->F, Dv = (int)pl->Dv, D = (int)pl->D;
    float w = 1.0f / (float)atlas_window_rows(t->a, j, pl->c);
    for (int64_t i = atlas_window_lo(t->a, j, pl->c); i <= j; i++) {
        load_row(t, i, H0, u);
        float gam = gamma_of(t, i), gw = 2.0f * gam * w, *dv = attn_at(&g->dv, t->b, t->hk, i), *dk = attn_at(&g->dk, t->b, t->hk, i);
        cblas_sgemv(CblasRowMajor, CblasTrans, F, Dv, 1.0f, u->GS, Dv, u->ph, 1, 0.0f, u->g, 1);
        float dgam = 2.0f * w * cblas_sdot(Dv, u->E, 1, u->g, 1);
        attn_at(&g->drouter, t->b, t->hk, i)[1] += gam * (1.0f - gam) * dgam;
        cblas_sscal(Dv, gw, u->g, 1); /* g = dE_i */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, F, Dv, gw, u->GS, Dv, u->E, 1, 0.0f, u->dph, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, F, Dv, 1.0f, H0, Dv, u->g, 1, 1.0f, u->dph, 1);
        cblas_sger(CblasRowMajor, F, Dv, 1.0f, u->ph, 1, u->g, 1, u->GH0, Dv);
        for (int e = 0; e < Dv; e++)
            dv[e] -= u->g[e];
        atlas_phi_bwd(pl, attn_at(&t->io->k, t->b, t->hk, i), u->dph, u->xn, u->ph, u->dx);
        for (int d = 0; d < D; d++)
            dk[d] += u->dx[d];
    }
}

/* Undoes step j (prev = [H; S] before it, next after it, H0 the chunk's start memory). */
static void step_backward(const void *task, const attn_grads *g, int64_t j, const float *prev,
                          const float *next, const float *H0, mem_bwd_bufs *m)
{
    const atlas_task *t = task;
    bwd_bufs bufs = bufs_of(t->pl, m), *u = &bufs;
    const atlas_plan *pl = t->pl;
    int64_t FDv = pl->F * pl->Dv;
    read_backward(t, g, j, next, u);
    float eta, alpha, theta, gamma;
    atlas_gates(t, j, &eta, &alpha, &theta, &gamma);
    // H_t = alpha H_{t-1} - eta S_t  (muon: - eta NS5(S_t))
    float dalpha = cblas_sdot((int)FDv, u->GH, 1, prev, 1), deta;
    if (pl->muon) {
        atlas_ns5(pl, next + FDv, u->Y, u->ns);
        deta = -cblas_sdot((int)FDv, u->GH, 1, u->Y, 1);
        for (int64_t x = 0; x < FDv; x++)
            u->Y[x] = -eta * u->GH[x];
        atlas_ns5_bwd(pl, next + FDv, u->Y, u->GS, u->ns);
    } else {
        deta = -cblas_sdot((int)FDv, u->GH, 1, next + FDv, 1);
        for (int64_t x = 0; x < FDv; x++)
            u->GS[x] -= eta * u->GH[x];
    }
    for (int64_t x = 0; x < FDv; x++)
        u->GH[x] *= alpha;
    // S_t = theta S_{t-1} + G_t
    float dtheta = cblas_sdot((int)FDv, u->GS, 1, prev + FDv, 1);
    window_backward(t, g, j, H0, u);
    cblas_sscal((int)FDv, theta, u->GS, 1);
    attn_at(&g->dbeta, t->b, t->hk, j)[0] = deta;
    attn_at(&g->dgate, t->b, t->hk, j)[0] = alpha * dalpha;
    attn_at(&g->drouter, t->b, t->hk, j)[0] = theta * (1.0f - theta) * dtheta;
}

/* dk, dv and the window-weight logit's gradient are sums over windows: start them at zero. */
static void zero_accumulated(const void *task, const attn_grads *g)
{
    const atlas_task *t = task;
    for (int64_t j = 0; j < t->a->Nk; j++) {
        memset(attn_at(&g->dk, t->b, t->hk, j), 0, sizeof(float) * (size_t)t->pl->D);
        memset(attn_at(&g->dv, t->b, t->hk, j), 0, sizeof(float) * (size_t)t->pl->Dv);
        attn_at(&g->drouter, t->b, t->hk, j)[1] = 0.0f;
    }
}

_Static_assert(sizeof(atlas_task) <= MEM_TASK_BYTES, "the driver holds the task");

static void place(const void *all, int64_t b, int64_t hk, void *task)
{
    atlas_task *t = task;
    *t = *(const atlas_task *)all;
    t->b = b, t->hk = hk;
}

/* Per token, in F Dv units: the recomputed step 4c + 3; undoing it 10c + 8
 * (errors, GS^T p, GS E, H0 dE, GH0 per window row; inner products and
 * scalings); per query head 4 (dphi(q), GH += phi(q) dy^T). */
static double steps_flops(const void *task)
{
    const atlas_task *t = task;
    const atlas_plan *pl = t->pl;
    double w = (double)(pl->c < t->a->Nk ? pl->c : t->a->Nk), Dv = (double)pl->Dv;
    /* muon: NS5 twice (replayed step, undone step) and its backward, about 3x its forward */
    double ns = pl->muon ? 5.0 * ATLAS_NS_STEPS * (4.0 * (double)pl->F * Dv * Dv + 2.0 * Dv * Dv * Dv) : 0.0;
    return ((double)(pl->F * pl->Dv) * (14.0 * w + 11.0 + 4.0 * (double)pl->G) + ns) * (double)t->a->Nk;
}

const mem_steps atlas_steps = {place, zero_accumulated, step_forward, step_backward, atlas_chunk, NULL, steps_flops};

int atlas_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    atlas_plan pl;
    int rc = atlas_plan_make(&pl, a);
    if (rc || (rc = mem_inputs_present("atlas", io, g)))
        return rc;
    float *slots = (float *)ctx->workspace + mem_round(pl.m.state_floats);
    /* One task per (b, KV head): it owns dK, dV and the gates' gradients of that head and dQ of its G heads. */
    atlas_task all = {a, io, &pl, 0, 0};
    long long flops = mem_backward(a, &pl.m, &atlas_steps, &all, g, slots);
    int64_t tasks = a->B * a->H_kv;
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    /* K, V and the gates about c + 1 times (both passes, every window), Q and dO once per query head */
    double w = (double)(pl.c < a->Nk ? pl.c : a->Nk);
    double per_task = (double)a->Nk * ((w + 1.0) * (double)(pl.D + pl.Dv + 4) + (double)(pl.G * (pl.D + pl.Dv)));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}
