/* The forward of `titans` with memory=mlp (titans_mlp.h; the math in
 * docs/kernels/titans.md): per token t, with theta0 the parameters at the
 * start of t's chunk,
 *   grad_t  = d/dtheta |W2 silu(W1 k^_t) - v_t|^2 / 2  at theta0
 *   S_t     = eta_t S_{t-1} - beta_t grad_t        (beta = 2 theta: the loss's factor 2)
 *   theta_t = a_t theta_{t-1} + S_t
 *   y_t     = W2_t silu(W1_t q^_t)                  (read=before: theta_{t-1})
 * A sequence starts from theta = [W1 = [I; -I; I; ...]; W2 = 0], S = 0:
 * silu(x) - silu(-x) = x, so at expand = 2 the first layer's features hold
 * the keys linearly (W2 = [W, -W] is the linear memory W) and the memory
 * can learn (at theta = 0 every gradient vanishes). The gradients of a
 * chunk all stand at theta0 (the paper's parallel form); the parameters are
 * then walked token by token -- a nonlinear memory has no closed form of
 * theta_r that the linear chunk's reads use. */
#include "titans_mlp.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

size_t titans_mlp_vec_floats(int64_t Hd, int64_t Dk, int64_t Dv) { return mem_round((size_t)(Hd + Dk + Dv)); }

/* theta0 (P) and the vectors of one token. */
size_t titans_mlp_chunk_floats(int64_t Hd, int64_t Dk, int64_t Dv, int64_t P)
{
    return mem_round((size_t)P) + 9 * titans_mlp_vec_floats(Hd, Dk, Dv);
}

mlp_vecs titans_mlp_vecs(const titans_plan *pl, float **w)
{
    size_t n = titans_mlp_vec_floats(pl->Hd, pl->Dk, pl->Dv);
    mlp_vecs u;
    u.kn = mem_take(w, n), u.z = mem_take(w, n), u.a1 = mem_take(w, n);
    u.E = mem_take(w, n), u.p = mem_take(w, n), u.del = mem_take(w, n);
    u.qn = mem_take(w, n), u.zq = mem_take(w, n), u.aq = mem_take(w, n);
    return u;
}

float titans_mlp_gradient(const titans_task *t, int64_t j, const float *theta0, mlp_vecs *u)
{
    const titans_plan *pl = t->pl;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv, Hd = (int)pl->Hd;
    const float *W1 = theta0, *W2 = theta0 + pl->Hd * pl->Dk;
    const float *k = attn_at(&t->io->k, t->b, t->hk, j), *v = attn_at(&t->io->v, t->b, t->hk, j);
    float rn = titans_rnorm(k, Dk);
    for (int d = 0; d < Dk; d++)
        u->kn[d] = k[d] * rn;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Hd, Dk, 1.0f, W1, Dk, u->kn, 1, 0.0f, u->z, 1);
    for (int i = 0; i < Hd; i++)
        u->a1[i] = titans_silu(u->z[i]);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Dv, Hd, 1.0f, W2, Hd, u->a1, 1, 0.0f, u->E, 1);
    for (int i = 0; i < Dv; i++)
        u->E[i] -= v[i];
    cblas_sgemv(CblasRowMajor, CblasTrans, Dv, Hd, 1.0f, W2, Hd, u->E, 1, 0.0f, u->p, 1);
    for (int i = 0; i < Hd; i++)
        u->del[i] = u->p[i] * titans_silu_d1(u->z[i]);
    return rn;
}

void titans_mlp_step(const titans_task *t, int64_t j, const float *prev, float *next, const float *theta0,
                     mlp_vecs *u)
{
    const titans_plan *pl = t->pl;
    int Dk = (int)pl->Dk, Dv = (int)pl->Dv, Hd = (int)pl->Hd;
    int64_t P = pl->P;
    float beta, a, eta;
    titans_gates(t, j, &beta, &a, &eta);
    titans_mlp_gradient(t, j, theta0, u);
    float *Sn = next + P;
    for (int64_t i = 0; i < P; i++)
        Sn[i] = eta * prev[P + i];
    cblas_sger(CblasRowMajor, Hd, Dk, -beta, u->del, 1, u->kn, 1, Sn, Dk);
    cblas_sger(CblasRowMajor, Dv, Hd, -beta, u->E, 1, u->a1, 1, Sn + pl->Hd * pl->Dk, Hd);
    for (int64_t i = 0; i < P; i++)
        next[i] = a * prev[i] + Sn[i];
}

void titans_mlp_hidden(const titans_plan *pl, const float *theta, mlp_vecs *u)
{
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)pl->Hd, (int)pl->Dk, 1.0f, theta, (int)pl->Dk, u->qn, 1, 0.0f,
                u->zq, 1);
    for (int64_t i = 0; i < pl->Hd; i++)
        u->aq[i] = titans_silu(u->zq[i]);
}

/* The outputs at token j of the group's query heads, from theta. */
static void read_heads(const titans_task *t, int64_t j, const float *theta, mlp_vecs *u)
{
    const titans_plan *pl = t->pl;
    for (int64_t h = t->hk * pl->G; h < (t->hk + 1) * pl->G; h++) {
        const float *q = attn_at(&t->io->q, t->b, h, j);
        float rn = titans_rnorm(q, pl->Dk);
        for (int64_t d = 0; d < pl->Dk; d++)
            u->qn[d] = q[d] * rn;
        titans_mlp_hidden(pl, theta, u);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)pl->Dv, (int)pl->Hd, 1.0f, theta + pl->Hd * pl->Dk,
                    (int)pl->Hd, u->aq, 1, 0.0f, attn_at(&t->io->o, t->b, h, j), 1);
    }
}

void titans_mlp_fresh(const void *task, float *state)
{
    const titans_plan *pl = ((const titans_task *)task)->pl;
    memset(state, 0, sizeof(float) * (size_t)(2 * pl->P));
    for (int64_t i = 0; i < pl->Hd; i++)
        state[i * pl->Dk + i % pl->Dk] = (i / pl->Dk) % 2 ? -1.0f : 1.0f;
}

double titans_mlp_chunk(const void *task, int64_t j0, int64_t c, int fresh, float *H, float *ws, int write_o)
{
    const titans_task *t = task;
    const titans_plan *pl = t->pl;
    if (fresh)
        titans_mlp_fresh(t, H);
    float *theta0 = mem_take(&ws, (size_t)pl->P);
    memcpy(theta0, H, sizeof(float) * (size_t)pl->P);
    mlp_vecs u = titans_mlp_vecs(pl, &ws);
    for (int64_t j = j0; j < j0 + c; j++) {
        if (write_o && pl->read_before)
            read_heads(t, j, H, &u);
        titans_mlp_step(t, j, H, H, theta0, &u);
        if (write_o && !pl->read_before)
            read_heads(t, j, H, &u);
    }
    double P = (double)pl->P, per_token = 7 * P + 2 * (double)(pl->Hd * pl->Dv);
    return (double)c * (per_token + (write_o ? 2 * P * (double)pl->G : 0.0));
}
