/* Shared block and whole-model checks (model_check.h). */
#include "model_check.h"

#include "layers_check.h"
#include "models/model_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nn_attn l;
    int64_t B, N;
    nn_attn_acts acts;
    nn_attn_scratch scratch;
} block_ctx;

static int block_fwd(lc_case *c, const float *x, float *y)
{
    block_ctx *d = c->ctx;
    return nn_attn_forward(&d->l, x, &d->acts, y);
}
static int block_bwd(lc_case *c, const float *x, const float *dy, float *dx)
{
    block_ctx *d = c->ctx;
    return nn_attn_backward(&d->l, x, &d->acts, dy, &d->scratch, dx);
}
static int block_fwd_ref(lc_case *c, const double *P, const double *x, double *y)
{
    block_ctx *d = c->ctx;
    return nn_attn_forward_ref(&d->l, P, x, y, d->B, d->N, d->l.seq_len);
}
static int block_bwd_ref(lc_case *c, const double *P, const double *x, const double *dy, double *dx, double *dP)
{
    block_ctx *d = c->ctx;
    return nn_attn_backward_ref(&d->l, P, x, dy, dx, dP, d->B, d->N, d->l.seq_len);
}

static nn_blob buf_new(size_t n) { return (nn_blob){.data = attn_alloc(sizeof(float) * (n + 1)), .cap = n}; }

void mc_check_block(const nn_attn_cfg *cfg, int64_t B, int64_t N, int threads, uint64_t seed, const char *what)
{
    mc_check_block_padded(cfg, B, N, NULL, threads, seed, what);
}

void mc_check_block_padded(const nn_attn_cfg *cfg, int64_t B, int64_t N, const int64_t *seq_len, int threads,
                           uint64_t seed, const char *what)
{
    block_ctx d = {.B = B, .N = N};
    size_t np = nn_attn_param_count(cfg);
    cr_assert_neq(np, SIZE_MAX, "%s: %s", what, attn_last_error());
    nn_blob p;
    lc_blob(&p, np);
    cr_assert_eq(nn_attn_bind(&d.l, cfg, &p), 0, "%s: %s", what, attn_last_error());
    cr_assert_eq(p.used, np);
    cr_assert_eq(nn_attn_plan(&d.l, B, N, threads), 0, "%s: %s", what, attn_last_error());
    d.l.seq_len = seq_len;
    nn_blob ab = buf_new(nn_attn_acts_floats(&d.l, B, N)), sb = buf_new(nn_attn_scratch_floats(&d.l, B, N));
    cr_assert_eq(nn_attn_acts_bind(&d.l, B, N, &ab, &d.acts), 0);
    cr_assert_eq(nn_attn_scratch_bind(&d.l, B, N, &sb, &d.scratch), 0);
    int64_t n = B * N * cfg->C;
    lc_case c = {.nx = n, .ny = n, .params = p, .ctx = &d, .fwd = block_fwd, .bwd = block_bwd,
                 .fwd_ref = block_fwd_ref, .bwd_ref = cfg->kernel->ref_forward ? NULL : block_bwd_ref};
    lc_check(&c, seed, what);
    nn_attn_free(&d.l);
    attn_free(ab.data);
    attn_free(sb.data);
    lc_blob_free(&p);
}

/* The double loss at P; a folded model holds its buffers at P0, an hmt
 * model its memories (the fp32 backward stops at them: truncated
 * backpropagation). */
static int loss_ref(const nn_model *m, const double *P, const double *P0, const nn_batch *b, int64_t N, double *loss)
{
    if (m->cfg.variant == NN_VARIANT_FOLDED)
        return nn_folded_loss_ref(m, P, P0, b, N, loss);
    if (m->cfg.variant == NN_VARIANT_HMT)
        return nn_hmt_loss_ref(m, P, P0, b, N, loss);
    return nn_model_loss_ref(m, P, b, N, loss);
}

void mc_gradcheck(const nn_model_cfg *c, const nn_batch *b, int64_t N, int extra, const char *what)
{
    nn_model m;
    cr_assert_eq(nn_model_init(&m, c, 5), 0, "%s: %s", what, attn_last_error());
    mc_gradcheck_model(&m, b, N, extra, what);
    nn_model_free(&m);
}

