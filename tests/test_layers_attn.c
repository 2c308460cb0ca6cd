/* The attention block (models/attn_block.c) end to end: fp32 forward and
 * backward through a registry kernel (flash, naive) against the double block
 * on the softmax oracle, whose backward is checked by central differences; and
 * the beta / gate projections through a toy kernel that declares those inputs,
 * checked against central differences of its double reference. */
#include "kernels/flash/flash.h"
#include "kernels/softmax/softmax.h"
#include "layers_check.h"
#include "model_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 2

/* ---- a toy trainable kernel with extra inputs: per token and head,
 *   o[h,n,d] = beta[hk,n] v[hk,n,d] + exp(gate[hk,n,d or 0]) q[h,n,d] k[hk,n,d]
 * (beta = 1 / gate = 0 when not declared). Not attention: it only has to
 * read every input so that the block's projections get gradients. */

static double toy_beta(const attn_io *io, int64_t b, int64_t hk, int64_t n)
{
    return io->beta.data ? *attn_at(&io->beta, b, hk, n) : 1.0;
}

static double toy_gate(const attn_io *io, int64_t b, int64_t hk, int64_t n, int64_t d)
{
    return io->gate.data ? attn_at(&io->gate, b, hk, n)[io->gate.D > 1 ? d : 0] : 0.0;
}

static int toy_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t n = 0; n < a->Nk; n++)
                for (int64_t d = 0; d < a->D; d++)
                    attn_at(&io->o, b, h, n)[d] =
                        (float)(toy_beta(io, b, h / G, n) * attn_at(&io->v, b, h / G, n)[d] +
                                exp(toy_gate(io, b, h / G, n, d)) * attn_at(&io->q, b, h, n)[d] *
                                    attn_at(&io->k, b, h / G, n)[d]);
    return 0;
}

static int toy_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    int64_t G = a->H / a->H_kv;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t n = 0; n < a->Nk; n++)
                for (int64_t d = 0; d < a->D; d++) {
                    int64_t hk = h / G;
                    float dO = attn_at(&g->d_o, b, h, n)[d], q = attn_at(&io->q, b, h, n)[d];
                    float k = attn_at(&io->k, b, hk, n)[d], e = (float)exp(toy_gate(io, b, hk, n, d));
                    attn_at(&g->dv, b, hk, n)[d] += (float)toy_beta(io, b, hk, n) * dO;
                    attn_at(&g->dq, b, h, n)[d] += dO * e * k;
                    attn_at(&g->dk, b, hk, n)[d] += dO * e * q;
                    if (io->beta.data)
                        *attn_at(&g->dbeta, b, hk, n) += dO * attn_at(&io->v, b, hk, n)[d];
                    if (io->gate.data)
                        attn_at(&g->dgate, b, hk, n)[io->gate.D > 1 ? d : 0] += dO * e * q * k;
                }
    return 0;
}

static int toy_ref_forward(const attn_args *a, const attn_io64 *io)
{
    int64_t G = a->H / a->H_kv;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t n = 0; n < a->Nk; n++)
                for (int64_t d = 0; d < a->D; d++) {
                    int64_t hk = h / G;
                    double be = io->beta.data ? *attn_at64(&io->beta, b, hk, n) : 1.0;
                    double ga = io->gate.data ? attn_at64(&io->gate, b, hk, n)[io->gate.D > 1 ? d : 0] : 0.0;
                    attn_at64(&io->o, b, h, n)[d] = be * attn_at64(&io->v, b, hk, n)[d] +
                                                    exp(ga) * attn_at64(&io->q, b, h, n)[d] *
                                                        attn_at64(&io->k, b, hk, n)[d];
                }
    return 0;
}

#define TOY(nm, in, bwd)                                                                                   \
    {.name = nm, .family = "test", .reference = "test toy", .flags = ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA, \
     .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL), .params = NULL,         \
     .forward = toy_forward, .backward = bwd, .inputs = in, .ref_forward = toy_ref_forward}
static const attn_kernel toy_vec = TOY("toy_vec", ATTN_IN_BETA | ATTN_IN_GATE_VEC, toy_backward);
static const attn_kernel toy_scalar = TOY("toy_scalar", ATTN_IN_GATE, toy_backward);
static const attn_kernel toy_fwd_only = TOY("toy_fwd_only", 0, NULL);

static float *buf_new(nn_blob *b, size_t n)
{
    *b = (nn_blob){.data = attn_alloc(sizeof(float) * (n + 1)), .cap = n};
    return b->data;
}

/* B=2, N=7, C=16, H=2, H_kv=1 (D=8) through the layer-check driver (model_check.h) */
static void check_block(const attn_kernel *k, int causal, int rope)
{
    char what[96];
    snprintf(what, sizeof what, "%s %s%s", k->name, causal ? "causal" : "full", rope ? " rope" : "");
    nn_attn_cfg cfg = {.C = 16, .H = 2, .H_kv = 1, .kernel = k, .rope = rope,
                       .mask = {.kind = causal ? ATTN_MASK_CAUSAL : ATTN_MASK_FULL}};
    mc_check_block(&cfg, 2, 7, THREADS, 2024, what);
}

Test(layers, attn_block_with_flash_matches_oracle_block, .timeout = 60)
{
    for (int causal = 0; causal <= 1; causal++)
        for (int rope = 0; rope <= 1; rope++)
            check_block(&attn_kernel_flash, causal, rope);
}

Test(layers, attn_block_with_naive_matches_oracle_block, .timeout = 60)
{
    for (int causal = 0; causal <= 1; causal++)
        for (int rope = 0; rope <= 1; rope++)
            check_block(&attn_kernel_naive, causal, rope);
}

