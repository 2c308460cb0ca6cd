/* The oracle: every score in double, compensated (Neumaier) sums, no tiling.
 * Slow on purpose; it is the obviously-correct twin of every exact kernel. */
#include "oracle.h"

#include "counters.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Neumaier compensated accumulator. */
typedef struct {
    double sum, comp;
} kahan;

static void kahan_add(kahan *s, double x)
{
    double t = s->sum + x;
    if (fabs(s->sum) >= fabs(x))
        s->comp += (s->sum - t) + x;
    else
        s->comp += (x - t) + s->sum;
    s->sum = t;
}

static double kahan_value(const kahan *s) { return s->sum + s->comp; }

static double dot64(const double *x, const double *y, int64_t n)
{
    kahan s = {0, 0};
    for (int64_t i = 0; i < n; i++)
        kahan_add(&s, x[i] * y[i]);
    return kahan_value(&s);
}

/* Scores of one query row against all keys: s[j] = sc<q,k_j>, -inf where masked.
 * Returns the row maximum (-inf if every key is masked). */
static double score_row(const attn_args *a, const double *q, const attn_tensor_f64 *k, int64_t b,
                        int64_t h, int64_t i, double *s)
{
    double sc = attn_scale(a), m = -INFINITY;
    int64_t hk = h / (a->H / a->H_kv);
    /* ragged or padded batch: see attn_args; a padded query row sees no key */
    int64_t nk = i < attn_q_len(a, b) ? attn_kv_len(a, b) : 0, q_off = attn_q_off_of(a, b);
    for (int64_t j = 0; j < a->Nk; j++) {
        if (j >= nk || !attn_mask_allowed(&a->mask, b, h, q_off + i, a->k_off + j)) {
            s[j] = -INFINITY;
            continue;
        }
        s[j] = sc * dot64(q, attn_at64(k, b, hk, j), a->D);
        if (s[j] > m)
            m = s[j];
    }
    return m;
}

void attn_oracle_forward_f64(const attn_args *a, const attn_tensor_f64 *q, const attn_tensor_f64 *k,
                             const attn_tensor_f64 *v, attn_tensor_f64 *o, double *lse)
{
    int64_t G = a->H / a->H_kv, D = a->D;
    double *s = malloc(sizeof(double) * (size_t)a->Nk);
    kahan *acc = malloc(sizeof(kahan) * (size_t)D);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                double *orow = attn_at64(o, b, h, i);
                double *lrow = &lse[(b * a->H + h) * a->Nq + i];
                double m = score_row(a, attn_at64(q, b, h, i), k, b, h, i, s);
                if (m == -INFINITY) {
                    memset(orow, 0, sizeof(double) * (size_t)D);
                    *lrow = -INFINITY;
                    continue;
                }
                kahan l = {0, 0};
                memset(acc, 0, sizeof(kahan) * (size_t)D);
                for (int64_t j = 0; j < a->Nk; j++) {
                    if (s[j] == -INFINITY)
                        continue;
                    double p = exp(s[j] - m);
                    kahan_add(&l, p);
                    const double *vrow = attn_at64(v, b, h / G, j);
                    for (int64_t d = 0; d < D; d++)
                        kahan_add(&acc[d], p * vrow[d]);
                }
                double L = kahan_value(&l);
                for (int64_t d = 0; d < D; d++)
                    orow[d] = kahan_value(&acc[d]) / L;
                *lrow = m + log(L);
            }
    free(acc);
    free(s);
}

static void zero_f64(attn_tensor_f64 *t)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++)
                memset(attn_at64(t, b, h, n), 0, sizeof(double) * (size_t)t->D);
}

