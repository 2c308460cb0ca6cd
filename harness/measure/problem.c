#include "problem.h"

#include "kernels/core/kv_cache.h"

#include "common/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every fp32 tensor of a problem and its double twin, in one order. */
#define PROBLEM_NTENSORS 16
#define PROBLEM_TENSORS32(p)                                                                             \
    &(p)->q, &(p)->k, &(p)->v, &(p)->o, &(p)->d_o, &(p)->dq, &(p)->dk, &(p)->dv, &(p)->beta, &(p)->gate, \
        &(p)->dbeta, &(p)->dgate, &(p)->router, &(p)->w, &(p)->drouter, &(p)->dw
#define PROBLEM_TENSORS64(p)                                                                             \
    &(p)->q64, &(p)->k64, &(p)->v64, &(p)->o64, &(p)->do64, &(p)->dq64, &(p)->dk64, &(p)->dv64,          \
        &(p)->beta64, &(p)->gate64, &(p)->dbeta64, &(p)->dgate64, &(p)->router64, &(p)->w64,             \
        &(p)->drouter64, &(p)->dw64

/* Strided storage: one spare float after each head row and three after each
 * position, based one float past the allocation (never 64-byte aligned). */
static attn_tensor tensor_new(int64_t B, int64_t H, int64_t N, int64_t D, int strided)
{
    attn_tensor t = {NULL, B, H, N, D, H * N * D, N * D, D};
    if (strided)
        t.sh = D + 1, t.sn = H * t.sh + 3, t.sb = N * t.sn;
    size_t n = (size_t)(B * t.sb) + (strided ? 1 : 0);
    float *base = attn_alloc(sizeof(float) * n);
    if (!base)
        return t;
    memset(base, 0, sizeof(float) * n);
    t.data = base + (strided ? 1 : 0);
    return t;
}

static void tensor_release(attn_tensor *t, int strided)
{
    if (t->data)
        attn_free(t->data - (strided ? 1 : 0));
    t->data = NULL;
}

#define FOR_ELEMENTS(t, b, h, n, d)                \
    for (int64_t b = 0; b < (t)->B; b++)           \
        for (int64_t h = 0; h < (t)->H; h++)       \
            for (int64_t n = 0; n < (t)->N; n++)   \
                for (int64_t d = 0; d < (t)->D; d++)

static void fill(attn_tensor *t, attn_rng *r, float lo, float hi)
{
    if (t->data)
        FOR_ELEMENTS(t, b, h, n, d) attn_at(t, b, h, n)[d] = attn_rng_range(r, lo, hi);
}

/* Write strengths in (0,1) as a model's sigmoid gate produces them. */
static void squash_to_unit(attn_tensor *t)
{
    if (t->data)
        FOR_ELEMENTS(t, b, h, n, d) attn_at(t, b, h, n)[d] = 1.f / (1.f + expf(-attn_at(t, b, h, n)[d]));
}

static attn_tensor_f64 twin_of(const attn_tensor *t)
{
    attn_tensor_f64 w = {NULL, t->B, t->H, t->N, t->D, t->H * t->N * t->D, t->N * t->D, t->D};
    if (t->data)
        w.data = calloc((size_t)(t->B * w.sb), sizeof(double));
    return w;
}

static void widen_into(attn_tensor_f64 *w, const attn_tensor *t)
{
    if (t->data && w->data)
        FOR_ELEMENTS(t, b, h, n, d) attn_at64(w, b, h, n)[d] = attn_at(t, b, h, n)[d];
}

/* The [B, H, N, D] shape of every fp32 tensor of the problem, in the order
 * of PROBLEM_TENSORS32 (all zero: the problem has no such tensor). */
static void tensor_shapes(const attn_kernel *k, const attn_args *s, int grads, int64_t shape[PROBLEM_NTENSORS][4])
{
    int64_t Dv = attn_dv(s), No = attn_o_rows(k, s), G = attn_gate_cols(k, s);
    int64_t R = attn_router_cols(k, s), W = attn_weight_cols(k, s);
    int64_t beta = k && (k->inputs & ATTN_IN_BETA);
    const int64_t all[PROBLEM_NTENSORS][4] = {
        {s->B, s->H, s->Nq, s->D}, {s->B, s->H_kv, s->Nk, s->D}, {s->B, s->H_kv, s->Nk, Dv}, {s->B, s->H, No, Dv},
        {s->B, s->H, No, Dv},      {s->B, s->H, s->Nq, s->D},    {s->B, s->H_kv, s->Nk, s->D}, {s->B, s->H_kv, s->Nk, Dv},
        {s->B, s->H_kv, s->Nk, beta}, {s->B, s->H_kv, s->Nk, G}, {s->B, s->H_kv, s->Nk, beta}, {s->B, s->H_kv, s->Nk, G},
        {s->B, s->H_kv, s->Nk, R}, {1, s->H, 1, W},             {s->B, s->H_kv, s->Nk, R},    {1, s->H, 1, W}};
    /* 4..7 are dO and the gradients of Q, K, V; 10, 11, 14, 15 those of the extra inputs */
    static const unsigned char is_grad[PROBLEM_NTENSORS] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1};
    for (int i = 0; i < PROBLEM_NTENSORS; i++)
        for (int j = 0; j < 4; j++)
            shape[i][j] = is_grad[i] && !grads ? 0 : all[i][j];
}

