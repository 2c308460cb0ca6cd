/* The layers of the training engine (models/layers.h) against their double
 * references: fp32 forward vs double forward, double backward vs central
 * differences, fp32 backward vs double backward (tests/layers_check.h), plus
 * the properties the train loop relies on (ignore index, dropout masks,
 * constant rows, thread-count independence). */
#include "layers_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 2

static void check_case(lc_case *c, const char *what)
{
    lc_check(c, 1234, what);
    lc_blob_free(&c->params);
}

static nn_blob blob_of(size_t n)
{
    nn_blob b;
    lc_blob(&b, n);
    return b;
}

/* ---------------------------------------------------------------- dense */

typedef struct {
    nn_dense l;
    int64_t rows;
} dense_ctx;

static int dense_fwd(lc_case *c, const float *x, float *y)
{
    dense_ctx *d = c->ctx;
    nn_dense_forward(&d->l, x, y, d->rows, THREADS);
    return 0;
}
static int dense_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    dense_ctx *d = c->ctx;
    nn_dense_backward(&d->l, x, dy, dx, d->rows, THREADS);
    return 0;
}
static int dense_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    dense_ctx *d = c->ctx;
    nn_dense_forward_ref(&d->l, P, x, y, d->rows);
    return 0;
}
static int dense_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    dense_ctx *d = c->ctx;
    nn_dense_backward_ref(&d->l, P, x, dy, dx, dP, d->rows);
    return 0;
}

Test(layers, dense_matches_reference_and_central_differences, .timeout = 60)
{
    for (int bias = 0; bias <= 1; bias++) {
        dense_ctx d = {.rows = 5};
        nn_blob b = blob_of(nn_dense_param_count(4, 3, bias));
        cr_assert_eq(nn_dense_bind(&d.l, 4, 3, bias, &b), 0, "%s", attn_last_error());
        lc_case c = {.nx = 5 * 4, .ny = 5 * 3, .params = b, .ctx = &d, .fwd = dense_fwd, .bwd = dense_bwd,
                     .fwd_ref = dense_fwd_ref, .bwd_ref = dense_bwd_ref};
        check_case(&c, bias ? "dense+bias" : "dense");
    }
}

/* ---------------------------------------------------------------- embeddings */

typedef struct {
    nn_embed l;
    int32_t tok[6];
} embed_ctx;

static int embed_fwd(lc_case *c, const float *x, float *y)
{
    (void)x;
    embed_ctx *d = c->ctx;
    return nn_embed_forward(&d->l, d->tok, y, 2, 3, THREADS);
}
static int embed_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    (void)x, (void)dx;
    embed_ctx *d = c->ctx;
    return nn_embed_backward(&d->l, d->tok, dy, 2, 3, THREADS);
}
static int embed_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)x;
    embed_ctx *d = c->ctx;
    return nn_embed_forward_ref(&d->l, P, d->tok, y, 2, 3);
}
static int embed_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)P, (void)x, (void)dx;
    embed_ctx *d = c->ctx;
    return nn_embed_backward_ref(&d->l, d->tok, dy, dP, 2, 3);
}

Test(layers, embedding_with_learned_positions_matches_reference, .timeout = 60)
{
    for (int64_t Nmax = 0; Nmax <= 4; Nmax += 4) {
        embed_ctx d = {.tok = {3, 1, 3, 0, 4, 3}};   /* repeated tokens: the scatter-add must sum */
        nn_blob b = blob_of(nn_embed_param_count(5, 4, Nmax));
        cr_assert_eq(nn_embed_bind(&d.l, 5, 4, Nmax, &b), 0, "%s", attn_last_error());
        lc_case c = {.ny = 2 * 3 * 4, .params = b, .ctx = &d, .fwd = embed_fwd, .bwd = embed_bwd,
                     .fwd_ref = embed_fwd_ref, .bwd_ref = embed_bwd_ref};
        check_case(&c, Nmax ? "embed+wpe" : "embed");
    }
}

Test(layers, embedding_rejects_bad_tokens_and_long_sequences)
{
    nn_embed l;
    nn_blob b = blob_of(nn_embed_param_count(5, 4, 2));
    cr_assert_eq(nn_embed_bind(&l, 5, 4, 2, &b), 0);
    float out[3 * 4];
    int32_t bad[2] = {1, 5}, ok3[3] = {0, 1, 2};
    cr_assert_neq(nn_embed_forward(&l, bad, out, 1, 2, 1), 0);
    cr_assert(strstr(attn_last_error(), "token ids in [0, 5)"), "%s", attn_last_error());
    cr_assert_neq(nn_embed_forward(&l, ok3, out, 1, 3, 1), 0, "N=3 > Nmax=2 must fail");
    lc_blob_free(&b);
}

