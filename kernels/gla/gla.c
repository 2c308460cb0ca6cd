/* retnet / lightning / gla forward: chunkwise-parallel decayed linear
 * attention (docs/kernels/gla.md; Sun et al. 2023, chunkwise recurrent
 * representation of retention; Yang et al. 2023 section 4; Qin et al. 2024,
 * Lightning Attention-2 forward: intra-block masked product + inter-block state). Per chunk of C rows with state S before it:
 *   O = (sc Q * e^{a}) S + A V,   A = decayed(sc Q K^T) (rows r >= s)
 *   S = diag(e^{a_{L-1}}) S + (K * e^{a_{L-1} - a})^T V
 * One OpenMP task per (batch, KV head) runs the chunks in order for the G query
 * heads of the group (they share S and the decay); single-threaded sgemm
 * inside, so results are bitwise independent of the thread count. Documents
 * (DOCUMENT mask) are separate segments: S restarts at 0 and chunks restart at
 * each document start, so any N and any document lengths work. */
#include "gla_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/lowp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

gla_preset attn_gla_preset_of(const attn_kernel *k)
{
    return k == &attn_kernel_gla ? GLA_GLA : k == &attn_kernel_lightning ? GLA_LIGHTNING : GLA_RETNET;
}

static const char *preset_name(gla_preset p)
{
    return p == GLA_GLA ? "gla" : p == GLA_LIGHTNING ? "lightning" : "retnet";
}

/* param decay (lightning): lambda in (0, 1] for every head; 0 if absent. */
static int param_decay(const attn_args *a, double *lambda)
{
    *lambda = 0;
    for (int i = 0; i < a->params.n; i++) {
        if (strcmp(a->params.key[i], "decay") != 0)
            continue;
        char *end;
        double v = strtod(a->params.val[i], &end);
        if (*end != '\0' || end == a->params.val[i] || !(v > 0 && v <= 1))
            return attn_fail(ATTN_EINVAL, "param decay: expected a number in (0, 1], found '%s'", a->params.val[i]);
        *lambda = v;
    }
    return 0;
}

/* ALiBi slope of head h of n (Press et al. 2022), as Lightning Attention's
 * _build_slope_tensor: 2^{-8(h+1)/n} for n a power of two, otherwise the
 * closest power p below and every other slope of 2p for the remaining heads. */
static double alibi_slope(int64_t h, int64_t n)
{
    int64_t p = 1;
    while (p * 2 <= n)
        p *= 2;
    if (h < p)
        return pow(2.0, -8.0 * (double)(h + 1) / (double)p);
    return alibi_slope(2 * (h - p), 2 * p);
}

int attn_gla_log_decay(gla_preset p, const attn_args *a, int64_t hk, double *w)
{
    if (p == GLA_RETNET) { /* RetNet section 2.2: gamma = 1 - 2^{-5 - arange(0, h)} */
        *w = log1p(-ldexp(1.0, (int)(-5 - hk)));
        return 0;
    }
    double lambda;
    int rc = param_decay(a, &lambda);
    if (rc)
        return rc;
    /* Lightning Attention-2 / TransNormerLLM: lambda_h = exp(-slope_h) (layer 0) */
    *w = lambda > 0 ? log(lambda) : -alibi_slope(hk, a->H_kv);
    return 0;
}

int64_t attn_gla_segments(const attn_args *a, int64_t seg[GLA_MAX_SEGS + 1])
{
    int64_t n = 0;
    seg[n++] = 0;
    if (a->mask.kind == ATTN_MASK_DOCUMENT)
        for (int64_t s = 0; s < a->mask.n_spans; s++) {
            int64_t j = a->mask.cu[s] - a->k_off;
            if (j > seg[n - 1] && j < a->Nk)
                seg[n++] = j;
        }
    seg[n] = a->Nk;
    return n;
}

#define GLA_CHUNK_ROW                                                                                           \
    {.name = "chunk", .type = OPT_INT, .def = 64, .lo = 1, .hi = GLA_MAX_CHUNK, .help = "rows per chunk"}
static const opt_def gla_params[] = {GLA_CHUNK_ROW, {0}};
/* decay in (0, 1] (open at 0): param_decay checks it. */
static const opt_def lightning_params[] = {
    GLA_CHUNK_ROW,
    {.name = "decay", .type = OPT_DOUBLE, .def_str = "exp(-ALiBi slope) per KV head", .lo = 0, .hi = 1,
     .help = "lambda in (0, 1] for every head"},
    {0},
};

