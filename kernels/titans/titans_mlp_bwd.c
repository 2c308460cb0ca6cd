/* Backward of `titans` with memory=mlp through the memory's online training
 * (docs/kernels/titans.md), by the memory driver's block-checkpoint walk
 * (kernels/core/mem_driver.h) as the linear memory's, GH = dL/dtheta_t,
 * GS = dL/dS_t, GH0 = dL/dtheta0 through the chunk's gradients. Step t
 * reversed (z = W1_0 k^, a1 = silu(z), E = W2_0 a1 - v, p = W2_0^T E,
 * del = p (.) silu'(z): the gradient [del k^^T; E a1^T] at theta0):
 *   read: GW2 += dy silu(zq)^T, dzq = W2^T dy (.) silu'(zq), GW1 += dzq q^^T, dq^ = W1^T dzq
 *   da = <GH, theta_{t-1}>,  GS += GH,  GH <- a GH,  deta = <GS, S_{t-1}>
 *   dgrad = -beta GS,  dbeta = -<GS, grad>,  GS <- eta GS
 * and through the gradient itself -- its second-order terms in theta0:
 *   ddel = dG1 k^,  dk^ = dG1^T del,  dE = dG2 a1,  da1 = dG2^T E
 *   dp = ddel (.) silu'(z),  dz = ddel (.) p (.) silu''(z)
 *   GW2_0 += E dp^T,  dE += W2_0 dp,  GW2_0 += dE a1^T,  da1 += W2_0^T dE,  dv = -dE
 *   dz += da1 (.) silu'(z),  GW1_0 += dz k^^T,  dk^ += W1_0^T dz
 * then dg = a da, drouter = eta (1 - eta) deta, dq, dk through the L2 norm. */
#include "titans_mlp.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <string.h>

/* The forward's vectors and the backward's own. */
typedef struct {
    mlp_vecs f;
    float *gs1k, *gs2a, *dd, *dz, *da1, *dE, *dkn, *dqn, *dzq;
} bwd_vecs;

static bwd_vecs vecs_of(const titans_plan *pl, mem_bwd_bufs *m)
{
    float *w = m->vec; /* TITANS_MLP_BWD_VECTORS of titans_mlp_vec_floats */
    size_t n = titans_mlp_vec_floats(pl->Hd, pl->Dk, pl->Dv);
    bwd_vecs u = {.f = titans_mlp_vecs(pl, &w)};
    u.gs1k = mem_take(&w, n), u.gs2a = mem_take(&w, n), u.dd = mem_take(&w, n);
    u.dz = mem_take(&w, n), u.da1 = mem_take(&w, n), u.dE = mem_take(&w, n);
    u.dkn = mem_take(&w, n), u.dqn = mem_take(&w, n), u.dzq = mem_take(&w, n);
    return u;
}

static void step_forward(const void *task, int64_t j, const float *prev, float *next, const float *H0,
                         mem_bwd_bufs *m)
{
    const titans_task *t = task;
    bwd_vecs u = vecs_of(t->pl, m);
    titans_mlp_step(t, j, prev, next, H0, &u.f);
}

/* dq of the group's query heads at token j from the parameters theta they
 * read, and GH += the read's gradient. */
static void read_backward(const titans_task *t, const attn_grads *g, int64_t j, const float *theta, float *GH,
                          bwd_vecs *u)
{
    const titans_plan *pl = t->pl;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv, Hd = (int)pl->Hd;
    const float *W1 = theta, *W2 = theta + pl->Hd * pl->Dk;
    for (int64_t h = t->hk * pl->G; h < (t->hk + 1) * pl->G; h++) {
        const float *q = attn_at(&t->io->q, t->b, h, j), *dy = attn_at(&g->d_o, t->b, h, j);
        float rn = titans_rnorm(q, Dk);
        for (int d = 0; d < Dk; d++)
            u->f.qn[d] = q[d] * rn;
        titans_mlp_hidden(pl, theta, &u->f);
        cblas_sger(CblasRowMajor, Dv, Hd, 1.0f, dy, 1, u->f.aq, 1, GH + pl->Hd * pl->Dk, Hd);
        cblas_sgemv(CblasRowMajor, CblasTrans, Dv, Hd, 1.0f, W2, Hd, dy, 1, 0.0f, u->dzq, 1);
        for (int i = 0; i < Hd; i++)
            u->dzq[i] *= titans_silu_d1(u->f.zq[i]);
        cblas_sger(CblasRowMajor, Hd, Dk, 1.0f, u->dzq, 1, u->f.qn, 1, GH, Dk);
        cblas_sgemv(CblasRowMajor, CblasTrans, Hd, Dk, 1.0f, W1, Dk, u->dzq, 1, 0.0f, u->dqn, 1);
        titans_unit_bwd(u->f.qn, rn, u->dqn, attn_at(&g->dq, t->b, h, j), Dk);
    }
}

/* Through grad = [del k^^T; E a1^T] at theta0 from dgrad = -beta GS (GS
 * before its eta scaling): adds to GH0, writes dv and dk^ into u->dkn. */
