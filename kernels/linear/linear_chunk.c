/* Chunked forward, workspace plan, cost model and double references of the
 * linear-attention core (docs/kernels/linear.md); see linear_internal.h.
 *
 * One OpenMP task per (batch, KV head): phi(K) and V_ext of a chunk are
 * built once and serve the G query heads of the group, the state S_ext is
 * per KV head. Tasks are independent and each runs in a fixed order, so the
 * result is bitwise the same for any thread count. */
#include "linear_internal.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t max64(int64_t x, int64_t y) { return x > y ? x : y; }
static size_t round16(int64_t n) { return (size_t)((n + 15) / 16 * 16); }

int lin_cfg_check(lin_cfg *cfg, const attn_args *a, const char *kernel)
{
    cfg->causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    int positional = cfg->causal || a->mask.kind == ATTN_MASK_DOCUMENT;
    if (positional && a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': expected query and key positions to coincide "
                                            "(q_off == k_off) under a causal or document mask, found "
                                            "q_off=%lld k_off=%lld", kernel, (long long)a->q_off,
                         (long long)a->k_off);
    if (cfg->W > 0 && !cfg->causal)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': param window=%lld needs a causal mask "
                                            "(the window is the W most recent keys), found a non-causal one",
                         kernel, (long long)cfg->W);
    return 0;
}

/* Floats of one thread's chunk scratch (forward and, with args.backward, backward). */
static size_t slot_floats(const attn_args *a, const lin_cfg *cfg)
{
    int64_t C = cfg->C, F = cfg->fm.F, Dv = attn_dv(a), Dv1 = Dv + 1;
    size_t n = 2 * round16(C * F) + 2 * round16(C * Dv1) + round16(C * C); /* fk fq vx ox A */
    n += round16((F + C) * Dv1) + round16(C * (F + C));                     /* sv fa */
    if (a->backward)
        n += round16(C * Dv1) + round16(C * C) + 2 * round16(C * F) + round16(C * Dv) +
             round16(F * Dv1); /* gx B dfq dfk dv R */
    if (cfg->W > 0)
        n += lin_window_scratch_floats(a, cfg);
    return n;
}

static size_t state_floats(const attn_args *a, const lin_cfg *cfg)
{
    return round16(cfg->fm.F * (attn_dv(a) + 1) + cfg->W * (a->D + attn_dv(a)));
}

/* Backward row statistics: 4 floats per query row (see linear_chunk_bwd.c). */
static size_t rowstats_floats(const attn_args *a) { return a->backward ? round16(4 * a->B * a->H * a->Nq) : 0; }

void lin_init(attn_ctx *ctx, const lin_cfg *cfg)
{
    const attn_args *a = &ctx->args;
    size_t state = (size_t)(a->B * a->H_kv) * state_floats(a, cfg);
    ctx->workspace_bytes = sizeof(float) * (state + rowstats_floats(a) + slot_floats(a, cfg) * (size_t)a->threads);
    ctx->state_bytes_used = lin_state_bytes(a, cfg->fm.F, cfg->W);
    /* the per-head slot is rounded to 16 floats for alignment: state_bytes_used
     * counts the floats the recurrence uses, not the padding */
}

/* S_ext [F x (Dv+1)] then the window tail [W x (D+Dv)] of (b, hk). */
float *lin_state_of(const attn_ctx *ctx, const lin_cfg *cfg, int64_t b, int64_t hk)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + (size_t)(b * a->H_kv + hk) * state_floats(a, cfg);
}

float *lin_rowstats_of(const attn_ctx *ctx, const lin_cfg *cfg, int64_t b, int64_t h)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + (size_t)(a->B * a->H_kv) * state_floats(a, cfg) +
           4 * (size_t)((b * a->H + h) * a->Nq);
}

