/* The fused dense loops (several layers on one input: nn_dense_forward_n,
 * nn_dense_backward_n; the MLP's single region) must give the bits of the
 * separate layer calls they replace, for any thread count, on row counts
 * that leave a partial tile. */
#include "layers_check.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 130, IN = 24 };

static float *rnd(attn_rng *r, size_t n)
{
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = attn_rng_range(r, -1, 1);
    return x;
}

/* a == b elementwise (-0 equals +0: an overwrite and an add to zero differ there) */
static void same(const float *a, const float *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(a[i] == b[i], "%s: element %zu differs (%.9g vs %.9g)", what, i, (double)a[i], (double)b[i]);
}

Test(dense_fused, forward_n_and_backward_n_give_the_bits_of_separate_calls)
{
    static const int64_t outs[3] = {20, 70, 33};
    nn_dense l[3];
    nn_blob cnt = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nn_dense_bind(&l[i], IN, outs[i], 1, &cnt), 0);
    nn_blob b;
    lc_blob(&b, cnt.used);
    attn_rng r;
    attn_rng_seed(&r, 5);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(nn_dense_bind(&l[i], IN, outs[i], 1, &b), 0);
        nn_dense_init(&l[i], &r);
        for (int64_t o = 0; o < outs[i]; o++)
            l[i].b[o] = attn_rng_range(&r, -1, 1);
    }
    float *x = rnd(&r, ROWS * IN), *dy[3], *y1[3], *y2[3];
    for (int i = 0; i < 3; i++) {
        dy[i] = rnd(&r, (size_t)(ROWS * outs[i]));
        y1[i] = malloc(sizeof(float) * (size_t)(ROWS * outs[i]));
        y2[i] = malloc(sizeof(float) * (size_t)(ROWS * outs[i]));
    }
    float *dx0 = rnd(&r, ROWS * IN), *dx1 = malloc(sizeof(float) * ROWS * IN), *dx2 = malloc(sizeof(float) * ROWS * IN);
    float *g1 = malloc(sizeof(float) * b.used);
    const nn_dense *lp[3] = {&l[0], &l[1], &l[2]};
    const float *dyc[3] = {dy[0], dy[1], dy[2]};
    for (int threads = 1; threads <= 3; threads++) {
        for (int i = 0; i < 3; i++)
            nn_dense_forward(&l[i], x, y1[i], ROWS, 1);
        nn_dense_forward_n(lp, 3, x, y2, ROWS, threads);
        for (int i = 0; i < 3; i++)
            same(y1[i], y2[i], (size_t)(ROWS * outs[i]), "forward_n");
        for (int accumulate = 0; accumulate <= 1; accumulate++) {
            /* separate calls, on dx0 (accumulate) or on a zeroed dx */
            memset(b.grad, 0, sizeof(float) * b.used);
            for (int64_t i = 0; i < ROWS * IN; i++)
                dx1[i] = accumulate ? dx0[i] : 0.0f;
            for (int i = 0; i < 3; i++)
                nn_dense_backward(&l[i], x, dy[i], dx1, ROWS, 1);
            memcpy(g1, b.grad, sizeof(float) * b.used);
            /* fused, on dx0 either way: overwriting must not read it */
            memset(b.grad, 0, sizeof(float) * b.used);
            memcpy(dx2, dx0, sizeof(float) * ROWS * IN);
            nn_dense_backward_n(lp, 3, x, dyc, dx2, accumulate, ROWS, threads);
            same(dx1, dx2, ROWS * IN, accumulate ? "backward_n dx (+=)" : "backward_n dx (=)");
            same(g1, b.grad, b.used, "backward_n dW, db");
        }
    }
    for (int i = 0; i < 3; i++)
        free(dy[i]), free(y1[i]), free(y2[i]);
    free(x), free(dx0), free(dx1), free(dx2), free(g1);
    lc_blob_free(&b);
}

Test(dense_fused, mlp_gives_the_bits_of_its_layers_called_one_by_one)
{
    enum { C = 24, F = 64 }; /* F a multiple of 4: the GELU's blocks of 256 fall alike */
    nn_mlp l;
    nn_blob b;
    lc_blob(&b, nn_mlp_param_count(C, F));
    cr_assert_eq(nn_mlp_bind(&l, C, F, &b), 0);
    attn_rng r;
    attn_rng_seed(&r, 9);
    nn_mlp_init(&l, &r);
    float *x = rnd(&r, ROWS * C), *dy = rnd(&r, ROWS * C), *dx0 = rnd(&r, ROWS * C);
    size_t nf = (size_t)ROWS * F;
    float *h1 = malloc(sizeof(float) * nf), *a1 = malloc(sizeof(float) * nf), *h2 = malloc(sizeof(float) * nf);
    float *a2 = malloc(sizeof(float) * nf), *da = calloc(nf, sizeof(float)), *dh = calloc(nf, sizeof(float));
    float *scr = malloc(sizeof(float) * nf), *y1 = malloc(sizeof(float) * ROWS * C), *y2 = malloc(sizeof(float) * ROWS * C);
    float *dx1 = malloc(sizeof(float) * ROWS * C), *dx2 = malloc(sizeof(float) * ROWS * C), *g1 = malloc(sizeof(float) * b.used);
    /* one by one, on one thread */
    nn_dense_forward(&l.fc, x, h1, ROWS, 1);
    nn_gelu_forward(h1, a1, (int64_t)nf, 1);
    nn_dense_forward(&l.proj, a1, y1, ROWS, 1);
    memcpy(dx1, dx0, sizeof(float) * ROWS * C);
    nn_dense_backward(&l.proj, a1, dy, da, ROWS, 1);
    nn_gelu_backward(h1, da, dh, (int64_t)nf, 1);
    nn_dense_backward(&l.fc, x, dh, dx1, ROWS, 1);
    memcpy(g1, b.grad, sizeof(float) * b.used);
    for (int threads = 1; threads <= 3; threads++) {
        nn_mlp_forward(&l, x, h2, a2, y2, ROWS, threads);
        same(h1, h2, nf, "mlp h"), same(a1, a2, nf, "mlp a"), same(y1, y2, ROWS * C, "mlp y");
        memset(b.grad, 0, sizeof(float) * b.used);
        memcpy(dx2, dx0, sizeof(float) * ROWS * C);
        nn_mlp_backward(&l, x, h2, a2, dy, scr, dx2, ROWS, threads);
        same(dx1, dx2, ROWS * C, "mlp dx"), same(g1, b.grad, b.used, "mlp dW, db");
    }
    free(x), free(dy), free(dx0), free(h1), free(a1), free(h2), free(a2), free(da), free(dh), free(scr);
    free(y1), free(y2), free(dx1), free(dx2), free(g1);
    lc_blob_free(&b);
}
