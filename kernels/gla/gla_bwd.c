/* retnet / lightning / gla backward (docs/kernels/gla.md), chunked, O(N) time and
 * O(Dk Dv) memory per task, no stored states:
 *   dq_t = sc S_t do_t                               forward sweep (S as in the forward)
 *   dk_t = Ghat_t v_t,  dv_t = Ghat_t^T k_t          reverse sweep, with
 *   Ghat_t = sc q_t do_t^T + diag(alpha_{t+1}) Ghat_{t+1}   (summed over the G query heads)
 * Per chunk (a_r relative to the state before it, R = Ghat after the chunk
 * brought to its last row):
 *   dQ  = sc (dO S^T) * e^{a} + lower(dO V^T) K                       (sc folded)
 *   dK  = (V R^T) * e^{a_{L-1} - a} + sum_h upper(dO_h V^T) sc Q_h
 *   dV  = (K * e^{a_{L-1} - a}) R + sum_h A_h^T dO_h,  A_h = decayed(sc Q_h K^T)
 *   R  <- diag(e^{a_{L-1}}) R + sum_h (sc Q_h * e^{a})^T dO_h
 * lower/upper are the decayed products of gla_chunk.c. Log-gates (gla):
 * d a_t = sum_h q_t * dq_t - k_t * dk_t (a_t the cumulative log-gate: it scales
 * q_t by e^{a_t} and k_t by e^{-a_t}) and dg_u = sum_{t >= u} d a_t within the
 * document, in double; the
 * gate of a document's first token multiplies a zero state: dg = 0 there. */
#include "gla_internal.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

typedef struct {
    const gla_plan *pl;
    const attn_io *io;
    const attn_grads *g;
    int64_t b, hk, Dk, Dv;
    float sc;
    const float *K, *V; /* rows of the current chunk */
    gla_chunk ch;
    float *A, *Bm, *S; /* L x L, L x L, Dk x Dv */
    double *run;       /* Dk: running sum of d a */
    double flops;
} bwd_task;

static void zero_rows(float *M, int64_t lm, int64_t L, int64_t n)
{
    for (int64_t r = 0; r < L; r++)
        memset(M + r * lm, 0, sizeof(float) * (size_t)n);
}

/* Points the task at the chunk of rows [c0, c0 + L) and prepares its decay. */
static void chunk_begin(bwd_task *t, int64_t c0, int64_t L)
{
    const attn_io *io = t->io;
    t->K = attn_at(&io->k, t->b, t->hk, c0), t->V = attn_at(&io->v, t->b, t->hk, c0);
    attn_gla_chunk_prep(&t->ch, L, t->pl->vec ? attn_at(&io->gate, t->b, t->hk, c0) : NULL, io->gate.sn, t->K,
                        io->k.sn);
}

/* Forward sweep over the chunk at c0 (L rows): dQ of every head of the group, then S to the next chunk. */
static void dq_chunk(bwd_task *t, int64_t c0, int64_t L, int fresh)
{
    const attn_io *io = t->io;
    const attn_grads *g = t->g;
    int64_t Dk = t->Dk, Dv = t->Dv, b = t->b, hk = t->hk;
    const float *K = t->K, *V = t->V;
    float sc = t->sc;
    for (int64_t h = hk * t->pl->G; h < (hk + 1) * t->pl->G; h++) {
        const float *dO = attn_at(&g->d_o, b, h, c0);
        float *dQ = attn_at(&g->dq, b, h, c0);
        if (fresh)
            zero_rows(dQ, g->dq.sn, L, Dk);
        else { // dQ = sc (dO S^T) * e^{a}
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)Dk, (int)Dv, sc, dO, (int)g->d_o.sn,
                        t->S, (int)Dv, 0.0f, dQ, (int)g->dq.sn);
            attn_gla_scale_rows(&t->ch, 1, dQ, g->dq.sn, Dk);
        }
        // dQ += sc lower(dO V^T) K
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)Dv, 1.0f, dO, (int)g->d_o.sn, V,
                    (int)io->v.sn, 0.0f, t->Bm, (int)L);
        attn_gla_apply_lower(&t->ch, t->Bm, K, io->k.sn, sc, dQ, g->dq.sn);
        t->flops += 2.0 * (double)(L * L * (Dk + Dv)) + (fresh ? 0 : 2.0 * (double)(L * Dk * Dv));
    }
    attn_gla_state_step(&t->ch, K, io->k.sn, V, io->v.sn, t->S, Dv);
    t->flops += 2.0 * (double)(L * Dk * Dv);
}

