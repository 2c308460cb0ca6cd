/* Chunked backward of the linear-attention core (docs/kernels/linear.md).
 *
 * With den_i the row's denominator, g_i = dO_i / den_i and c_i = <dO_i, o_i>:
 *   dphi(q_i) = S_i g_i - z_i <g_i, o_i>,
 *   dphi(k_j) = R_j v_j - r_j,   dv_j = R_j^T phi(k_j),
 *   R_j = sum_{i >= j} phi(q_i) g_i^T,  r_j = sum_{i >= j} phi(q_i) <g_i, o_i>,
 * then dx = phi'(x) dphi. In the augmented layout g_ext_i = (dO_i, -c_i)/den_i
 * (Dv+1 columns) gives dphi(q_i) = S_ext_i g_ext_i and R_ext = [R | -r], so
 * dphi(k_j) = R_ext_j v_ext_j.
 *
 * Per (b, KV head) task and segment:
 *   sweep 1 (chunks ascending): recompute phi(Q) and den of every head (O is read);
 *     store (1/den, c, m, den_s) per row; dphi(Q) = G_ext S_ext^T + tril(G_ext V_ext^T) phi(K);
 *   sweep 2 (chunks descending): dphi(K) = V_ext R_ext^T + sum_g tril(G_ext V_ext^T)^T phi(Q_g),
 *     dV = phi(K) R + sum_g tril(phi(Q_g) phi(K)^T)^T G_g, then R_ext += phi(Q_g)^T G_ext;
 *   non-causal: S_ext of the whole segment, then R_ext of the whole segment;
 *   window (based): the exact-window weights' gradients are added last.
 * Fixed order per task: bitwise identical for any thread count. */
#include "linear_internal.h"


#include <cblas.h>
#include <string.h>

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

/* gx = (dO_i, -c_i) / den_i for rows [r0, r0+n) of (b, h) from the stored stats. */
static void load_gx(const attn_grads *g, int64_t b, int64_t h, int64_t r0, int64_t n, const float *st, float *gx)
{
    int64_t Dv = g->d_o.D, Dv1 = Dv + 1;
    for (int64_t i = 0; i < n; i++) {
        const float *dO = attn_at(&g->d_o, b, h, r0 + i), *s = st + 4 * (r0 + i);
        for (int64_t d = 0; d < Dv; d++)
            gx[i * Dv1 + d] = dO[d] * s[0];
        gx[i * Dv1 + Dv] = -s[1] * s[0];
    }
}

/* den_i - eps = phi(q_i).z + sum_{j <= i in the chunk} phi(q_i).phi(k_j) (causal)
 * into w->ox[i]: the forward's denominator without its numerator (O itself is
 * read from the forward's output, as FlashAttention's backward does). */
static double chunk_den(const lin_cfg *cfg, int64_t n, int64_t Dv, const float *S, int state_zero, lin_scratch *w)
{
    int64_t F = cfg->fm.F, Dv1 = Dv + 1;
    double fl = 0;
    if (state_zero)
        memset(w->ox, 0, sizeof(float) * (size_t)n);
    else {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)F, 1.0f, w->fq, (int)F, S + Dv, (int)Dv1, 0.0f, w->ox,
                    1);
        fl += 2.0 * (double)(n * F);
    }
    if (cfg->causal) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)F, 1.0f, w->fq, (int)F, w->fk,
                    (int)F, 0.0f, w->A, (int)n);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j <= i; j++)
                w->ox[i] += w->A[i * n + j];
        fl += 2.0 * (double)(n * n * F);
    }
    return fl;
}

/* Stats of rows [r0, r0+n) of head h: (1/den, c = <dO, o>, m, den_s); rows
 * without a key in the linear part (window) get 1/den = 0. The window mix
 * recomputes the rows (its o and den need the exact part); without it, O is
 * the forward's and only den is recomputed. */
