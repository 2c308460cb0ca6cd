/* sse forward, varlen form (docs/kernels/sse.md; Pan et al. 2025, section 3,
 * sparse state expansion with GLA states):
 *   route:  pi_t = softmax(e_t), K_t = top-k(e_t), ties -> lower index;
 *           bucket p = increasing list of t with p in K_t (counting sort)
 *   shared: chunked GLA (gla_internal.h) over all N tokens -> O
 *   gather: one sequential pass over the tokens writes (pi q, pi k, v, g) of
 *           every bucket, buckets concatenated in partition order (k N rows)
 *   each p: chunked GLA over its gathered rows (the partition's clock ticks
 *           only on its own tokens)
 *   scatter: O_t += the partition outputs of t, partitions in increasing order
 * One OpenMP task per (batch, KV head) does all of it, so the order of every
 * sum and the results are independent of the thread count. Documents split the
 * gathered rows of every bucket the same way they split the sequence: every
 * state restarts at 0; each (bucket, document) run is padded to whole chunks
 * (sse_internal.h). Measured (1 thread, B 1, H 4, N 16384, D 64, P 4, k 1, CPU
 * time on a loaded machine): shared pass 0.090 s = gla's forward, the
 * partitions 0.093 s, gather 0.022 s, routing and scatter 0.010 s. */
#include "sse.h"
#include "sse_internal.h"

#include "kernels/core/counters.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static const opt_def sse_params[] = {
    {.name = "partitions", .type = OPT_INT, .def = 4, .lo = 1, .hi = SSE_MAX_PARTITIONS, .help = "state partitions"},
    {.name = "topk", .type = OPT_INT, .def = 1, .lo = 1, .hi = SSE_MAX_PARTITIONS,
     .help = "partitions each token reads and writes (at most partitions)"},
    {.name = "chunk", .type = OPT_INT, .def = 64, .lo = 1, .hi = GLA_MAX_CHUNK, .help = "rows per chunk"},
    {0},
};

int attn_sse_params(const attn_args *a, int64_t *P, int64_t *k)
{
    int rc = 0;
    *P = attn_param_int(a, sse_params, "partitions", &rc);
    *k = rc ? 1 : attn_param_int(a, sse_params, "topk", &rc);
    if (!rc && *k > *P)
        rc = attn_fail(ATTN_EINVAL, "kernel 'sse': param topk must be <= partitions=%lld (top-k of P partitions), "
                       "found topk=%lld", (long long)*P, (long long)*k);
    return rc;
}

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

int attn_sse_plan(sse_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "sse", sse_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    if ((rc = attn_sse_params(a, &pl->P, &pl->k)) != 0)
        return rc;
    attn_args ga = *a; /* the GLA core sees param chunk only */
    ga.params.n = 0;
    for (int i = 0; i < a->params.n; i++)
        if (strcmp(a->params.key[i], "chunk") == 0) {
            memcpy(ga.params.key[ga.params.n], a->params.key[i], sizeof ga.params.key[0]);
            memcpy(ga.params.val[ga.params.n++], a->params.val[i], sizeof ga.params.val[0]);
        }
    if ((rc = attn_gla_plan(&pl->gla, GLA_GLA, &ga)) != 0)
        return rc;
    pl->G = a->H / a->H_kv, pl->Dk = a->D, pl->Dv = attn_dv(a), pl->N = a->Nk, pl->C = pl->gla.C;
    pl->nseg = attn_gla_segments(a, pl->seg);
    /* every non-empty (bucket, document) pads to whole chunks: at most min(P nseg, k N) of them */
    int64_t kN = pl->k * pl->N, parts = pl->P * pl->nseg < kN ? pl->P * pl->nseg : kN;
    pl->R = kN + parts * (pl->C - 1);
    size_t N = (size_t)pl->N, P = (size_t)pl->P, G = (size_t)pl->G, Dk = (size_t)pl->Dk, Dv = (size_t)pl->Dv;
    size_t R = (size_t)pl->R, kn = (size_t)kN, PS = P * (size_t)pl->nseg;
    size_t n = pl->gla.thread_floats + round16(N * P) + round16(2 * (P + 1)) + round16(2 * R) + 2 * round16(2 * kn) +
               2 * round16(2 * PS) + round16(G * R * Dk) + 2 * round16(R * Dk) + round16(R * Dv) + round16(G * R * Dv);
    if (a->backward)
        n += round16(G * R * Dk) + 2 * round16(R * Dk) + round16(R * Dv) + round16(2 * N * P);
    pl->slot_floats = round16(n);
    pl->state_floats = (size_t)(a->B * a->H_kv) * (1 + P) * Dk * Dv;
    return 0;
}