static void gradient_backward(const titans_task *t, const attn_grads *g, int64_t j, float beta, const float *GS,
                              const float *theta0, float *GH0, bwd_vecs *u)
{
    const titans_plan *pl = t->pl;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv, Hd = (int)pl->Hd;
    int64_t H1 = pl->Hd * pl->Dk;
    const float *W1 = theta0, *W2 = theta0 + H1;
    mlp_vecs *f = &u->f;
    // ddel = -beta GS1 k^ (from gs1k), dk^ = -beta GS1^T del, dE = -beta GS2 a1, da1 = -beta GS2^T E
    cblas_sgemv(CblasRowMajor, CblasTrans, Hd, Dk, -beta, GS, Dk, f->del, 1, 0.0f, u->dkn, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, Dv, Hd, -beta, GS + H1, Hd, f->E, 1, 0.0f, u->da1, 1);
    for (int i = 0; i < Hd; i++) {
        float dd = -beta * u->gs1k[i];
        u->dd[i] = dd * titans_silu_d1(f->z[i]); /* dp */
        u->dz[i] = dd * f->p[i] * titans_silu_d2(f->z[i]);
    }
    for (int i = 0; i < Dv; i++)
        u->dE[i] = -beta * u->gs2a[i];
    // p = W2^T E
    cblas_sger(CblasRowMajor, Dv, Hd, 1.0f, f->E, 1, u->dd, 1, GH0 + H1, Hd);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dv, Hd, 1.0f, W2, Hd, u->dd, 1, 1.0f, u->dE, 1);
    // E = W2 a1 - v
    cblas_sger(CblasRowMajor, Dv, Hd, 1.0f, u->dE, 1, f->a1, 1, GH0 + H1, Hd);
    cblas_sgemv(CblasRowMajor, CblasTrans, Dv, Hd, 1.0f, W2, Hd, u->dE, 1, 1.0f, u->da1, 1);
    float *dv = attn_at(&g->dv, t->b, t->hk, j);
    for (int i = 0; i < Dv; i++)
        dv[i] = -u->dE[i];
    // a1 = silu(z), z = W1 k^
    for (int i = 0; i < Hd; i++)
        u->dz[i] += u->da1[i] * titans_silu_d1(f->z[i]);
    cblas_sger(CblasRowMajor, Hd, Dk, 1.0f, u->dz, 1, f->kn, 1, GH0, Dk);
    cblas_sgemv(CblasRowMajor, CblasTrans, Hd, Dk, 1.0f, W1, Dk, u->dz, 1, 1.0f, u->dkn, 1);
}

/* Undoes step j (prev = [theta; S] before it, next after it, H0 = theta0). */
static void step_backward(const void *task, const attn_grads *g, int64_t j, const float *prev, const float *next,
                          const float *H0, mem_bwd_bufs *m)
{
    const titans_task *t = task;
    const titans_plan *pl = t->pl;
    bwd_vecs u = vecs_of(pl, m);
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv, Hd = (int)pl->Hd, P = (int)pl->P;
    int64_t H1 = pl->Hd * pl->Dk;
    if (!pl->read_before)
        read_backward(t, g, j, next, m->GH, &u);
    float beta, a, eta;
    titans_gates(t, j, &beta, &a, &eta);
    float rn = titans_mlp_gradient(t, j, H0, &u.f);
    // theta_t = a theta_{t-1} + S_t
    float da = cblas_sdot(P, m->GH, 1, prev, 1);
    for (int64_t i = 0; i < P; i++) {
        m->GS[i] += m->GH[i];
        m->GH[i] *= a;
    }
    // S_t = eta S_{t-1} - beta grad
    float deta = cblas_sdot(P, m->GS, 1, prev + P, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Hd, Dk, 1.0f, m->GS, Dk, u.f.kn, 1, 0.0f, u.gs1k, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dv, Hd, 1.0f, m->GS + H1, Hd, u.f.a1, 1, 0.0f, u.gs2a, 1);
    float db = -cblas_sdot(Hd, u.gs1k, 1, u.f.del, 1) - cblas_sdot(Dv, u.gs2a, 1, u.f.E, 1);
    gradient_backward(t, g, j, beta, m->GS, H0, m->GH0, &u);
    cblas_sscal(P, eta, m->GS, 1);
    titans_unit_bwd(u.f.kn, rn, u.dkn, attn_at(&g->dk, t->b, t->hk, j), Dk);
    attn_at(&g->dbeta, t->b, t->hk, j)[0] = db;
    attn_at(&g->dgate, t->b, t->hk, j)[0] = a * da;
    attn_at(&g->drouter, t->b, t->hk, j)[0] = eta * (1.0f - eta) * deta;
    if (pl->read_before)
        read_backward(t, g, j, prev, m->GH, &u);
}

/* Per token, in P units: the replayed step 7 and the recomputed gradient 4;
 * undoing it about 14 (inner products, scalings, the gradient's
 * second-order products and GH0's rank-one updates); per query head the
 * read's backward 8. */
static double steps_flops(const void *task)
{
    const titans_task *t = task;
    return (double)t->pl->P * (25.0 + 8.0 * (double)t->pl->G) * (double)t->a->Nk;
}

const mem_steps titans_mlp_steps = {titans_place, NULL, step_forward, step_backward, titans_mlp_chunk, titans_mlp_fresh,
                                    steps_flops};
