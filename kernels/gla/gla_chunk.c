/* Intra-chunk decay products shared by the forward (gla.c) and the backward
 * (gla_bwd.c) of retnet / lightning / gla (docs/kernels/gla.md).
 *
 * Every decay factor is e^{a_r - a_s} with r >= s (a: in-chunk cumulative
 * log-gates), i.e. <= 1: nothing here can overflow, whatever the gates
 * (log-gates of -30 underflow to 0). Q and K are never divided by a cumulative
 * product (factoring the decay as Q*B and K/B, B the cumulative
 * product, overflows for long chunks).
 *
 * Scalar decay (retnet, lightning): a_r = (r+1) w, the decay matrix is
 * e^{(r-s) w} from a table of powers, applied to sgemm products.
 * Vector decay (gla), our choice, with sub-chunks of GLA_SUB rows:
 *  - off-diagonal: row block I against all earlier rows s <= rho, rho = 16 I - 1
 *    (the last row of the block J = I - 1 before I), is one sgemm of
 *    X_I * e^{a_r - a_rho} by K_s * e^{a_rho - a_s} (both exponents <= 0). Taking
 *    rho in each J works too; one rho for all J < I is the same product with
 *    one sgemm per row block instead of one per pair.
 *  - diagonal blocks: elementwise per channel, K_s * e^{a_r - a_s} for every
 *    pair s <= r of the block, built once per KV head and chunk (shared by the
 *    G query heads), so the per-head work is a plain dot product.
 * Deviation from a purely log-space form: every factor e^{a_r - a_s} (r >= s) of the
 * forward is a running product of alpha_u = e^{g_u} <= 1 (one exp per gate
 * instead of one per pair and channel), flushed to 0 below 2^-100 (no
 * subnormals); it cannot overflow either. The products round once per factor:
 * < 1e-6 relative at C = 64, and err_O 5e-7 at C = 512 with alpha in (0.99, 1)
 * (test gla_long_chunk_slow_decay_matches_reference). The backward's upper
 * products keep exp(a_r - a_t) of the float cumulative log-gates a.
 * Measured (1 thread, N 4096, D 128, H 2): gla forward 0.10 s with log-space
 * exps, 0.035-0.05 s with products, retnet 0.032-0.042 s. */
#include "gla.h"

#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* e^x for x <= 88.7 (0 below -87.3, no subnormals), branch-free so that the
 * loops below vectorise: attn_expf's reduction and polynomial (vexp.h, <= 2 ulp),
 * n rounded in one fma instead of rintf(x log2e) (ties may round differently). */
static inline float gla_exp(float x)
{
    float xc = x < ATTN_EXP_LO ? ATTN_EXP_LO : x;
    xc = xc > ATTN_EXP_HI ? ATTN_EXP_HI : xc;
    /* round to nearest by the 1.5*2^23 shift in one fma (rintf, or a separate
     * multiply after the clamps, keeps gcc from vectorising under trapping math) */
    float n = fmaf(xc, ATTN_EXP_LOG2E, 0x1.8p23f) - 0x1.8p23f;
    float r = fmaf(-n, ATTN_EXP_LN2_HI, xc);
    r = fmaf(-n, ATTN_EXP_LN2_LO, r);
    float p = attn_exp_poly(r);
    int32_t k = (int32_t)n, k1 = k / 2; /* k in [-126, 129]: two normal factors */
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k - k1 + 127) << 23;
    float f1, f2;
    memcpy(&f1, &b1, sizeof f1);
    memcpy(&f2, &b2, sizeof f2);
    float keep = (float)(x >= ATTN_EXP_LO); /* a product, not a branch: vectorises */
    return p * f1 * f2 * keep;
}

/* y[d] = x[d] * z[d], 0 below GLA_DECAY_FLUSH (x, z: decay factors in [0, 1]) */
static void mul_flush(float *y, const float *x, const float *z, int64_t n)
{
    for (int64_t d = 0; d < n; d++) {
        float p = x[d] * z[d];
        y[d] = p < GLA_DECAY_FLUSH ? 0.0f : p;
    }
}

/* y[d] = c * u[d] * z[d] */
static void scaled_mul(float *y, float c, const float *u, const float *z, int64_t n)
{
    for (int64_t d = 0; d < n; d++)
        y[d] = c * u[d] * z[d];
}

/* y[d] += c * u[d] * z[d] */
static void add_scaled_mul(float *y, float c, const float *u, const float *z, int64_t n)
{
    for (int64_t d = 0; d < n; d++)
        y[d] += c * u[d] * z[d];
}

/* y[d] = c * u[d] * e^{ar[d] - as[d]} */
static void scaled_decay(float *y, float c, const float *u, const float *ar, const float *as, int64_t n)
{
    for (int64_t d = 0; d < n; d++)
        y[d] = c * u[d] * gla_exp(ar[d] - as[d]);
}

