/* Dropout, pooling and the losses of models/layers.h: gradients against the
 * double references, and the properties the train loop relies on (masks
 * independent of the thread count, ignore-index rows inert). */
#include "layers_check.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 2

static void check_case(lc_case *c, const char *what)
{
    lc_check(c, 99, what);
    lc_blob_free(&c->params);
}

static nn_blob no_params(void)
{
    nn_blob b;
    lc_blob(&b, 0);
    return b;
}

/* ---------------------------------------------------------------- dropout */

static int drop_fwd(lc_case *c, const float *x, float *y) { return nn_dropout_forward(c->ctx, x, y, c->nx, THREADS); }
static int drop_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    return nn_dropout_backward(c->ctx, dy, dx, c->nx, THREADS);
}
static int drop_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)P;
    nn_dropout_forward_ref(c->ctx, x, y, c->nx);
    return 0;
}
static int drop_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)P, (void)x, (void)dP;
    nn_dropout_backward_ref(c->ctx, dy, dx, c->nx);
    return 0;
}

Test(layers, dropout_matches_reference_and_central_differences)
{
    nn_dropout d = {.p = 0.3f, .seed = 7, .step = 3, .layer = 2};
    lc_case c = {.nx = 64, .ny = 64, .params = no_params(), .ctx = &d, .fwd = drop_fwd, .bwd = drop_bwd,
                 .fwd_ref = drop_fwd_ref, .bwd_ref = drop_bwd_ref};
    check_case(&c, "dropout");
}

Test(layers, dropout_mask_is_the_same_for_1_and_2_threads_and_reused_by_backward)
{
    enum { n = 4099 };
    float *x = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * n), *y2 = malloc(sizeof(float) * n);
    float *dx = calloc(n, sizeof(float));
    for (int i = 0; i < n; i++)
        x[i] = 1.0f + (float)(i % 7);
    nn_dropout d = {.p = 0.25f, .seed = 42, .step = 11, .layer = 5};
    cr_assert_eq(nn_dropout_forward(&d, x, y1, n, 1), 0);
    cr_assert_eq(nn_dropout_forward(&d, x, y2, n, 2), 0);
    cr_assert_eq(memcmp(y1, y2, sizeof(float) * n), 0, "mask differs between 1 and 2 threads");
    cr_assert_eq(nn_dropout_backward(&d, x, dx, n, 2), 0);
    int dropped = 0;
    for (int i = 0; i < n; i++) {
        cr_assert_eq(dx[i] == 0.0f, y1[i] == 0.0f, "backward mask differs from forward mask at %d", i);
        cr_assert_eq(y1[i] == 0.0f, !nn_dropout_keep(&d, i));
        dropped += y1[i] == 0.0f;
        if (y1[i] != 0.0f)
            cr_assert_float_eq(y1[i], x[i] / 0.75f, 1e-6, "kept elements are scaled by 1/(1-p)");
    }
    cr_assert(fabs(dropped / (double)n - 0.25) < 0.03, "dropped fraction %.3f, expected ~0.25", dropped / (double)n);
    nn_dropout e = d;
    e.step = 12;   /* another step draws another mask */
    int same = 0;
    for (int i = 0; i < n; i++)
        same += nn_dropout_keep(&d, i) == nn_dropout_keep(&e, i);
    cr_assert(same < n - 100, "masks of steps 11 and 12 agree on %d of %d elements", same, n);
    free(x), free(y1), free(y2), free(dx);
}

Test(layers, dropout_p0_is_identity_and_p1_is_rejected)
{
    float x[33], y[33];
    for (int i = 0; i < 33; i++)
        x[i] = (float)i * 0.37f - 5.0f;
    nn_dropout d = {.p = 0.0f, .seed = 1};
    cr_assert_eq(nn_dropout_forward(&d, x, y, 33, 2), 0);
    cr_assert_eq(memcmp(x, y, sizeof x), 0, "p = 0 must copy x bitwise");
    d.p = 1.0f;
    cr_assert_neq(nn_dropout_forward(&d, x, y, 33, 2), 0);
    cr_assert(strstr(attn_last_error(), "p in [0, 1)"), "%s", attn_last_error());
}

/* ---------------------------------------------------------------- pooling */

static const uint8_t pool_valid[3 * 4] = {1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0};

