/* `deltanet` and `gated_deltanet` forward: the chunkwise WY/UT form of the
 * delta rule (Yang et al. 2024, "Parallelizing Linear Transformers with the
 * Delta Rule over Sequence Length", Sec. 3; gated: Yang, Kautz, Hatamizadeh
 * 2024, "Gated Delta Networks"; docs/kernels/deltanet.md).
 *
 * Per chunk of c keys with initial state H0 = S^T (Dk x Dv), in-chunk
 * cumulative log gates l_r = g_0 + ... + g_r (0 ungated), Gam_rs =
 * exp(l_r - l_s) for r >= s (never a gamma^-1, which overflows):
 *   L = tril(diag(beta) (Kn Kn^T (.) Gam), -1),  T = (I + L)^-1 diag(beta)
 *   W = T diag(e^l) Kn,  U' = T V - W H0
 *   O = sc (diag(e^l) Q H0 + (tril(Q Kn^T) (.) Gam) U')
 *   H = e^{l_c} H0 + Kn^T diag(e^{l_c - l}) U'
 * (Kn: the L2-normalised keys). The rows of U' are the delta-rule writes
 * e_r = beta_r (v_r - a_r S_{r-1} k_r), so H_r = gam_r H0 + sum_s gam_r/gam_s
 * k_s e_s^T and the lines above are the recurrence summed over the chunk.
 *
 * Choices (documented in the kernel's reference string too): o_t = sc S_t q_t
 * with sc = attn_scale (default 1/sqrt(D)), as FLA's delta-rule kernels scale
 * q (fla/ops/delta_rule/naive.py); q is NOT normalised (the kernel normalises
 * keys only; FLA's layers L2-normalise q before the kernel). One task per
 * (batch, KV head) computes the state once for its G query heads.
 * Masks: causality is intrinsic to the recurrence (a recurrent kernel cannot look ahead),
 * so CAUSAL and DOCUMENT with or without causal=1 are the same computation;
 * a DOCUMENT mask restarts S at zero at every document start, and chunks
 * restart there too (a chunk never spans two documents). */
#include "kernels/core/counters.h"
#include "deltanet.h"
#include "deltanet_internal.h"
#include "kernels/core/lowp.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Rows per diagonal block of the blocked substitution in solve_t. */
#define DELTA_SOLVE_BLOCK 16

/* ---- plan, segments ---- */

static int64_t count_blocks(const attn_args *a, int64_t C)
{
    int64_t n = 0;
    for (int64_t j = 0; j < a->Nk; j = attn_key_block_end(a, j, C))
        n++;
    return n;
}

/* Floats of one chunk's scratch for chunks of at most c keys. */
static size_t chunk_scratch_floats(int64_t c, int64_t Dk, int64_t Dv)
{
    size_t cp = (size_t)(c + 15) / 16 * 16, ck = (size_t)(c * Dk + 15) / 16 * 16;
    size_t cc = (size_t)(c * c + 15) / 16 * 16, cv = (size_t)(c * Dv + 15) / 16 * 16;
    /* kn, kg, W; A(L), T, P, Gam; U'; beta, l (double); X of solve_t */
    return 3 * ck + 4 * cc + cv + 3 * cp + (size_t)DELTA_SOLVE_BLOCK * cp;
}

static const opt_def delta_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = DELTA_DEFAULT_CHUNK, .lo = 1, .hi = 1024,
     .help = "keys per chunk of the WY/UT form"},
    {0},
};

int delta_plan_make(delta_plan *pl, const attn_args *a, int gated)
{
    const char *name = gated ? "gated_deltanet" : "deltanet";
    int rc = attn_params_check(a, name, delta_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->C = attn_param_int(a, delta_params, "chunk", &rc);
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel '%s': query i reads the state after key i, expected "
                                            "q_off == k_off, found q_off=%lld k_off=%lld", name,
                         (long long)a->q_off, (long long)a->k_off);
    pl->gated = gated;
    pl->Dk = a->D, pl->Dv = attn_dv(a), pl->G = a->H / a->H_kv;
    int64_t cmax = pl->C;
    if (a->backward) {
        cmax = cmax > DELTA_BWD_BLOCK ? cmax : DELTA_BWD_BLOCK;
        pl->n_ckpt = count_blocks(a, DELTA_BWD_BLOCK);
        size_t dd = (size_t)(pl->Dk * pl->Dv + 15) / 16 * 16;
        size_t vec = (size_t)(pl->Dk + pl->Dv + 15) / 16 * 16;
        /* checkpoints, the block's states, G; 5 vectors; block starts (int64) */
        pl->bwd_floats = dd * (size_t)(pl->n_ckpt + DELTA_BWD_BLOCK + 2) + 5 * vec +
                         (size_t)(2 * (pl->n_ckpt + 1) + 15) / 16 * 16;
    }
    pl->chunk_floats = chunk_scratch_floats(cmax, pl->Dk, pl->Dv);
    pl->slot_floats = pl->chunk_floats + pl->bwd_floats;
    pl->state_floats = (size_t)(a->B * a->H_kv * pl->Dk * pl->Dv);
    return 0;
}

