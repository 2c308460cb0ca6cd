/* `infini` backward (Munkhdalai et al. 2024, arXiv 2404.07143): the flash backward
 * for the in-segment softmax, the linear-attention backward for the memory, and the gate.
 *
 * One task per (batch, KV head). Pass 1 recomputes the memory M_s, z_s each
 * segment s reads (kept for every segment of the sequence: nseg (Dk Dv + Dk)
 * floats per thread). Pass 2 walks the segments backwards carrying dM, dz =
 * dL/dM_{s+1}, dL/dz_{s+1} (zero at a document's last segment):
 *
 *  update  M_{s+1} = M_s + sK^T U, z_{s+1} = z_s + sK^T 1, sK = sigma(K_s):
 *          dU = sK dM, dsK = U dM^T + 1 dz^T, dV += dU, dM_s, dz_s += dM, dz;
 *          delta, U = V - R/e, R = sK M_s, e = sK z_s (rows with e > eps):
 *          dR = -dU/e, de = <dU, R/e>/e, dsK += dR M_s^T + de z_s^T,
 *          dM_s += sK^T dR, dz_s += sK^T de
 *  read    A = num/den, num = sQ M_s, den = sQ z_s (rows with den > eps),
 *          dA = g dO: dnum = dA/den, dden = -<dA, A>/den,
 *          dsQ = dnum M_s^T + dden z_s^T, dM_s += sQ^T dnum, dz_s += sQ^T dden
 *  softmax per block of T query rows (the forward's blocks, P recomputed):
 *          dA_dot = (1-g) dO, Di = <dA_dot, A_dot>, dS = P (.) (dA_dot V^T - Di),
 *          dQ = sc dS K, dK += sc dS^T Q, dV += P^T dA_dot  (the softmax backward)
 *  gate    dbeta_h = g (1-g) sum <dO, A_mem - A_dot>
 *  sigma'  d sigma(x)/dx = 1 (x > 0), e^x = sigma(x) (x <= 0).
 *
 * dK, dV of the KV head are owned by the task (its G query heads add into
 * them in a fixed order); dbeta goes to one partial per (b, h), summed over
 * b in order after the parallel loop: bitwise identical for any thread count. */
#include "infini.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    float *states;     /* nseg x (Dk Dv + Dk): M_s, z_s as segment s reads them */
    int64_t *starts;   /* nseg + 1 segment starts, the last = N */
    float *dM, *dz;
    float *sK, *dsK, *sQ, *dsQ;        /* Lc x Dk */
    float *R, *U, *dU, *A, *dnum;      /* Lc x Dv */
    float *e, *de, *den, *dden;        /* Lc */
    float *P, *dP;                     /* T x Lc */
    float *Ad, *dAd;                   /* T x Dv */
    float *Di;                         /* T */
} bwd_bufs;

/* Carves the buffers from base (NULL: only counts); returns the floats used. */
static size_t carve(const infini_plan *pl, float *base, bwd_bufs *b)
{
    size_t off = 0, st = infini_round16(pl->Dk * pl->Dv) + infini_round16(pl->Dk);
    int64_t Lc = pl->Lc, Dk = pl->Dk, Dv = pl->Dv, T = pl->T;
    b->states = infini_take(base, &off, (int64_t)st * pl->nseg);
    b->starts = (int64_t *)(void *)infini_take(base, &off, 2 * (pl->nseg + 1));
    b->dM = infini_take(base, &off, Dk * Dv), b->dz = infini_take(base, &off, Dk);
    float **lk[] = {&b->sK, &b->dsK, &b->sQ, &b->dsQ}, **lv[] = {&b->R, &b->U, &b->dU, &b->A, &b->dnum};
    float **l1[] = {&b->e, &b->de, &b->den, &b->dden};
    for (int i = 0; i < 4; i++)
        *lk[i] = infini_take(base, &off, Lc * Dk), *l1[i] = infini_take(base, &off, Lc);
    for (int i = 0; i < 5; i++)
        *lv[i] = infini_take(base, &off, Lc * Dv);
    b->P = infini_take(base, &off, T * Lc), b->dP = infini_take(base, &off, T * Lc);
    b->Ad = infini_take(base, &off, T * Dv), b->dAd = infini_take(base, &off, T * Dv), b->Di = infini_take(base, &off, T);
    return off;
}