static double recompute_rows(const lin_cfg *cfg, const attn_io *io, const attn_grads *g, int64_t b, int64_t h,
                             int64_t r0, int64_t n, int64_t lo, const float *S, int state_zero, lin_scratch *w,
                             float *st)
{
    int64_t F = cfg->fm.F, Dv = io->v.D, Dv1 = Dv + 1;
    double fl;
    lin_qmap(cfg)->fwd(lin_qmap(cfg), attn_at(&io->q, b, h, r0), io->q.sn, n, w->fq, F);
    if (cfg->W > 0) {
        fl = lin_chunk_numden(n, F, Dv1, w->fq, w->fk, w->vx, S, state_zero, cfg->causal, w->A, w->ox);
        fl += lin_chunk_finish(cfg, io, b, h, r0, n, lo, w, w->dv, Dv, st + 4 * r0);
    } else {
        fl = chunk_den(cfg, n, Dv, S, state_zero, w);
        for (int64_t i = 0; i < n; i++) {
            float den = w->ox[i] + (float)cfg->eps, *s = st + 4 * (r0 + i);
            s[0] = 1.0f / den, s[2] = 0, s[3] = den;
            memcpy(w->dv + i * Dv, attn_at(&io->o, b, h, r0 + i), sizeof(float) * (size_t)Dv);
        }
    }
    for (int64_t i = 0; i < n; i++) {
        const float *dO = attn_at(&g->d_o, b, h, r0 + i);
        float c = 0;
        for (int64_t d = 0; d < Dv; d++)
            c += dO[d] * w->dv[i * Dv + d];
        st[4 * (r0 + i) + 1] = c;
        if (r0 + i - cfg->W < lo)
            st[4 * (r0 + i)] = 0; /* no key in the linear part yet: no gradient through it */
    }
    return fl;
}

/* dq rows [r0, r0+n) of head h: dphi(Q) = G S^T [+ tril(G V^T) phi(K)], then phi'. */
static double dq_chunk(const lin_cfg *cfg, const attn_io *io, const attn_grads *g, int64_t b, int64_t h,
                       int64_t r0, int64_t n, const float *S, int state_zero, lin_scratch *w, const float *st)
{
    int64_t F = cfg->fm.F, Dv1 = io->v.D + 1;
    double fl = 0;
    load_gx(g, b, h, r0, n, st, w->gx);
    if (state_zero)
        memset(w->dfq, 0, sizeof(float) * (size_t)(n * F));
    else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)F, (int)Dv1, 1.0f, w->gx, (int)Dv1, S,
                    (int)Dv1, 0.0f, w->dfq, (int)F);
        fl += 2.0 * (double)(n * F * Dv1);
    }
    if (cfg->causal) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)Dv1, 1.0f, w->gx, (int)Dv1,
                    w->vx, (int)Dv1, 0.0f, w->B, (int)n);
        lin_tril(w->B, n, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)F, (int)n, 1.0f, w->B, (int)n, w->fk,
                    (int)F, 1.0f, w->dfq, (int)F);
        fl += 2.0 * (double)(n * n * (Dv1 + F));
    }
    const lin_fmap *qm = lin_qmap(cfg);
    qm->bwd(qm, attn_at(&io->q, b, h, r0), io->q.sn, n, w->dfq, F, attn_at(&g->dq, b, h, r0), g->dq.sn);
    return fl;
}

/* R += phi(Q)^T G of the loaded head (w->fq, w->gx). */
static double r_add(int64_t n, int64_t F, int64_t Dv1, const lin_scratch *w, float *R)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, (int)Dv1, (int)n, 1.0f, w->fq, (int)F, w->gx,
                (int)Dv1, 1.0f, R, (int)Dv1);
    return 2.0 * (double)(n * F * Dv1);
}

/* dphi(K) = V_ext R^T and dV = phi(K) R[:, :Dv] (the keys' share of later queries). */
static double kv_from_r(int64_t n, int64_t F, int64_t Dv, const lin_scratch *w, const float *R)
{
    int64_t Dv1 = Dv + 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)F, (int)Dv1, 1.0f, w->vx, (int)Dv1, R,
                (int)Dv1, 0.0f, w->dfk, (int)F);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv, (int)F, 1.0f, w->fk, (int)F, R,
                (int)Dv1, 0.0f, w->dv, (int)Dv);
    return 2.0 * (double)(n * F * (Dv1 + Dv));
}

