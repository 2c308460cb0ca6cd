/* One driver for the layer tests (tests/test_layers*.c): a layer is a map
 * x -> y with parameters in one blob; the driver checks
 *   (1) the fp32 forward against the double reference forward,
 *   (2) the double reference backward against central differences of the
 *       double forward, L = sum(y .* R) for a fixed random R,
 *   (3) the fp32 backward (accumulating onto non-zero gradients) against the
 *       double backward (or the central differences when there is none). */
#ifndef LAYERS_CHECK_H
#define LAYERS_CHECK_H

#include "models/layers.h"

typedef struct lc_case lc_case;
struct lc_case {
    int64_t nx, ny;            /* elements of x and y (nx may be 0) */
    nn_blob params;            /* fp32 parameters and gradients the layer is bound to */
    void *ctx;                 /* the layer and its caches */
    double p_lo, p_hi;         /* parameter range (0, 0: U(-0.5, 0.5)); keep_params: leave them */
    int keep_params;
    int (*fwd)(lc_case *c, const float *x, float *y);
    int (*bwd)(lc_case *c, const float *x, const float *dy, float *dx);
    int (*fwd_ref)(lc_case *c, const double *P, const double *x, double *y);
    /* NULL: the fp32 backward is compared with the central differences */
    int (*bwd_ref)(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP);
};

typedef struct {
    double fwd;                /* max|y - y_ref| / max|y_ref| */
    double cd;                 /* worst |fd - g| / max(|fd|, |g|, 1e-3 max|g|) over all coordinates */
    double bwd;                /* max over {dx, dP} of max|g - g_ref| / max|g_ref| */
} lc_errs;

/* Runs the three checks; returns a layer's error code or 0. */
int lc_run(lc_case *c, uint64_t seed, lc_errs *e);

/* lc_run, then Criterion assertions: forward <= 1e-5, central differences
 * <= 1e-6, fp32 backward <= 1e-4 (messages name `what`). */
void lc_check(lc_case *c, uint64_t seed, const char *what);

/* Binds a parameter blob of n floats (data and grad) for a case. */
void lc_blob(nn_blob *b, size_t n);
void lc_blob_free(nn_blob *b);

/* max|a - b| / max|b| over n elements. */
double lc_rel(const float *a, const double *b, int64_t n);

#endif
