/* The double-precision reference of `titans` (docs/kernels/titans.md): the
 * online training of the memory written token by token, as the paper's
 * recurrence (Behrouz, Zhong, Mirrokni 2024, eqs. 10, 13, 14 with a linear
 * memory), never the chunk's closed form:
 *   at a chunk start: W0 = W
 *   E     = W0 k^ - v                     (the loss |W k^ - v|^2 at the chunk's memory)
 *   Sigma = eta Sigma - beta E k^^T        (momentum of the surprise; beta = 2 theta)
 *   W     = a W + Sigma                    (a = 1 - alpha: forgetting)
 *   y     = W q^                           (read=before: W before this token's update)
 * W, Sigma in R^{Dv x Dk} start at zero and restart at every document
 * start. Each query head h runs its own copy on KV head h / G. */
#include "titans_internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double *W, *Sig, *W0, *kh, *qh, *E;
} ref_bufs;

void titans_normalise64(double *out, const double *x, int64_t D)
{
    double n2 = 0;
    for (int64_t d = 0; d < D; d++)
        n2 += x[d] * x[d];
    for (int64_t d = 0; d < D; d++)
        out[d] = x[d] / sqrt(n2 + TITANS_NORM_EPS);
}

static void read_memory(double *o, const double *W, const double *qh, int64_t Dk, int64_t Dv)
{
    for (int64_t i = 0; i < Dv; i++) {
        o[i] = 0;
        for (int64_t d = 0; d < Dk; d++)
            o[i] += W[i * Dk + d] * qh[d];
    }
}

/* One token: the gradient step with momentum and decay on W, Sigma. */
static void ref_step(ref_bufs *r, const double *v, double beta, double a, double eta, int64_t Dk, int64_t Dv)
{
    for (int64_t i = 0; i < Dv; i++) {
        r->E[i] = -v[i];
        for (int64_t d = 0; d < Dk; d++)
            r->E[i] += r->W0[i * Dk + d] * r->kh[d];
    }
    for (int64_t i = 0; i < Dv; i++)
        for (int64_t d = 0; d < Dk; d++) {
            double *s = &r->Sig[i * Dk + d];
            *s = eta * *s - beta * r->E[i] * r->kh[d];
            r->W[i * Dk + d] = a * r->W[i * Dk + d] + *s;
        }
}

static void ref_head(const attn_args *a, const attn_io64 *io, const titans_plan *pl, int64_t b, int64_t h,
                     ref_bufs *r)
{
    int64_t Dk = pl->Dk, Dv = pl->Dv, hk = h / pl->G, chunk_end = 0;
    for (int64_t t = 0; t < a->Nk; t++) {
        mem_ref_boundaries(a, t, pl->C, &chunk_end, r->W, (size_t)(Dk * Dv), NULL, r->W0); /* W, Sig adjacent */
        titans_normalise64(r->kh, attn_at64(&io->k, b, hk, t), Dk);
        titans_normalise64(r->qh, attn_at64(&io->q, b, h, t), Dk);
        double *o = attn_at64(&io->o, b, h, t);
        if (pl->read_before)
            read_memory(o, r->W, r->qh, Dk, Dv);
        double z = attn_at64(&io->router, b, hk, t)[0];
        double eta = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
        ref_step(r, attn_at64(&io->v, b, hk, t), attn_at64(&io->beta, b, hk, t)[0],
                 exp(attn_at64(&io->gate, b, hk, t)[0]), eta, Dk, Dv);
        if (!pl->read_before)
            read_memory(o, r->W, r->qh, Dk, Dv);
    }
}

// q (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), beta, gate, router (B,H_kv,N,1) -> o (B,H,N,Dv)
int titans_ref_forward(const attn_args *a, const attn_io64 *io)
{
    attn_args plain = *a;
    plain.backward = 0;
    titans_plan pl;
    int rc = titans_plan_make(&pl, &plain);
    if (rc)
        return rc;
    if (pl.mlp)
        return titans_mlp_ref_forward(a, io, &pl);
    int64_t Dk = pl.Dk, Dv = pl.Dv, DkDv = Dk * Dv;
    double *buf = malloc(sizeof(double) * (size_t)(3 * DkDv + 2 * Dk + Dv));
    if (!buf)
        return attn_fail(ATTN_ENOMEM, "titans reference: cannot allocate the memory state");
    ref_bufs r = {buf, buf + DkDv, buf + 2 * DkDv, buf + 3 * DkDv, buf + 3 * DkDv + Dk, buf + 3 * DkDv + 2 * Dk};
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            ref_head(a, io, &pl, b, h, &r);
    free(buf);
    return 0;
}