/* y[d] += c * u[d] * e^{ar[d] - as[d]} */
static void add_scaled_decay(float *y, float c, const float *u, const float *ar, const float *as, int64_t n)
{
    for (int64_t d = 0; d < n; d++)
        y[d] += c * u[d] * gla_exp(ar[d] - as[d]);
}

/* sum_d x[d] y[d], 16 partial sums in a fixed order (vectorised, deterministic). */
static float dot16(const float *x, const float *y, int64_t n)
{
    float acc[16] = {0};
    int64_t d = 0;
    for (; d + 16 <= n; d += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += x[d + l] * y[d + l];
    for (int l = 0; d < n; d++, l++)
        acc[l] += x[d] * y[d];
    float s = 0;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    return s;
}

void attn_gla_powers(float *pw, double w, int64_t C)
{
    for (int64_t r = 0; r <= C; r++)
        pw[r] = (float)exp((double)r * w); /* w <= 0: never lambda^{-r} */
}

static float *take(float **ws, int64_t n)
{
    float *p = *ws;
    *ws += (n + 15) / 16 * 16;
    return p;
}

static int64_t max64(int64_t x, int64_t y) { return x > y ? x : y; }

void attn_gla_chunk_bind(gla_chunk *ch, const gla_plan *pl, const float *pw, float **ws)
{
    int64_t C = pl->C, Dk = pl->Dk;
    memset(ch, 0, sizeof *ch);
    ch->vec = pl->vec, ch->Dk = Dk, ch->pw = pw;
    if (pl->vec) {
        ch->a = take(ws, C * Dk), ch->ea = take(ws, C * Dk), ch->et = take(ws, C * Dk), ch->eb = take(ws, C * Dk);
        ch->eL = take(ws, Dk), ch->kr = take(ws, pl->kr_rows * Dk), ch->kp = take(ws, pl->kp_rows * Dk);
    }
    ch->xt = take(ws, C * Dk), ch->mt = take(ws, C * max64(Dk, pl->Dv));
}

/* Floats attn_gla_chunk_bind takes (with its rounding). */
size_t attn_gla_chunk_floats(const gla_plan *pl)
{
    int64_t C = pl->C, Dk = pl->Dk, r = 16;
    size_t n = (size_t)(C * Dk + r + C * max64(Dk, pl->Dv) + r);
    if (pl->vec)
        n += (size_t)(4 * (C * Dk + r) + Dk + r + pl->kr_rows * Dk + r + pl->kp_rows * Dk + r);
    return n;
}

/* Row offset of key block I (>= 1) in ch->kr: blocks of 16, 32, ... rows. */
static int64_t kr_offset(int64_t blk) { return GLA_SUB * blk * (blk - 1) / 2; }

/* Row of K_s * e^{a_r - a_s} in ch->kp, for r0 <= s <= r in the block of r0. */
static const float *kp_row(const gla_chunk *ch, int64_t r0, int64_t r, int64_t s)
{
    int64_t rr = r - r0;
    return ch->kp + ((r0 / GLA_SUB) * (GLA_SUB * (GLA_SUB + 1) / 2) + rr * (rr + 1) / 2 + (s - r0)) * ch->Dk;
}

/* Every vector-decay factor of the chunk from alpha_r = e^{g_r} (one exp per
 * gate) by running products, factors <= 1, flushed to 0 below GLA_DECAY_FLUSH:
 *   ea_r = prod_{u<=r} alpha_u, et_r = prod_{u>r} alpha_u, eb_r = prod_{r0<=u<=r},
 *   kr_I(s) = K_s prod_{s<u<=rho}, kp(r, s) = K_s prod_{s<u<=r} (diagonal blocks).
 * The diagonal-block keys are shared by the G query heads of the group. */
static void prep_products(gla_chunk *ch, const float *g, int64_t lg, const float *K, int64_t lk)
{
    int64_t L = ch->L, Dk = ch->Dk;
    float *alpha = ch->mt, *P = ch->xt; /* scratch: e^{g_r} rows, one running product */
    for (int64_t r = 0; r < L; r++)
        for (int64_t d = 0; d < Dk; d++)
            alpha[r * Dk + d] = gla_exp(g[r * lg + d]);
    memcpy(ch->ea, alpha, sizeof(float) * (size_t)Dk);
    for (int64_t r = 1; r < L; r++)
        mul_flush(ch->ea + r * Dk, ch->ea + (r - 1) * Dk, alpha + r * Dk, Dk);
    memcpy(ch->eL, ch->ea + (L - 1) * Dk, sizeof(float) * (size_t)Dk);
    for (int64_t d = 0; d < Dk; d++)
        ch->et[(L - 1) * Dk + d] = 1.0f;
    for (int64_t r = L - 2; r >= 0; r--)
        mul_flush(ch->et + r * Dk, ch->et + (r + 1) * Dk, alpha + (r + 1) * Dk, Dk);
    for (int64_t r0 = 0; r0 < L; r0 += GLA_SUB) {
        int64_t r1 = r0 + GLA_SUB < L ? r0 + GLA_SUB : L;
        memcpy(ch->eb + r0 * Dk, alpha + r0 * Dk, sizeof(float) * (size_t)Dk);
        for (int64_t r = r0 + 1; r < r1; r++)
            mul_flush(ch->eb + r * Dk, ch->eb + (r - 1) * Dk, alpha + r * Dk, Dk);
        if (r0 > 0) { /* kr of this block: rows s <= rho = r0 - 1, walking back from rho */
            float *kr = ch->kr + kr_offset(r0 / GLA_SUB) * Dk;
            for (int64_t d = 0; d < Dk; d++)
                P[d] = 1.0f;
            for (int64_t s = r0 - 1; s >= 0; s--) {
                if (s < r0 - 1)
                    mul_flush(P, P, alpha + (s + 1) * Dk, Dk);
                scaled_mul(kr + s * Dk, 1.0f, K + s * lk, P, Dk);
            }
        }
        for (int64_t s = r0; s < r1; s++) {
            const float *k = K + s * lk;
            memcpy((float *)kp_row(ch, r0, s, s), k, sizeof(float) * (size_t)Dk);
            for (int64_t d = 0; d < Dk; d++)
                P[d] = 1.0f;
            for (int64_t r = s + 1; r < r1; r++) {
                mul_flush(P, P, alpha + r * Dk, Dk);
                scaled_mul((float *)kp_row(ch, r0, r, s), 1.0f, k, P, Dk);
            }
        }
    }
}

void attn_gla_chunk_prep(gla_chunk *ch, int64_t L, const float *g, int64_t lg, const float *K, int64_t lk)
{
    int64_t Dk = ch->Dk;
    ch->L = L;
    if (!ch->vec)
        return;
    float *a = ch->a; /* log space, for the backward's upper products */
    memcpy(a, g, sizeof(float) * (size_t)Dk);
    for (int64_t r = 1; r < L; r++) /* g <= 0: a is non-increasing in r, so a_r - a_s <= 0 for r >= s */
        for (int64_t d = 0; d < Dk; d++)
            a[r * Dk + d] = a[(r - 1) * Dk + d] + g[r * lg + d];
    prep_products(ch, g, lg, K, lk);
}

/* Zeroes the strict upper triangle and scales the lower one by e^{(r-s) w}. */
static void scalar_decay_mask(const gla_chunk *ch, float *A)
{
    int64_t L = ch->L;
    for (int64_t r = 0; r < L; r++) {
        for (int64_t s = 0; s <= r; s++)
            A[r * L + s] *= ch->pw[r - s];
        for (int64_t s = r + 1; s < L; s++)
            A[r * L + s] = 0.0f;
    }
}

void attn_gla_scores(const gla_chunk *ch, const float *X, int64_t lx, const float *K, int64_t lk,
                     float alpha, float *A)
{
    int64_t L = ch->L, Dk = ch->Dk;
    if (!ch->vec) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)Dk, alpha, X, (int)lx, K,
                    (int)lk, 0.0f, A, (int)L);
        scalar_decay_mask(ch, A);
        return;
    }
    memset(A, 0, sizeof(float) * (size_t)(L * L));
    for (int64_t r0 = 0; r0 < L; r0 += GLA_SUB) {
        int64_t r1 = r0 + GLA_SUB < L ? r0 + GLA_SUB : L, nr = r1 - r0;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t s = r0; s <= r; s++)
                A[r * L + s] = alpha * dot16(X + r * lx, kp_row(ch, r0, r, s), Dk);
        if (r0 == 0)
            continue;
        for (int64_t r = r0; r < r1; r++)
            scaled_mul(ch->xt + (r - r0) * Dk, 1.0f, X + r * lx, ch->eb + r * Dk, Dk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)r0, (int)Dk, alpha, ch->xt,
                    (int)Dk, ch->kr + kr_offset(r0 / GLA_SUB) * Dk, (int)Dk, 0.0f, A + r0 * L, (int)L);
    }
}

