/* `linear`: linear attention with the elu(x)+1 feature map (Katharopoulos,
 * Vyas, Pappas, Fleuret 2020, "Transformers are RNNs", eq. 4-7;
 * docs/kernels/linear.md): o_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps), no softmax scale. The
 * chunked causal form, the non-causal form and DOCUMENT resets live in
 * linear_chunk.c; this file holds the feature map and the kernel object. */
#include "linear.h"

#include "kernels/core/lowp.h"
#include "kernels/core/vexp.h"

#include <math.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <string.h>


/* e^x for x in [ATTN_EXP_LO, 0]: attn_expf's reduction and polynomial
 * (vexp.h) without its range branches; 2^n is normal for n >= -126, so one
 * power-of-two factor is exact. */
static inline float exp_nonpos(float x)
{
    float n = rintf(x * ATTN_EXP_LOG2E);
    float r = fmaf(-n, ATTN_EXP_LN2_HI, x);
    r = fmaf(-n, ATTN_EXP_LN2_LO, r);
    float p = attn_exp_poly(r);
    return p * attn_exp_pow2i((int32_t)n);
}

/* elu(x) + 1 = x + 1 (x > 0), e^x (x <= 0) (paper eq. 7). The exponent is
 * clamped at ATTN_EXP_LO = -87.3 so phi stays a normal float > 0 (the
 * positivity the paper relies on; the change is below 1.3e-38 absolute). */
static inline float elu1(float x)
{
    if (x > 0)
        return x + 1.0f;
    return x != x ? x : exp_nonpos(x < ATTN_EXP_LO ? ATTN_EXP_LO : x);
}

#ifdef __AVX2__
/* Eight lanes of elu1, the same operations in the same order (same bits);
 * the scalar loop made the feature map cost as much as the sgemm calls.
 * NaN passes through min/max (second operand) and fails the x > 0 test. */
static inline __m256 elu1_v8(__m256 x)
{
    __m256 t = _mm256_max_ps(_mm256_set1_ps(ATTN_EXP_LO), _mm256_min_ps(_mm256_setzero_ps(), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(ATTN_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ATTN_EXP_LN2_HI), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ATTN_EXP_LN2_LO), r);
    __m256 p = attn_exp_poly8(r);
    __m256i k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(k));
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_blendv_ps(e, _mm256_add_ps(x, _mm256_set1_ps(1.0f)), pos);
}
#endif

// x is (n, D) row stride ldx, f is (n, D) row stride ldf
static void elu1_fwd(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, float *f, int64_t ldf)
{
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * ldx;
        float *fr = f + r * ldf;
        int64_t d = 0;
#ifdef __AVX2__
        for (; d + 8 <= m->D; d += 8)
            _mm256_storeu_ps(fr + d, elu1_v8(_mm256_loadu_ps(xr + d)));
#endif
        for (; d < m->D; d++)
            fr[d] = elu1(xr[d]);
    }
}

/* phi'(x) = 1 (x > 0), e^x = phi(x) (x <= 0). */
static void elu1_bwd(const lin_fmap *m, const float *x, int64_t ldx, int64_t n, const float *df, int64_t ldf,
                     float *dx, int64_t lddx)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t d = 0; d < m->D; d++) {
            float v = x[r * ldx + d];
            dx[r * lddx + d] = df[r * ldf + d] * (v > 0 ? 1.0f : elu1(v));
        }
}

static void elu1_fwd64(const lin_fmap *m, const double *x, double *f)
{
    for (int64_t d = 0; d < m->D; d++)
        f[d] = x[d] > 0 ? x[d] + 1.0 : exp(x[d]);
}

void attn_linear_elu1_map(lin_fmap *m, int64_t D)
{
    memset(m, 0, sizeof *m);
    m->D = D, m->F = D;
    m->fwd = elu1_fwd, m->bwd = elu1_bwd, m->fwd64 = elu1_fwd64;
}

/* Chunk rows by head size, from CPU time of the causal forward (B=1, H=8,
 * N=64K, 2 threads, OpenBLAS 0.3.21, AVX2 EPYC; 2026-11-28): D=16: C=16 0.095 s,
 * 32 0.132, 64 0.148; D=64: 16 0.33, 32 0.41, 64 0.45, 128 0.59; D=128: 16 1.29,
 * 32 0.98, 64 1.02, 128 1.27, 256 1.94. Small heads favour small chunks (the
 * C x C products grow with C while phi(Q) S does not); at D=128, 32 and 64 tie
 * and 64 keeps the sgemm calls larger. */