/* Reverse sweep over the chunk at c0: dK, dV of the KV head, then R (in t->S) to the previous chunk. */
static void dkv_chunk(bwd_task *t, int64_t c0, int64_t L, int fresh)
{
    const attn_io *io = t->io;
    const attn_grads *g = t->g;
    int64_t Dk = t->Dk, Dv = t->Dv, b = t->b, hk = t->hk;
    const float *K = t->K, *V = t->V;
    float sc = t->sc;
    float *dK = attn_at(&g->dk, b, hk, c0), *dV = attn_at(&g->dv, b, hk, c0);
    if (fresh) {
        zero_rows(dK, g->dk.sn, L, Dk);
        zero_rows(dV, g->dv.sn, L, Dv);
    } else { // dK = (V R^T) * e^{a_{L-1} - a};  dV = (K * e^{a_{L-1} - a}) R
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)Dk, (int)Dv, 1.0f, V, (int)io->v.sn, t->S,
                    (int)Dv, 0.0f, dK, (int)g->dk.sn);
        attn_gla_scale_rows(&t->ch, 0, dK, g->dk.sn, Dk);
        attn_gla_decayed_copy(&t->ch, K, io->k.sn, 0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)Dv, (int)Dk, 1.0f, t->ch.xt, (int)Dk,
                    t->S, (int)Dv, 0.0f, dV, (int)g->dv.sn);
        t->flops += 4.0 * (double)(L * Dk * Dv);
    }
    for (int64_t h = hk * t->pl->G; h < (hk + 1) * t->pl->G; h++) {
        const float *Q = attn_at(&io->q, b, h, c0), *dO = attn_at(&g->d_o, b, h, c0);
        // dV += A^T dO, A = decayed(sc Q K^T)
        attn_gla_scores(&t->ch, Q, io->q.sn, K, io->k.sn, sc, t->A);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)L, (int)Dv, (int)L, 1.0f, t->A, (int)L, dO,
                    (int)g->d_o.sn, 1.0f, dV, (int)g->dv.sn);
        // dK += sc upper(dO V^T) Q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)Dv, 1.0f, dO, (int)g->d_o.sn, V,
                    (int)io->v.sn, 0.0f, t->Bm, (int)L);
        attn_gla_apply_upper(&t->ch, t->Bm, Q, io->q.sn, sc, dK, g->dk.sn);
        t->flops += 4.0 * (double)(L * L * (Dk + Dv));
    }
    // R = diag(e^{a_{L-1}}) R + sum_h (sc Q_h * e^{a})^T dO_h
    attn_gla_decay_state(&t->ch, t->S, Dv);
    for (int64_t h = hk * t->pl->G; h < (hk + 1) * t->pl->G; h++) {
        attn_gla_decayed_copy(&t->ch, attn_at(&io->q, b, h, c0), io->q.sn, 1);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Dk, (int)Dv, (int)L, sc, t->ch.xt, (int)Dk,
                    attn_at(&g->d_o, b, h, c0), (int)g->d_o.sn, 1.0f, t->S, (int)Dv);
        t->flops += 2.0 * (double)(L * Dk * Dv);
    }
}

/* dg_u = sum_{t >= u} (sum_h q_h,t * dq_h,t - k_t * dk_t) for u in (s0, s1); dg_{s0} = 0. */
static void dgate_segment(bwd_task *t, int64_t s0, int64_t s1)
{
    const attn_io *io = t->io;
    const attn_grads *g = t->g;
    int64_t Dk = t->pl->Dk, b = t->b, hk = t->hk;
    memset(t->run, 0, sizeof(double) * (size_t)Dk);
    for (int64_t u = s1 - 1; u > s0; u--) {
        const float *k = attn_at(&io->k, b, hk, u), *dk = attn_at(&g->dk, b, hk, u);
        for (int64_t d = 0; d < Dk; d++)
            t->run[d] -= (double)k[d] * dk[d];
        for (int64_t h = hk * t->pl->G; h < (hk + 1) * t->pl->G; h++) {
            const float *q = attn_at(&io->q, b, h, u), *dq = attn_at(&g->dq, b, h, u);
            for (int64_t d = 0; d < Dk; d++)
                t->run[d] += (double)q[d] * dq[d];
        }
        float *dg = attn_at(&g->dgate, b, hk, u);
        for (int64_t d = 0; d < Dk; d++)
            dg[d] = (float)t->run[d];
    }
    memset(attn_at(&g->dgate, b, hk, s0), 0, sizeof(float) * (size_t)Dk);
}