static int pool_fwd(lc_case *c, const float *x, float *y)
{
    (void)c;
    nn_meanpool_forward(x, pool_valid, y, 3, 4, 2, THREADS);
    return 0;
}
static int pool_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    (void)c, (void)x;
    nn_meanpool_backward(pool_valid, dy, dx, 3, 4, 2, THREADS);
    return 0;
}
static int pool_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)c, (void)P;
    nn_meanpool_forward_ref(x, pool_valid, y, 3, 4, 2);
    return 0;
}
static int pool_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)c, (void)P, (void)x, (void)dP;
    nn_meanpool_backward_ref(pool_valid, dy, dx, 3, 4, 2);
    return 0;
}

Test(layers, mean_pooling_ignores_padding_and_matches_reference)
{
    lc_case c = {.nx = 3 * 4 * 2, .ny = 3 * 2, .params = no_params(), .fwd = pool_fwd, .bwd = pool_bwd,
                 .fwd_ref = pool_fwd_ref, .bwd_ref = pool_bwd_ref};
    check_case(&c, "meanpool");
    float x[24], out[6], dx[24] = {0}, dout[6] = {1, 2, 3, 4, 5, 6};
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    nn_meanpool_forward(x, pool_valid, out, 3, 4, 2, 1);
    cr_assert(out[0] == 1.0f && out[1] == 2.0f, "mean of rows 0,1 of batch 0: %g %g", out[0], out[1]);
    cr_assert(out[4] == 0.0f && out[5] == 0.0f, "an all-padding sequence pools to 0");
    nn_meanpool_backward(pool_valid, dout, dx, 3, 4, 2, 1);
    cr_assert(dx[4] == 0.0f && dx[5] == 0.0f && dx[0] == 0.5f, "padding rows get no gradient");
}

static int cls_fwd(lc_case *c, const float *x, float *y)
{
    (void)c;
    nn_clspool_forward(x, y, 3, 4, 2, 2);
    return 0;
}
static int cls_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    (void)c, (void)x;
    nn_clspool_backward(dy, dx, 3, 4, 2, 2);
    return 0;
}
static int cls_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)c, (void)P;
    nn_clspool_forward_ref(x, y, 3, 4, 2, 2);
    return 0;
}
static int cls_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)c, (void)P, (void)x, (void)dP;
    nn_clspool_backward_ref(dy, dx, 3, 4, 2, 2);
    return 0;
}

Test(layers, cls_pooling_reads_and_backprops_one_position)
{
    lc_case lc = {.nx = 3 * 4 * 2, .ny = 3 * 2, .params = no_params(), .fwd = cls_fwd, .bwd = cls_bwd,
                  .fwd_ref = cls_fwd_ref, .bwd_ref = cls_bwd_ref};
    check_case(&lc, "clspool");
    float x[2 * 3 * 2], out[4], dx[12] = {0}, dout[4] = {1, 2, 3, 4};
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    nn_clspool_forward(x, out, 2, 3, 2, 1);
    cr_assert(out[0] == 2.0f && out[1] == 3.0f && out[2] == 8.0f && out[3] == 9.0f);
    nn_clspool_backward(dout, dx, 2, 3, 2, 1);
    for (int i = 0; i < 12; i++) {
        int n = (i / 2) % 3;
        float want = n == 1 ? dout[(i / 6) * 2 + i % 2] : 0.0f;
        cr_assert_eq(dx[i], want, "dx[%d] = %g, expected %g", i, dx[i], want);
    }
}

/* ---------------------------------------------------------------- losses */

enum { XR = 5, XK = 6 };
static const int32_t xent_target[XR] = {1, NN_IGNORE_INDEX, 5, 0, NN_IGNORE_INDEX};

static int xent_fwd(lc_case *c, const float *x, float *y)
{
    float dl[XR * XK], rl[XR];
    double loss;
    int64_t nv;
    int rc = nn_xent_tokens(x, xent_target, XR, XK, dl, rl, &loss, &nv, THREADS);
    (void)c;
    y[0] = (float)loss;
    return rc ? rc : nv == 3 ? 0 : -1;
}
static int xent_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    float dl[XR * XK], rl[XR];
    double loss;
    int64_t nv;
    int rc = nn_xent_tokens(x, xent_target, XR, XK, dl, rl, &loss, &nv, THREADS);
    for (int64_t i = 0; i < c->nx; i++)
        dx[i] += dy[0] * dl[i];
    return rc;
}
static int xent_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    (void)c, (void)P;
    return nn_xent_ref(x, xent_target, XR, XK, NULL, y);
}
static int xent_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    (void)P, (void)dP;
    double dl[XR * XK], loss;
    int rc = nn_xent_ref(x, xent_target, XR, XK, dl, &loss);
    for (int64_t i = 0; i < c->nx; i++)
        dx[i] += dy[0] * dl[i];
    return rc;
}

