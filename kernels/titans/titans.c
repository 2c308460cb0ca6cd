/* `titans`: the neural long-term memory of Titans (Behrouz, Zhong, Mirrokni
 * 2024, "Titans: Learning to Memorize at Test Time", Sec. 3.1-3.2;
 * docs/kernels/titans.md), with a linear memory W (Dv x Dk) trained online
 * on the associative loss |W k^_t - v_t|^2:
 *   E_t     = W_{t0} k^_t - v_t            (t0: start of t's chunk)
 *   Sigma_t = eta_t Sigma_{t-1} - beta_t E_t k^_t^T   (beta = 2 theta: the loss's factor 2)
 *   W_t     = a_t W_{t-1} + Sigma_t        (a = 1 - alpha, the forgetting gate)
 *   y_t     = W_t q^_t                     (read=before: W_{t-1} q^_t)
 * q and k L2-normalised inside the kernel; W and Sigma start at 0 (and at
 * every document start). Gates are per-token inputs, their projections the
 * model's: beta from io.beta, a = exp(io.gate), eta = sigmoid(io.router).
 * chunk = 1 is the exact per-token online gradient descent; chunk = b takes
 * a chunk's gradients at its initial memory (the paper's parallel form)
 * while momentum and decay stay per token.
 *
 * memory=mlp trains M(x) = W2 silu(W1 x) by the same rule instead
 * (titans_mlp.c). One task per (batch, KV head) trains the memory once for
 * its G query heads; tasks are independent with a fixed order: bitwise identical
 * results for any thread count. */
#include "titans.h"
#include "titans_internal.h"

#include "kernels/core/counters.h"

#include <math.h>
#include <string.h>

static const char *const titans_reads[] = {"after", "before", NULL};
static const char *const titans_memories[] = {"linear", "mlp", NULL};
static const opt_def titans_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = TITANS_DEFAULT_CHUNK, .lo = 1, .hi = TITANS_MAX_CHUNK,
     .help = "keys whose gradients are taken at the same memory (1: per-token online descent)"},
    {.name = "read", .type = OPT_ENUM, .names = titans_reads, .def = TITANS_READ_AFTER,
     .help = "query t reads the memory after or before token t's update"},
    {.name = "memory", .type = OPT_ENUM, .names = titans_memories, .def = TITANS_MEMORY_LINEAR,
     .help = "linear (M(k) = W k) or mlp (M(k) = W2 silu(W1 k), two layers trained together)"},
    {.name = "expand", .type = OPT_INT, .def = TITANS_DEFAULT_EXPAND, .lo = 1, .hi = TITANS_MAX_EXPAND,
     .help = "memory=mlp: hidden width expand x D (W1 starts as [I; -I; I; ...], W2 at 0)"},
    {0},
};

float titans_rnorm(const float *x, int64_t D)
{
    float s = 0; /* a sum of squares: no cancellation */
    for (int64_t d = 0; d < D; d++)
        s += x[d] * x[d];
    return 1.0f / sqrtf(s + (float)TITANS_NORM_EPS);
}

void titans_unit_bwd(const float *xn, float rn, const float *dxn, float *dx, int64_t D)
{
    float xd = 0;
    for (int64_t d = 0; d < D; d++)
        xd += xn[d] * dxn[d];
    for (int64_t d = 0; d < D; d++)
        dx[d] = rn * (dxn[d] - xn[d] * xd);
}

void titans_gates(const titans_task *t, int64_t j, float *beta, float *a, float *eta)
{
    const attn_io *io = t->io;
    float z = attn_at(&io->router, t->b, t->hk, j)[0];
    *beta = attn_at(&io->beta, t->b, t->hk, j)[0];
    *a = expf(attn_at(&io->gate, t->b, t->hk, j)[0]);
    /* sigmoid without overflow: a logit of -1e4 gives eta = 0 exactly */
    float e = expf(-fabsf(z));
    *eta = z >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

int titans_plan_make(titans_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "titans", titans_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->C = attn_param_int(a, titans_params, "chunk", &rc);
    if (!rc)
        pl->read_before = attn_param_enum(a, titans_params, "read", &rc) == TITANS_READ_BEFORE;
    if (!rc)
        pl->mlp = attn_param_enum(a, titans_params, "memory", &rc) == TITANS_MEMORY_MLP;
    int64_t expand = rc ? 0 : attn_param_int(a, titans_params, "expand", &rc);
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'titans': query i reads the memory at key i, expected "
                                            "q_off == k_off, found q_off=%lld k_off=%lld",
                         (long long)a->q_off, (long long)a->k_off);
    pl->Dk = a->D, pl->Dv = attn_dv(a), pl->G = a->H / a->H_kv;
    if (pl->mlp) { /* the driver's state [H; S] is P x 1 each */
        pl->Hd = expand * pl->Dk, pl->P = pl->Hd * (pl->Dk + pl->Dv);
        mem_plan_make(&pl->m, a, pl->C, TITANS_BWD_BLOCK, pl->P, 1,
                      titans_mlp_chunk_floats(pl->Hd, pl->Dk, pl->Dv, pl->P),
                      TITANS_MLP_BWD_VECTORS * titans_mlp_vec_floats(pl->Hd, pl->Dk, pl->Dv));
        return 0;
    }
    mem_plan_make(&pl->m, a, pl->C, TITANS_BWD_BLOCK, pl->Dk, pl->Dv, titans_chunk_floats(pl->C, pl->Dk, pl->Dv),
                  TITANS_BWD_VECTORS * mem_round((size_t)(pl->Dk + pl->Dv)));
    return 0;
}