static void backward_task(bwd_task *t, const int64_t *seg, int64_t nseg, double w, float *ws)
{
    const gla_plan *pl = t->pl;
    int64_t C = pl->C;
    float *pw = ws;
    ws += (C + 1 + 15) / 16 * 16;
    attn_gla_powers(pw, w, C);
    attn_gla_chunk_bind(&t->ch, pl, pw, &ws);
    t->A = ws, ws += (C * C + 15) / 16 * 16;
    t->Bm = ws, ws += (C * C + 15) / 16 * 16;
    t->S = ws, ws += (pl->Dk * pl->Dv + 15) / 16 * 16;
    t->run = (double *)ws;
    for (int64_t sg = 0; sg < nseg; sg++) {
        int64_t s0 = seg[sg], s1 = seg[sg + 1], last = s0 + (s1 - 1 - s0) / C * C;
        memset(t->S, 0, sizeof(float) * (size_t)(pl->Dk * pl->Dv));
        for (int64_t c0 = s0; c0 < s1; c0 += C) {
            int64_t L = s1 - c0 < C ? s1 - c0 : C;
            chunk_begin(t, c0, L);
            dq_chunk(t, c0, L, c0 == s0);
        }
        memset(t->S, 0, sizeof(float) * (size_t)(pl->Dk * pl->Dv));
        for (int64_t c0 = last; c0 >= s0; c0 -= C) {
            int64_t L = s1 - c0 < C ? s1 - c0 : C;
            chunk_begin(t, c0, L);
            dkv_chunk(t, c0, L, c0 == last);
        }
        if (pl->vec)
            dgate_segment(t, s0, s1);
    }
}

/* The backward of one slice over the given segments (gla_internal.h). */
double attn_gla_backward_slice(const gla_plan *pl, const attn_io *io, const attn_grads *g, int64_t b, int64_t hk,
                               const int64_t *seg, int64_t nseg, double w, float sc, float *ws)
{
    bwd_task t = {.pl = pl, .io = io, .g = g, .b = b, .hk = hk, .Dk = pl->Dk, .Dv = pl->Dv, .sc = sc};
    backward_task(&t, seg, nseg, w, ws);
    return t.flops;
}

// d_o is (B,H,N,Dv); dq is (B,H,N,Dk), dk is (B,H_kv,N,Dk), dv is (B,H_kv,N,Dv), dgate (gla) is (B,H_kv,N,Dk)
int attn_gla_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "kernel '%s': backward called on a context created without "
                         "args.backward = 1 (workspace too small)", ctx->kernel->name);
    gla_plan pl;
    int rc = attn_gla_plan(&pl, attn_gla_preset_of(ctx->kernel), a);
    if (rc)
        return rc;
    if (pl.vec && (!io->gate.data || !g->dgate.data))
        return attn_fail(ATTN_EINVAL, "kernel 'gla': io.gate and grads.dgate [B,H_kv,N,D] expected, found none");
    float *slots = (float *)ctx->workspace + attn_gla_slot0(&pl);
    int64_t tasks = a->B * a->H_kv;
    double flops = 0;
    openblas_set_num_threads(1);
    /* one task per (b, KV head): it owns dK, dV, dgate of that head and dQ of its G query heads */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t i = 0; i < tasks; i++) {
        int64_t seg[GLA_MAX_SEGS + 1], nseg = attn_gla_segments(a, seg), hk = i % a->H_kv;
        double w = 0;
        if (!pl.vec)
            attn_gla_log_decay(pl.preset, a, hk, &w); /* validated in init */
        flops += attn_gla_backward_slice(&pl, io, g, i / a->H_kv, hk, seg, nseg, w, (float)attn_scale(a),
                                         slots + (size_t)omp_get_thread_num() * pl.thread_floats);
    }
    attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    /* two sweeps: K, V, dO (and gates) twice, Q once, then q, dq, k, dk for the gate gradient */
    double Dk = (double)pl.Dk, Dv = (double)pl.Dv, H = (double)a->H, Hkv = (double)a->H_kv;
    double per_row = 2 * (Hkv * (Dk + Dv) + H * Dv) + H * Dk + (pl.vec ? 2 * Hkv * Dk + 2 * (H + Hkv) * Dk : 0);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * (double)(a->B * a->Nk) * per_row));
    return 0;
}