size_t attn_infini_bwd_floats(const infini_plan *pl)
{
    bwd_bufs b;
    return carve(pl, NULL, &b);
}

typedef struct {
    const infini_plan *pl;
    const attn_args *a;
    const attn_io *io;
    const attn_grads *g;
    int64_t b, hk;
    bwd_bufs *w;
    double flops;
} bwd_task;

static float *state_M(const bwd_task *t, int64_t s)
{
    return t->w->states + (size_t)s * (infini_round16(t->pl->Dk * t->pl->Dv) + infini_round16(t->pl->Dk));
}

static float *state_z(const bwd_task *t, int64_t s) { return state_M(t, s) + infini_round16(t->pl->Dk * t->pl->Dv); }

/* dX rows += dF (.) sigma'(X) with F = sigma(X) [l x D] (dF row stride D). */
static void elu1_bwd_add(const float *x, int64_t ldx, const float *f, const float *df, int64_t l, int64_t D, float *dx,
                         int64_t lddx)
{
    for (int64_t r = 0; r < l; r++)
        for (int64_t d = 0; d < D; d++)
            dx[r * lddx + d] += df[r * D + d] * (x[r * ldx + d] > 0 ? 1.0f : f[r * D + d]);
}

/* dz += X^T v for X [l x D], v [l] (rows in order). */
static void add_xt_v(const float *X, const float *v, int64_t l, int64_t D, float *dz)
{
    for (int64_t i = 0; i < l; i++)
        for (int64_t d = 0; d < D; d++)
            dz[d] += X[i * D + d] * v[i];
}

/* dF = dY M^T + c z^T ([l x Dv] times M [Dk x Dv]^T, plus the row weights c
 * times z), into dF [l x Dk] (beta: 0 overwrite, 1 add); then dM += F^T dY,
 * dz += F^T c. The backward of Y = F M, c-weighted d = F z, shared by the
 * read (F = sQ) and the delta retrieval (F = sK). */
static void memory_product_bwd(bwd_task *t, const float *F, const float *dY, const float *c, int64_t l,
                               const float *M, const float *z, float beta, float *dF)
{
    int64_t Dk = t->pl->Dk, Dv = t->pl->Dv;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)l, (int)Dk, (int)Dv, 1.0f, dY, (int)Dv, M, (int)Dv,
                beta, dF, (int)Dk);
    for (int64_t i = 0; i < l; i++)
        for (int64_t d = 0; d < Dk; d++)
            dF[i * Dk + d] += c[i] * z[d];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Dk, (int)Dv, (int)l, 1.0f, F, (int)Dk, dY, (int)Dv,
                1.0f, t->w->dM, (int)Dv);
    add_xt_v(F, c, l, Dk, t->w->dz);
    t->flops += 4.0 * (double)(l * Dk * Dv);
}

/* Y = F M / (F z) row-wise into Y [l x Dv], the denominators into den (0 for
 * rows at or below INFINI_DEN_EPS, whose Y is 0). */
static void memory_read(bwd_task *t, const float *F, int64_t l, const float *M, const float *z, float *Y, float *den)
{
    int64_t Dk = t->pl->Dk, Dv = t->pl->Dv;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)l, (int)Dv, (int)Dk, 1.0f, F, (int)Dk, M, (int)Dv,
                0.0f, Y, (int)Dv);
    for (int64_t i = 0; i < l; i++) {
        float d = attn_dot(F + i * Dk, z, Dk);
        den[i] = d > (float)INFINI_DEN_EPS ? d : 0.0f;
        for (int64_t c = 0; c < Dv; c++)
            Y[i * Dv + c] = den[i] > 0 ? Y[i * Dv + c] / d : 0.0f;
    }
    t->flops += 2.0 * (double)(l * Dk * Dv);
}