float delta_key_rnorm(const float *k, int64_t D)
{
    float s = 0; /* a sum of squares: no cancellation, float is within D ulp */
    for (int64_t d = 0; d < D; d++)
        s += k[d] * k[d];
    return 1.0f / sqrtf(s + (float)DELTA_KEY_EPS);
}

/* ---- one chunk ---- */

/* Gam_rs = exp(l_r - l_s) for s <= r (c x c, lower triangle; the upper
 * part is left alone). Exponents are <= 0 for log gates <= 0, and the
 * vector exp flushes below -87.3 to 0 (kernels/core/vexp.h). `x` is c floats. */
static void gate_ratios(float *Gam, const double *l, int64_t c, float *x)
{
    for (int64_t r = 0; r < c; r++) {
        for (int64_t s = 0; s <= r; s++)
            x[s] = (float)(l[r] - l[s]);
        attn_vexp(Gam + r * c, x, r + 1);
    }
}

/* T = (I + L)^-1 diag(beta) by blocked forward substitution (never a
 * general inverse: L is strictly lower triangular). A (c x c) holds Kn Kn^T on entry; its
 * strictly lower part becomes L_rj = beta_r Gam_rj A_rj. For rows R of a
 * block of 16, M = (I + L)^-1 satisfies M_RR = (I + L_RR)^-1 (substitution
 * inside the block) and M[R, :r0] = -M_RR (L[R, :r0] M[:r0, :r0]) (two
 * sgemms). Then T = M diag(beta). X is 16 x c scratch. Returns FLOPs. */
static double solve_t(float *A, float *T, const float *beta, const float *Gam, int64_t c, float *X)
{
    double flops = 0;
    for (int64_t r = 0; r < c; r++)
        for (int64_t j = 0; j < r; j++)
            A[r * c + j] *= beta[r] * (Gam ? Gam[r * c + j] : 1.0f);
    memset(T, 0, sizeof(float) * (size_t)(c * c));
    for (int64_t r0 = 0; r0 < c; r0 += DELTA_SOLVE_BLOCK) {
        int64_t nb = c - r0 < DELTA_SOLVE_BLOCK ? c - r0 : DELTA_SOLVE_BLOCK;
        for (int64_t r = r0; r < r0 + nb; r++) { /* row r of M_RR: e_r - sum_j L_rj M_j */
            float *Mr = T + r * c;
            Mr[r] = 1.0f;
            for (int64_t j = r0; j < r; j++) {
                const float *Mj = T + j * c, lrj = A[r * c + j];
                for (int64_t s = r0; s <= j; s++)
                    Mr[s] -= lrj * Mj[s];
            }
        }
        flops += (double)nb * (double)(nb * nb - 1) / 3.0;
        if (r0 == 0)
            continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)r0, (int)r0, 1.0f, A + r0 * c,
                    (int)c, T, (int)c, 0.0f, X, (int)r0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)r0, (int)nb, -1.0f,
                    T + r0 * c + r0, (int)c, X, (int)r0, 0.0f, T + r0 * c, (int)c);
        flops += 2.0 * (double)(nb * r0) * (double)(r0 + nb);
    }
    for (int64_t r = 0; r < c; r++)
        for (int64_t s = 0; s <= r; s++)
            T[r * c + s] *= beta[s];
    return flops;
}

/* Loads the chunk's normalised keys kn (c x Dk), beta and cumulative log
 * gates l (double: at C = 1024 and gates near -1 a float sum would carry
 * 1e-4 absolute error into every ratio exp(l_r - l_s)). */