static int titans_init(attn_ctx *ctx, const attn_args *a)
{
    titans_plan pl;
    int rc = titans_plan_make(&pl, a);
    if (rc)
        return rc;
    mem_plan_size_ctx(&pl.m, a->threads, ctx);
    return 0;
}

// q (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), beta, gate, router (B,H_kv,N,1); o (B,H,N,Dv).
// The final memory and momentum of each (b, KV head) stay in the workspace (ctx->state_bytes_used).
static int titans_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    titans_plan pl;
    int rc = titans_plan_make(&pl, a);
    if (rc || (rc = mem_inputs_present("titans", io, NULL)))
        return rc;
    titans_task all = {a, io, &pl, 0, 0};
    long long flops = mem_forward(a, &pl.m, pl.mlp ? &titans_mlp_steps : &titans_steps, &all, ctx->workspace);
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    int64_t tasks = a->B * a->H_kv;
    /* K, V and three gates once per KV head, Q once per query head */
    double per_task = (double)a->Nk * (double)(pl.Dk + pl.Dv + 3 + pl.G * pl.Dk);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}

/* Forward FLOPs per (b, query head), C = min(chunk, N): N (10 Dk Dv + 2 C (Dk + Dv))
 * -- per token the errors (2), the two state reads (4) and the memory and
 * momentum updates (4) in Dk Dv units, and the in-chunk products Q^ K^^T and
 * P E. memory=mlp, P = Hd (Dk + Dv) parameters: N (9 P + 2 Hd Dv) -- per
 * token the error W2 silu(W1 k^) - v (2 P) and W2^T E (2 Hd Dv), the
 * momentum's decay and rank-one steps and the memory's update (5 P), the
 * read (2 P); the activations not counted. Backward 2.5x forward
 * (docs/kernel-interface.md's convention). */
static double titans_flops(const attn_args *a, attn_pass pass)
{
    int rc = 0;
    int64_t C = attn_param_int(a, titans_params, "chunk", &rc);
    double N = (double)a->Nk, Dk = (double)a->D, Dv = (double)attn_dv(a);
    double c = (double)(C < a->Nk ? C : a->Nk);
    double per_token = 10 * Dk * Dv + 2 * c * (Dk + Dv);
    if (attn_param_enum(a, titans_params, "memory", &rc) == TITANS_MEMORY_MLP) {
        double Hd = (double)attn_param_int(a, titans_params, "expand", &rc) * Dk, P = Hd * (Dk + Dv);
        per_token = 9 * P + 2 * Hd * Dv;
    }
    double fwd = (double)(a->B * a->H) * N * per_token;
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Minimum fp32 traffic, each tensor once: forward reads Q, K, V and the three
 * gates and writes O; backward reads them and dO and writes their gradients. */
static double titans_bytes(const attn_args *a, attn_pass pass)
{
    double B = (double)a->B, Hq = (double)a->H, Hkv = (double)a->H_kv, N = (double)a->Nk;
    double Dk = (double)a->D, Dv = (double)attn_dv(a);
    if (pass == ATTN_PASS_FWD)
        return 4 * B * N * (Hq * Dk + Hkv * (Dk + Dv + 3) + Hq * Dv);
    return 4 * B * N * (2 * Hq * Dk + 2 * Hkv * (Dk + Dv + 3) + Hq * Dv);
}

/* Memory W and momentum Sigma (Dk Dv each; memory=mlp: W1, W2 and their
 * momenta, 2 Hd (Dk + Dv)) per (batch, KV head), whole batch. */
static size_t titans_state_bytes(const attn_args *a)
{
    int rc = 0;
    int64_t per_head = a->D * attn_dv(a);
    if (attn_param_enum(a, titans_params, "memory", &rc) == TITANS_MEMORY_MLP)
        per_head = attn_param_int(a, titans_params, "expand", &rc) * a->D * (a->D + attn_dv(a));
    return sizeof(float) * (size_t)(a->B * a->H_kv * 2 * per_head);
}

/* One momentum logit per token. */
static int64_t titans_input_cols(const attn_args *a, unsigned input)
{
    (void)a;
    return input == ATTN_IN_ROUTER ? 1 : 0;
}

const attn_kernel attn_kernel_titans = {
    .name = "titans",
    .family = "titans",
    .reference = "Behrouz, Zhong, Mirrokni 2024 (Titans neural memory), linear or 2-layer MLP memory, momentum and "
                 "forgetting per token; gradients of a chunk at its initial memory. q, k L2-normalised, no scale",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |
             ATTN_DETERMINISTIC | ATTN_NO_SCALE,
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = titans_params,
    .notes = "step 2 theta from io.beta, decay 1 - alpha = exp(io.gate), momentum sigmoid(io.router)",
    .init = titans_init,
    .forward = titans_forward,
    .backward = titans_backward,
    .flops = titans_flops,
    .bytes = titans_bytes,
    .state_bytes = titans_state_bytes,
    .inputs = ATTN_IN_BETA | ATTN_IN_GATE | ATTN_IN_ROUTER,
    .ref_forward = titans_ref_forward,
    .input_cols = titans_input_cols,
};