static int64_t shape_elements(const int64_t *shape) { return shape[0] * shape[1] * shape[2] * shape[3]; }

double problem_bytes(const attn_kernel *k, const attn_args *a, unsigned opts)
{
    attn_args s = *a;
    attn_args_defaults(&s);
    int64_t shape[PROBLEM_NTENSORS][4];
    tensor_shapes(k, &s, (opts & PROBLEM_GRADS) != 0, shape);
    double elements = (double)s.B * (double)s.H * (double)s.Nq; /* LSE */
    for (int i = 0; i < PROBLEM_NTENSORS; i++)
        elements += (double)shape_elements(shape[i]);
    double kv = s.kv_dtype == ATTN_KV_FP32 ? 0 : 2 * (double)(s.B * s.H_kv * s.Nk) * (double)attn_kv_row_bytes(s.kv_dtype, s.D);
    /* 16-bit operands: Q, K, V, O (dO, dQ, dK, dV) at 2 bytes, Q, K, V again as read floats */
    double qkv = (double)(shape_elements(shape[0]) + shape_elements(shape[1]) + shape_elements(shape[2]));
    double in16 = qkv + (double)shape_elements(shape[3]) +
                  ((opts & PROBLEM_GRADS) ? qkv + (double)shape_elements(shape[4]) : 0);
    double ops = s.dtype == ATTN_DT_FP32 ? 0 : 2 * in16 + 4 * qkv;
    return elements * (sizeof(float) + ((opts & PROBLEM_TWIN) ? sizeof(double) : 0)) + kv + ops;
}

static attn_tensor_h tensor_h_new(const attn_tensor *like)
{
    attn_tensor_h t = {NULL, like->B, like->H, like->N, like->D, like->H * like->N * like->D, like->N * like->D,
                       like->D};
    if (like->data && (t.data = attn_alloc(sizeof(uint16_t) * (size_t)(t.B * t.sb))) != NULL)
        memset(t.data, 0, sizeof(uint16_t) * (size_t)(t.B * t.sb));
    return t;
}

/* a.dtype bf16/fp16: the 16-bit twins of Q, K, V, O (dO and the gradients)
 * and the read floats qr, kr, vr. 1 when all that is needed exists. */
static int allocate_operands(problem *p)
{
    if (p->a.dtype == ATTN_DT_FP32)
        return 1;
    const attn_tensor *from[8] = {&p->q, &p->k, &p->v, &p->o, &p->d_o, &p->dq, &p->dk, &p->dv};
    attn_tensor_h *to[8] = {&p->qh, &p->kh, &p->vh, &p->oh, &p->d_oh, &p->dqh, &p->dkh, &p->dvh};
    int ok = 1;
    for (int i = 0; i < 8; i++)
        *to[i] = tensor_h_new(from[i]), ok = ok && (!from[i]->data || to[i]->data);
    attn_tensor *read[3] = {&p->qr, &p->kr, &p->vr};
    for (int i = 0; i < 3; i++)
        *read[i] = tensor_new(from[i]->B, from[i]->H, from[i]->N, from[i]->D, 0), ok = ok && read[i]->data;
    return ok;
}