static void load_chunk(const delta_task *t, int64_t j0, int64_t c, float *kn, float *beta, double *l)
{
    const attn_io *io = t->io;
    int64_t Dk = t->pl->Dk;
    double acc = 0;
    for (int64_t r = 0; r < c; r++) {
        const float *k = attn_at(&io->k, t->b, t->hk, j0 + r);
        float rn = delta_key_rnorm(k, Dk);
        for (int64_t d = 0; d < Dk; d++)
            kn[r * Dk + d] = k[d] * rn;
        beta[r] = attn_at(&io->beta, t->b, t->hk, j0 + r)[0];
        acc += t->pl->gated ? attn_at(&io->gate, t->b, t->hk, j0 + r)[0] : 0.0;
        l[r] = acc;
    }
}

/* Row r of X (rows x cols, leading dimension ld) times exp(off + sign l_r). */
static void scale_rows(float *X, int64_t ld, int64_t rows, int64_t cols, const double *l, double sign,
                       double off)
{
    for (int64_t r = 0; r < rows; r++) {
        float f = attn_expf((float)(off + sign * l[r]));
        for (int64_t d = 0; d < cols; d++)
            X[r * ld + d] *= f;
    }
}

/* Output rows [j0, j0+c) of query head h (c x Dv at io->o), from U' (c x Dv)
 * and the chunk's initial state H (unless fresh). P is c x c scratch. */
static double chunk_output(const delta_task *t, int64_t h, int64_t j0, int64_t c, int fresh,
                           const float *H, const float *kn, const float *E, const double *l,
                           const float *Gam, float *P)
{
    const attn_io *io = t->io;
    int64_t Dk = t->pl->Dk, Dv = t->pl->Dv;
    int gated = t->pl->gated;
    const float *q = attn_at(&io->q, t->b, h, j0);
    float *o = attn_at(&io->o, t->b, h, j0);
    int lq = (int)io->q.sn, lo = (int)io->o.sn;
    // P = sc Q Kn^T, causal within the chunk (diagonal kept), times Gam
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c, (int)c, (int)Dk, t->sc, q, lq, kn,
                (int)Dk, 0.0f, P, (int)c);
    for (int64_t r = 0; r < c; r++) {
        for (int64_t s = 0; gated && s <= r; s++)
            P[r * c + s] *= Gam[r * c + s];
        memset(P + r * c + r + 1, 0, sizeof(float) * (size_t)(c - r - 1));
    }
    double flops = 2.0 * (double)(c * c) * (double)(Dk + Dv);
    if (!fresh) { // O = sc diag(e^l) Q H0
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)Dk, t->sc, q, lq, H,
                    (int)Dv, 0.0f, o, lo);
        if (gated)
            scale_rows(o, lo, c, Dv, l, 1, 0);
        flops += 2.0 * (double)(c * Dk) * (double)Dv;
    }
    // O += P U'
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)c, 1.0f, P, (int)c, E,
                (int)Dv, fresh ? 0.0f : 1.0f, o, lo);
    return flops;
}