static int64_t default_chunk(int64_t D) { return D <= 64 ? 16 : D < 128 ? 32 : 64; }

static const opt_def linear_params[] = {
    {.name = "chunk", .type = OPT_INT, .def_str = "16 (D<=64), 32 (D<128) or 64", .lo = 1, .hi = 1024,
     .help = "rows per chunk of the chunked form"},
    {0},
};

static int linear_cfg(lin_cfg *cfg, const attn_args *a)
{
    int rc = attn_params_check(a, "linear", linear_params);
    if (rc)
        return rc;
    memset(cfg, 0, sizeof *cfg);
    attn_linear_elu1_map(&cfg->fm, a->D);
    cfg->eps = LIN_EPS;
    cfg->C = attn_param_int_or(a, linear_params, "chunk", default_chunk(a->D), &rc);
    return rc ? rc : lin_cfg_check(cfg, a, "linear");
}

static int linear_init(attn_ctx *ctx, const attn_args *a)
{
    int rc = lin_k_init(ctx, a, linear_cfg);
    if (!rc) /* 16-bit operands are widened after the chunk scratch (kernels/core/lowp.h) */
        attn_lowp_reserve(ctx);
    return rc;
}

// q is (B,H,N,D), k is (B,H_kv,N,D), v is (B,H_kv,N,Dv); o is (B,H,N,Dv)
static int linear_forward_f32(attn_ctx *ctx, const attn_io *io) { return lin_k_forward(ctx, io, linear_cfg); }

static int linear_forward(attn_ctx *ctx, const attn_io *io) { return attn_lowp_forward(ctx, io, linear_forward_f32); }

static int linear_backward_f32(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    return lin_k_backward(ctx, io, g, linear_cfg);
}

static int linear_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    return attn_lowp_backward(ctx, io, g, linear_backward_f32);
}

static double linear_flops(const attn_args *a, attn_pass pass) { return lin_k_flops(a, pass, linear_cfg); }

static size_t linear_state_bytes(const attn_args *a) { return lin_k_state_bytes(a, linear_cfg); }

static int linear_ref_forward(const attn_args *a, const attn_io64 *io) { return lin_k_ref_forward(a, io, linear_cfg); }

/* phi(q).phi(k) for elu+1 in double, for the fidelity view. */
static double elu1_kernel64(const double *q, const double *k, int64_t D)
{
    double s = 0;
    for (int64_t d = 0; d < D; d++)
        s += (q[d] > 0 ? q[d] + 1 : exp(q[d])) * (k[d] > 0 ? k[d] + 1 : exp(k[d]));
    return s;
}

static int linear_ref_view(const attn_args *a, const attn_io64 *io, int64_t b, int64_t h, const int64_t *rows,
                           int64_t n, double *P, unsigned char *sel)
{
    (void)sel; /* no selection: every allowed key has weight */
    return lin_k_ref_view(a, io, b, h, rows, n, P, linear_cfg, elu1_kernel64);
}

/* The chunk the plan reads without params (memory-budget mode). */
static void linear_budget_defaults(const attn_args *a, int64_t *values) { values[0] = default_chunk(a->D); }

const attn_kernel attn_kernel_linear = {
    .name = "linear",
    .family = "linear",
    .reference = "Katharopoulos et al. 2020 (Transformers are RNNs), elu+1 features",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV |
             ATTN_DETERMINISTIC | ATTN_PADDED | ATTN_GROUP_LOCAL | ATTN_NO_SCALE,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = linear_params,
    .notes = "phi = elu+1, eps = 1e-6, no scale; DOCUMENT resets the state at each document",
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
    .flops = linear_flops,
    .bytes = lin_bytes,
    .state_bytes = linear_state_bytes,
    .fini = NULL,
    .inputs = 0,
    .ref_forward = linear_ref_forward,
    .ref_view = linear_ref_view,
    .dtypes = ATTN_DT_BIT(ATTN_DT_BF16) | ATTN_DT_BIT(ATTN_DT_FP16),
    .budget_params = "chunk",
    .budget_defaults = linear_budget_defaults,
};