static float *take(float **ws, size_t n)
{
    float *p = *ws;
    *ws += round16(n);
    return p;
}

void attn_sse_bind(sse_bufs *w, const sse_plan *pl, float *slot, int backward)
{
    size_t N = (size_t)pl->N, P = (size_t)pl->P, G = (size_t)pl->G, Dk = (size_t)pl->Dk, Dv = (size_t)pl->Dv;
    size_t R = (size_t)pl->R, kn = N * (size_t)pl->k, PS = P * (size_t)pl->nseg;
    memset(w, 0, sizeof *w);
    w->gla_ws = take(&slot, pl->gla.thread_floats);
    w->pi = take(&slot, N * P);
    w->off = (int64_t *)take(&slot, 2 * (P + 1));
    w->idx = (int64_t *)take(&slot, 2 * R), w->sel = (int64_t *)take(&slot, 2 * kn), w->pos = (int64_t *)take(&slot, 2 * kn);
    w->cnt = (int64_t *)take(&slot, 2 * PS), w->start = (int64_t *)take(&slot, 2 * PS);
    w->gq = take(&slot, G * R * Dk), w->gk = take(&slot, R * Dk), w->gg = take(&slot, R * Dk);
    w->gv = take(&slot, R * Dv), w->go = take(&slot, G * R * Dv);
    if (backward) {
        w->gdq = take(&slot, G * R * Dk), w->gdk = take(&slot, R * Dk), w->gdg = take(&slot, R * Dk);
        w->gdv = take(&slot, R * Dv), w->dpi = (double *)take(&slot, 2 * N * P);
    }
}

/* sel[0..k) = the partitions of the k largest of e[0..P), ties -> lower index
 * (strict > while scanning up), each partition at most once; returned in
 * increasing partition order (the scatter order). */
static void top_k(const float *e, int64_t P, int64_t k, int64_t *sel)
{
    uint64_t taken = 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t p = 0; p < P; p++)
            if (!(taken >> p & 1) && (best < 0 || e[p] > e[best]))
                best = p;
        taken |= 1ull << best;
    }
    for (int64_t p = 0, j = 0; p < P; p++)
        if (taken >> p & 1)
            sel[j++] = p;
}

// router is (B,H_kv,N,P); pi is (N,P); sel, pos are (N,k); idx holds P increasing token lists
void attn_sse_route(const sse_plan *pl, const attn_tensor *router, int64_t b, int64_t hk, sse_bufs *w)
{
    int64_t P = pl->P, k = pl->k, C = pl->C, nseg = pl->nseg;
    memset(w->cnt, 0, sizeof(int64_t) * (size_t)(P * nseg));
    for (int64_t sg = 0; sg < nseg; sg++)
        for (int64_t t = pl->seg[sg]; t < pl->seg[sg + 1]; t++) { /* pi_t = softmax(e_t), in double */
            const float *e = attn_at(router, b, hk, t);
            double m = e[0], s = 0, x[SSE_MAX_PARTITIONS];
            for (int64_t p = 1; p < P; p++)
                m = fmax(m, e[p]);
            for (int64_t p = 0; p < P; p++)
                s += x[p] = exp((double)e[p] - m);
            for (int64_t p = 0; p < P; p++)
                w->pi[t * P + p] = (float)(x[p] / s);
            top_k(e, P, k, w->sel + t * k);
            for (int64_t j = 0; j < k; j++)
                w->cnt[w->sel[t * k + j] * nseg + sg]++;
        }
    /* counting sort: the (bucket, document) runs padded to whole chunks, then a stable fill in token order */
    w->off[0] = 0;
    for (int64_t p = 0; p < P; p++) {
        int64_t r = w->off[p];
        for (int64_t sg = 0; sg < nseg; sg++) {
            w->start[p * nseg + sg] = r;
            r += (w->cnt[p * nseg + sg] + C - 1) / C * C;
        }
        w->off[p + 1] = r;
    }
    for (int64_t r = 0; r < w->off[P]; r++)
        w->idx[r] = -1;
    for (int64_t sg = 0; sg < nseg; sg++)
        for (int64_t t = pl->seg[sg]; t < pl->seg[sg + 1]; t++)
            for (int64_t j = 0; j < k; j++) {
                int64_t r = w->start[w->sel[t * k + j] * nseg + sg]++;
                w->idx[r] = t, w->pos[t * k + j] = r;
            }
    for (int64_t p = 0; p < P; p++) /* back to the first row of each run */
        for (int64_t sg = 0; sg < nseg; sg++)
            w->start[p * nseg + sg] -= w->cnt[p * nseg + sg];
}