double delta_chunk(const void *task, int64_t j0, int64_t c, int fresh, float *H, float *ws, int write_o)
{
    const delta_task *t = task;
    const delta_plan *pl = t->pl;
    int64_t Dk = pl->Dk, Dv = pl->Dv;
    int gated = pl->gated;
    float *kn = delta_take(&ws, (size_t)(c * Dk)), *kg = delta_take(&ws, (size_t)(c * Dk));
    float *W = delta_take(&ws, (size_t)(c * Dk)), *A = delta_take(&ws, (size_t)(c * c));
    float *T = delta_take(&ws, (size_t)(c * c)), *P = delta_take(&ws, (size_t)(c * c));
    float *E = delta_take(&ws, (size_t)(c * Dv)), *beta = delta_take(&ws, (size_t)c);
    double *l = (double *)delta_take(&ws, (size_t)(2 * c));
    float *Gam = gated ? delta_take(&ws, (size_t)(c * c)) : NULL;
    float *X = delta_take(&ws, (size_t)(DELTA_SOLVE_BLOCK * c));
    const float *v = attn_at(&t->io->v, t->b, t->hk, j0);

    load_chunk(t, j0, c, kn, beta, l);
    // A = Kn Kn^T, then T = (I + L)^-1 diag(beta)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c, (int)c, (int)Dk, 1.0f, kn, (int)Dk, kn,
                (int)Dk, 0.0f, A, (int)c);
    if (gated)
        gate_ratios(Gam, l, c, X);
    double flops = solve_t(A, T, beta, Gam, c, X);
    // U' = T V - W H0, W = T diag(e^l) Kn
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)c, 1.0f, T, (int)c, v,
                (int)t->io->v.sn, 0.0f, E, (int)Dv);
    flops += 2.0 * (double)(c * c) * (double)(Dk + Dv);
    if (!fresh) {
        memcpy(kg, kn, sizeof(float) * (size_t)(c * Dk));
        if (gated)
            scale_rows(kg, Dk, c, Dk, l, 1, 0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dk, (int)c, 1.0f, T, (int)c, kg,
                    (int)Dk, 0.0f, W, (int)Dk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)Dv, (int)Dk, -1.0f, W, (int)Dk, H,
                    (int)Dv, 1.0f, E, (int)Dv);
        flops += 2.0 * (double)(c * c) * (double)Dk + 2.0 * (double)(c * Dk) * (double)Dv;
    }
    for (int64_t h = t->hk * pl->G; write_o && h < (t->hk + 1) * pl->G; h++)
        flops += chunk_output(t, h, j0, c, fresh, H, kn, E, l, Gam, P);
    // H = e^{l_c} H0 + Kn^T diag(e^{l_c - l}) U'
    if (gated) {
        scale_rows(E, Dv, c, Dv, l, -1, l[c - 1]);
        float decay = attn_expf((float)l[c - 1]);
        for (int64_t i = 0; !fresh && i < Dk * Dv; i++)
            H[i] *= decay;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Dk, (int)Dv, (int)c, 1.0f, kn, (int)Dk, E,
                (int)Dv, fresh ? 0.0f : 1.0f, H, (int)Dv);
    return flops + 2.0 * (double)(c * Dk) * (double)Dv;
}

/* ---- kernel entry points ---- */

static int delta_init(attn_ctx *ctx, const attn_args *a, int gated)
{
    delta_plan pl;
    int rc = delta_plan_make(&pl, a, gated);
    if (rc)
        return rc;
    size_t state = (pl.state_floats + 15) / 16 * 16;
    ctx->workspace_bytes = sizeof(float) * (state + pl.slot_floats * (size_t)a->threads);
    ctx->state_bytes_used = sizeof(float) * pl.state_floats;
    attn_lowp_reserve(ctx); /* 16-bit operands are widened after the state and slots */
    return 0;
}

static int init_deltanet(attn_ctx *ctx, const attn_args *a) { return delta_init(ctx, a, 0); }
static int init_gated(attn_ctx *ctx, const attn_args *a) { return delta_init(ctx, a, 1); }

/* One (batch, KV head): its keys chunk by chunk from a zero state. */
static double forward_task(const void *env, int64_t b, int64_t hk, float *H, float *ws)
{
    delta_task t = *(const delta_task *)env;
    t.b = b, t.hk = hk;
    return mem_walk_chunks(t.a, t.pl->C, 0, t.a->Nk, delta_chunk, &t, H, ws, 1);
}

// q is (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), beta and gate (B,H_kv,N,1); o is (B,H,N,Dv).
// The final state of each (b, KV head) stays in the workspace (ctx->state_bytes_used).
static int delta_forward_f32(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int gated = (ctx->kernel->inputs & ATTN_IN_GATE) != 0;
    delta_plan pl;
    int rc = delta_plan_make(&pl, a, gated);
    if (rc)
        return rc;
    if (!io->beta.data || (gated && !io->gate.data))
        return attn_fail(ATTN_EINVAL, "kernel '%s': expected io.beta%s, found NULL", ctx->kernel->name,
                         gated ? " and io.gate" : "");
    float *state = ctx->workspace;
    delta_task all = {a, io, &pl, 0, 0, (float)attn_scale(a)};
    long long flops = mem_each_task(a, state, (size_t)(pl.Dk * pl.Dv), state + mem_round(pl.state_floats),
                                    pl.slot_floats, forward_task, &all);
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    int64_t tasks = a->B * a->H_kv;
    /* K, V, beta (and gate) once per KV head, Q once per query head */
    double per_task = (double)a->Nk * (double)(pl.Dk + pl.Dv + 1 + gated + pl.G * pl.Dk);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}

