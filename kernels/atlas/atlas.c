/* `atlas`: the ATLAS memory (Behrouz et al. 2025, "ATLAS: Learning to
 * Optimally Memorize the Context at Test Time"; docs/kernels/atlas.md) with a
 * linear memory W (Dv x F) over features phi(k) and the Omega rule: at token t
 * the memory takes a gradient step on the loss of the last c tokens,
 *   E_i = W_{t0} p_i - v_i                          (t0: start of t's chunk)
 *   G_t = (1 / n_t) sum_{i = lo(t)}^{t} 2 gamma_i E_i p_i^T,   lo(t) = max(t - c + 1, sequence start)
 *   S_t = theta_t S_{t-1} + G_t                    (momentum)
 *   W_t = alpha_t W_{t-1} - eta_t S_t              (retention and step)
 *   y_t = W_t phi^(q_t)
 * p_i = phi^(k_i): the degree-2 Taylor map of `based` (or the identity) of the
 * L2-normalised row, normalised to unit length itself, so every token's loss
 * has curvature at most 2 gamma < 2: a step in (0, 1) keeps step x curvature < 2.
 * The optimiser step is momentum gradient descent (opt=gd) or, as in the
 * paper, Muon (opt=muon: W_t = alpha_t W_{t-1} - eta_t NS5(S_t), five
 * Newton-Schulz iterations towards the momentum's orthogonal polar factor;
 * atlas_muon.c). chunk = 1 (the default) is the
 * exact per-token rule; chunk = b takes every gradient of a chunk at its
 * start memory (the paper's parallel form), stable only while the chunk's b
 * stale steps stay small (docs/kernels/atlas.md, Stability). One task per (batch, KV head),
 * fixed order: bitwise identical results for any thread count. */
#include "atlas.h"
#include "atlas_internal.h"

#include "kernels/core/counters.h"
#include "kernels/linear/linear.h"

#include <math.h>
#include <string.h>

static const char *const atlas_phis[] = {"taylor", "identity", NULL};
static const char *const atlas_opts[] = {"gd", "muon", NULL};
static const opt_def atlas_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = ATLAS_DEFAULT_CHUNK, .lo = 1, .hi = ATLAS_MAX_CHUNK,
     .help = "keys whose gradients are taken at the same memory (1: the exact per-token rule; larger chunks "
             "diverge unless the steps stay below about 1/chunk)"},
    {.name = "window", .type = OPT_INT, .def = ATLAS_DEFAULT_WINDOW, .lo = 1, .hi = ATLAS_MAX_WINDOW,
     .help = "Omega rule: tokens whose regression loss each step descends (1: Titans' single token)"},
    {.name = "phi", .type = OPT_ENUM, .names = atlas_phis, .def = ATLAS_PHI_TAYLOR,
     .help = "feature map of keys and queries: degree-2 Taylor of exp (F = 1 + D + D(D+1)/2) or identity, "
             "normalised to unit length"},
    {.name = "opt", .type = OPT_ENUM, .names = atlas_opts, .def = 0,
     .help = "optimiser step: gd (momentum gradient descent) or muon (the momentum orthogonalised by five "
             "Newton-Schulz iterations, the paper's; bounded steps, but every step walked: slower)"},
    {0},
};