// Segment [j0, j0+l) with memory M_s, z_s; dM, dz hold dL/dM_{s+1}, dL/dz_{s+1}
// on entry and dL/dM_s, dL/dz_s (update part) on exit.
static void update_bwd(bwd_task *t, int64_t j0, int64_t l, const float *Ms, const float *zs, int read)
{
    const infini_plan *pl = t->pl;
    const attn_io *io = t->io;
    bwd_bufs *w = t->w;
    int64_t Dk = pl->Dk, Dv = pl->Dv, b = t->b, hk = t->hk;
    const float *K = attn_at(&io->k, b, hk, j0), *V = attn_at(&io->v, b, hk, j0);
    int retrieve = pl->delta && read;
    attn_infini_elu1(K, io->k.sn, l, Dk, w->sK);
    if (retrieve)
        memory_read(t, w->sK, l, Ms, zs, w->R, w->e);
    for (int64_t i = 0; i < l; i++)
        for (int64_t c = 0; c < Dv; c++)
            w->U[i * Dv + c] = V[i * io->v.sn + c] - (retrieve ? w->R[i * Dv + c] : 0.0f);
    /* dU = sK dM, dsK = U dM^T + 1 dz^T (dM, dz: the gradient of M_{s+1}, z_{s+1}) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)l, (int)Dv, (int)Dk, 1.0f, w->sK, (int)Dk, w->dM,
                (int)Dv, 0.0f, w->dU, (int)Dv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)l, (int)Dk, (int)Dv, 1.0f, w->U, (int)Dv, w->dM,
                (int)Dv, 0.0f, w->dsK, (int)Dk);
    t->flops += 4.0 * (double)(l * Dk * Dv);
    for (int64_t i = 0; i < l; i++) {
        float *dv = attn_at(&t->g->dv, b, hk, j0 + i);
        for (int64_t d = 0; d < Dk; d++)
            w->dsK[i * Dk + d] += w->dz[d];
        for (int64_t c = 0; c < Dv; c++)
            dv[c] += w->dU[i * Dv + c];
    }
    if (retrieve) { /* U = V - R/e: dR/e-scaled into dU, de */
        for (int64_t i = 0; i < l; i++) {
            float *du = w->dU + i * Dv, e = w->e[i], s = 0;
            for (int64_t c = 0; c < Dv; c++)
                s += du[c] * w->R[i * Dv + c];
            w->de[i] = e > 0 ? s / e : 0.0f;
            for (int64_t c = 0; c < Dv; c++)
                du[c] = e > 0 ? -du[c] / e : 0.0f;
        }
        memory_product_bwd(t, w->sK, w->dU, w->de, l, Ms, zs, 1.0f, w->dsK);
    }
    elu1_bwd_add(K, io->k.sn, w->sK, w->dsK, l, Dk, attn_at(&t->g->dk, b, hk, j0), t->g->dk.sn);
}

