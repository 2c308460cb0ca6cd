/* `based`: linear attention with the 2nd-order Taylor feature map of Arora
 * et al. 2024 ("Simple linear attention language models balance the
 * recall-throughput tradeoff", sec. 3.1; docs/kernels/linear.md):
 *   phi(x) = [1, x / d'^{1/4}, vec(x x^T) / sqrt(2 d')],  so
 *   phi(q).phi(k) = 1 + s + s^2/2 = ((s+1)^2 + 1)/2 > 0,  s = <q,k>/sqrt(d'),
 * with d' = D (the q/k head dimension; V may have Dv != D columns). To save
 * memory only the d'(d'+1)/2 unique quadratic terms are stored (diagonal x_a^2/sqrt(2d'),
 * off-diagonal x_a x_b/sqrt(d')): F = 1 + d' + d'(d'+1)/2 = 153 instead of 273
 * at d' = 16, same inner products (`features=full` keeps all d'^2 terms).
 * Then elu+1 linear attention's algorithm with this phi (linear_chunk.c), and with
 * `window=W` the exact sliding window with a shared denominator of
 * linear_window.c (a non-paper fused option; the paper alternates separate
 * window-softmax layers). */
#include "linear.h"

#include <math.h>
#include <string.h>

/* CPU time of the causal forward at d' = 16, F = 153 (B=1, H=8, N=32K, 2
 * threads): chunk 16 0.178 s, 32 0.252, 64 0.264, 128 0.379. */
#define BASED_DEFAULT_CHUNK 16

static int64_t taylor_F(int64_t D, int full) { return 1 + D + (full ? D * D : D * (D + 1) / 2); }

/* Coefficient of the quadratic term x_a x_b (a <= b; full: any a, b). */
static inline double quad_coef(const lin_fmap *m, int64_t a, int64_t b)
{
    return m->full || a == b ? m->c2d : m->c2o;
}

// x is (n, D) row stride ldx, f is (n, F) row stride ldf
static void taylor_fwd(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    int64_t D = m->D;
    float c1 = (float)m->c1, c2d = (float)m->c2d, c2o = (float)m->c2o;
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * ldx;
        float *fr = f + r * ldf, *t = fr + 1 + D;
        fr[0] = 1.0f;
        for (int64_t a = 0; a < D; a++)
            fr[1 + a] = c1 * xr[a];
        for (int64_t a = 0; a < D; a++) {
            float ca = m->full ? c2d * xr[a] : c2o * xr[a];
            for (int64_t b = m->full ? 0 : a; b < D; b++)
                *t++ = ca * xr[b];
            if (!m->full)
                t[-(D - a)] = c2d * xr[a] * xr[a];
        }
    }
}

/* dx_a = c1 df_a + sum over the quadratic terms containing x_a of coef * (other factor) * df. */
static void taylor_bwd(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                       float *dx, int64_t lddx)
{
    int64_t D = m->D;
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * ldx, *dr = df + r * ldf, *t = dr + 1 + D;
        float *o = dx + r * lddx;
        for (int64_t a = 0; a < D; a++)
            o[a] = (float)m->c1 * dr[1 + a];
        for (int64_t a = 0; a < D; a++)
            for (int64_t b = m->full ? 0 : a; b < D; b++, t++) {
                float c = (float)quad_coef(m, a, b) * *t;
                o[a] += c * xr[b];
                o[b] += c * xr[a];
            }
    }
}

static void taylor_fwd64(const lin_fmap *m, const double *x, double *f)
{
    int64_t D = m->D, t = 1 + D;
    f[0] = 1;
    for (int64_t a = 0; a < D; a++)
        f[1 + a] = m->c1 * x[a];
    for (int64_t a = 0; a < D; a++)
        for (int64_t b = m->full ? 0 : a; b < D; b++)
            f[t++] = quad_coef(m, a, b) * x[a] * x[b];
}

void attn_based_taylor_map(lin_fmap *m, int64_t D, int full)
{
    memset(m, 0, sizeof *m);
    m->D = D, m->F = taylor_F(D, full), m->full = full;
    m->c1 = pow((double)D, -0.25), m->c2d = 1.0 / sqrt(2.0 * (double)D), m->c2o = 1.0 / sqrt((double)D);
    m->fwd = taylor_fwd, m->bwd = taylor_bwd, m->fwd64 = taylor_fwd64;
}