/* Writes dk, dv of the loaded chunk (rows r0 - lag + r, those at or after lo). */
static void kv_write(const lin_cfg *cfg, const attn_io *io, const attn_grads *g, int64_t b, int64_t hk, int64_t r0,
                     int64_t n, int64_t lag, int64_t lo, const lin_scratch *w)
{
    int64_t F = cfg->fm.F, Dv = io->v.D;
    for (int64_t r = 0; r < n; r++) {
        int64_t j = r0 - lag + r;
        if (j < lo)
            continue;
        cfg->fm.bwd(&cfg->fm, attn_at(&io->k, b, hk, j), io->k.sn, 1, w->dfk + r * F, F, attn_at(&g->dk, b, hk, j),
                    g->dk.sn);
        memcpy(attn_at(&g->dv, b, hk, j), w->dv + r * Dv, sizeof(float) * (size_t)Dv);
    }
}

/* Causal sweep 2 on the loaded chunk at r0: the keys' share of later chunks
 * (from R), the intra-chunk terms of each head of the group, then R += its queries. */
static double kv_chunk_causal(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                              int64_t b, int64_t hk, int64_t r0, int64_t n, lin_scratch *w, float *R)
{
    const attn_args *a = &ctx->args;
    int64_t F = cfg->fm.F, Dv = attn_dv(a), Dv1 = Dv + 1, G = a->H / a->H_kv;
    double fl = kv_from_r(n, F, Dv, w, R);
    for (int64_t gi = 0; gi < G; gi++) {
        int64_t h = hk * G + gi;
        lin_qmap(cfg)->fwd(lin_qmap(cfg), attn_at(&io->q, b, h, r0), io->q.sn, n, w->fq, F);
        load_gx(g, b, h, r0, n, lin_rowstats_of(ctx, cfg, b, h), w->gx);
        // dphi(K) += tril(G V_ext^T)^T phi(Q)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)Dv1, 1.0f, w->gx, (int)Dv1,
                    w->vx, (int)Dv1, 0.0f, w->B, (int)n);
        lin_tril(w->B, n, n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)F, (int)n, 1.0f, w->B, (int)n, w->fq,
                    (int)F, 1.0f, w->dfk, (int)F);
        // dV += tril(phi(Q) phi(K)^T)^T G[:, :Dv]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)F, 1.0f, w->fq, (int)F, w->fk,
                    (int)F, 0.0f, w->A, (int)n);
        lin_tril(w->A, n, n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)Dv, (int)n, 1.0f, w->A, (int)n, w->gx,
                    (int)Dv1, 1.0f, w->dv, (int)Dv);
        fl += 2.0 * (double)(n * n * (Dv1 + 2 * F + Dv)) + r_add(n, F, Dv1, w, R);
    }
    return fl;
}

static double bwd_segment_causal(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                                 int64_t b, int64_t hk, lin_seg s, float *S, lin_scratch *w)
{
    const attn_args *a = &ctx->args;
    int64_t F = cfg->fm.F, Dv = attn_dv(a), Dv1 = Dv + 1, G = a->H / a->H_kv, C = cfg->C, lag = cfg->W;
    double fl = 0;
    memset(S, 0, sizeof(float) * (size_t)(F * Dv1));
    for (int64_t r0 = s.lo; r0 < s.hi; r0 += C) { /* sweep 1: rows' stats and dq */
        int64_t n = min64(C, s.hi - r0);
        lin_load_kv(cfg, io, b, hk, r0, n, lag, s.lo, w->fk, w->vx);
        for (int64_t gi = 0; gi < G; gi++) {
            float *st = lin_rowstats_of(ctx, cfg, b, hk * G + gi);
            fl += recompute_rows(cfg, io, g, b, hk * G + gi, r0, n, s.lo, S, r0 == s.lo, w, st);
            fl += dq_chunk(cfg, io, g, b, hk * G + gi, r0, n, S, r0 == s.lo, w, st);
        }
        fl += lin_state_add(n, F, Dv1, w->fk, w->vx, S);
    }
    /* keys of the last `lag` rows never reach the linear part (window only) */
    for (int64_t j = s.hi - lag > s.lo ? s.hi - lag : s.lo; j < s.hi; j++) {
        memset(attn_at(&g->dk, b, hk, j), 0, sizeof(float) * (size_t)a->D);
        memset(attn_at(&g->dv, b, hk, j), 0, sizeof(float) * (size_t)Dv);
    }
    memset(w->R, 0, sizeof(float) * (size_t)(F * Dv1));
    for (int64_t c = (s.hi - s.lo + C - 1) / C - 1; c >= 0; c--) { /* sweep 2: dk, dv */
        int64_t r0 = s.lo + c * C, n = min64(C, s.hi - r0);
        lin_load_kv(cfg, io, b, hk, r0, n, lag, s.lo, w->fk, w->vx);
        fl += kv_chunk_causal(ctx, cfg, io, g, b, hk, r0, n, w, w->R);
        kv_write(cfg, io, g, b, hk, r0, n, lag, s.lo, w);
    }
    for (int64_t r0 = s.lo; lag > 0 && r0 < s.hi; r0 += C) /* the exact window's share */
        for (int64_t gi = 0; gi < G; gi++)
            fl += lin_window_backward(cfg, io, g, b, hk * G + gi, r0, min64(C, s.hi - r0), s.lo, w,
                                      lin_rowstats_of(ctx, cfg, b, hk * G + gi));
    return fl;
}

