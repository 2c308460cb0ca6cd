/* GTrXL's gate (models/gate.c): the fp32 layer against its double reference
 * and central differences, and a large z bias making it the identity. */
#include "layers_check.h"
#include "common/rng.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The layer's input is [x ; s], each (rows, C): both gradients are checked. */
typedef struct {
    nn_gate g;
    int64_t rows;
    nn_gate_acts acts;
    nn_blob buf;
    float *tmp, *gx, *gs, *t1, *t2;
} gate_ctx;

static int gate_fwd(lc_case *c, const float *in, float *y)
{
    gate_ctx *d = c->ctx;
    int64_t n = d->rows * d->g.C;
    nn_gate_forward(&d->g, in, in + n, &d->acts, d->tmp, y, d->rows, 2);
    return 0;
}

static int gate_bwd(lc_case *c, const float *in, const float *dy, float *din)
{
    gate_ctx *d = c->ctx;
    int64_t n = d->rows * d->g.C;
    nn_gate_backward(&d->g, in, &d->acts, dy, d->gx, d->gs, d->t1, d->t2, d->rows, 2);
    for (int64_t i = 0; i < n; i++)
        din[i] += d->gx[i], din[n + i] += d->gs[i];
    return 0;
}

static int gate_fwd_ref(lc_case *c, const double *P, const double *in, double *y)
{
    gate_ctx *d = c->ctx;
    return nn_gate_forward_ref(&d->g, P, in, in + d->rows * d->g.C, y, d->rows);
}

static void gate_setup(gate_ctx *d, nn_blob *p, int64_t rows, int64_t C)
{
    nn_blob count = {0};
    cr_assert_eq(nn_gate_bind(&d->g, C, &count), 0);
    lc_blob(p, count.used);
    cr_assert_eq(nn_gate_bind(&d->g, C, p), 0, "%s", attn_last_error());
    d->rows = rows;
    size_t n = (size_t)(rows * C);
    d->buf = (nn_blob){.data = attn_alloc(sizeof(float) * 10 * (n + 16)), .cap = 10 * (n + 16)};
    cr_assert_eq(nn_gate_acts_bind(&d->g, rows, &d->buf, &d->acts), 0);
    float **more[] = {&d->tmp, &d->gx, &d->gs, &d->t1, &d->t2};
    for (int i = 0; i < 5; i++)
        cr_assert_neq(nn_blob_take(&d->buf, n, more[i], NULL), SIZE_MAX);
}

Test(gate, gtrxl_gate_matches_its_double_reference_and_central_differences, .timeout = 60)
{
    gate_ctx d;
    nn_blob p;
    gate_setup(&d, &p, 5, 8);
    int64_t n = 5 * 8;
    lc_case c = {.nx = 2 * n, .ny = n, .params = p, .ctx = &d, .fwd = gate_fwd, .bwd = gate_bwd,
                 .fwd_ref = gate_fwd_ref};
    lc_check(&c, 17, "gtrxl gate");
    attn_free(d.buf.data);
    lc_blob_free(&p);
}

Test(gate, a_z_bias_of_30_makes_the_gate_the_identity)
{
    gate_ctx d;
    nn_blob p;
    gate_setup(&d, &p, 6, 16);
    attn_rng r;
    attn_rng_seed(&r, 4);
    nn_gate_init(&d.g, &r);
    for (int64_t o = 0; o < 16; o++) {
        cr_assert_eq(d.g.wz.b[o], -NN_GATE_BIAS, "the z bias starts at -b_g");
        d.g.wz.b[o] = -30.0f;
    }
    float x[96], s[96], y[96];
    for (int i = 0; i < 96; i++)
        x[i] = attn_rng_range(&r, -1, 1), s[i] = attn_rng_range(&r, -1, 1);
    nn_gate_forward(&d.g, x, s, &d.acts, d.tmp, y, 6, 1);
    double worst = 0, moved = 0;
    for (int i = 0; i < 96; i++)
        worst = fmax(worst, fabs(y[i] - x[i]));
    d.g.wz.b[0] = 0.0f; /* an open gate moves the stream: the check can fail */
    nn_gate_forward(&d.g, x, s, &d.acts, d.tmp, y, 6, 1);
    for (int i = 0; i < 6; i++)
        moved = fmax(moved, fabs(y[i * 16] - x[i * 16]));
    cr_assert(worst <= 1e-6, "max |y - x| = %.3g with b_g = 30", worst);
    cr_assert(moved > 1e-3, "max |y - x| = %.3g with b_g = 0", moved);
    attn_free(d.buf.data);
    lc_blob_free(&p);
}