static int allocate(problem *p, const attn_kernel *k)
{
    const attn_args *s = &p->a;
    int st = (p->opts & PROBLEM_STRIDED) != 0, ok = 1;
    int64_t shape[PROBLEM_NTENSORS][4];
    tensor_shapes(k, s, (p->opts & PROBLEM_GRADS) != 0, shape);
    attn_tensor *t32[] = {PROBLEM_TENSORS32(p)};
    for (int i = 0; i < PROBLEM_NTENSORS; i++)
        if (shape_elements(shape[i]))
            *t32[i] = tensor_new(shape[i][0], shape[i][1], shape[i][2], shape[i][3], st), ok = ok && t32[i]->data;
    ok = ok && allocate_operands(p);
    size_t nl = (size_t)(s->B * s->H * s->Nq);
    p->lse = attn_alloc(sizeof(float) * nl);
    ok = ok && p->lse;
    if (p->lse) /* kernels without a normaliser never write it */
        memset(p->lse, 0, sizeof(float) * nl);
    if (ok && (p->opts & PROBLEM_TWIN)) {
        attn_tensor_f64 *t64[] = {PROBLEM_TENSORS64(p)};
        for (int i = 0; i < PROBLEM_NTENSORS; i++)
            *t64[i] = twin_of(t32[i]), ok = ok && (!t32[i]->data || t64[i]->data);
        p->lse64 = calloc(nl, sizeof(double));
        ok = ok && p->lse64;
    }
    return ok ? 0 : attn_fail(ATTN_ENOMEM, "problem_make: cannot allocate the tensors of B=%ld H=%ld Nq=%ld Nk=%ld D=%ld",
                              (long)s->B, (long)s->H, (long)s->Nq, (long)s->Nk, (long)s->D);
}

static void fill_all(problem *p, const attn_kernel *k, uint64_t seed)
{
    attn_rng r;
    attn_rng_seed(&r, seed);
    fill(&p->q, &r, -1, 1);
    fill(&p->k, &r, -1, 1);
    fill(&p->v, &r, -1, 1);
    fill(&p->beta, &r, -3, 3);
    squash_to_unit(&p->beta);
    fill(&p->gate, &r, -1.f, -0.001f); /* log decays */
    fill(&p->router, &r, -2.f, 2.f);
    if (p->w.data && k->init_weights)
        k->init_weights(&p->a, &p->w, seed); /* the values a model starts from */
    else
        fill(&p->w, &r, -1.f / sqrtf((float)p->a.D), 1.f / sqrtf((float)p->a.D));
    fill(&p->d_o, &r, -1, 1);
}

int problem_make(problem *p, const attn_kernel *k, const attn_args *a, uint64_t seed, unsigned opts)
{
    memset(p, 0, sizeof *p);
    p->a = *a;
    p->opts = opts;
    attn_args_defaults(&p->a);
    int rc = allocate(p, k);
    if (rc) {
        problem_free(p);
        return rc;
    }
    fill_all(p, k, seed);
    if (p->a.kv_dtype != ATTN_KV_FP32 && ((rc = attn_kv_cache_make(&p->kc, p->a.kv_dtype, &p->k)) != 0 ||
                                          (rc = attn_kv_cache_make(&p->vc, p->a.kv_dtype, &p->v)) != 0)) {
        problem_free(p);
        return rc;
    }
    problem_widen_inputs(p);
    return 0;
}

/* The twin's rows of a KV head from the stored cache: the values the kernel reads. */
static void widen_cache_into(attn_tensor_f64 *w, const attn_kv_cache *c)
{
    float *row = malloc(sizeof(float) * (size_t)c->D);
    for (int64_t b = 0; row && b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++)
            for (int64_t n = 0; n < c->N; n++) {
                attn_kv_cache_row_f32(c, b, h, n, row);
                for (int64_t d = 0; d < c->D; d++)
                    attn_at64(w, b, h, n)[d] = row[d];
            }
    free(row);
}

void problem_store_kv(problem *p)
{
    if (!p->kc.data)
        return;
    attn_kv_cache_store(&p->kc, &p->k);
    attn_kv_cache_store(&p->vc, &p->v);
    if (p->k64.data) {
        widen_cache_into(&p->k64, &p->kc);
        widen_cache_into(&p->v64, &p->vc);
    }
}

#define FOR_ROWS(t, b, h, n)                     \
    for (int64_t b = 0; b < (t)->B; b++)         \
        for (int64_t h = 0; h < (t)->H; h++)     \
            for (int64_t n = 0; n < (t)->N; n++)

static void narrow_into(attn_tensor_h *y, const attn_tensor *x, attn_dtype t)
{
    if (x->data && y->data)
        FOR_ROWS(x, b, h, n) attn_narrow(t, attn_at(x, b, h, n), x->D, attn_at_h(y, b, h, n));
}

/* The plain loop, not the kernels' vector path: what they are checked against. */
static void widen_h_into(attn_tensor *y, const attn_tensor_h *x, attn_dtype t)
{
    if (x->data && y->data)
        FOR_ROWS(x, b, h, n) attn_widen_plain(t, attn_at_h(x, b, h, n), x->D, attn_at(y, b, h, n));
}