double atlas_sigmoid(double z)
{
    double e = exp(-fabs(z));
    return z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

void atlas_gates(const atlas_task *t, int64_t j, float *eta, float *alpha, float *theta, float *gamma)
{
    const attn_io *io = t->io;
    const float *z = attn_at(&io->router, t->b, t->hk, j);
    *eta = attn_at(&io->beta, t->b, t->hk, j)[0];
    *alpha = expf(attn_at(&io->gate, t->b, t->hk, j)[0]);
    *theta = (float)atlas_sigmoid(z[0]);
    *gamma = (float)atlas_sigmoid(z[1]);
}

int64_t atlas_window_lo(const attn_args *a, int64_t t, int64_t c)
{
    int64_t j = t;
    while (j > t - c + 1 && !attn_key_starts_seq(a, j))
        j--;
    return j;
}

/* Rows f of n features to unit length, f / sqrt(|f|^2 + eps): every token's
 * loss then has curvature 2 gamma <= 2 whatever the map and D (the Taylor map
 * of a unit vector has |phi|^2 = 1 + 1/sqrt(D) + 1/(2D)). */
static void unit_rows(float *f, int64_t n, int64_t F)
{
    for (int64_t r = 0; r < n; r++) {
        float s = 0, *fr = f + r * F;
        for (int64_t i = 0; i < F; i++)
            s += fr[i] * fr[i];
        float rn = 1.0f / sqrtf(s + (float)ATLAS_NORM_EPS);
        for (int64_t i = 0; i < F; i++)
            fr[i] *= rn;
    }
}

/* x^ = x / sqrt(|x|^2 + eps) for n rows of D. */
static void unit_inputs(const float *x, int64_t ldx, int64_t n, int64_t D, float *xn)
{
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * ldx;
        float s = 0; /* a sum of squares: no cancellation */
        for (int64_t d = 0; d < D; d++)
            s += xr[d] * xr[d];
        float rn = 1.0f / sqrtf(s + (float)ATLAS_NORM_EPS);
        for (int64_t d = 0; d < D; d++)
            xn[r * D + d] = xr[d] * rn;
    }
}

void atlas_phi(const atlas_plan *pl, const float *x, int64_t ldx, int64_t n, float *xn, float *f)
{
    unit_inputs(x, ldx, n, pl->D, xn);
    pl->fm.fwd(&pl->fm, xn, pl->D, n, f, pl->F);
    unit_rows(f, n, pl->F);
}

/* dy = the gradient through y = u / sqrt(|u|^2 + eps) from dL/dy = dy (in place): (dy - y <y, dy>) / |u|. */
static void unit_bwd(const float *u, int64_t n, float *dy)
{
    float s = 0, yd = 0;
    for (int64_t i = 0; i < n; i++)
        s += u[i] * u[i];
    float rn = 1.0f / sqrtf(s + (float)ATLAS_NORM_EPS);
    for (int64_t i = 0; i < n; i++)
        yd += u[i] * rn * dy[i];
    for (int64_t i = 0; i < n; i++)
        dy[i] = rn * (dy[i] - u[i] * rn * yd);
}

void atlas_phi_bwd(const atlas_plan *pl, const float *x, float *df, float *xn, float *f, float *dx)
{
    unit_inputs(x, pl->D, 1, pl->D, xn);
    pl->fm.fwd(&pl->fm, xn, pl->D, 1, f, pl->F); /* the map's output before its normalisation */
    unit_bwd(f, pl->F, df);
    pl->fm.bwd(&pl->fm, xn, pl->D, 1, df, pl->F, dx, pl->D);
    unit_bwd(x, pl->D, dx);
}

void atlas_phi64(const atlas_plan *pl, const double *x, double *xn, double *f)
{
    double s = 0, sf = 0;
    for (int64_t d = 0; d < pl->D; d++)
        s += x[d] * x[d];
    for (int64_t d = 0; d < pl->D; d++)
        xn[d] = x[d] / sqrt(s + ATLAS_NORM_EPS);
    pl->fm.fwd64(&pl->fm, xn, f);
    for (int64_t i = 0; i < pl->F; i++)
        sf += f[i] * f[i];
    for (int64_t i = 0; i < pl->F; i++)
        f[i] /= sqrt(sf + ATLAS_NORM_EPS);
}

/* The identity map (F = D): phi(x) = x, for the reduction to Titans. */
static void identity_fwd(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    for (int64_t r = 0; r < n; r++)
        memcpy(f + r * ldf, x + r * ldx, sizeof(float) * (size_t)m->D);
}