typedef struct {
    int64_t B, N, H, D;
    float cs[64];
    float tmp[256];
} rope_ctx;

static int rope_fwd(lc_case *c, const float *x, float *y)
{
    rope_ctx *d = c->ctx;
    memcpy(y, x, sizeof(float) * (size_t)c->ny);
    nn_rope_forward(y, d->cs, d->B, d->N, d->H, d->D, THREADS);
    return 0;
}
static int rope_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    rope_ctx *d = c->ctx;
    memcpy(d->tmp, dy, sizeof(float) * (size_t)c->ny);
    nn_rope_backward(d->tmp, d->cs, d->B, d->N, d->H, d->D, THREADS);
    for (int64_t i = 0; i < c->nx; i++)
        dx[i] += d->tmp[i];
    return 0;
}
static int rope_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)P;
    rope_ctx *d = c->ctx;
    nn_rope_forward_ref(x, y, d->B, d->N, d->H, d->D, 10000.0);
    return 0;
}
static int rope_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)P, (void)x, (void)dP;
    rope_ctx *d = c->ctx;
    nn_rope_backward_ref(dy, dx, d->B, d->N, d->H, d->D, 10000.0);
    return 0;
}

Test(layers, rope_matches_reference_and_its_backward_is_the_transpose, .timeout = 60)
{
    rope_ctx d = {.B = 2, .N = 5, .H = 2, .D = 6};
    cr_assert(nn_rope_table_floats(d.N, d.D) <= 64);
    nn_rope_table(d.cs, d.N, d.D, 10000.0);
    int64_t n = d.B * d.N * d.H * d.D;
    lc_case c = {.nx = n, .ny = n, .params = blob_of(0), .ctx = &d, .fwd = rope_fwd, .bwd = rope_bwd,
                 .fwd_ref = rope_fwd_ref, .bwd_ref = rope_bwd_ref};
    check_case(&c, "rope");
}

Test(layers, sinusoidal_positions_match_reference)
{
    int64_t B = 2, N = 9, C = 5;   /* odd C: the last channel is a sine */
    float x[90] = {0};
    double x64[90] = {0};
    nn_sinusoid_add(x, B, N, C, THREADS);
    nn_sinusoid_add_ref(x64, B, N, C);
    cr_assert(lc_rel(x, x64, B * N * C) <= 1e-6, "sinusoid %.3g", lc_rel(x, x64, B * N * C));
    cr_assert_float_eq(x[(N + 3) * C + 0], sinf(3.0f), 1e-6, "PE(3, 0) = sin 3 in batch 1");
    cr_assert_float_eq(x[2 * C + 1], cos(2.0 * pow(10000.0, -0.0 / 5)), 1e-6, "PE(2, 1) = cos 2");
}

/* ---------------------------------------------------------------- norms */

typedef struct {
    nn_norm l;
    int64_t rows;
    float mean[8], rstd[8];
} norm_ctx;

static int norm_fwd(lc_case *c, const float *x, float *y)
{
    norm_ctx *d = c->ctx;
    nn_norm_forward(&d->l, x, y, d->mean, d->rstd, d->rows, THREADS);
    return 0;
}
static int norm_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    norm_ctx *d = c->ctx;
    nn_norm_backward(&d->l, x, d->mean, d->rstd, dy, dx, d->rows, THREADS);
    return 0;
}
static int norm_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    norm_ctx *d = c->ctx;
    nn_norm_forward_ref(&d->l, P, x, y, d->rows);
    return 0;
}
static int norm_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    norm_ctx *d = c->ctx;
    nn_norm_backward_ref(&d->l, P, x, dy, dx, dP, d->rows);
    return 0;
}

Test(layers, layernorm_and_rmsnorm_match_reference_and_central_differences, .timeout = 60)
{
    for (int rms = 0; rms <= 1; rms++) {
        norm_ctx d = {.rows = 4};
        nn_blob b = blob_of(nn_norm_param_count(6, rms));
        cr_assert_eq(nn_norm_bind(&d.l, 6, rms, &b), 0);
        lc_case c = {.nx = 4 * 6, .ny = 4 * 6, .params = b, .ctx = &d, .fwd = norm_fwd, .bwd = norm_bwd,
                     .fwd_ref = norm_fwd_ref, .bwd_ref = norm_bwd_ref};
        check_case(&c, rms ? "rmsnorm" : "layernorm");
    }
}