void problem_store_operands(problem *p)
{
    attn_dtype t = p->a.dtype;
    if (t == ATTN_DT_FP32)
        return;
    narrow_into(&p->qh, &p->q, t), narrow_into(&p->kh, &p->k, t), narrow_into(&p->vh, &p->v, t);
    narrow_into(&p->d_oh, &p->d_o, t);
    widen_h_into(&p->qr, &p->qh, t), widen_h_into(&p->kr, &p->kh, t), widen_h_into(&p->vr, &p->vh, t);
}

void problem_widen_outputs(problem *p)
{
    attn_dtype t = p->a.dtype;
    if (t == ATTN_DT_FP32)
        return;
    widen_h_into(&p->o, &p->oh, t);
    widen_h_into(&p->dq, &p->dqh, t), widen_h_into(&p->dk, &p->dkh, t), widen_h_into(&p->dv, &p->dvh, t);
}

void problem_widen_inputs(problem *p)
{
    problem_store_operands(p);
    /* 16-bit operands: the twin holds what the kernel reads, the rounded values */
    int rounded = p->a.dtype != ATTN_DT_FP32;
    attn_tensor d_o = p->d_o;
    if (rounded && d_o.data) { /* dO's rounded values, through a scratch float copy */
        d_o = tensor_new(p->d_o.B, p->d_o.H, p->d_o.N, p->d_o.D, 0);
        widen_h_into(&d_o, &p->d_oh, p->a.dtype);
    }
    attn_tensor *t32[] = {rounded ? &p->qr : &p->q, rounded ? &p->kr : &p->k, rounded ? &p->vr : &p->v, &d_o,
                          &p->beta, &p->gate, &p->router, &p->w};
    attn_tensor_f64 *t64[] = {&p->q64, &p->k64, &p->v64, &p->do64, &p->beta64, &p->gate64, &p->router64, &p->w64};
    for (int i = 0; i < 8; i++)
        widen_into(t64[i], t32[i]);
    if (d_o.data != p->d_o.data)
        tensor_release(&d_o, 0);
    problem_store_kv(p);
}

attn_io problem_io(const problem *p)
{
    attn_io io = {p->q, p->k, p->v, p->o, p->lse, p->beta, p->gate, p->router, p->w, p->kc, p->vc,
                  p->qh, p->kh, p->vh, p->oh};
    return io;
}

attn_io problem_io_read(const problem *p)
{
    attn_io io = problem_io(p);
    if (p->a.dtype != ATTN_DT_FP32)
        io.q = p->qr, io.k = p->kr, io.v = p->vr;
    return io;
}

attn_grads problem_grads(const problem *p)
{
    attn_grads g = {p->d_o, p->dq, p->dk, p->dv, p->dbeta, p->dgate, p->drouter, p->dw,
                    p->d_oh, p->dqh, p->dkh, p->dvh};
    return g;
}

attn_io64 problem_io64(const problem *p)
{
    attn_io64 io = {p->q64, p->k64, p->v64, p->o64, p->lse64, p->beta64, p->gate64, p->router64, p->w64};
    return io;
}

void problem_free(problem *p)
{
    attn_tensor *t32[] = {PROBLEM_TENSORS32(p)};
    attn_tensor_f64 *t64[] = {PROBLEM_TENSORS64(p)};
    for (int i = 0; i < PROBLEM_NTENSORS; i++) {
        tensor_release(t32[i], (p->opts & PROBLEM_STRIDED) != 0);
        free(t64[i]->data);
        t64[i]->data = NULL;
    }
    attn_kv_cache_free(&p->kc);
    attn_kv_cache_free(&p->vc);
    attn_tensor_h *h16[] = {&p->qh, &p->kh, &p->vh, &p->oh, &p->d_oh, &p->dqh, &p->dkh, &p->dvh};
    for (int i = 0; i < 8; i++)
        attn_free(h16[i]->data), h16[i]->data = NULL;
    tensor_release(&p->qr, 0), tensor_release(&p->kr, 0), tensor_release(&p->vr, 0);
    attn_free(p->lse);
    free(p->lse64);
    p->lse = NULL, p->lse64 = NULL;
}

int problem_same_rows(const attn_tensor *x, const attn_tensor *y)
{
    for (int64_t b = 0; b < x->B; b++)
        for (int64_t h = 0; h < x->H; h++)
            for (int64_t n = 0; n < x->N; n++)
                if (memcmp(attn_at(x, b, h, n), attn_at(y, b, h, n), sizeof(float) * (size_t)x->D))
                    return 0;
    return 1;
}
