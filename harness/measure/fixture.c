#include "fixture.h"

#include "kernels/core/oracle.h"
#include "common/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every fp32 tensor of a problem and its double twin, in one order. */
#define FX_NTENSORS 16
#define FX_TENSORS32(p)                                                                                  \
    &(p)->q, &(p)->k, &(p)->v, &(p)->o, &(p)->d_o, &(p)->dq, &(p)->dk, &(p)->dv, &(p)->beta, &(p)->gate, \
        &(p)->dbeta, &(p)->dgate, &(p)->router, &(p)->w, &(p)->drouter, &(p)->dw
#define FX_TENSORS64(p)                                                                                  \
    &(p)->q64, &(p)->k64, &(p)->v64, &(p)->o64, &(p)->do64, &(p)->dq64, &(p)->dk64, &(p)->dv64,          \
        &(p)->beta64, &(p)->gate64, &(p)->dbeta64, &(p)->dgate64, &(p)->router64, &(p)->w64,             \
        &(p)->drouter64, &(p)->dw64

static attn_tensor tensor_new(int64_t B, int64_t H, int64_t N, int64_t D)
{
    attn_tensor t = {NULL, B, H, N, D, H * N * D, N * D, D};
    t.data = attn_alloc(sizeof(float) * (size_t)(B * H * N * D));
    memset(t.data, 0, sizeof(float) * (size_t)(B * H * N * D));
    return t;
}

static attn_tensor_f64 tensor64_like(const attn_tensor *t)
{
    attn_tensor_f64 w = {NULL, t->B, t->H, t->N, t->D, t->sb, t->sh, t->sn};
    if (!t->data)
        return w;
    size_t n = (size_t)(t->B * t->sb);
    w.data = calloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++)
        w.data[i] = t->data[i];
    return w;
}

static void widen_into(attn_tensor_f64 *w, const attn_tensor *t)
{
    for (int64_t i = 0; t->data && i < t->B * t->sb; i++)
        w->data[i] = t->data[i];
}

static void fill(attn_tensor *t, attn_rng *r, float lo, float hi)
{
    for (int64_t i = 0; t->data && i < t->B * t->sb; i++)
        t->data[i] = attn_rng_range(r, lo, hi);
}

attn_args fx_args(int64_t B, int64_t H, int64_t H_kv, int64_t Nq, int64_t Nk, int64_t D,
                  const char *mask, int threads)
{
    attn_args a;
    memset(&a, 0, sizeof a);
    a.B = B, a.H = H, a.H_kv = H_kv, a.Nq = Nq, a.Nk = Nk, a.D = D, a.threads = threads;
    if (attn_mask_parse(mask, &a.mask) != 0)
        abort(); /* a test's own typo, not input */
    attn_args_defaults(&a);
    return a;
}

static attn_io64 io64_of(fx_problem *p)
{
    attn_io64 io = {p->q64, p->k64, p->v64, p->o64, p->lse64, p->beta64, p->gate64, p->router64, p->w64};
    return io;
}