Test(layers, norms_of_constant_rows_are_finite)
{
    for (int rms = 0; rms <= 1; rms++) {
        nn_norm l;
        nn_blob b = blob_of(nn_norm_param_count(8, rms));
        cr_assert_eq(nn_norm_bind(&l, 8, rms, &b), 0);
        nn_norm_init(&l);
        float x[16], y[16], dy[16], dx[16] = {0}, mean[2], rstd[2];
        for (int i = 0; i < 16; i++)
            x[i] = i < 8 ? 3.25f : 0.0f, dy[i] = (float)(i % 5) - 2.0f;   /* a constant row and a zero row */
        nn_norm_forward(&l, x, y, mean, rstd, 2, 1);
        nn_norm_backward(&l, x, mean, rstd, dy, dx, 2, 1);
        for (int i = 0; i < 16; i++)
            cr_assert(isfinite(y[i]) && isfinite(dx[i]), "%s: y[%d]=%g dx=%g", rms ? "rms" : "ln", i, y[i], dx[i]);
        for (int c = 0; c < 8; c++)
            cr_assert(isfinite(l.dg[c]), "dg[%d] = %g", c, l.dg[c]);
        if (!rms)
            for (int i = 0; i < 16; i++)
                cr_assert_eq(y[i], 0.0f, "layernorm of a constant row is its bias (0), found %g", y[i]);
        lc_blob_free(&b);
    }
}

/* ---------------------------------------------------------------- GELU, MLP */

static int gelu_fwd(lc_case *c, const float *x, float *y)
{
    float *s = c->ctx;   /* x scaled to [-4, 4] to reach both tails */
    for (int64_t i = 0; i < c->nx; i++)
        s[i] = 4.0f * x[i];
    nn_gelu_forward(s, y, c->nx, THREADS);
    return 0;
}
static int gelu_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    float *s = c->ctx, *g = s + 64;
    for (int64_t i = 0; i < c->nx; i++)
        s[i] = 4.0f * x[i], g[i] = 4.0f * dy[i];
    nn_gelu_backward(s, g, dx, c->nx, THREADS);
    return 0;
}
static int gelu_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)P;
    double s[64];
    for (int64_t i = 0; i < c->nx; i++)
        s[i] = 4.0 * x[i];
    nn_gelu_forward_ref(s, y, c->nx);
    return 0;
}
static int gelu_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)P, (void)dP;
    double s[64], g[64];
    for (int64_t i = 0; i < c->nx; i++)
        s[i] = 4.0 * x[i], g[i] = 4.0 * dy[i];
    nn_gelu_backward_ref(s, g, dx, c->nx);
    return 0;
}

Test(layers, gelu_matches_reference_and_central_differences)
{
    float scratch[128];
    lc_case c = {.nx = 40, .ny = 40, .params = blob_of(0), .ctx = scratch, .fwd = gelu_fwd, .bwd = gelu_bwd,
                 .fwd_ref = gelu_fwd_ref, .bwd_ref = gelu_bwd_ref};
    check_case(&c, "gelu");
    float x[3] = {0.0f, 1.0f, -30.0f}, y[3];
    nn_gelu_forward(x, y, 3, 1);
    cr_assert(y[0] == 0.0f && fabsf(y[1] - 0.841192f) < 1e-5f && y[2] == -0.0f, "gelu(0,1,-30) = %g %g %g", y[0],
              y[1], y[2]);
    /* far tails: exp(-2u) overflows to inf or underflows to 0, never a NaN */
    float t[4] = {-100.0f, 100.0f, -1e4f, 1e4f}, ty[4], one[4] = {1, 1, 1, 1}, tg[4] = {0};
    nn_gelu_forward(t, ty, 4, 1);
    nn_gelu_backward(t, one, tg, 4, 1);
    for (int i = 0; i < 4; i++) {
        float want = t[i] > 0 ? t[i] : 0.0f, dwant = t[i] > 0 ? 1.0f : 0.0f;
        cr_assert(ty[i] == want && tg[i] == dwant, "gelu(%g) = %g, gelu' = %g", t[i], ty[i], tg[i]);
    }
}