lin_scratch lin_scratch_of(const attn_ctx *ctx, const lin_cfg *cfg, int thread)
{
    const attn_args *a = &ctx->args;
    int64_t C = cfg->C, F = cfg->fm.F, Dv = attn_dv(a), Dv1 = Dv + 1;
    float *p = (float *)ctx->workspace + (size_t)(a->B * a->H_kv) * state_floats(a, cfg) + rowstats_floats(a) +
               slot_floats(a, cfg) * (size_t)thread;
    lin_scratch w;
    memset(&w, 0, sizeof w);
    float **fields[] = {&w.fk, &w.fq, &w.vx, &w.ox, &w.A, &w.sv, &w.fa};
    size_t sizes[] = {round16(C * F),   round16(C * F),          round16(C * Dv1),      round16(C * Dv1),
                      round16(C * C),   round16((F + C) * Dv1),  round16(C * (F + C))};
    for (int i = 0; i < 7; i++)
        *fields[i] = p, p += sizes[i];
    if (a->backward) {
        float **bf[] = {&w.gx, &w.B, &w.dfq, &w.dfk, &w.dv, &w.R};
        size_t bs[] = {round16(C * Dv1), round16(C * C), round16(C * F), round16(C * F), round16(C * Dv),
                       round16(F * Dv1)};
        for (int i = 0; i < 6; i++)
            *bf[i] = p, p += bs[i];
    }
    w.win = p;
    return w;
}

size_t lin_state_bytes(const attn_args *a, int64_t F, int64_t W)
{
    return sizeof(float) * (size_t)(a->B * a->H_kv) * (size_t)(F * (attn_dv(a) + 1) + W * (a->D + attn_dv(a)));
}

/* Forward FLOPs (matrix products only, feature maps and
 * exp are not FLOPs), per (b, query head), C' = min(C, N) and W' = min(W, N):
 *   causal      4 N F Dv + 2 N C' (F + Dv)  [phi(Q) S and phi(K)^T V; tril(phi(Q) phi(K)^T) and its product with V]
 *   non-causal  4 N F Dv
 *   window      + 4 N W' D                  [the band of q k^T and P V of `based`]
 * Backward = 2.5 x forward, the FlashAttention-2 convention and the
 * exact ratio of this algorithm's products: the state part needs five N F Dv
 * products (S recomputed, dphi(Q) = G S^T, R += phi(Q)^T G, dphi(K) = V R^T,
 * dV = phi(K) R) against the forward's two, and the chunk part five C x C
 * products (A, B = G V^T, B phi(K), B^T phi(Q), A^T G) against two. */
double lin_flops(const attn_args *a, attn_pass pass, int64_t F, int64_t C, int64_t W)
{
    double Dv = (double)attn_dv(a), Fd = (double)F, f = 0;
    int causal = a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal;
    for (int64_t b = 0; b < a->B; b++) { /* each sequence at its own length (a padded batch) */
        int64_t n = attn_q_len(a, b);
        double N = (double)n;
        f += 4 * N * Fd * Dv;
        if (causal)
            f += 2 * N * (double)min64(C, n) * (Fd + Dv) + 4 * N * (double)min64(W, n) * (double)a->D;
    }
    f *= (double)a->H;
    return pass == ATTN_PASS_FWD ? f : 2.5 * f;
}

/* Minimum fp32 traffic, each tensor once (as docs/kernel-interface.md): forward reads
 * Q, K, V and writes O (no LSE: linear attention has no logsumexp); backward
 * reads Q, K, V, dO and writes dQ, dK, dV (O is recomputed, not read). */
double lin_bytes(const attn_args *a, attn_pass pass)
{
    double H = (double)a->H, Hkv = (double)a->H_kv, rows = attn_batch_rows(a); /* B * N unless padded */
    double D = (double)a->D, Dv = (double)attn_dv(a);
    if (pass == ATTN_PASS_FWD)
        return 4 * rows * (H * D + Hkv * (D + Dv) + H * Dv);
    return 4 * rows * (2 * H * D + 2 * Hkv * (D + Dv) + H * Dv);
}

int64_t lin_segments(const attn_args *a, int64_t b, lin_seg *seg)
{
    /* documents are the same for every batch entry (mask.h); a padded batch
     * cuts them at the sequence's end, the rows after it are uncovered */
    const attn_mask *m = &a->mask;
    int64_t end = attn_q_len(a, b);
    if (m->kind != ATTN_MASK_DOCUMENT) {
        seg[0] = (lin_seg){.lo = 0, .hi = end};
        return end > 0;
    }
    int64_t ns = 0;
    for (int64_t s = 0; s < m->n_spans; s++) {
        int64_t lo = max64(m->cu[s] - a->q_off, 0), hi = min64(m->cu[s + 1] - a->q_off, end);
        if (lo < hi)
            seg[ns++] = (lin_seg){.lo = lo, .hi = hi};
    }
    return ns;
}

