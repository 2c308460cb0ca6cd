/* The layer-test driver (layers_check.h). */
#include "layers_check.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lc_blob(nn_blob *b, size_t n)
{
    *b = (nn_blob){.data = attn_alloc(sizeof(float) * (n + 1)), .grad = attn_alloc(sizeof(float) * (n + 1)),
                   .cap = n};
    memset(b->data, 0, sizeof(float) * (n + 1));
    memset(b->grad, 0, sizeof(float) * (n + 1));
}

void lc_blob_free(nn_blob *b)
{
    attn_free(b->data);
    attn_free(b->grad);
}

double lc_rel(const float *a, const double *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

static double loss_ref(lc_case *c, const double *P, const double *x, const double *R, double *y, int *rc)
{
    long double L = 0;   /* extended precision: the sum's rounding would be amplified by 1/h */
    *rc = c->fwd_ref(c, P, x, y);
    for (int64_t i = 0; i < c->ny; i++)
        L += (long double)y[i] * R[i];
    return (double)L;
}

/* central differences of L w.r.t. v[0..n) into fd; returns the first error code */
static int central_diff(lc_case *c, double *P, double *x, const double *R, double *y, double *v, int64_t n,
                        double *fd)
{
    int rc = 0, r1, r2;
    for (int64_t i = 0; i < n; i++) {
        double v0 = v[i], h = 1e-6 * fmax(1.0, fabs(v0));
        v[i] = v0 + h;
        double lp = loss_ref(c, P, x, R, y, &r1);
        v[i] = v0 - h;
        double lm = loss_ref(c, P, x, R, y, &r2);
        v[i] = v0;
        fd[i] = (lp - lm) / (2 * h);
        rc = rc ? rc : r1 ? r1 : r2;
    }
    return rc;
}

static double cd_err(const double *fd, const double *g, int64_t n)
{
    double gmax = 0, worst = 0;
    for (int64_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(g[i]));
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(fd[i] - g[i]) / fmax(fmax(fabs(fd[i]), fabs(g[i])), fmax(1e-3 * gmax, 1e-12));
        if (e > worst)
            worst = e, wi = i;
    }
    if (getenv("LAYERS_VERBOSE") && n)
        fprintf(stderr, "  worst coordinate %lld: fd %.12g analytic %.12g (max|g| %.3g)\n", (long long)wi, fd[wi], g[wi], gmax);
    return worst;
}

int lc_run(lc_case *c, uint64_t seed, lc_errs *e)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    int64_t np = (int64_t)c->params.used, nx = c->nx, ny = c->ny;
    size_t sx = (size_t)nx + 1, sy = (size_t)ny + 1, sp = (size_t)np + 1;
    float *x = calloc(sx, sizeof(float)), *y = calloc(sy, sizeof(float)), *dy = calloc(sy, sizeof(float));
    float *dx = calloc(sx, sizeof(float));
    double *x64 = calloc(sx, sizeof(double)), *y64 = calloc(sy, sizeof(double)), *R = calloc(sy, sizeof(double));
    double *P64 = calloc(sp, sizeof(double)), *dx64 = calloc(sx, sizeof(double)), *dP64 = calloc(sp, sizeof(double));
    double *fdx = calloc(sx, sizeof(double)), *fdp = calloc(sp, sizeof(double));
    double lo = c->p_lo, hi = c->p_hi;
    if (lo == 0 && hi == 0)
        lo = -0.5, hi = 0.5;
    for (int64_t i = 0; i < np; i++) {
        if (!c->keep_params)
            c->params.data[i] = attn_rng_range(&r, (float)lo, (float)hi);
        P64[i] = c->params.data[i];
        c->params.grad[i] = 0.015625f;   /* the backward must accumulate onto this */
    }
    for (int64_t i = 0; i < nx; i++)
        x64[i] = x[i] = attn_rng_range(&r, -1.0f, 1.0f), dx[i] = 0.015625f;
    for (int64_t i = 0; i < ny; i++)
        R[i] = dy[i] = attn_rng_range(&r, -1.0f, 1.0f);

    int rc = c->fwd(c, x, y);
    rc = rc ? rc : c->fwd_ref(c, P64, x64, y64);
    e->fwd = lc_rel(y, y64, ny);
    rc = rc ? rc : central_diff(c, P64, x64, R, y64, x64, nx, fdx);
    rc = rc ? rc : central_diff(c, P64, x64, R, y64, P64, np, fdp);
    if (!rc && c->bwd_ref) {
        rc = c->bwd_ref(c, P64, x64, R, dx64, dP64);
        e->cd = fmax(cd_err(fdx, dx64, nx), cd_err(fdp, dP64, np));
    } else {
        memcpy(dx64, fdx, sizeof(double) * sx);
        memcpy(dP64, fdp, sizeof(double) * sp);
        e->cd = 0;
    }
    rc = rc ? rc : c->bwd(c, x, dy, dx);
    for (int64_t i = 0; i < nx; i++)
        dx[i] -= 0.015625f;
    for (int64_t i = 0; i < np; i++)
        c->params.grad[i] -= 0.015625f;
    e->bwd = fmax(lc_rel(dx, dx64, nx), lc_rel(c->params.grad, dP64, np));
    if (getenv("LAYERS_VERBOSE"))   /* the margins behind the tolerances */
        fprintf(stderr, "layer check: fwd %.3g cd %.3g bwd %.3g (nx %lld, params %lld)\n", e->fwd, e->cd, e->bwd,
                (long long)nx, (long long)np);
    void *bufs[] = {x, y, dy, dx, x64, y64, R, P64, dx64, dP64, fdx, fdp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    return rc;
}

void lc_check(lc_case *c, uint64_t seed, const char *what)
{
    lc_errs e;
    int rc = lc_run(c, seed, &e);
    cr_assert_eq(rc, 0, "%s: %s", what, attn_last_error());
    cr_assert(e.fwd <= 1e-5, "%s: fp32 forward vs double: %.3g > 1e-5", what, e.fwd);
    cr_assert(e.cd <= 1e-6, "%s: double backward vs central differences: %.3g > 1e-6", what, e.cd);
    cr_assert(e.bwd <= 1e-4, "%s: fp32 backward vs double: %.3g > 1e-4", what, e.bwd);
}