Test(layers, attn_block_backprops_through_beta_and_gate_projections, .timeout = 60)
{
    check_block(&toy_vec, 1, 1);
    check_block(&toy_scalar, 0, 0);
    nn_attn_cfg cfg = {.C = 16, .H = 2, .H_kv = 1, .kernel = &toy_vec};
    nn_attn_cfg plain = cfg;
    plain.kernel = &attn_kernel_naive;
    /* beta: C -> H_kv (16 floats, then its bias padded to 16), vector gate:
     * C -> H_kv D (128) and its bias (8, last: no padding counted) */
    size_t extra = (16 * 1 + 16) + (16 * 8 + 8);
    cr_assert_eq(nn_attn_param_count(&cfg), nn_attn_param_count(&plain) + extra, "%zu vs %zu + %zu",
                 nn_attn_param_count(&cfg), nn_attn_param_count(&plain), extra);
}

Test(layers, attn_block_rejects_untrainable_kernels_and_bad_shapes)
{
    nn_attn l;
    nn_blob cnt = {0};
    nn_attn_cfg cfg = {.C = 16, .H = 2, .H_kv = 1, .kernel = &toy_fwd_only};
    cr_assert_eq(nn_attn_bind(&l, &cfg, &cnt), ATTN_EUNSUPPORTED);
    cr_assert(strstr(attn_last_error(), "kernel 'toy_fwd_only' has no backward: it can be evaluated but not trained"),
              "%s", attn_last_error());
    cfg.eval_only = 1;
    cr_assert_eq(nn_attn_bind(&l, &cfg, &cnt), 0, "eval_only accepts it: %s", attn_last_error());
    cfg = (nn_attn_cfg){.C = 15, .H = 2, .H_kv = 1, .kernel = &attn_kernel_flash};
    cr_assert_neq(nn_attn_bind(&l, &cfg, &cnt), 0, "C=15 is not a multiple of H=2");
    cfg = (nn_attn_cfg){.C = 6, .H = 2, .H_kv = 1, .kernel = &attn_kernel_flash, .rope = 1};
    cr_assert_neq(nn_attn_bind(&l, &cfg, &cnt), 0, "RoPE needs an even head dim (D=3)");
    cfg = (nn_attn_cfg){.C = 16, .H = 4, .H_kv = 3, .kernel = &attn_kernel_flash};
    cr_assert_neq(nn_attn_bind(&l, &cfg, &cnt), 0, "H_kv=3 does not divide H=4");
    cfg = (nn_attn_cfg){.C = 16, .H = 2, .H_kv = 2, .kernel = &attn_kernel_flash};
    cr_assert_eq(nn_attn_bind(&l, &cfg, &cnt), 0);
    float x[4], y[4];
    cr_assert_neq(nn_attn_forward(&l, x, &(nn_attn_acts){0}, y), 0, "forward before plan fails");
    cr_assert(strstr(attn_last_error(), "nn_attn_plan"), "%s", attn_last_error());
}

/* y, dx and every parameter gradient of a block with B*N = 160 rows (3 dense
 * row tiles) and C = 64 (2 output tiles) through flash at `threads` threads */
static void block_run(int threads, float *out, size_t *n_out)
{
    enum { B = 2, N = 80, C = 64 };
    nn_attn_cfg cfg = {.C = C, .H = 4, .H_kv = 2, .kernel = &attn_kernel_flash, .rope = 1,
                       .mask = {.kind = ATTN_MASK_CAUSAL}};
    nn_attn l;
    nn_blob p, ab, sb;
    lc_blob(&p, nn_attn_param_count(&cfg));
    cr_assert_eq(nn_attn_bind(&l, &cfg, &p), 0, "%s", attn_last_error());
    attn_rng r;
    attn_rng_seed(&r, 3);
    nn_attn_init(&l, &r);
    cr_assert_eq(nn_attn_plan(&l, B, N, threads), 0, "%s", attn_last_error());
    nn_attn_acts a;
    nn_attn_scratch s;
    buf_new(&ab, nn_attn_acts_floats(&l, B, N));
    buf_new(&sb, nn_attn_scratch_floats(&l, B, N));
    cr_assert_eq(nn_attn_acts_bind(&l, B, N, &ab, &a) || nn_attn_scratch_bind(&l, B, N, &sb, &s), 0);
    float *x = malloc(sizeof(float) * B * N * C), *dy = malloc(sizeof(float) * B * N * C);
    for (int i = 0; i < B * N * C; i++)
        x[i] = attn_rng_range(&r, -1, 1), dy[i] = attn_rng_range(&r, -1, 1);
    float *y = out, *dx = out + B * N * C;
    memset(dx, 0, sizeof(float) * B * N * C);
    cr_assert_eq(nn_attn_forward(&l, x, &a, y), 0, "%s", attn_last_error());
    cr_assert_eq(nn_attn_backward(&l, x, &a, dy, &s, dx), 0, "%s", attn_last_error());
    memcpy(dx + B * N * C, p.grad, sizeof(float) * p.used);
    *n_out = 2 * B * N * C + p.used;
    nn_attn_free(&l);
    attn_free(ab.data), attn_free(sb.data), lc_blob_free(&p);
    free(x), free(dy);
}

Test(layers, attn_block_is_bitwise_independent_of_the_thread_count, .timeout = 60)
{
    size_t cap = 2 * 2 * 80 * 64 + 40000, n1, n2;
    float *o1 = calloc(cap, sizeof(float)), *o2 = calloc(cap, sizeof(float));
    block_run(1, o1, &n1);
    block_run(2, o2, &n2);
    cr_assert(n1 == n2 && n1 <= cap);
    cr_assert_eq(memcmp(o1, o2, sizeof(float) * n1), 0, "block output or gradients differ between 1 and 2 threads");
    free(o1), free(o2);
}