void fx_ref_forward(fx_problem *p)
{
    attn_tensor *t32[] = {&p->q, &p->k, &p->v, &p->d_o, &p->beta, &p->gate, &p->router, &p->w};
    attn_tensor_f64 *t64[] = {&p->q64, &p->k64, &p->v64, &p->do64, &p->beta64, &p->gate64, &p->router64, &p->w64};
    for (int i = 0; i < 8; i++)
        widen_into(t64[i], t32[i]);
    if (p->kernel && p->kernel->ref_forward) {
        attn_io64 io = io64_of(p);
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
    memset(p, 0, sizeof *p);
    p->a = *a;
    p->kernel = k && k->ref_forward ? k : NULL;
    attn_args_defaults(&p->a);
    const attn_args *s = &p->a;
    int64_t Dv = attn_dv(s), No = attn_o_rows(k, s), G = attn_gate_cols(k, s);
    int64_t R = attn_router_cols(k, s), W = attn_weight_cols(k, s);
    attn_rng r;
    attn_rng_seed(&r, seed);
    p->q = tensor_new(s->B, s->H, s->Nq, s->D);
    p->k = tensor_new(s->B, s->H_kv, s->Nk, s->D);
    p->v = tensor_new(s->B, s->H_kv, s->Nk, Dv);
    p->o = tensor_new(s->B, s->H, No, Dv);
    p->d_o = tensor_new(s->B, s->H, No, Dv);
    p->dq = tensor_new(s->B, s->H, s->Nq, s->D);
    p->dk = tensor_new(s->B, s->H_kv, s->Nk, s->D);
    p->dv = tensor_new(s->B, s->H_kv, s->Nk, Dv);
    if (k && (k->inputs & ATTN_IN_BETA))
        p->beta = tensor_new(s->B, s->H_kv, s->Nk, 1), p->dbeta = tensor_new(s->B, s->H_kv, s->Nk, 1);
    if (G)
        p->gate = tensor_new(s->B, s->H_kv, s->Nk, G), p->dgate = tensor_new(s->B, s->H_kv, s->Nk, G);
    if (R)
        p->router = tensor_new(s->B, s->H_kv, s->Nk, R), p->drouter = tensor_new(s->B, s->H_kv, s->Nk, R);
    if (W)
        p->w = tensor_new(1, s->H, 1, W), p->dw = tensor_new(1, s->H, 1, W);
    p->lse = attn_alloc(sizeof(float) * (size_t)(s->B * s->H * s->Nq));
    memset(p->lse, 0, sizeof(float) * (size_t)(s->B * s->H * s->Nq)); /* kernels without a normaliser never write it */
    fill(&p->q, &r, -1, 1), fill(&p->k, &r, -1, 1), fill(&p->v, &r, -1, 1), fill(&p->d_o, &r, -1, 1);
    fill(&p->beta, &r, -3, 3);
    for (int64_t i = 0; p->beta.data && i < p->beta.B * p->beta.sb; i++)
        p->beta.data[i] = 1.f / (1.f + expf(-p->beta.data[i]));
    fill(&p->gate, &r, -1.f, -0.001f);
    fill(&p->router, &r, -2.f, 2.f);
    if (p->w.data && k->init_weights)
        k->init_weights(s, &p->w, seed ^ 0x9e3779b97f4a7c15ull);
    else
        fill(&p->w, &r, -1.f / sqrtf((float)s->D), 1.f / sqrtf((float)s->D));

    attn_tensor *t32[] = {FX_TENSORS32(p)};
    attn_tensor_f64 *t64[] = {FX_TENSORS64(p)};
    for (int i = 0; i < FX_NTENSORS; i++)
        *t64[i] = tensor64_like(t32[i]);
    p->lse64 = calloc((size_t)(s->B * s->H * s->Nq), sizeof(double));
    fx_ref_forward(p);
}

void fx_make(fx_problem *p, const attn_args *a, uint64_t seed) { fx_make_for(p, NULL, a, seed); }

/* L = sum(O .* dO) under the kernel's reference. */
static double ref_loss(fx_problem *p)
{
    attn_io64 io = io64_of(p);
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

void fx_free(fx_problem *p)
{
    attn_tensor *t32[] = {FX_TENSORS32(p)};
    attn_tensor_f64 *t64[] = {FX_TENSORS64(p)};
    for (int i = 0; i < FX_NTENSORS; i++) {
        attn_free(t32[i]->data);
        free(t64[i]->data);
    }
    attn_free(p->lse);
    free(p->lse64);
}

int fx_run(const attn_kernel *k, fx_problem *p, int with_backward)
{
    attn_ctx ctx;
    attn_args a = p->a;
    a.backward = with_backward;
    int rc = attn_ctx_create(k, &a, &ctx);
    if (rc)
        return rc;
    attn_io io = {p->q, p->k, p->v, p->o, p->lse, p->beta, p->gate, p->router, p->w};
    rc = k->forward(&ctx, &io);
    if (!rc && with_backward) {
        attn_grads g = {p->d_o, p->dq, p->dk, p->dv, p->dbeta, p->dgate, p->drouter, p->dw};
        rc = k->backward ? k->backward(&ctx, &io, &g) : ATTN_EUNSUPPORTED;
    }
    attn_ctx_destroy(&ctx);
    return rc;
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