typedef struct {
    nn_mlp l;
    int64_t rows;
    float h[64], a[64], scratch[64];
} mlp_ctx;

static int mlp_fwd(lc_case *c, const float *x, float *y)
{
    mlp_ctx *d = c->ctx;
    nn_mlp_forward(&d->l, x, d->h, d->a, y, d->rows, THREADS);
    return 0;
}
static int mlp_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    mlp_ctx *d = c->ctx;
    nn_mlp_backward(&d->l, x, d->h, d->a, dy, d->scratch, dx, d->rows, THREADS);
    return 0;
}
static int mlp_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    mlp_ctx *d = c->ctx;
    nn_mlp_forward_ref(&d->l, P, x, y, d->rows);
    return 0;
}
static int mlp_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    mlp_ctx *d = c->ctx;
    nn_mlp_backward_ref(&d->l, P, x, dy, dx, dP, d->rows);
    return 0;
}

Test(layers, mlp_matches_reference_and_central_differences, .timeout = 60)
{
    mlp_ctx d = {.rows = 3};
    nn_blob b = blob_of(nn_mlp_param_count(4, 12));
    cr_assert_eq(nn_mlp_bind(&d.l, 4, 12, &b), 0);
    lc_case c = {.nx = 3 * 4, .ny = 3 * 4, .params = b, .ctx = &d, .p_lo = -1, .p_hi = 1, .fwd = mlp_fwd,
                 .bwd = mlp_bwd, .fwd_ref = mlp_fwd_ref, .bwd_ref = mlp_bwd_ref};
    check_case(&c, "mlp");
}

/* ---------------------------------------------------------------- threads */

/* Runs the row-wise layers (norm forward/backward with its dg/db reduction,
 * GELU, embedding scatter-add, RoPE, mean pooling) with `threads` threads on
 * a fixed problem; all outputs and gradients are concatenated into out. */
static void rowwise_layers(int threads, float *out)
{
    enum { R = 37, C = 24, V = 11 };
    static float x[R * C], dy[R * C];
    attn_rng r;
    attn_rng_seed(&r, 77);
    for (int i = 0; i < R * C; i++)
        x[i] = attn_rng_range(&r, -2, 2), dy[i] = attn_rng_range(&r, -1, 1);
    nn_norm ln;
    nn_embed em;
    nn_blob cnt = {0};   /* count by binding onto a counting blob: it includes the padding */
    cr_assert_eq(nn_norm_bind(&ln, C, 0, &cnt) || nn_embed_bind(&em, V, C, R, &cnt), 0);
    nn_blob b = blob_of(cnt.used);
    cr_assert_eq(nn_norm_bind(&ln, C, 0, &b), 0);
    cr_assert_eq(nn_embed_bind(&em, V, C, R, &b), 0);
    nn_norm_init(&ln);
    float mean[R], rstd[R], cs[R * C];
    int32_t tok[R];
    uint8_t valid[R];
    for (int i = 0; i < R; i++)
        tok[i] = (int32_t)((i * 7) % V), valid[i] = (uint8_t)(i % 3 != 0);
    float *o = out;
    nn_norm_forward(&ln, x, o, mean, rstd, R, threads);
    o += R * C;
    memset(o, 0, sizeof(float) * R * C);
    nn_norm_backward(&ln, x, mean, rstd, dy, o, R, threads);
    o += R * C;
    nn_gelu_forward(x, o, R * C, threads);
    o += R * C;
    cr_assert_eq(nn_embed_backward(&em, tok, dy, 1, R, threads), 0);
    memcpy(o, b.grad, sizeof(float) * b.used);   /* dg, db, dwte, dwpe */
    o += b.used;
    nn_rope_table(cs, R, C / 4, 10000.0);
    memcpy(o, x, sizeof x);
    nn_rope_forward(o, cs, 1, R, 4, C / 4, threads);
    o += R * C;
    nn_meanpool_forward(x, valid, o, 1, R, C, threads);
    lc_blob_free(&b);
}

Test(layers, rowwise_layers_are_bitwise_independent_of_the_thread_count)
{
    size_t n = 8 * 37 * 24 + 2048;
    float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float));
    rowwise_layers(1, a);
    rowwise_layers(2, b);
    cr_assert_eq(memcmp(a, b, sizeof(float) * n), 0, "row-wise layers differ between 1 and 2 threads");
    free(a), free(b);
}