// Query head h on segment [j0, j0+l): the softmax blocks, then the memory read.
// Returns sum <dO, A_mem - A_dot> over the segment (for dbeta).
static double head_bwd(bwd_task *t, int64_t h, int64_t j0, int64_t l, const float *Ms, const float *zs, int read)
{
    const infini_plan *pl = t->pl;
    const attn_io *io = t->io;
    const attn_grads *gr = t->g;
    bwd_bufs *w = t->w;
    int64_t Dk = pl->Dk, Dv = pl->Dv, b = t->b, hk = t->hk;
    float g = attn_infini_gate(&io->w, h), sc = (float)attn_scale(t->a);
    const float *Q = attn_at(&io->q, b, h, j0), *K = attn_at(&io->k, b, hk, j0), *V = attn_at(&io->v, b, hk, j0);
    float *dQ = attn_at(&gr->dq, b, h, j0), *dK = attn_at(&gr->dk, b, hk, j0), *dV = attn_at(&gr->dv, b, hk, j0);
    double acc = 0;
    if (read) {
        attn_infini_elu1(Q, io->q.sn, l, Dk, w->sQ);
        memory_read(t, w->sQ, l, Ms, zs, w->A, w->den);
    }
    for (int64_t i0 = 0; i0 < l; i0 += pl->T) {
        int64_t nb = l - i0 < pl->T ? l - i0 : pl->T, n = i0 + nb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n, (int)Dk, sc, Q + i0 * io->q.sn,
                    (int)io->q.sn, K, (int)io->k.sn, 0.0f, w->P, (int)n);
        attn_infini_softmax_block(w->P, nb, i0, n, NULL);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)n, 1.0f, w->P, (int)n, V,
                    (int)io->v.sn, 0.0f, w->Ad, (int)Dv);
        for (int64_t r = 0; r < nb; r++) {
            const float *dO = attn_at(&gr->d_o, b, h, j0 + i0 + r), *ad = w->Ad + r * Dv;
            const float *am = w->A + (i0 + r) * Dv;
            float *dad = w->dAd + r * Dv;
            for (int64_t c = 0; c < Dv; c++) {
                acc += (double)dO[c] * ((read ? am[c] : 0.0f) - ad[c]);
                dad[c] = (1.0f - g) * dO[c];
            }
            w->Di[r] = attn_dot(dad, ad, Dv);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n, (int)Dv, 1.0f, w->dAd, (int)Dv, V,
                    (int)io->v.sn, 0.0f, w->dP, (int)n);
        for (int64_t r = 0; r < nb; r++)
            for (int64_t j = 0; j < n; j++)
                w->dP[r * n + j] = w->P[r * n + j] * (w->dP[r * n + j] - w->Di[r]);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dk, (int)n, sc, w->dP, (int)n, K,
                    (int)io->k.sn, 0.0f, dQ + i0 * gr->dq.sn, (int)gr->dq.sn);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)Dk, (int)nb, sc, w->dP, (int)n,
                    Q + i0 * io->q.sn, (int)io->q.sn, 1.0f, dK, (int)gr->dk.sn);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)Dv, (int)nb, 1.0f, w->P, (int)n, w->dAd,
                    (int)Dv, 1.0f, dV, (int)gr->dv.sn);
        t->flops += 6.0 * (double)(nb * n) * (double)(Dk + Dv);
    }
    if (!read)
        return acc;
    for (int64_t i = 0; i < l; i++) { /* dA = g dO through A = num / den */
        const float *dO = attn_at(&gr->d_o, b, h, j0 + i), *am = w->A + i * Dv;
        float *dn = w->dnum + i * Dv, den = w->den[i];
        w->dden[i] = den > 0 ? -g * attn_dot(dO, am, Dv) / den : 0.0f;
        for (int64_t c = 0; c < Dv; c++)
            dn[c] = den > 0 ? g * dO[c] / den : 0.0f;
    }
    memory_product_bwd(t, w->sQ, w->dnum, w->dden, l, Ms, zs, 0.0f, w->dsQ);
    elu1_bwd_add(Q, io->q.sn, w->sQ, w->dsQ, l, Dk, dQ, gr->dq.sn);
    return acc;
}