static double bwd_segment_full(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                               int64_t b, int64_t hk, lin_seg s, float *S, lin_scratch *w)
{
    const attn_args *a = &ctx->args;
    int64_t F = cfg->fm.F, Dv = attn_dv(a), Dv1 = Dv + 1, G = a->H / a->H_kv, C = cfg->C;
    double fl = 0;
    memset(S, 0, sizeof(float) * (size_t)(F * Dv1));
    memset(w->R, 0, sizeof(float) * (size_t)(F * Dv1));
    for (int64_t r0 = s.lo; r0 < s.hi; r0 += C) {
        int64_t n = min64(C, s.hi - r0);
        lin_load_kv(cfg, io, b, hk, r0, n, 0, s.lo, w->fk, w->vx);
        fl += lin_state_add(n, F, Dv1, w->fk, w->vx, S);
    }
    for (int64_t r0 = s.lo; r0 < s.hi; r0 += C)
        for (int64_t gi = 0; gi < G; gi++) {
            int64_t n = min64(C, s.hi - r0);
            float *st = lin_rowstats_of(ctx, cfg, b, hk * G + gi);
            fl += recompute_rows(cfg, io, g, b, hk * G + gi, r0, n, s.lo, S, 0, w, st);
            fl += dq_chunk(cfg, io, g, b, hk * G + gi, r0, n, S, 0, w, st) + r_add(n, F, Dv1, w, w->R);
        }
    for (int64_t r0 = s.lo; r0 < s.hi; r0 += C) {
        int64_t n = min64(C, s.hi - r0);
        lin_load_kv(cfg, io, b, hk, r0, n, 0, s.lo, w->fk, w->vx);
        fl += kv_from_r(n, F, Dv, w, w->R);
        kv_write(cfg, io, g, b, hk, r0, n, 0, s.lo, w);
    }
    return fl;
}

/* Backward of one (b, KV head) task. */
static double backward_task(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                            int64_t b, int64_t hk, const lin_seg *seg, int64_t ns, float *S, lin_scratch *w)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv;
    double fl = 0;
    for (int64_t s = 0; s < ns; s++)
        fl += cfg->causal ? bwd_segment_causal(ctx, cfg, io, g, b, hk, seg[s], S, w)
                          : bwd_segment_full(ctx, cfg, io, g, b, hk, seg[s], S, w);
    for (int64_t gi = 0; gi < G; gi++)
        lin_zero_uncovered(a, &g->dq, b, hk * G + gi, seg, ns);
    lin_zero_uncovered(a, &g->dk, b, hk, seg, ns);
    lin_zero_uncovered(a, &g->dv, b, hk, seg, ns);
    return fl;
}

int lin_backward(attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_fail(ATTN_EINVAL, "kernel '%s': backward called on a context created without "
                                      "args.backward = 1 (workspace too small)", ctx->kernel->name);
    /* Q, dO of the G heads and K, V, each read in both sweeps */
    double bytes = 8.0 * (double)a->Nq * (double)((a->H / a->H_kv + 1) * (a->D + attn_dv(a)));
    lin_run_tasks(ctx, cfg, io, g, backward_task, bytes);
    return 0;
}