/* to[d] = c from[d] */
static void scaled_copy(float *to, const float *from, float c, int64_t D)
{
    for (int64_t d = 0; d < D; d++)
        to[d] = c * from[d];
}

void attn_sse_gather(const sse_plan *pl, const attn_io *io, const attn_tensor *d_o, int64_t b, int64_t hk,
                     const sse_bufs *w)
{
    int64_t R = pl->R, P = pl->P, G = pl->G, Dk = pl->Dk, Dv = pl->Dv;
    for (int64_t r = 0; r < w->off[P]; r++) /* padding rows: inert (no write, no decay, no read) */
        if (w->idx[r] < 0) {
            memset(w->gk + r * Dk, 0, sizeof(float) * (size_t)Dk);
            memset(w->gg + r * Dk, 0, sizeof(float) * (size_t)Dk);
            memset(w->gv + r * Dv, 0, sizeof(float) * (size_t)Dv);
            for (int64_t h = 0; h < G; h++) {
                memset(w->gq + (h * R + r) * Dk, 0, sizeof(float) * (size_t)Dk);
                if (d_o)
                    memset(w->go + (h * R + r) * Dv, 0, sizeof(float) * (size_t)Dv);
            }
        }
    for (int64_t t = 0; t < pl->N; t++)
        for (int64_t j = 0; j < pl->k; j++) {
            int64_t r = w->pos[t * pl->k + j];
            float pi = w->pi[t * P + w->sel[t * pl->k + j]];
            scaled_copy(w->gk + r * Dk, attn_at(&io->k, b, hk, t), pi, Dk);
            scaled_copy(w->gg + r * Dk, attn_at(&io->gate, b, hk, t), 1.0f, Dk);
            scaled_copy(w->gv + r * Dv, attn_at(&io->v, b, hk, t), 1.0f, Dv);
            for (int64_t h = 0; h < G; h++) {
                scaled_copy(w->gq + (h * R + r) * Dk, attn_at(&io->q, b, hk * G + h, t), pi, Dk);
                if (d_o)
                    scaled_copy(w->go + (h * R + r) * Dv, attn_at(d_o, b, hk * G + h, t), 1.0f, Dv);
            }
        }
}

/* Rows [r0, r0 + n) of a gathered buffer of H heads x R rows x D, as a B = 1 tensor. */
static attn_tensor view(float *data, int64_t H, int64_t R, int64_t D, int64_t r0, int64_t n)
{
    return (attn_tensor){.data = data ? data + r0 * D : NULL, .B = 1, .H = H, .N = n, .D = D, .sb = H * R * D,
                         .sh = R * D, .sn = D};
}