static void identity_bwd(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                         float *dx, int64_t lddx)
{
    (void)x, (void)ldx;
    for (int64_t r = 0; r < n; r++)
        memcpy(dx + r * lddx, df + r * ldf, sizeof(float) * (size_t)m->D);
}

static void identity_fwd64(const lin_fmap *m, const double *x, double *f)
{
    memcpy(f, x, sizeof(double) * (size_t)m->D);
}

int atlas_plan_make(atlas_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "atlas", atlas_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->C = attn_param_int(a, atlas_params, "chunk", &rc);
    if (!rc)
        pl->c = attn_param_int(a, atlas_params, "window", &rc);
    int phi = rc ? 0 : attn_param_enum(a, atlas_params, "phi", &rc);
    if (!rc)
        pl->muon = attn_param_enum(a, atlas_params, "opt", &rc) == ATLAS_OPT_MUON;
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'atlas': query i reads the memory at key i, expected "
                                            "q_off == k_off, found q_off=%lld k_off=%lld",
                         (long long)a->q_off, (long long)a->k_off);
    if (phi == ATLAS_PHI_TAYLOR)
        attn_based_taylor_map(&pl->fm, a->D, 0);
    else
        pl->fm = (lin_fmap){.D = a->D, .F = a->D, .fwd = identity_fwd, .bwd = identity_bwd, .fwd64 = identity_fwd64};
    pl->D = a->D, pl->F = pl->fm.F, pl->Dv = attn_dv(a), pl->G = a->H / a->H_kv;
    size_t ns = pl->muon ? atlas_ns5_floats(pl) + mem_round((size_t)(pl->F * pl->Dv)) : 0; /* iterates, NS5(S) */
    mem_plan_make(&pl->m, a, pl->C, ATLAS_BWD_BLOCK, pl->F, pl->Dv, atlas_chunk_floats(pl) + ns,
                  ATLAS_BWD_VECTORS * mem_round((size_t)(pl->F + pl->Dv + pl->D)) + ns);
    return 0;
}

static int atlas_init(attn_ctx *ctx, const attn_args *a)
{
    atlas_plan pl;
    int rc = atlas_plan_make(&pl, a);
    if (rc)
        return rc;
    mem_plan_size_ctx(&pl.m, a->threads, ctx);
    return 0;
}

// q (B,H,N,D), k (B,H_kv,N,D), v (B,H_kv,N,Dv), beta, gate (B,H_kv,N,1), router (B,H_kv,N,2); o (B,H,N,Dv).
// The final memory and momentum of each (b, KV head) stay in the workspace (ctx->state_bytes_used).
static int atlas_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    atlas_plan pl;
    int rc = atlas_plan_make(&pl, a);
    if (rc || (rc = mem_inputs_present("atlas", io, NULL)))
        return rc;
    atlas_task all = {a, io, &pl, 0, 0};
    long long flops = mem_forward(a, &pl.m, &atlas_steps, &all, ctx->workspace);
    attn_counter_add(ATTN_CNT_FLOPS, flops);
    int64_t tasks = a->B * a->H_kv;
    /* K, V and four gates once per KV head, Q once per query head */
    double per_task = (double)a->Nk * (double)(pl.D + pl.Dv + 4 + pl.G * pl.D);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * per_task * (double)tasks));
    return 0;
}

/* Features of the map the params name. */
static double atlas_features(const attn_args *a)
{
    int rc = 0;
    int phi = attn_param_enum(a, atlas_params, "phi", &rc);
    double D = (double)a->D;
    return phi == ATLAS_PHI_IDENTITY ? D : 1 + D + D * (D + 1) / 2;
}

