/* Backward of `atlas` through the memory's online training
 * (docs/kernels/atlas.md). Per (batch, KV head):
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
#include <omp.h>
#include <string.h>

typedef struct {
    float *ckpt;                  /* [n_blocks][2 F Dv]: [H; S] before each block */
    float *st;                    /* [block + 1][2 F Dv]: the states before each step of one block */
    float *GH, *GS, *GH0;         /* F x Dv each (GS follows GH) */
    float *zero;                  /* [H; S] = 0: the memory before a sequence */
    float *ph, *dph, *E, *g, *dx; /* F, F, Dv, Dv, D */
    float *xn;                    /* D: a normalised row */
    int64_t *starts;              /* n_blocks + 1 block starts */
    size_t dd;                    /* floats per [H; S], rounded to 16 */
} bwd_bufs;

static bwd_bufs take_bufs(const atlas_plan *pl, float *ws)
{
    bwd_bufs u;
    size_t FDv = (size_t)(pl->F * pl->Dv), vec = (size_t)(pl->F + pl->Dv + pl->D);
    u.dd = (2 * FDv + 15) / 16 * 16;
    u.ckpt = atlas_take(&ws, u.dd * (size_t)pl->n_blocks);
    u.st = atlas_take(&ws, u.dd * (size_t)(pl->block + 1));
    u.GH = atlas_take(&ws, u.dd), u.GS = u.GH + FDv, u.GH0 = atlas_take(&ws, u.dd);
    u.zero = atlas_take(&ws, u.dd);
    memset(u.zero, 0, sizeof(float) * u.dd);
    u.ph = atlas_take(&ws, vec), u.dph = atlas_take(&ws, vec), u.E = atlas_take(&ws, vec);
    u.g = atlas_take(&ws, vec), u.dx = atlas_take(&ws, vec);
    u.xn = atlas_take(&ws, vec);
    u.starts = (int64_t *)atlas_take(&ws, (size_t)(2 * (pl->n_blocks + 1)));
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
static void step_forward(const atlas_task *t, int64_t j, const float *prev, float *next, const float *H0,
                         bwd_bufs *u)
{
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
    for (int64_t x = 0; x < FDv; x++)
        Hn[x] = alpha * prev[x] - eta * Sn[x];
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
static void step_backward(const atlas_task *t, const attn_grads *g, int64_t j, const float *prev,
                          const float *next, const float *H0, bwd_bufs *u)
{
    const atlas_plan *pl = t->pl;
    int64_t FDv = pl->F * pl->Dv;
    read_backward(t, g, j, next, u);
    float eta, alpha, theta, gamma;
    atlas_gates(t, j, &eta, &alpha, &theta, &gamma);
    // H_t = alpha H_{t-1} - eta S_t
    float dalpha = cblas_sdot((int)FDv, u->GH, 1, prev, 1), deta = -cblas_sdot((int)FDv, u->GH, 1, next + FDv, 1);
    for (int64_t x = 0; x < FDv; x++) {
        u->GS[x] -= eta * u->GH[x];
        u->GH[x] *= alpha;
    }
    // S_t = theta S_{t-1} + G_t
    float dtheta = cblas_sdot((int)FDv, u->GS, 1, prev + FDv, 1);
    window_backward(t, g, j, H0, u);
    cblas_sscal((int)FDv, theta, u->GS, 1);
    attn_at(&g->dbeta, t->b, t->hk, j)[0] = deta;
    attn_at(&g->dgate, t->b, t->hk, j)[0] = alpha * dalpha;
    attn_at(&g->drouter, t->b, t->hk, j)[0] = theta * (1.0f - theta) * dtheta;
}

/* Pass 1: [H; S] before every block, by the chunked forward. Returns FLOPs. */
static double checkpoints(const atlas_task *t, float *chunk_ws, bwd_bufs *u)
{
    const attn_args *a = t->a;
    size_t n2 = (size_t)(2 * t->pl->F * t->pl->Dv);
    float *H = u->st; /* free until pass 2 */
    double flops = 0;
    int64_t n = 0;
    for (int64_t j = 0, e; j < a->Nk; j = e, n++) {
        e = atlas_block_end(a, t->pl, j);
        u->starts[n] = j;
        if (attn_key_starts_seq(a, j))
            memset(H, 0, sizeof(float) * n2);
        memcpy(u->ckpt + (size_t)n * u->dd, H, sizeof(float) * n2);
        for (int64_t c0 = j, c1; c0 < e; c0 = c1) {
            c1 = atlas_chunk_end(a, t->pl, c0);
            flops += atlas_chunk(t, c0, c1 - c0, attn_key_starts_seq(a, c0), H, chunk_ws, 0);
        }
    }
    u->starts[n] = a->Nk;
    return flops;
}

/* The state before step s of the block starting at jb (zero at a sequence start). */
static float *state_before(const atlas_task *t, bwd_bufs *u, int64_t jb, int64_t s)
{
    return attn_key_starts_seq(t->a, s) ? u->zero : u->st + (size_t)(s - jb) * u->dd;
}

/* Undoes steps [j0, j1) of one chunk inside the block starting at jb, in reverse. */
static void chunk_backward(const atlas_task *t, const attn_grads *g, int64_t jb, int64_t j0, int64_t j1,
                           bwd_bufs *u)
{
    size_t n2 = (size_t)(2 * t->pl->F * t->pl->Dv);
    const float *H0 = state_before(t, u, jb, j0);
    for (int64_t s = j1 - 1; s >= j0; s--) {
        step_backward(t, g, s, state_before(t, u, jb, s), u->st + (size_t)(s + 1 - jb) * u->dd, H0, u);
        if (s == j0) { /* the chunk's errors were taken at H_{j0-1}: its gradient joins GH */
            cblas_saxpy((int)(n2 / 2), 1.0f, u->GH0, 1, u->GH, 1);
            memset(u->GH0, 0, sizeof(float) * n2 / 2);
        }
        if (attn_key_starts_seq(t->a, s)) /* the memory before a sequence is zero, not an input */
            memset(u->GH, 0, sizeof(float) * n2);
    }
}

/* dk, dv and the window-weight logit's gradient are sums over windows: start them at zero. */
static void zero_accumulated(const atlas_task *t, const attn_grads *g)
{
    for (int64_t j = 0; j < t->a->Nk; j++) {
        memset(attn_at(&g->dk, t->b, t->hk, j), 0, sizeof(float) * (size_t)t->pl->D);
        memset(attn_at(&g->dv, t->b, t->hk, j), 0, sizeof(float) * (size_t)t->pl->Dv);
        attn_at(&g->drouter, t->b, t->hk, j)[1] = 0.0f;
    }
}

/* Pass 2 over one (batch, KV head). Returns FLOPs. */
static double backward_task(const atlas_task *t, const attn_grads *g, float *ws)
{
    const atlas_plan *pl = t->pl;
    const attn_args *a = t->a;
    bwd_bufs u = take_bufs(pl, ws + pl->chunk_floats);
    zero_accumulated(t, g);
    double flops = checkpoints(t, ws, &u);
    size_t n2 = (size_t)(2 * pl->F * pl->Dv);
    memset(u.GH, 0, sizeof(float) * n2);
    memset(u.GH0, 0, sizeof(float) * n2 / 2);
    for (int64_t n = pl->n_blocks - 1; n >= 0; n--) {
        int64_t jb = u.starts[n], je = u.starts[n + 1];
        memcpy(u.st, u.ckpt + (size_t)n * u.dd, sizeof(float) * n2);
        for (int64_t c0 = jb, c1; c0 < je; c0 = c1) {
            c1 = atlas_chunk_end(a, pl, c0);
            const float *H0 = state_before(t, &u, jb, c0);
            for (int64_t s = c0; s < c1; s++)
                step_forward(t, s, state_before(t, &u, jb, s), u.st + (size_t)(s + 1 - jb) * u.dd, H0, &u);
        }
        for (int64_t c1 = je; c1 > jb;) { /* chunks of the block last to first */
            int64_t c0 = jb;
            while (atlas_chunk_end(a, pl, c0) < c1)
                c0 = atlas_chunk_end(a, pl, c0);
            chunk_backward(t, g, jb, c0, c1, &u);
            c1 = c0;
        }
    }
    /* per token, in F Dv units: the recomputed step 4c + 3; undoing it 10c + 8
     * (errors, GS^T p, GS E, H0 dE, GH0 per window row; inner products and
     * scalings); per query head 4 (dphi(q), GH += phi(q) dy^T) */
    double w = (double)(pl->c < a->Nk ? pl->c : a->Nk);
    return flops + (double)(pl->F * pl->Dv) * (14.0 * w + 11.0 + 4.0 * (double)pl->G) * (double)a->Nk;
}

int atlas_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    atlas_plan pl;
    int rc = atlas_plan_make(&pl, a);
    if (rc || (rc = atlas_inputs_present(io, g)))
        return rc;
    float *slots = (float *)ctx->workspace + (pl.state_floats + 15) / 16 * 16;
    int64_t tasks = a->B * a->H_kv;
    long long flops = 0;
    openblas_set_num_threads(1);
    /* One task per (b, KV head): it owns dK, dV and the gates' gradients of that head and dQ of its G heads. */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t t = 0; t < tasks; t++) {
        atlas_task tk = {a, io, &pl, t / a->H_kv, t % a->H_kv};
        flops += (long long)backward_task(&tk, g, slots + (size_t)omp_get_thread_num() * pl.slot_floats);
    }
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    /* K, V and the gates about c + 1 times (both passes, every window), Q and dO once per query head */
    double w = (double)(pl.c < a->Nk ? pl.c : a->Nk);
    double per_task = (double)a->Nk * ((w + 1.0) * (double)(pl.D + pl.Dv + 4) + (double)(pl.G * (pl.D + pl.Dv)));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}