int attn_gla_plan(gla_plan *pl, gla_preset p, const attn_args *a)
{
    const opt_def *rows = p == GLA_LIGHTNING ? lightning_params : gla_params;
    int rc = attn_params_check(a, preset_name(p), rows);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->preset = p;
    pl->vec = p == GLA_GLA;
    pl->C = attn_param_int(a, rows, "chunk", &rc);
    double w;
    if (rc || (p != GLA_GLA && (rc = attn_gla_log_decay(p, a, 0, &w)) != 0))
        return rc;
    pl->G = a->H / a->H_kv, pl->Dk = a->D, pl->Dv = attn_dv(a);
    int64_t nI = (pl->C + GLA_SUB - 1) / GLA_SUB;
    pl->kr_rows = GLA_SUB * nI * (nI - 1) / 2;
    pl->kp_rows = nI * GLA_SUB * (GLA_SUB + 1) / 2;
    int64_t C = pl->C, r = 16;
    /* powers, the chunk buffers and A; backward adds B, the state and a double row */
    size_t n = (size_t)(C + 1 + r + C * C + r) + attn_gla_chunk_floats(pl);
    if (a->backward)
        n += (size_t)(C * C + r + pl->Dk * pl->Dv + r + 2 * pl->Dk + r);
    pl->thread_floats = (n + 16 + 15) / 16 * 16; /* slots stay 64-byte aligned */
    pl->state_floats = (size_t)(a->B * a->H_kv * pl->Dk * pl->Dv);
    return 0;
}

static int gla_init(attn_ctx *ctx, const attn_args *a)
{
    gla_plan pl;
    int rc = attn_gla_plan(&pl, attn_gla_preset_of(ctx->kernel), a);
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': queries and keys must be the same positions "
                         "(q_off == k_off), found q_off=%lld k_off=%lld", ctx->kernel->name,
                         (long long)a->q_off, (long long)a->k_off);
    ctx->workspace_bytes = sizeof(float) * (attn_gla_slot0(&pl) + pl.thread_floats * (size_t)a->threads);
    ctx->state_bytes_used = sizeof(float) * pl.state_floats;
    attn_lowp_reserve(ctx); /* 16-bit operands are widened after the state and slots */
    return 0;
}

/* The forward of one slice over the given segments (gla_internal.h). */
double attn_gla_forward_slice(const gla_plan *pl, const attn_io *io, int64_t b, int64_t hk, const int64_t *seg,
                              int64_t nseg, double w, float sc, float *S, float *ws)
{
    int64_t C = pl->C, Dk = pl->Dk, Dv = pl->Dv;
    float *pw = ws;
    double flops = 0;
    ws += (C + 1 + 15) / 16 * 16;
    attn_gla_powers(pw, w, C);
    gla_chunk ch;
    attn_gla_chunk_bind(&ch, pl, pw, &ws);
    float *A = ws;
    for (int64_t sg = 0; sg < nseg; sg++) {
        memset(S, 0, sizeof(float) * (size_t)(Dk * Dv));
        for (int64_t c0 = seg[sg]; c0 < seg[sg + 1]; c0 += C) {
            int64_t L = seg[sg + 1] - c0 < C ? seg[sg + 1] - c0 : C, fresh = c0 == seg[sg];
            const float *K = attn_at(&io->k, b, hk, c0), *V = attn_at(&io->v, b, hk, c0);
            attn_gla_chunk_prep(&ch, L, pl->vec ? attn_at(&io->gate, b, hk, c0) : NULL, io->gate.sn, K, io->k.sn);
            for (int64_t h = hk * pl->G; h < (hk + 1) * pl->G; h++) {
                const float *Q = attn_at(&io->q, b, h, c0);
                float *O = attn_at(&io->o, b, h, c0);
                attn_gla_scores(&ch, Q, io->q.sn, K, io->k.sn, sc, A);
                if (!fresh) { // O = (Q * e^{a}) (sc S)
                    attn_gla_decayed_copy(&ch, Q, io->q.sn, 1);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)Dv, (int)Dk, sc, ch.xt,
                                (int)Dk, S, (int)Dv, 0.0f, O, (int)io->o.sn);
                    flops += 2.0 * (double)(L * Dk * Dv);
                }
                // O += A V
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)Dv, (int)L, 1.0f, A, (int)L,
                            V, (int)io->v.sn, fresh ? 0.0f : 1.0f, O, (int)io->o.sn);
                flops += 2.0 * (double)(L * L * (Dk + Dv));
            }
            attn_gla_state_step(&ch, K, io->k.sn, V, io->v.sn, S, Dv);
            flops += 2.0 * (double)(L * Dk * Dv);
        }
    }
    return flops;
}

/* The forward of KV head hk of batch b over all segments; S (Dk x Dv) ends as
 * the state after the last key. Returns the executed matrix-product FLOPs. */
static double forward_task(const attn_args *a, const gla_plan *pl, const attn_io *io, int64_t b, int64_t hk,
                           float *S, float *ws)
{
    int64_t seg[GLA_MAX_SEGS + 1], nseg = attn_gla_segments(a, seg);
    double w = 0;
    if (!pl->vec)
        attn_gla_log_decay(pl->preset, a, hk, &w); /* validated in init */
    return attn_gla_forward_slice(pl, io, b, hk, seg, nseg, w, (float)attn_scale(a), S, ws);
}