void attn_sse_bucket(const sse_plan *pl, const sse_bufs *w, int64_t p, sse_bucket *bk)
{
    int64_t R = pl->R, G = pl->G, Dk = pl->Dk, Dv = pl->Dv, r0 = w->off[p], n = w->off[p + 1] - r0;
    memset(bk, 0, sizeof *bk);
    bk->n = n;
    bk->io = (attn_io){.q = view(w->gq, G, R, Dk, r0, n), .k = view(w->gk, 1, R, Dk, r0, n),
                       .v = view(w->gv, 1, R, Dv, r0, n), .o = view(w->go, G, R, Dv, r0, n),
                       .gate = view(w->gg, 1, R, Dk, r0, n)};
    bk->g = (attn_grads){.d_o = bk->io.o, .dq = view(w->gdq, G, R, Dk, r0, n), .dk = view(w->gdk, 1, R, Dk, r0, n),
                         .dv = view(w->gdv, 1, R, Dv, r0, n), .dgate = view(w->gdg, 1, R, Dk, r0, n)};
    for (int64_t sg = 0; sg < pl->nseg; sg++) /* the bucket's non-empty documents restart the state */
        if (w->cnt[p * pl->nseg + sg] > 0)
            bk->seg[bk->nseg++] = w->start[p * pl->nseg + sg] - r0;
    bk->seg[bk->nseg] = n;
}

static int sse_init(attn_ctx *ctx, const attn_args *a)
{
    sse_plan pl;
    int rc = attn_sse_plan(&pl, a);
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'sse': queries and keys must be the same positions "
                         "(q_off == k_off), found q_off=%lld k_off=%lld", (long long)a->q_off, (long long)a->k_off);
    ctx->workspace_bytes = sizeof(float) * (attn_sse_slot0(&pl) + pl.slot_floats * (size_t)a->threads);
    ctx->state_bytes_used = sizeof(float) * pl.state_floats;
    return 0;
}

int attn_sse_check_inputs(const sse_plan *pl, const attn_io *io)
{
    if (!io->gate.data || io->gate.D != pl->Dk)
        return attn_fail(ATTN_EINVAL, "kernel 'sse': io.gate [B,H_kv,N,D=%lld] log-gates expected, found %s",
                         (long long)pl->Dk, io->gate.data ? "another width" : "none");
    if (!io->router.data || io->router.D != pl->P)
        return attn_fail(ATTN_EINVAL, "kernel 'sse': io.router [B,H_kv,N,P=%lld] logits expected, found %s",
                         (long long)pl->P, io->router.data ? "another width" : "none");
    return 0;
}

/* The forward of KV head hk of batch b; S = 1 + P states (Dk x Dv each) end
 * as the states after the last key. Returns the executed matrix-product FLOPs. */
static double forward_task(const attn_args *a, const sse_plan *pl, const attn_io *io, int64_t b, int64_t hk, float *S,
                           sse_bufs *w)
{
    int64_t G = pl->G, Dv = pl->Dv, R = pl->R, DkDv = pl->Dk * pl->Dv;
    float sc = (float)attn_scale(a);
    attn_sse_route(pl, &io->router, b, hk, w);
    double flops = attn_gla_forward_slice(&pl->gla, io, b, hk, pl->seg, pl->nseg, 0, sc, S, w->gla_ws);
    attn_sse_gather(pl, io, NULL, b, hk, w);
    for (int64_t p = 0; p < pl->P; p++) {
        float *Sp = S + (1 + p) * DkDv;
        sse_bucket bk;
        attn_sse_bucket(pl, w, p, &bk);
        if (bk.n > 0)
            flops += attn_gla_forward_slice(&pl->gla, &bk.io, 0, 0, bk.seg, bk.nseg, 0, sc, Sp, w->gla_ws);
        /* the state after the sequence: 0 when p got no token of the last document */
        if (w->cnt[p * pl->nseg + pl->nseg - 1] == 0)
            memset(Sp, 0, sizeof(float) * (size_t)DkDv);
    }
    for (int64_t t = 0; t < pl->N; t++) /* scatter-add, partitions in increasing order */
        for (int64_t j = 0; j < pl->k; j++)
            for (int64_t h = 0; h < G; h++) {
                float *o = attn_at(&io->o, b, hk * G + h, t);
                const float *x = w->go + (h * R + w->pos[t * pl->k + j]) * Dv;
                for (int64_t e = 0; e < Dv; e++)
                    o[e] += x[e];
            }
    return flops;
}