void lin_load_kv(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t hk, int64_t r0, int64_t n,
                 int64_t lag, int64_t lo, float *fk, float *vx)
{
    int64_t F = cfg->fm.F, Dv = io->v.D, Dv1 = Dv + 1;
    int64_t pad = min64(max64(lo - (r0 - lag), 0), n); /* leading rows without a key */
    memset(fk, 0, sizeof(float) * (size_t)(pad * F));
    memset(vx, 0, sizeof(float) * (size_t)(pad * Dv1));
    if (pad < n)
        cfg->fm.fwd(&cfg->fm, attn_at(&io->k, b, hk, r0 - lag + pad), io->k.sn, n - pad, fk + pad * F, F);
    for (int64_t r = pad; r < n; r++) {
        memcpy(vx + r * Dv1, attn_at(&io->v, b, hk, r0 - lag + r), sizeof(float) * (size_t)Dv);
        vx[r * Dv1 + Dv] = 1.0f;
    }
}

void lin_tril(float *X, int64_t n, int64_t ld)
{
    for (int64_t i = 0; i < n; i++)
        memset(X + i * ld + i + 1, 0, sizeof(float) * (size_t)(n - i - 1));
}

double lin_chunk_numden(int64_t n, int64_t F, int64_t Dv1, const float *fq, const float *fk, const float *vx,
                           const float *S, int state_zero, int intra, float *A, float *ox)
{
    double fl = 0;
    if (state_zero)
        memset(ox, 0, sizeof(float) * (size_t)(n * Dv1));
    else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv1, (int)F, 1.0f, fq, (int)F, S,
                    (int)Dv1, 0.0f, ox, (int)Dv1);
        fl += 2.0 * (double)(n * Dv1 * F);
    }
    if (intra) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)F, 1.0f, fq, (int)F, fk, (int)F,
                    0.0f, A, (int)n);
        lin_tril(A, n, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv1, (int)n, 1.0f, A, (int)n, vx,
                    (int)Dv1, 1.0f, ox, (int)Dv1);
        fl += 2.0 * (double)(n * n * (F + Dv1));
    }
    return fl;
}

/* o_i = ox_i[:Dv] / den_i with den_i = ox_i[Dv] + eps (Katharopoulos et al.
 * 2020 eq. 6); stats get (1/den_i, 0, 0, den_i). */
double lin_chunk_finish(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t h, int64_t r0, int64_t n,
                        int64_t lo, lin_scratch *w, float *out, int64_t ldo, float *stats)
{
    if (cfg->W > 0)
        return lin_window_forward(cfg, io, b, h, r0, n, lo, w, out, ldo, stats);
    int64_t Dv = io->v.D, Dv1 = Dv + 1;
    for (int64_t i = 0; i < n; i++) {
        float den = w->ox[i * Dv1 + Dv] + (float)cfg->eps, *o = out + i * ldo;
        for (int64_t d = 0; d < Dv; d++)
            o[d] = w->ox[i * Dv1 + d] / den;
        if (stats)
            stats[4 * i] = 1.0f / den, stats[4 * i + 1] = 0, stats[4 * i + 2] = 0, stats[4 * i + 3] = den;
    }
    return 0;
}

/* Output rows [r0, r0+n) of head h from the state (keys before the chunk)
 * and, causal, the chunk's own keys, in one sgemm:
 *   ox = [phi(Q) | tril(phi(Q) phi(K)^T)] (n x (F+n)) [S_ext ; V_ext] ((F+n) x (Dv+1)),
 * the state and the chunk's values stacked in w->sv. One call with k = F + n
 * runs closer to sgemm peak than two with k = F and k = n. */
static void chunk_out(const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t h, int64_t r0, int64_t n,
                      int64_t lo, int state_zero, lin_scratch *w, double *fl)
{
    int64_t F = cfg->fm.F, Dv1 = io->v.D + 1, ld = F + cfg->C;
    lin_qmap(cfg)->fwd(lin_qmap(cfg), attn_at(&io->q, b, h, r0), io->q.sn, n, w->fa, ld);
    if (cfg->causal) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)F, 1.0f, w->fa, (int)ld, w->fk,
                    (int)F, 0.0f, w->fa + F, (int)ld);
        lin_tril(w->fa + F, n, ld);
        *fl += 2.0 * (double)(n * n * F);
    }
    int64_t k0 = state_zero ? F : 0, k1 = cfg->causal ? F + n : F;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)Dv1, (int)(k1 - k0), 1.0f, w->fa + k0,
                (int)ld, w->sv + k0 * Dv1, (int)Dv1, 0.0f, w->ox, (int)Dv1);
    *fl += 2.0 * (double)(n * (k1 - k0) * Dv1);
    *fl += lin_chunk_finish(cfg, io, b, h, r0, n, lo, w, attn_at(&io->o, b, h, r0), io->o.sn, NULL);
}