void attn_gla_apply_lower(const gla_chunk *ch, float *B, const float *K, int64_t lk, float alpha,
                          float *M, int64_t lm)
{
    int64_t L = ch->L, Dk = ch->Dk;
    if (!ch->vec) {
        scalar_decay_mask(ch, B);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)Dk, (int)L, alpha, B, (int)L, K,
                    (int)lk, 1.0f, M, (int)lm);
        return;
    }
    for (int64_t r0 = 0; r0 < L; r0 += GLA_SUB) {
        int64_t r1 = r0 + GLA_SUB < L ? r0 + GLA_SUB : L, nr = r1 - r0;
        if (r0 > 0) { /* rows of block I against every earlier row, through rho = r0 - 1 */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)Dk, (int)r0, 1.0f, B + r0 * L,
                        (int)L, ch->kr + kr_offset(r0 / GLA_SUB) * Dk, (int)Dk, 0.0f, ch->mt, (int)Dk);
            for (int64_t r = r0; r < r1; r++)
                add_scaled_mul(M + r * lm, alpha, ch->mt + (r - r0) * Dk, ch->eb + r * Dk, Dk);
        }
        for (int64_t r = r0; r < r1; r++)
            for (int64_t s = r0; s <= r; s++) {
                const float *kp = kp_row(ch, r0, r, s);
                float c = alpha * B[r * L + s];
                for (int64_t d = 0; d < Dk; d++)
                    M[r * lm + d] += c * kp[d];
            }
    }
}