// q is (B,H,N,Dk), k is (B,H_kv,N,Dk), v is (B,H_kv,N,Dv), gate (gla) is (B,H_kv,N,Dk); o is (B,H,N,Dv)
static int gla_forward_f32(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    gla_plan pl;
    int rc = attn_gla_plan(&pl, attn_gla_preset_of(ctx->kernel), a);
    if (rc)
        return rc;
    if (pl.vec && !io->gate.data)
        return attn_fail(ATTN_EINVAL, "kernel 'gla': io.gate [B,H_kv,N,D] log-gates expected, found none");
    float *state = ctx->workspace, *slots = state + attn_gla_slot0(&pl);
    int64_t tasks = a->B * a->H_kv;
    double flops = 0;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel for num_threads(a->threads) schedule(static) reduction(+ : flops)
    for (int64_t t = 0; t < tasks; t++)
        flops += forward_task(a, &pl, io, t / a->H_kv, t % a->H_kv, state + t * pl.Dk * pl.Dv,
                              slots + (size_t)omp_get_thread_num() * pl.thread_floats);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    double reads = (double)(a->B * a->Nk) * (double)(a->H * a->D + a->H_kv * (a->D + pl.Dv) +
                                                    (pl.vec ? a->H_kv * a->D : 0));
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(sizeof(float) * reads));
    return 0;
}

/* Forward FLOPs per (b, query head): 4 N Dk Dv + 2 N C (Dk + Dv) forward;
 * backward 2.5x forward (docs/kernel-interface.md, whatever the code recomputes). */
static double gla_flops(const attn_args *a, attn_pass pass)
{
    int rc = 0;
    double C = (double)attn_param_int(a, gla_params, "chunk", &rc);
    double N = (double)a->Nk, Dk = (double)a->D, Dv = (double)attn_dv(a);
    double fwd = (double)(a->B * a->H) * (4 * N * Dk * Dv + 2 * N * C * (Dk + Dv));
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Each tensor once: forward reads Q, K, V (+ gates), writes O; backward reads
 * Q, K, V, dO (+ gates), writes dQ, dK, dV (+ dgates). */
static double cost_bytes(const attn_args *a, attn_pass pass, int gates)
{
    double B = (double)a->B, N = (double)a->Nk, Hq = (double)a->H, Hkv = (double)a->H_kv;
    double Dk = (double)a->D, Dv = (double)attn_dv(a), g = gates ? Hkv * N * Dk : 0;
    if (pass == ATTN_PASS_FWD)
        return 4 * B * (Hq * N * Dk + Hkv * N * (Dk + Dv) + Hq * N * Dv + g);
    return 4 * B * (2 * Hq * N * Dk + 2 * Hkv * N * (Dk + Dv) + Hq * N * Dv + 2 * g);
}

static double bytes_scalar(const attn_args *a, attn_pass pass) { return cost_bytes(a, pass, 0); }
static double bytes_gates(const attn_args *a, attn_pass pass) { return cost_bytes(a, pass, 1); }

/* S per (b, KV head): Dk x Dv floats. */
static size_t gla_state_bytes(const attn_args *a)
{
    return sizeof(float) * (size_t)(a->B * a->H_kv * a->D * attn_dv(a));
}

static int gla_forward(attn_ctx *ctx, const attn_io *io) { return attn_lowp_forward(ctx, io, gla_forward_f32); }

static int gla_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    return attn_lowp_backward(ctx, io, g, attn_gla_backward);
}

/* What the three presets share: one implementation, the preset chosen from the kernel object. */
#define GLA_COMMON                                                                                            \
    .family = "decay-linear",                                                                                 \
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV | ATTN_DETERMINISTIC, \
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT), .init = gla_init,          \
    .forward = gla_forward, .backward = gla_backward, .flops = gla_flops, .state_bytes = gla_state_bytes,     \
    .budget_params = "chunk"

const attn_kernel attn_kernel_retnet = {
    GLA_COMMON,
    .name = "retnet",
    .reference = "Sun et al. 2023 (RetNet retention, chunkwise form)",
    .params = gla_params,
    .notes = "decay gamma_h = 1 - 2^(-5-h) per KV head",
    .bytes = bytes_scalar,
    .ref_forward = attn_gla_ref_retnet,
};

const attn_kernel attn_kernel_gla = {
    GLA_COMMON,
    .name = "gla",
    .reference = "Yang et al. 2023 (Gated Linear Attention, chunkwise form with sub-chunks)",
    .params = gla_params,
    .notes = "log-gates <= 0 per key channel from io.gate",
    .bytes = bytes_gates,
    .inputs = ATTN_IN_GATE_VEC,
    .ref_forward = attn_gla_ref_gla,
    .dtypes = ATTN_DT_BIT(ATTN_DT_BF16) | ATTN_DT_BIT(ATTN_DT_FP16),
};

const attn_kernel attn_kernel_lightning = {
    GLA_COMMON,
    .name = "lightning",
    .reference = "Qin et al. 2024 (Lightning Attention-2), decay of TransNormerLLM (Qin et al. 2023)",
    .params = lightning_params,
    .bytes = bytes_scalar,
    .ref_forward = attn_gla_ref_lightning,
};