/* Forward FLOPs per (b, query head), C = min(chunk, N), R = C + min(window, N) - 1
 * rows a chunk's gradients touch:
 *   N (4 F Dv + 6 F Dv R / C + 2 R (F + Dv))
 * -- per token the two reads of the carried memory and momentum (4), per
 * chunk the window's errors and the two state updates (2 + 4, in F Dv R
 * units), and the in-chunk products phi(Q) phi(K_R)^T and P E. opt=muon
 * walks every step instead: per token the window's errors and gradient over
 * R / C and min(window, N) rows (2 + 2), the step (4) and the read (2), in
 * F Dv units, plus five Newton-Schulz iterations, 5 (4 F Dv^2 + 2 Dv^3).
 * Backward 2.5x forward (docs/kernel-interface.md's convention). */
static double atlas_flops(const attn_args *a, attn_pass pass)
{
    int rc = 0;
    int64_t C = attn_param_int(a, atlas_params, "chunk", &rc), w = attn_param_int(a, atlas_params, "window", &rc);
    int muon = attn_param_enum(a, atlas_params, "opt", &rc) == ATLAS_OPT_MUON;
    double N = (double)a->Nk, F = atlas_features(a), Dv = (double)attn_dv(a);
    double c = (double)(C < a->Nk ? C : a->Nk), cw = (double)(w < a->Nk ? w : a->Nk), R = c + cw - 1;
    double per_token = muon ? F * Dv * (2 * R / c + 2 * cw + 6) + 5 * (4 * F * Dv * Dv + 2 * Dv * Dv * Dv)
                            : 4 * F * Dv + 6 * F * Dv * R / c + 2 * R * (F + Dv);
    double fwd = (double)(a->B * a->H) * N * per_token;
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Minimum fp32 traffic, each tensor once: forward reads Q, K, V and the four
 * gate columns and writes O; backward reads them and dO and writes their gradients. */
static double atlas_bytes(const attn_args *a, attn_pass pass)
{
    double B = (double)a->B, Hq = (double)a->H, Hkv = (double)a->H_kv, N = (double)a->Nk;
    double D = (double)a->D, Dv = (double)attn_dv(a);
    if (pass == ATTN_PASS_FWD)
        return 4 * B * N * (Hq * D + Hkv * (D + Dv + 4) + Hq * Dv);
    return 4 * B * N * (2 * Hq * D + 2 * Hkv * (D + Dv + 4) + Hq * Dv);
}

/* Memory W and momentum S (F Dv each) per (batch, KV head), whole batch. The
 * window's raw keys and values are the inputs themselves, not state the
 * kernel keeps (a decoder would hold c (D + Dv + 1) more floats per head). */
static size_t atlas_state_bytes(const attn_args *a)
{
    return sizeof(float) * (size_t)((double)(a->B * a->H_kv) * 2 * atlas_features(a) * (double)attn_dv(a));
}

/* Momentum and window-weight logits per token. */
static int64_t atlas_input_cols(const attn_args *a, unsigned input)
{
    (void)a;
    return input == ATTN_IN_ROUTER ? 2 : 0;
}

const attn_kernel attn_kernel_atlas = {
    .name = "atlas",
    .family = "atlas",
    .reference = "Behrouz et al. 2025 (ATLAS), Omega rule over a window of c tokens, linear memory on unit-length "
                 "degree-2 Taylor features, momentum gradient descent or Muon; per token, or a chunk's gradients "
                 "at its start memory",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |
             ATTN_DETERMINISTIC | ATTN_NO_SCALE,
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = atlas_params,
    .notes = "step eta from io.beta, retention alpha = exp(io.gate), momentum sigmoid(router[0]), "
             "window weight sigmoid(router[1])",
    .init = atlas_init,
    .forward = atlas_forward,
    .backward = atlas_backward,
    .flops = atlas_flops,
    .bytes = atlas_bytes,
    .state_bytes = atlas_state_bytes,
    .inputs = ATTN_IN_BETA | ATTN_IN_GATE | ATTN_IN_ROUTER,
    .ref_forward = atlas_ref_forward,
    .input_cols = atlas_input_cols,
};