void attn_gla_apply_upper(const gla_chunk *ch, float *B, const float *X, int64_t lx, float alpha,
                          float *M, int64_t lm)
{
    int64_t L = ch->L, Dk = ch->Dk;
    if (!ch->vec) {
        scalar_decay_mask(ch, B);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)L, (int)Dk, (int)L, alpha, B, (int)L, X,
                    (int)lx, 1.0f, M, (int)lm);
        return;
    }
    const float *a = ch->a;
    for (int64_t t0 = 0; t0 < L; t0 += GLA_SUB) {
        int64_t t1 = t0 + GLA_SUB < L ? t0 + GLA_SUB : L, nt = t1 - t0;
        if (t1 < L) { /* later rows r >= t1 against block I, through rho = t1 - 1 (the last row of I) */
            const float *arho = a + (t1 - 1) * Dk;
            for (int64_t r = t1; r < L; r++)
                scaled_decay(ch->xt + (r - t1) * Dk, 1.0f, X + r * lx, a + r * Dk, arho, Dk);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nt, (int)Dk, (int)(L - t1), 1.0f,
                        B + t1 * L + t0, (int)L, ch->xt, (int)Dk, 0.0f, ch->mt, (int)Dk);
            for (int64_t t = t0; t < t1; t++)
                add_scaled_decay(M + t * lm, alpha, ch->mt + (t - t0) * Dk, arho, a + t * Dk, Dk);
        }
        for (int64_t t = t0; t < t1; t++)
            for (int64_t r = t; r < t1; r++)
                add_scaled_decay(M + t * lm, alpha * B[r * L + t], X + r * lx, a + r * Dk, a + t * Dk, Dk);
    }
}

void attn_gla_scale_rows(const gla_chunk *ch, int head, float *M, int64_t lm, int64_t n)
{
    int64_t L = ch->L, Dk = ch->Dk;
    for (int64_t r = 0; r < L; r++) {
        float *m = M + r * lm;
        if (!ch->vec) {
            float f = ch->pw[head ? r + 1 : L - 1 - r];
            for (int64_t d = 0; d < n; d++)
                m[d] *= f;
            continue;
        }
        const float *e = (head ? ch->ea : ch->et) + r * Dk;
        for (int64_t d = 0; d < n; d++)
            m[d] *= e[d];
    }
}

void attn_gla_decay_state(const gla_chunk *ch, float *S, int64_t Dv)
{
    for (int64_t d = 0; d < ch->Dk; d++) {
        float f = ch->vec ? ch->eL[d] : ch->pw[ch->L];
        for (int64_t e = 0; e < Dv; e++)
            S[d * Dv + e] *= f;
    }
}

void attn_gla_decayed_copy(gla_chunk *ch, const float *X, int64_t lx, int head)
{
    for (int64_t r = 0; r < ch->L; r++)
        memcpy(ch->xt + r * ch->Dk, X + r * lx, sizeof(float) * (size_t)ch->Dk);
    attn_gla_scale_rows(ch, head, ch->xt, ch->Dk, ch->Dk);
}

void attn_gla_state_step(gla_chunk *ch, const float *K, int64_t lk, const float *V, int64_t lv, float *S, int64_t Dv)
{
    attn_gla_decayed_copy(ch, K, lk, 0);
    attn_gla_decay_state(ch, S, Dv);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ch->Dk, (int)Dv, (int)ch->L, 1.0f, ch->xt, (int)ch->Dk,
                V, (int)lv, 1.0f, S, (int)Dv);
}