void mc_gradcheck_model(nn_model *m, const nn_batch *b, int64_t N, int extra, const char *what)
{
    cr_assert_eq(nn_model_plan(m, b->B, N, 0, 2), 0, "%s: %s", what, attn_last_error());
    double loss, ref;
    int64_t correct, scored;
    cr_assert_eq(nn_model_forward(m, b, 1, 0, &loss, &correct, &scored, NULL), 0, "%s: %s", what, attn_last_error());
    memset(m->grads, 0, sizeof(float) * m->n_params);
    cr_assert_eq(nn_model_backward(m, b, 0, 1.0f), 0, "%s: %s", what, attn_last_error());
    double *P = malloc(sizeof *P * m->n_params), *P0 = malloc(sizeof *P0 * m->n_params);
    for (size_t i = 0; i < m->n_params; i++)
        P0[i] = P[i] = m->params[i];
    cr_assert_eq(nn_model_loss_ref(m, P, b, N, &ref), 0, "%s: %s", what, attn_last_error());
    cr_assert(fabs(loss - ref) <= 1e-5 * fmax(1, fabs(ref)), "%s: loss %.9g vs double %.9g", what, loss, ref);
    int k = nn_model_params(m, NULL, 0);
    nn_param_info *info = malloc(sizeof *info * (size_t)k);
    nn_model_params(m, info, k);
    double err = 0, gmax = 0;
    attn_rng r;
    attn_rng_seed(&r, 3);
    for (int s = 0; s < k + extra; s++) { /* every tensor once, then random ones */
        const nn_param_info *pi = &info[s < k ? s : (int)attn_rng_uint_below(&r, (uint64_t)k)];
        size_t i = pi->offset + attn_rng_uint_below(&r, pi->count);
        double x0 = P[i], h = 1e-6 * fmax(1, fabs(x0)), lp, lm;
        P[i] = x0 + h;
        loss_ref(m, P, P0, b, N, &lp);
        P[i] = x0 - h;
        loss_ref(m, P, P0, b, N, &lm);
        P[i] = x0;
        double g = (lp - lm) / (2 * h);
        err = fmax(err, fabs(g - m->grads[i]));
        gmax = fmax(gmax, fabs(g));
    }
    cr_assert(gmax > 0, "%s: all checked gradients are zero", what);
    cr_assert(err <= 1e-3 * gmax, "%s: max |g - g_num| = %.3g, max |g_num| = %.3g", what, err, gmax);
    free(info);
    free(P), free(P0);
}

void mc_lm_batch_make(mc_lm_batch *t, int64_t B, int64_t N, int64_t V, uint64_t seed)
{
    cr_assert_leq(B * N, MC_MAX_TOKENS);
    attn_rng r;
    attn_rng_seed(&r, seed);
    for (int64_t i = 0; i < B * N; i++) {
        t->tok[i] = (int32_t)attn_rng_uint_below(&r, (uint64_t)V);
        t->tgt[i] = attn_rng_uniform(&r) < 0.5 ? NN_IGNORE_INDEX : (int32_t)attn_rng_uint_below(&r, (uint64_t)V);
    }
    t->b = (nn_batch){.B = B, .tokens = t->tok, .targets = t->tgt};
}

void mc_run(const nn_model_cfg *c, const nn_batch *b, int64_t N, double *loss, int32_t *pred)
{
    nn_model m;
    int64_t correct, scored;
    cr_assert_eq(nn_model_init(&m, c, 5), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_plan(&m, b->B, N, 0, 2), 0, "%s", attn_last_error());
    cr_assert_eq(nn_model_forward(&m, b, 0, 0, loss, &correct, &scored, pred), 0, "%s", attn_last_error());
    nn_model_free(&m);
}

void mc_expect_same(double la, const int32_t *pa, double lb, const int32_t *pb, int64_t n, const char *what)
{
    cr_assert(fabs(la - lb) <= 1e-5 * fmax(1, fabs(lb)), "%s: loss %.9g vs %.9g", what, la, lb);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(pa[i], pb[i], "%s: prediction %lld: %d vs %d", what, (long long)i, pa[i], pb[i]);
}