enum { BASED_UNIQUE, BASED_FULL };
static const char *const based_features[] = {"unique", "full", NULL};
static const char *const based_mixes[] = {"shared_denominator", NULL};
static const opt_def based_params[] = {
    {.name = "chunk", .type = OPT_INT, .def = BASED_DEFAULT_CHUNK, .lo = 1, .hi = 1024, .help = "rows per chunk"},
    {.name = "features", .type = OPT_ENUM, .names = based_features, .def = BASED_UNIQUE,
     .help = "F = 1+D+D(D+1)/2 or 1+D+D^2, same result"},
    {.name = "window", .type = OPT_INT, .def = 0, .lo = 0, .hi = 65536,
     .help = "W > 0 (causal) mixes exact weights e^{<q,k>/sqrt(D)} of the W most recent keys (query included) "
             "with the Taylor weights of older keys under one shared denominator"},
    {.name = "mix", .type = OPT_ENUM, .names = based_mixes, .def = 0,
     .help = "the only window mixing implemented"},
    {0},
};

static int based_cfg(lin_cfg *cfg, const attn_args *a)
{
    int rc = attn_params_check(a, "based", based_params);
    int full = rc ? 0 : attn_param_enum(a, based_params, "features", &rc) == BASED_FULL;
    if (!rc)
        attn_param_enum(a, based_params, "mix", &rc);
    if (rc)
        return rc;
    memset(cfg, 0, sizeof *cfg);
    attn_based_taylor_map(&cfg->fm, a->D, full);
    cfg->eps = LIN_EPS;
    cfg->C = attn_param_int(a, based_params, "chunk", &rc);
    cfg->W = attn_param_int(a, based_params, "window", &rc);
    return rc ? rc : lin_cfg_check(cfg, a, "based");
}

static int based_init(attn_ctx *ctx, const attn_args *a) { return lin_k_init(ctx, a, based_cfg); }

// q is (B,H,N,D), k is (B,H_kv,N,D), v is (B,H_kv,N,Dv); o is (B,H,N,Dv)
static int based_forward(attn_ctx *ctx, const attn_io *io) { return lin_k_forward(ctx, io, based_cfg); }

static int based_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    return lin_k_backward(ctx, io, g, based_cfg);
}

static double based_flops(const attn_args *a, attn_pass pass) { return lin_k_flops(a, pass, based_cfg); }

static size_t based_state_bytes(const attn_args *a) { return lin_k_state_bytes(a, based_cfg); }

static int based_ref_forward(const attn_args *a, const attn_io64 *io) { return lin_k_ref_forward(a, io, based_cfg); }

/* phi(q).phi(k) = 1 + s + s^2/2, s = <q,k>/sqrt(D), for the fidelity view
 * (both feature layouts give this value). */
static double taylor_kernel64(const double *q, const double *k, int64_t D)
{
    double dot = 0;
    for (int64_t d = 0; d < D; d++)
        dot += q[d] * k[d];
    double s = dot / sqrt((double)D);
    return 1 + s + s * s / 2;
}

static int based_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                          int64_t n, double *P, unsigned char *sel)
{
    (void)sel;
    return lin_k_ref_view(a, io, b, h, rows, n, P, based_cfg, taylor_kernel64);
}

const attn_kernel attn_kernel_based = {
    .name = "based",
    .family = "linear",
    .reference = "Arora et al. 2024 (Based), 2nd-order Taylor features",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |
             ATTN_DETERMINISTIC | ATTN_GROUP_LOCAL | ATTN_NO_SCALE,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = based_params,
    .notes = "with a window: o_i = (sum_win e^s v + sum_{j<=i-W} phi(q).phi(k) v) / "
             "(sum_win e^s + sum_{j<=i-W} phi(q).phi(k) + 1e-6)",
    .init = based_init,
    .forward = based_forward,
    .backward = based_backward,
    .flops = based_flops,
    .bytes = lin_bytes,
    .state_bytes = based_state_bytes,
    .fini = NULL,
    .inputs = 0,
    .ref_forward = based_ref_forward,
    .ref_view = based_ref_view,
};