/* Forward FLOPs per (b, query head): N (6 Dk Dv + C (6 Dk + 4 Dv)) + N C^2 / 3,
 * with C = min(chunk, N). Backward: 2.5x forward (the convention of
 * docs/kernel-interface.md). Executed work goes to the flops counter: the recurrent backward (a
 * chunked checkpoint pass plus (16 + 4 G) Dk Dv per token) runs about 2x
 * the executed forward at N = 256, D = 64, G = 1. */
static double forward_flops_per_head(const attn_args *a, int64_t C)
{
    double N = (double)a->Nk, Dk = (double)a->D, Dv = (double)attn_dv(a);
    double c = (double)(C < a->Nk ? C : a->Nk);
    return N * (6 * Dk * Dv + c * (6 * Dk + 4 * Dv)) + N * c * c / 3;
}

static double delta_flops(const attn_args *a, attn_pass pass)
{
    int rc = 0;
    int64_t C = attn_param_int(a, delta_params, "chunk", &rc);
    double fwd = (double)(a->B * a->H) * forward_flops_per_head(a, C);
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Minimum fp32 traffic, each tensor once. Forward reads Q, K, V, beta (gate)
 * and writes O; backward reads Q, K, V, beta (gate), dO and writes dQ, dK,
 * dV, dbeta (dgate): O is not needed. */
static double delta_bytes_of(const attn_args *a, attn_pass pass, int gated)
{
    double B = (double)a->B, Hq = (double)a->H, Hkv = (double)a->H_kv, N = (double)a->Nk;
    double Dk = (double)a->D, Dv = (double)attn_dv(a), tok = 1 + gated;
    if (pass == ATTN_PASS_FWD)
        return 4 * B * N * (Hq * Dk + Hkv * (Dk + Dv + tok) + Hq * Dv);
    return 4 * B * N * (2 * Hq * Dk + 2 * Hkv * (Dk + Dv + tok) + Hq * Dv);
}

static double bytes_deltanet(const attn_args *a, attn_pass pass) { return delta_bytes_of(a, pass, 0); }
static double bytes_gated(const attn_args *a, attn_pass pass) { return delta_bytes_of(a, pass, 1); }

/* The state S (Dk x Dv) per (batch, KV head), whole batch. */
static size_t delta_state_bytes(const attn_args *a)
{
    return sizeof(float) * (size_t)(a->B * a->H_kv * a->D * attn_dv(a));
}

static int ref_deltanet(const attn_args *a, const attn_io64 *io) { return delta_ref_forward(a, io, 0); }
static int ref_gated(const attn_args *a, const attn_io64 *io) { return delta_ref_forward(a, io, 1); }

static int delta_forward(attn_ctx *ctx, const attn_io *io) { return attn_lowp_forward(ctx, io, delta_forward_f32); }

static int delta_backward_lowp(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    return attn_lowp_backward(ctx, io, g, delta_backward);
}

/* Fields both kernels share: one implementation, the gate read or not. */
#define DELTA_KERNEL_COMMON                                                                                \
    .family = "deltanet",                                                                                  \
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |            \
             ATTN_DETERMINISTIC,                                                                           \
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),                          \
    .params = delta_params, .forward = delta_forward,                                                      \
    .backward = delta_backward_lowp, .flops = delta_flops, .state_bytes = delta_state_bytes,               \
    .budget_params = "chunk"

const attn_kernel attn_kernel_deltanet = {
    DELTA_KERNEL_COMMON,
    .name = "deltanet",
    .reference = "Schlag et al. 2021; Yang et al. 2024 (chunkwise WY form). Keys L2-normalised in the "
                 "kernel, q not; o_t = scale * S_t q_t (scale 1/sqrt(D) as in FLA)",
    .init = init_deltanet,
    .bytes = bytes_deltanet,
    .inputs = ATTN_IN_BETA,
    .ref_forward = ref_deltanet,
    .dtypes = ATTN_DT_BIT(ATTN_DT_BF16) | ATTN_DT_BIT(ATTN_DT_FP16),
};

const attn_kernel attn_kernel_gated_deltanet = {
    DELTA_KERNEL_COMMON,
    .name = "gated_deltanet",
    .reference = "Yang, Kautz, Hatamizadeh 2024 (Gated DeltaNet), chunkwise WY form with log-space decay "
                 "ratios. Keys L2-normalised in the kernel, q not; o_t = scale * S_t q_t",
    .init = init_gated,
    .bytes = bytes_gated,
    .inputs = ATTN_IN_BETA | ATTN_IN_GATE,
    .ref_forward = ref_gated,
};