/* S += phi(K_c)^T V_ext of the loaded chunk. */
double lin_state_add(int64_t n, int64_t F, int64_t Dv1, const float *fk, const float *vx, float *S)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, (int)Dv1, (int)n, 1.0f, fk, (int)F, vx, (int)Dv1,
                1.0f, S, (int)Dv1);
    return 2.0 * (double)(n * F * Dv1);
}

/* Forward of one segment of (b, hk) for its G query heads; the state S_ext
 * lives in w->sv, right above the chunk's V_ext. */
static void forward_segment(const attn_args *a, const lin_cfg *cfg, const attn_io *io, int64_t b, int64_t hk,
                            lin_seg s, lin_scratch *w, double *fl)
{
    int64_t F = cfg->fm.F, Dv1 = attn_dv(a) + 1, G = a->H / a->H_kv, C = cfg->C;
    float *S = w->sv, *vx = w->sv + F * Dv1;
    memset(S, 0, sizeof(float) * (size_t)(F * Dv1));
    if (!cfg->causal) /* S over the whole segment first */
        for (int64_t r0 = s.lo; r0 < s.hi; r0 += C) {
            int64_t n = min64(C, s.hi - r0);
            lin_load_kv(cfg, io, b, hk, r0, n, 0, s.lo, w->fk, vx);
            *fl += lin_state_add(n, F, Dv1, w->fk, vx, S);
        }
    for (int64_t r0 = s.lo; r0 < s.hi; r0 += C) {
        int64_t n = min64(C, s.hi - r0);
        if (cfg->causal)
            lin_load_kv(cfg, io, b, hk, r0, n, cfg->W, s.lo, w->fk, vx);
        for (int64_t g = 0; g < G; g++)
            chunk_out(cfg, io, b, hk * G + g, r0, n, s.lo, cfg->causal && r0 == s.lo, w, fl);
        if (cfg->causal)
            *fl += lin_state_add(n, F, Dv1, w->fk, vx, S);
    }
}

void lin_zero_uncovered(const attn_args *a, const attn_tensor *o, int64_t b, int64_t h, const lin_seg *seg,
                           int64_t ns)
{
    int64_t prev = 0;
    for (int64_t s = 0; s <= ns; s++) {
        int64_t end = s < ns ? seg[s].lo : a->Nq;
        for (int64_t i = prev; i < end; i++)
            memset(attn_at(o, b, h, i), 0, sizeof(float) * (size_t)o->D);
        if (s < ns)
            prev = seg[s].hi;
    }
}

/* Forward of one (b, KV head) task: every segment, uncovered rows, the window tail. */
static double forward_task(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                           int64_t b, int64_t hk, const lin_seg *seg, int64_t ns, float *S, lin_scratch *w)
{
    (void)g;
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv;
    double fl = 0;
    for (int64_t s = 0; s < ns; s++)
        forward_segment(a, cfg, io, b, hk, seg[s], w, &fl);
    /* the state to continue the stream: S_ext after the last segment */
    if (ns > 0)
        memcpy(S, w->sv, sizeof(float) * (size_t)(cfg->fm.F * (attn_dv(a) + 1)));
    for (int64_t gi = 0; gi < G; gi++)
        lin_zero_uncovered(a, &io->o, b, hk * G + gi, seg, ns);
    if (cfg->W > 0)
        lin_window_keep_tail(a, cfg, io, b, hk, S);
    return fl;
}

void lin_run_tasks(const attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io, const attn_grads *g,
                   lin_task_fn task, double bytes_per_task)
{
    const attn_args *a = &ctx->args;
    int64_t tasks = a->B * a->H_kv;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        lin_scratch w = lin_scratch_of(ctx, cfg, omp_get_thread_num());
        double fl = 0;
        lin_seg seg[ATTN_MASK_MAX_SPANS + 1];
        /* dynamic: the (b, KV head) tasks of a padded or ragged batch differ in length */
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t b = t / a->H_kv, hk = t % a->H_kv, ns = lin_segments(a, b, seg);
            fl += task(ctx, cfg, io, g, b, hk, seg, ns, lin_state_of(ctx, cfg, b, hk), &w);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)fl);
    }
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(bytes_per_task * (double)tasks));
}