Test(layers, token_cross_entropy_matches_reference_and_central_differences)
{
    lc_case c = {.nx = XR * XK, .ny = 1, .params = no_params(), .fwd = xent_fwd, .bwd = xent_bwd,
                 .fwd_ref = xent_fwd_ref, .bwd_ref = xent_bwd_ref};
    check_case(&c, "xent");
}

Test(layers, ignore_index_positions_contribute_nothing)
{
    float lg[XR * XK], d1[XR * XK], d2[XR * XK], r1[XR], r2[XR];
    attn_rng r;
    attn_rng_seed(&r, 5);
    for (int i = 0; i < XR * XK; i++)
        lg[i] = attn_rng_range(&r, -2, 2);
    double l1, l2;
    int64_t nv;
    cr_assert_eq(nn_xent_tokens(lg, xent_target, XR, XK, d1, r1, &l1, &nv, THREADS), 0, "%s", attn_last_error());
    cr_assert_eq(nv, 3);
    for (int k = 0; k < XK; k++)   /* change every logit of the ignored rows, wildly */
        lg[1 * XK + k] = 50.0f * (float)k, lg[4 * XK + k] = -1e4f;
    cr_assert_eq(nn_xent_tokens(lg, xent_target, XR, XK, d2, r2, &l2, &nv, 1), 0);
    cr_assert_eq(l1, l2, "loss changed with ignored logits: %.17g vs %.17g", l1, l2);
    cr_assert_eq(memcmp(d1, d2, sizeof d1), 0, "dlogits changed with ignored logits");
    for (int k = 0; k < XK; k++)
        cr_assert(d1[XK + k] == 0.0f && d1[4 * XK + k] == 0.0f, "ignored rows get zero gradient");
    cr_assert(r1[1] == 0.0f && r1[4] == 0.0f);
    /* the loss is the mean over the 3 valid rows */
    cr_assert_float_eq(l1, ((double)r1[0] + r1[2] + r1[3]) / 3.0, 1e-12);
    /* in place (dlogits = logits) gives the same gradient */
    cr_assert_eq(nn_xent_tokens(lg, xent_target, XR, XK, lg, r2, &l2, &nv, 2), 0);
    cr_assert_eq(memcmp(lg, d2, sizeof d2), 0, "in-place dlogits differ");
}

Test(layers, cross_entropy_rejects_bad_targets_and_counts_correct_rows)
{
    float lg[2 * 3] = {0.1f, 0.9f, 0.2f, 3.0f, 3.0f, -1.0f}, d[6], rl[2];
    double loss;
    int64_t nv;
    int32_t ign[2] = {1, NN_IGNORE_INDEX}, bad[2] = {1, 3}, hit[2] = {1, 0}, miss[2] = {2, 1};
    cr_assert_neq(nn_xent_classes(lg, ign, 2, 3, d, rl, &loss, 1), 0, "classes: -100 is not a class");
    cr_assert_neq(nn_xent_tokens(lg, bad, 2, 3, d, rl, &loss, &nv, 1), 0);
    cr_assert(strstr(attn_last_error(), "found 3 at row 1"), "%s", attn_last_error());
    cr_assert_eq(nn_xent_correct(lg, hit, 2, 3, 2), 2, "ties resolve to the first index");
    cr_assert_eq(nn_xent_correct(lg, miss, 2, 3, 2), 0);
    cr_assert_eq(nn_xent_correct(lg, ign, 2, 3, 2), 1);
    int32_t all_ign[2] = {NN_IGNORE_INDEX, NN_IGNORE_INDEX};
    cr_assert_eq(nn_xent_tokens(lg, all_ign, 2, 3, d, rl, &loss, &nv, 1), 0);
    cr_assert(loss == 0.0 && nv == 0 && d[0] == 0.0f, "no valid row: loss 0, no gradient");
}