// One (b, hk): q (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), d_o (B,H,N,Dv);
// writes dq, dk, dv rows of the group and dbeta[gi] = dL/dbeta of its G heads.
static void task_backward(bwd_task *t, double *dbeta)
{
    const infini_plan *pl = t->pl;
    const attn_args *a = t->a;
    bwd_bufs *w = t->w;
    int64_t Dk = pl->Dk, Dv = pl->Dv, N = a->Nk, ns = 0;
    size_t mz = sizeof(float) * (size_t)(infini_round16(Dk * Dv) + infini_round16(Dk));
    for (int64_t n = 0; n < N; n++) {
        memset(attn_at(&t->g->dk, t->b, t->hk, n), 0, sizeof(float) * (size_t)Dk);
        memset(attn_at(&t->g->dv, t->b, t->hk, n), 0, sizeof(float) * (size_t)Dv);
    }
    /* pass 1: the memory each segment reads (dnum serves as the update's U scratch) */
    for (int64_t j0 = 0, j1; j0 < N; j0 = j1, ns++) {
        j1 = attn_key_block_end(a, j0, pl->L);
        w->starts[ns] = j0;
        float *M = state_M(t, ns);
        if (attn_key_starts_seq(a, j0))
            memset(M, 0, mz);
        else {
            int64_t p0 = w->starts[ns - 1];
            memcpy(M, state_M(t, ns - 1), mz);
            t->flops += attn_infini_update(pl, t->io, t->b, t->hk, p0, j0 - p0, M, state_z(t, ns),
                                           !attn_key_starts_seq(a, p0), w->sK, w->dnum);
        }
    }
    w->starts[ns] = N;
    for (int64_t gi = 0; gi < pl->G; gi++)
        dbeta[gi] = 0;
    /* pass 2: backwards */
    for (int64_t s = ns - 1; s >= 0; s--) {
        int64_t j0 = w->starts[s], j1 = w->starts[s + 1], l = j1 - j0;
        int read = !attn_key_starts_seq(a, j0);
        const float *Ms = state_M(t, s), *zs = state_z(t, s);
        if (j1 < N && !attn_key_starts_seq(a, j1))
            update_bwd(t, j0, l, Ms, zs, read);
        else { /* a document's last segment: its update reaches no output */
            memset(w->dM, 0, sizeof(float) * (size_t)(Dk * Dv));
            memset(w->dz, 0, sizeof(float) * (size_t)Dk);
        }
        for (int64_t gi = 0; gi < pl->G; gi++)
            dbeta[gi] += head_bwd(t, t->hk * pl->G + gi, j0, l, Ms, zs, read);
    }
    for (int64_t gi = 0; gi < pl->G; gi++) {
        float g = attn_infini_gate(&t->io->w, t->hk * pl->G + gi);
        dbeta[gi] *= (double)g * (1.0 - (double)g);
    }
}

int attn_infini_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    infini_plan pl;
    int rc = attn_infini_plan(&pl, a);
    if (rc || (rc = attn_infini_check_w(a, &io->w)))
        return rc;
    if (!a->backward || !pl.bwd_floats)
        return attn_fail(ATTN_EINVAL, "infini backward: expected a context created with backward=1");
    if (!g->dw.data || g->dw.H < a->H)
        return attn_fail(ATTN_EINVAL, "infini backward: expected g.dw [1,H=%lld,1,1] for dbeta, found %s",
                         (long long)a->H, g->dw.data ? "fewer heads" : "none");
    int64_t tasks = a->B * a->H_kv;
    size_t head = (size_t)(a->B * a->H_kv) * pl.state_floats;
    double *part = (double *)(void *)((float *)ctx->workspace + head + (size_t)a->threads * pl.slot_floats);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        bwd_bufs w;
        float *slot = (float *)ctx->workspace + head + (size_t)omp_get_thread_num() * pl.slot_floats;
        carve(&pl, slot, &w);
        bwd_task tk = {.pl = &pl, .a = a, .io = io, .g = g, .b = t / a->H_kv, .hk = t % a->H_kv, .w = &w};
        task_backward(&tk, part + tk.b * a->H + tk.hk * pl.G);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tk.flops);
        attn_counter_add(ATTN_CNT_BYTES_READ,
                         (long long)(4.0 * (double)(a->Nk * (pl.G * (pl.Dk + pl.Dv) + pl.Dk + pl.Dv))));
    }
    for (int64_t h = 0; h < a->H; h++) {
        double s = 0;
        for (int64_t b = 0; b < a->B; b++)
            s += part[b * a->H + h];
        attn_at(&g->dw, 0, h, 0)[0] = (float)s;
    }
    return 0;
}