int lin_forward(attn_ctx *ctx, const lin_cfg *cfg, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    /* Q of the G heads once; K and V once (causal) or twice (non-causal: S first) */
    double bytes = 4.0 * (double)a->Nq *
                   (double)(a->H / a->H_kv * a->D + (cfg->causal ? 1 : 2) * (a->D + attn_dv(a)));
    lin_run_tasks(ctx, cfg, io, NULL, forward_task, bytes);
    return 0;
}

/* ---- the kernel callbacks of `linear` and `based`, given their cfg builder ---- */

int lin_k_init(attn_ctx *ctx, const attn_args *a, lin_cfg_fn make)
{
    lin_cfg cfg;
    int rc = make(&cfg, a);
    if (!rc)
        lin_init(ctx, &cfg);
    return rc;
}

int lin_k_forward(attn_ctx *ctx, const attn_io *io, lin_cfg_fn make)
{
    lin_cfg cfg;
    int rc = make(&cfg, &ctx->args);
    return rc ? rc : lin_forward(ctx, &cfg, io);
}

int lin_k_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g, lin_cfg_fn make)
{
    lin_cfg cfg;
    int rc = make(&cfg, &ctx->args);
    return rc ? rc : lin_backward(ctx, &cfg, io, g);
}

double lin_k_flops(const attn_args *a, attn_pass pass, lin_cfg_fn make)
{
    lin_cfg cfg;
    return make(&cfg, a) ? 0 : lin_flops(a, pass, cfg.fm.F, cfg.C, cfg.W);
}

size_t lin_k_state_bytes(const attn_args *a, lin_cfg_fn make)
{
    lin_cfg cfg;
    return make(&cfg, a) ? 0 : lin_state_bytes(a, cfg.fm.F, cfg.W);
}

int lin_k_ref_forward(const attn_args *a, const attn_io64 *io, lin_cfg_fn make)
{
    lin_cfg cfg;
    int rc = make(&cfg, a);
    return rc ? rc : lin_ref_forward64(a, &cfg, io);
}

/* ---- double references ---- */

/* S += phi(k_j) v_j^T, z += phi(k_j) */
static void ref_add_key(const lin_cfg *cfg, const attn_io64 *io, int64_t b, int64_t hk, int64_t j, int64_t Dv,
                        double *S, double *z, double *fk)
{
    cfg->fm.fwd64(&cfg->fm, attn_at64(&io->k, b, hk, j), fk);
    for (int64_t f = 0; f < cfg->fm.F; f++) {
        z[f] += fk[f];
        for (int64_t d = 0; d < Dv; d++)
            S[f * Dv + d] += fk[f] * attn_at64(&io->v, b, hk, j)[d];
    }
}

// one segment of (b, h): the recurrence S_i = S_{i-1} + phi(k_i) v_i^T, z_i likewise
static void ref_segment(const attn_args *a, const lin_cfg *cfg, const attn_io64 *io, int64_t b, int64_t h,
                        lin_seg s, double *S, double *z, double *fq, double *fk)
{
    int64_t F = cfg->fm.F, D = a->D, Dv = attn_dv(a), hk = h / (a->H / a->H_kv), W = cfg->W;
    memset(S, 0, sizeof(double) * (size_t)(F * Dv));
    memset(z, 0, sizeof(double) * (size_t)F);
    for (int64_t j = s.lo; !cfg->causal && j < s.hi; j++) /* non-causal: the whole segment first */
        ref_add_key(cfg, io, b, hk, j, Dv, S, z, fk);
    for (int64_t i = s.lo; i < s.hi; i++) {
        int64_t j = i - W; /* the key entering the linear state at step i */
        if (cfg->causal && j >= s.lo)
            ref_add_key(cfg, io, b, hk, j, Dv, S, z, fk);
        lin_qmap(cfg)->fwd64(lin_qmap(cfg), attn_at64(&io->q, b, h, i), fq);
        double *o = attn_at64(&io->o, b, h, i), den = cfg->eps;
        for (int64_t d = 0; d < Dv; d++)
            o[d] = 0;
        for (int64_t f = 0; f < F; f++) {
            den += fq[f] * z[f];
            for (int64_t d = 0; d < Dv; d++)
                o[d] += fq[f] * S[f * Dv + d];
        }
        for (int64_t jw = i - W + 1 > s.lo ? i - W + 1 : s.lo; W > 0 && jw <= i; jw++) {
            const double *q = attn_at64(&io->q, b, h, i), *k = attn_at64(&io->k, b, hk, jw);
            double dot = 0;
            for (int64_t d = 0; d < D; d++)
                dot += q[d] * k[d];
            double e = exp(dot / sqrt((double)D));
            den += e;
            for (int64_t d = 0; d < Dv; d++)
                o[d] += e * attn_at64(&io->v, b, hk, jw)[d];
        }
        for (int64_t d = 0; d < Dv; d++)
            o[d] /= den;
    }
}

