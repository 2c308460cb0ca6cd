/* The in-context linear-regression generator (tasks/icl.h). */
#include "icl.h"

#include "common/rng.h"

#include <math.h>
#include <stdlib.h>

static const opt_def icl_linreg_params[] = {
    {.name = "d", .type = OPT_INT, .def = 8, .lo = 1, .hi = 1024, .help = "dimension of x and w"},
    {.name = "points", .type = OPT_INT, .def = 17, .lo = 1, .hi = 1 << 16,
     .help = "(x, y) pairs per prompt, n: predictions after k = 0..n-1 examples"},
    {.name = "sigma", .type = OPT_DOUBLE, .def = 0, .lo = 0, .hi = 1e3, .help = "label noise standard deviation"},
    {0},
};

int icl_linreg_cfg_read(const param_bag *p, icl_linreg_cfg *c)
{
    int rc = task_params_check(icl_linreg_params, p, "icl_linreg");
    if (rc)
        return rc;
    c->d = task_param_int(icl_linreg_params, p, "d", &rc);
    c->points = task_param_int(icl_linreg_params, p, "points", &rc);
    c->sigma = task_param_double(icl_linreg_params, p, "sigma", &rc);
    return rc;
}

/* Prompt i's own stream: nearby (seed, split, i) give unrelated streams, and
 * a prompt does not depend on how many the split holds. */
static void prompt_rng(attn_rng *r, uint64_t seed, task_split split, int64_t i)
{
    attn_rng_seed_item(r, seed, 0x1c1ull * 16 + (uint64_t)split, (uint64_t)i);
}

/* Prompt i into its rows: w, then each x_j and its y_j, in that order. */
static void make_prompt(const icl_linreg_cfg *c, attn_rng *r, double *w, task_data *t, int64_t i)
{
    float *in = task_inputs(t, i), *val = task_values(t, i);
    uint8_t *sc = task_scored(t, i);
    int64_t d = c->d;
    for (int64_t a = 0; a < d; a++)
        w[a] = attn_rng_normal(r);
    for (int64_t j = 0; j < c->points; j++) {
        float *x = in + icl_query_pos(j) * d;
        double y = 0;
        for (int64_t a = 0; a < d; a++) {
            x[a] = (float)attn_rng_normal(r);
            y += w[a] * (double)x[a]; /* y from the stored (float) x: the baselines see the same x */
        }
        y += c->sigma * attn_rng_normal(r);
        val[icl_query_pos(j)] = (float)y;
        sc[icl_query_pos(j)] = 1;
        if (j + 1 < c->points)
            in[(icl_query_pos(j) + 1) * d] = (float)y; /* the y token (y, 0, ..., 0) */
    }
}

static int icl_linreg_make(const param_bag *params, task_split split, uint64_t seed, int64_t n,
                           const char *data_dir, task_data *out)
{
    icl_linreg_cfg c;
    int rc = task_generated_only("icl_linreg", data_dir);
    if (rc || (rc = icl_linreg_cfg_read(params, &c)) != 0)
        return rc;
    if ((rc = task_data_alloc_regress(out, "icl_linreg", n, icl_prompt_len(c.points), c.d)) != 0)
        return rc;
    double *w = malloc(sizeof *w * (size_t)c.d);
    if (!w) {
        task_data_free(out);
        return attn_fail(ATTN_ENOMEM, "task icl_linreg: no memory for w (d=%lld)", (long long)c.d);
    }
    for (int64_t i = 0; i < n; i++) {
        attn_rng r;
        prompt_rng(&r, seed, split, i);
        make_prompt(&c, &r, w, out, i);
    }
    free(w);
    snprintf(out->meta, sizeof out->meta, "d=%lld;points=%lld;sigma=%g", (long long)c.d, (long long)c.points,
             c.sigma);
    return 0;
}

void icl_prompt_pairs(const task_data *t, int64_t i, double *X, double *y)
{
    const float *in = task_inputs(t, i), *val = task_values(t, i);
    int64_t d = t->dim, points = (t->len + 1) / 2;
    for (int64_t j = 0; j < points; j++) {
        for (int64_t a = 0; a < d; a++)
            X[j * d + a] = in[icl_query_pos(j) * d + a];
        y[j] = val[icl_query_pos(j)];
    }
}

const task_def task_icl_linreg = {
    .name = "icl_linreg",
    .suite = "icl",
    .description = "in-context linear regression, Garg et al. prompts x_1, y_1, ..., x_n (float inputs)",
    .params = icl_linreg_params,
    .make = icl_linreg_make,
};