void attn_oracle_backward_f64(const attn_args *a, const attn_tensor_f64 *q, const attn_tensor_f64 *k,
                              const attn_tensor_f64 *v, const attn_tensor_f64 *o, const double *lse,
                              const attn_tensor_f64 *d_o, attn_tensor_f64 *dq, attn_tensor_f64 *dk,
                              attn_tensor_f64 *dv)
{
    int64_t G = a->H / a->H_kv, D = a->D;
    double sc = attn_scale(a);
    double *s = malloc(sizeof(double) * (size_t)a->Nk);
    zero_f64(dq);
    zero_f64(dk);
    zero_f64(dv);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Nq; i++) {
                double L = lse[(b * a->H + h) * a->Nq + i];
                if (L == -INFINITY)
                    continue; /* fully masked row: O = 0 is constant, no gradient */
                const double *qi = attn_at64(q, b, h, i), *doi = attn_at64(d_o, b, h, i);
                double *dqi = attn_at64(dq, b, h, i);
                double Di = dot64(doi, attn_at64(o, b, h, i), D);
                score_row(a, qi, k, b, h, i, s);
                for (int64_t j = 0; j < a->Nk; j++) {
                    if (s[j] == -INFINITY)
                        continue;
                    const double *kj = attn_at64(k, b, h / G, j), *vj = attn_at64(v, b, h / G, j);
                    double p = exp(s[j] - L);
                    double ds = p * (dot64(doi, vj, D) - Di);
                    double *dkj = attn_at64(dk, b, h / G, j), *dvj = attn_at64(dv, b, h / G, j);
                    for (int64_t d = 0; d < D; d++) {
                        dqi[d] += sc * ds * kj[d];
                        dkj[d] += sc * ds * qi[d];
                        dvj[d] += p * doi[d];
                    }
                }
            }
    free(s);
}

/* --- the oracle as a registry kernel: widen fp32 inputs, narrow results --- */

static attn_tensor_f64 widen(const attn_tensor *t)
{
    attn_tensor_f64 w = {NULL, t->B, t->H, t->N, t->D, t->H * t->N * t->D, t->N * t->D, t->D};
    w.data = malloc(sizeof(double) * (size_t)(t->B * w.sb));
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++)
                for (int64_t d = 0; d < t->D; d++)
                    attn_at64(&w, b, h, n)[d] = attn_at(t, b, h, n)[d];
    return w;
}

static void narrow(const attn_tensor_f64 *w, attn_tensor *t)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++)
                for (int64_t d = 0; d < t->D; d++)
                    attn_at(t, b, h, n)[d] = (float)attn_at64(w, b, h, n)[d];
}

static int oracle_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    attn_tensor_f64 q = widen(&io->q), k = widen(&io->k), v = widen(&io->v), o = widen(&io->o);
    size_t nl = (size_t)(a->B * a->H * a->Nq);
    double *lse = malloc(sizeof(double) * nl);
    attn_oracle_forward_f64(a, &q, &k, &v, &o, lse);
    narrow(&o, (attn_tensor *)&io->o);
    for (size_t i = 0; i < nl; i++)
        io->lse[i] = (float)lse[i];
    attn_counter_add(ATTN_CNT_FLOPS, (long long)attn_softmax_flops(a, ATTN_PASS_FWD));
    free(lse);
    free(q.data), free(k.data), free(v.data), free(o.data);
    return 0;
}

static int oracle_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    attn_tensor_f64 q = widen(&io->q), k = widen(&io->k), v = widen(&io->v), o = widen(&io->o);
    attn_tensor_f64 d_o = widen(&g->d_o), dq = widen(&g->dq), dk = widen(&g->dk), dv = widen(&g->dv);
    size_t nl = (size_t)(a->B * a->H * a->Nq);
    double *lse = malloc(sizeof(double) * nl);
    for (size_t i = 0; i < nl; i++)
        lse[i] = io->lse[i];
    attn_oracle_backward_f64(a, &q, &k, &v, &o, lse, &d_o, &dq, &dk, &dv);
    narrow(&dq, (attn_tensor *)&g->dq);
    narrow(&dk, (attn_tensor *)&g->dk);
    narrow(&dv, (attn_tensor *)&g->dv);
    attn_counter_add(ATTN_CNT_FLOPS, (long long)attn_softmax_flops(a, ATTN_PASS_BWD));
    free(lse);
    free(q.data), free(k.data), free(v.data), free(o.data);
    free(d_o.data), free(dq.data), free(dk.data), free(dv.data);
    return 0;
}

const attn_kernel attn_kernel_oracle = {
    .name = "oracle",
    .family = "softmax",
    .reference = "Vaswani et al. 2017, in double precision (correctness reference)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS |
             ATTN_DETERMINISTIC | ATTN_REFERENCE | ATTN_PADDED,
    .masks = ATTN_MASK_ALL, /* every kind of mask.h */
    .forward = oracle_forward,
    .backward = oracle_backward,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
};