// q is (B,H,N,Dk), k is (B,H_kv,N,Dk), v is (B,H_kv,N,Dv), gate is (B,H_kv,N,Dk), router is (B,H_kv,N,P);
// o is (B,H,N,Dv)
static int sse_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    sse_plan pl;
    int rc = attn_sse_plan(&pl, a);
    if (rc || (rc = attn_sse_check_inputs(&pl, io)) != 0)
        return rc;
    float *state = ctx->workspace, *slots = state + attn_sse_slot0(&pl);
    int64_t tasks = a->B * a->H_kv;
    double flops = 0;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t t = 0; t < tasks; t++) {
        sse_bufs w;
        attn_sse_bind(&w, &pl, slots + (size_t)omp_get_thread_num() * pl.slot_floats, 0);
        flops += forward_task(a, &pl, io, t / a->H_kv, t % a->H_kv, state + (size_t)t * (1 + pl.P) * pl.Dk * pl.Dv,
                              &w);
    }
    attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    /* shared pass and k gathers read q, k, v, gates; the router once; k scatter-adds read O */
    double H = (double)a->H, Hkv = (double)a->H_kv, Dk = (double)pl.Dk, Dv = (double)pl.Dv, k = (double)pl.k;
    double reads = (double)(a->B * a->Nk) * ((1 + k) * (H * Dk + Hkv * (2 * Dk + Dv)) + Hkv * (double)pl.P + k * H * Dv);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * reads));
    return 0;
}

/* Forward FLOPs per (b, query head): (1 + k) (4 N Dk Dv + 2 N C (Dk + Dv))
 * (the router projection is model-level); backward 2.5x forward (docs/kernel-interface.md). */
static double sse_flops(const attn_args *a, attn_pass pass)
{
    int rc = 0;
    int64_t P, k;
    if (attn_sse_params(a, &P, &k) != 0)
        k = 1;
    double C = (double)attn_param_int(a, sse_params, "chunk", &rc);
    double N = (double)a->Nk, Dk = (double)a->D, Dv = (double)attn_dv(a);
    double fwd = (1.0 + (double)k) * (double)(a->B * a->H) * (4 * N * Dk * Dv + 2 * N * C * (Dk + Dv));
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Each tensor once: forward reads Q, K, V, gates, router logits and writes O;
 * backward reads Q, K, V, gates, logits, dO and writes dQ, dK, dV, dgates, dlogits. */
static double sse_bytes(const attn_args *a, attn_pass pass)
{
    int64_t P, k;
    if (attn_sse_params(a, &P, &k) != 0)
        P = 4;
    double B = (double)a->B, N = (double)a->Nk, Hq = (double)a->H, Hkv = (double)a->H_kv;
    double Dk = (double)a->D, Dv = (double)attn_dv(a), x = Hkv * N * (Dk + (double)P); /* gates + logits */
    if (pass == ATTN_PASS_FWD)
        return 4 * B * (Hq * N * Dk + Hkv * N * (Dk + Dv) + Hq * N * Dv + x);
    return 4 * B * (2 * Hq * N * Dk + 2 * Hkv * N * (Dk + Dv) + Hq * N * Dv + 2 * x);
}

/* 1 + P states of Dk x Dv floats per (b, KV head): state grows with P, compute with k. */
static size_t sse_state_bytes(const attn_args *a)
{
    int64_t P, k;
    if (attn_sse_params(a, &P, &k) != 0)
        P = 4;
    return sizeof(float) * (size_t)(a->B * a->H_kv * (1 + P) * a->D * attn_dv(a));
}

/* Router columns = partitions (1 when the param is bad: init rejects it). */
static int64_t sse_input_cols(const attn_args *a, unsigned input)
{
    int64_t P, k;
    if (input != ATTN_IN_ROUTER)
        return 0;
    return attn_sse_params(a, &P, &k) == 0 ? P : 1;
}

const attn_kernel attn_kernel_sse = {
    .name = "sse",
    .family = "decay-linear",
    .reference = "Pan et al. 2025 (Scaling Linear Attention with Sparse State Expansion), GLA states, varlen form",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = sse_params,
    .notes = "log-gates <= 0 per key channel from io.gate, router logits from io.router",
    .init = sse_init,
    .forward = sse_forward,
    .backward = attn_sse_backward,
    .flops = sse_flops,
    .bytes = sse_bytes,
    .state_bytes = sse_state_bytes,
    .inputs = ATTN_IN_GATE_VEC | ATTN_IN_ROUTER,
    .ref_forward = attn_sse_ref_forward,
    .input_cols = sse_input_cols,
};
