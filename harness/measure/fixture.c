#include "fixture.h"

#include "kernels/core/oracle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

attn_args fx_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D,
                  const char *mask, int threads)
{
    attn_args a;
    memset(&a, 0, sizeof a);
    a.B = B, a.H = H, a.H_kv = H_kv, a.Nq = Nq, a.Nk = Nk, a.D = D, a.threads = threads;
    if (attn_mask_parse(mask, &a.mask) != 0) { /* a test's own typo, not input: stop, saying which */
        fprintf(stderr, "fx_args: %s\n", attn_last_error());
        abort();
    }
    attn_args_defaults(&a);
    return a;
}

void fx_add_params(attn_args *a, const char *params)
{
    if (params && param_bag_add_list(&a->params, params) != 0) {
        fprintf(stderr, "fx_add_params: %s\n", attn_last_error());
        abort();
    }
}

attn_args fx_args_params(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D, const char *mask,
                         int threads, const char *params)
{
    attn_args a = fx_args(B, H, H_kv, Nq, Nk, D, mask, threads);
    fx_add_params(&a, params);
    return a;
}

void fx_ref_forward(fx_problem *p)
{
    problem_widen_inputs(p);
    if (p->kernel && p->kernel->ref_forward) {
        attn_io64 io = problem_io64(p);
        p->kernel->ref_forward(&p->a, &io);
        p->grads_ready = 0;
    } else {
        attn_oracle_forward_f64(&p->a, &p->q64, &p->k64, &p->v64, &p->o64, p->lse64);
        attn_oracle_backward_f64(&p->a, &p->q64, &p->k64, &p->v64, &p->o64, p->lse64, &p->do64, &p->dq64,
                                 &p->dk64, &p->dv64);
        p->grads_ready = 1;
    }
}

void fx_make_for(fx_problem *p, const attn_kernel *k, const attn_args *a, uint64_t seed)
{
    if (problem_make(p, k, a, seed, PROBLEM_GRADS | PROBLEM_TWIN) != 0) {
        /* a test's problem is small: no memory for it is not an input error */
        fprintf(stderr, "fx_make_for: %s\n", attn_last_error());
        abort();
    }
    p->kernel = k && k->ref_forward ? k : NULL;
    fx_ref_forward(p);
}

void fx_make(fx_problem *p, const attn_args *a, uint64_t seed) { fx_make_for(p, NULL, a, seed); }

/* L = sum(O .* dO) under the kernel's reference. */
static double ref_loss(fx_problem *p)
{
    attn_io64 io = problem_io64(p);
    p->kernel->ref_forward(&p->a, &io);
    double L = 0;
    for (int64_t i = 0; i < p->o64.B * p->o64.sb; i++)
        L += p->o64.data[i] * p->do64.data[i];
    return L;
}

void fx_ref_grads(fx_problem *p)
{
    if (p->grads_ready)
        return;
    attn_tensor_f64 *x[] = {&p->q64, &p->k64, &p->v64, &p->beta64, &p->gate64, &p->router64, &p->w64};
    attn_tensor_f64 *g[] = {&p->dq64, &p->dk64, &p->dv64, &p->dbeta64, &p->dgate64, &p->drouter64, &p->dw64};
    for (int t = 0; t < 7; t++)
        for (int64_t i = 0; x[t]->data && i < x[t]->B * x[t]->sb; i++) {
            double x0 = x[t]->data[i], h = 1e-6 * fmax(1.0, fabs(x0));
            x[t]->data[i] = x0 + h;
            double lp = ref_loss(p);
            x[t]->data[i] = x0 - h;
            double lm = ref_loss(p);
            x[t]->data[i] = x0;
            g[t]->data[i] = (lp - lm) / (2 * h);
        }
    ref_loss(p); /* leave o64 at the unperturbed inputs */
    p->grads_ready = 1;
}

void fx_free(fx_problem *p) { problem_free(p); }

/* fx_run, with the batch's lengths given at create time or (late) only
 * after it, as a model binds each batch's lengths to one planned context. */
static int fx_run_at(const attn_kernel *k, fx_problem *p, int with_backward, int late)
{
    attn_ctx ctx;
    attn_args a = p->a;
    a.backward = with_backward;
    if (late)
        a.seq_len = NULL, a.kv_len = NULL;
    int rc = attn_ctx_create(k, &a, &ctx);
    if (rc)
        return rc;
    ctx.args.seq_len = p->a.seq_len, ctx.args.kv_len = p->a.kv_len;
    attn_io io = problem_io(p);
    rc = k->forward(&ctx, &io);
    if (!rc && with_backward) {
        attn_grads g = problem_grads(p);
        rc = k->backward ? k->backward(&ctx, &io, &g) : ATTN_EUNSUPPORTED;
    }
    problem_widen_outputs(p);
    attn_ctx_destroy(&ctx);
    return rc;
}

int fx_run(const attn_kernel *k, fx_problem *p, int with_backward) { return fx_run_at(k, p, with_backward, 0); }

int fx_run_lengths_late(const attn_kernel *k, fx_problem *p, int with_backward)
{
    return fx_run_at(k, p, with_backward, 1);
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

double fx_err_o(const fx_problem *p)
{
    int64_t n = p->o.B * p->o.sb;
    double err = 0, scale = p->kernel ? max_abs(p->o64.data, n) : max_abs(p->v64.data, p->v.B * p->v.sb);
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)p->o.data[i] - p->o64.data[i]);
        if (!(e <= err))
            err = isnan(e) ? INFINITY : e;
    }
    return scale > 0 ? err / scale : err;
}

double fx_err_lse(const fx_problem *p)
{
    int64_t n = p->a.B * p->a.H * p->a.Nq;
    double err = 0;
    for (int64_t i = 0; i < n; i++) {
        double ref = p->lse64[i], got = p->lse[i];
        if (isinf(ref) || isinf(got)) {
            if (ref != got)
                return INFINITY;
            continue;
        }
        double e = fabs(got - ref) / (1 + fabs(ref));
        if (!(e <= err))
            err = isnan(e) ? INFINITY : e;
    }
    return err;
}

double fx_err_grad(const attn_tensor *g, const attn_tensor_f64 *ref)
{
    double err = 0, gmax = 0;
    for (int64_t b = 0; b < g->B; b++)
        for (int64_t h = 0; h < g->H; h++)
            for (int64_t n = 0; n < g->N; n++)
                for (int64_t d = 0; d < g->D; d++) {
                    double r = attn_at64(ref, b, h, n)[d], x = attn_at(g, b, h, n)[d];
                    double e = fabs(x - r);
                    gmax = fmax(gmax, fabs(r));
                    if (!(e <= err))
                        err = isnan(e) ? INFINITY : e;
                }
    return gmax > 0 ? err / gmax : err;
}

int fx_bitwise_equal(const attn_tensor *x, const attn_tensor *y)
{
    return memcmp(x->data, y->data, sizeof(float) * (size_t)(x->B * x->sb)) == 0;
}

double fx_tol_o(int64_t Nk) { return 2e-5 * fmax(1.0, sqrt((double)Nk / 4096.0)); }
