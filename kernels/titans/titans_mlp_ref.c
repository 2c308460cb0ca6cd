/* The double-precision reference of `titans` with memory=mlp
 * (docs/kernels/titans.md): the online training of M(x) = W2 silu(W1 x)
 * written token by token with plain loops:
 *   at a chunk start: W1_0 = W1, W2_0 = W2
 *   z = W1_0 k^,  E = W2_0 silu(z) - v                       (the loss |M(k^) - v|^2 at the chunk's memory)
 *   G2 = E silu(z)^T,  G1 = ((W2_0^T E) (.) silu'(z)) k^^T   (the gradient of half the loss)
 *   S = eta S - beta G,  theta = a theta + S                 (theta = [W1; W2], beta = 2 theta_paper)
 *   y = W2 silu(W1 q^)                                       (read=before: before this token's update)
 * A sequence starts from W1 = [I; -I; I; ...], W2 = 0, S = 0. Each query
 * head h runs its own copy on KV head h / G. */
#include "titans_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *th, *S, *th0, *init; /* P each; th, S adjacent */
    double *kh, *qh, *z, *a1, *E, *p; /* Dk, Dk, Hd, Hd, Dv, Hd */
} ref_bufs;

static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }
static double silu(double z) { return z * sigmoid(z); }
static double silu_d1(double z) { return sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))); }

/* z = W1 x, a1 = silu(z), y = W2 a1 for the parameters th. */
static void mlp_apply(const titans_plan *pl, const double *th, const double *x, double *z, double *a1, double *y)
{
    const double *W2 = th + pl->Hd * pl->Dk;
    for (int64_t i = 0; i < pl->Hd; i++) {
        z[i] = 0;
        for (int64_t d = 0; d < pl->Dk; d++)
            z[i] += th[i * pl->Dk + d] * x[d];
        a1[i] = silu(z[i]);
    }
    for (int64_t e = 0; e < pl->Dv; e++) {
        y[e] = 0;
        for (int64_t i = 0; i < pl->Hd; i++)
            y[e] += W2[e * pl->Hd + i] * a1[i];
    }
}

/* One token: the gradient at th0, the momentum and the decayed update. */
static void ref_step(const titans_plan *pl, ref_bufs *r, const double *v, double beta, double a, double eta)
{
    int64_t Dk = pl->Dk, Dv = pl->Dv, Hd = pl->Hd, H1 = Hd * Dk;
    const double *W2 = r->th0 + H1;
    mlp_apply(pl, r->th0, r->kh, r->z, r->a1, r->E);
    for (int64_t e = 0; e < Dv; e++)
        r->E[e] -= v[e];
    for (int64_t i = 0; i < Hd; i++) {
        r->p[i] = 0;
        for (int64_t e = 0; e < Dv; e++)
            r->p[i] += W2[e * Hd + i] * r->E[e];
    }
    for (int64_t i = 0; i < Hd; i++)
        for (int64_t d = 0; d < Dk; d++)
            r->S[i * Dk + d] = eta * r->S[i * Dk + d] - beta * r->p[i] * silu_d1(r->z[i]) * r->kh[d];
    for (int64_t e = 0; e < Dv; e++)
        for (int64_t i = 0; i < Hd; i++)
            r->S[H1 + e * Hd + i] = eta * r->S[H1 + e * Hd + i] - beta * r->E[e] * r->a1[i];
    for (int64_t x = 0; x < pl->P; x++)
        r->th[x] = a * r->th[x] + r->S[x];
}

static void ref_head(const attn_args *a, const attn_io64 *io, const titans_plan *pl, int64_t b, int64_t h,
                     ref_bufs *r)
{
    int64_t hk = h / pl->G, chunk_end = 0;
    for (int64_t t = 0; t < a->Nk; t++) {
        mem_ref_boundaries(a, t, pl->C, &chunk_end, r->th, (size_t)pl->P, r->init, r->th0);
        titans_normalise64(r->kh, attn_at64(&io->k, b, hk, t), pl->Dk);
        titans_normalise64(r->qh, attn_at64(&io->q, b, h, t), pl->Dk);
        double *o = attn_at64(&io->o, b, h, t);
        if (pl->read_before)
            mlp_apply(pl, r->th, r->qh, r->z, r->a1, o);
        ref_step(pl, r, attn_at64(&io->v, b, hk, t), attn_at64(&io->beta, b, hk, t)[0],
                 exp(attn_at64(&io->gate, b, hk, t)[0]), sigmoid(attn_at64(&io->router, b, hk, t)[0]));
        if (!pl->read_before)
            mlp_apply(pl, r->th, r->qh, r->z, r->a1, o);
    }
}

int titans_mlp_ref_forward(const attn_args *a, const attn_io64 *io, const titans_plan *pl)
{
    int64_t P = pl->P, Dk = pl->Dk, Hd = pl->Hd;
    double *buf = calloc((size_t)(4 * P + 2 * Dk + 3 * Hd + pl->Dv), sizeof(double));
    if (!buf)
        return attn_fail(ATTN_ENOMEM, "titans reference: cannot allocate the MLP memory's state");
    ref_bufs r = {buf, buf + P, buf + 2 * P, buf + 3 * P, buf + 4 * P, buf + 4 * P + Dk, buf + 4 * P + 2 * Dk,
                  buf + 4 * P + 2 * Dk + Hd, buf + 4 * P + 2 * Dk + 2 * Hd, buf + 4 * P + 2 * Dk + 2 * Hd + pl->Dv};
    for (int64_t i = 0; i < Hd; i++) /* W1 = [I; -I; I; ...] */
        r.init[i * Dk + i % Dk] = (i / Dk) % 2 ? -1.0 : 1.0;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            ref_head(a, io, pl, b, h, &r);
    free(buf);
    return 0;
}