int lin_ref_forward64(const attn_args *a, const lin_cfg *cfg, const attn_io64 *io)
{
    int64_t F = cfg->fm.F, Dv = attn_dv(a);
    double *S = malloc(sizeof(double) * (size_t)(F * Dv + 3 * F));
    if (!S)
        return attn_fail(ATTN_ENOMEM, "linear reference: out of memory for the %lld x %lld state", (long long)F,
                         (long long)Dv);
    double *z = S + F * Dv, *fq = z + F, *fk = fq + F;
    lin_seg seg[ATTN_MASK_MAX_SPANS + 1];
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            for (int64_t i = 0; i < a->Nq; i++)
                memset(attn_at64(&io->o, b, h, i), 0, sizeof(double) * (size_t)Dv);
            int64_t ns = lin_segments(a, b, seg);
            for (int64_t s = 0; s < ns; s++)
                ref_segment(a, cfg, io, b, h, seg[s], S, z, fq, fk);
        }
    free(S);
    return 0;
}

double lin_row_weights(const attn_args *a, const attn_io64 *io, lin_kernel_fn kern, int64_t W, int64_t b,
                       int64_t h, int64_t i, double *w)
{
    int64_t G = a->H / a->H_kv, D = a->D, Nk = attn_kv_len(a, b);
    const double *q = attn_at64(&io->q, b, h, i);
    int64_t pi = a->q_off + i, seen = 0; /* allowed keys met so far, from the newest */
    double den = LIN_EPS;
    for (int64_t j = 0; j < a->Nk; j++)
        w[j] = 0;
    if (i >= attn_q_len(a, b)) /* a padded row (attn_args.seq_len): no keys */
        return den;
    for (int64_t j = Nk - 1; j >= 0; j--) {
        if (!attn_mask_allowed(&a->mask, b, h, pi, a->k_off + j))
            continue;
        const double *k = attn_at64(&io->k, b, h / G, j);
        if (seen++ < W) {
            double dot = 0;
            for (int64_t d = 0; d < D; d++)
                dot += q[d] * k[d];
            w[j] = exp(dot / sqrt((double)D));
        } else
            w[j] = kern(q, k, D);
        den += w[j];
    }
    return den;
}

void lin_kernel_matrix_f64(const attn_args *a, lin_kernel_fn kern, int64_t W, const attn_io64 *io)
{
    int64_t G = a->H / a->H_kv, Dv = attn_dv(a);
    double *w = malloc(sizeof(double) * (size_t)a->Nk);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                double *o = attn_at64(&io->o, b, h, i), den = lin_row_weights(a, io, kern, W, b, h, i, w);
                for (int64_t d = 0; d < Dv; d++)
                    o[d] = 0;
                for (int64_t j = 0; j < a->Nk; j++)
                    for (int64_t d = 0; w[j] != 0 && d < Dv; d++)
                        o[d] += w[j] * attn_at64(&io->v, b, h / G, j)[d];
                for (int64_t d = 0; d < Dv; d++)
                    o[d] = den > LIN_EPS ? o[d] / den : 0;
            }
    free(w);
}

int lin_k_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows, int64_t n,
                   double *P, lin_cfg_fn make, lin_kernel_fn kern)
{
    lin_cfg cfg;
    int rc = make(&cfg, a);
    if (rc)
        return rc;
    for (int64_t r = 0; r < n; r++) {
        double *w = P + r * a->Nk, den = lin_row_weights(a, io, kern, cfg.W, b, h, rows[r], w);
        for (int64_t j = 0; j < a->Nk; j++)
            w[j] /= den;
    }
    return ATTN_VIEW_ROWS;
}
