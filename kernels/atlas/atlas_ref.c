/* The double-precision reference of `atlas` (docs/kernels/atlas.md): the
 * Omega rule written token by token with plain loops, never the chunk's
 * closed form:
 *   at a chunk start: W0 = W
 *   G = (1 / n_t) sum_{i = lo(t)}^{t} 2 gamma_i (W0 p_i - v_i) p_i^T,  n_t = t - lo(t) + 1
 *   S = theta S + G;   W = alpha W - eta S (opt=muon: - eta NS5(S));   y = W phi^(q^)
 * (x^ = x / |x|: q and k L2-normalised; p_i = phi^(k^_i), the features normalised too)
 * W, S in R^{Dv x F} start at zero and restart at every document start.
 * Each query head h runs its own copy on KV head h / G. */
#include "atlas_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *W, *S, *W0, *Gr, *phi, *E, *xn;
    double *Y, *ns; /* opt=muon: NS5(S) and its scratch */
} ref_bufs;

/* Gr = the window's gradient at W0 for step t. */
static void window_gradient(const attn_args *a, const attn_io64 *io, const atlas_plan *pl, int64_t b, int64_t hk,
                            int64_t t, ref_bufs *r)
{
    int64_t F = pl->F, Dv = pl->Dv;
    memset(r->Gr, 0, sizeof(double) * (size_t)(F * Dv));
    int64_t lo = atlas_window_lo(a, t, pl->c);
    for (int64_t i = lo; i <= t; i++) {
        atlas_phi64(pl, attn_at64(&io->k, b, hk, i), r->xn, r->phi);
        const double *v = attn_at64(&io->v, b, hk, i);
        double w = 2 * atlas_sigmoid(attn_at64(&io->router, b, hk, i)[1]) / (double)(t - lo + 1);
        for (int64_t e = 0; e < Dv; e++) {
            r->E[e] = -v[e];
            for (int64_t f = 0; f < F; f++)
                r->E[e] += r->W0[e * F + f] * r->phi[f];
        }
        for (int64_t e = 0; e < Dv; e++)
            for (int64_t f = 0; f < F; f++)
                r->Gr[e * F + f] += w * r->E[e] * r->phi[f];
    }
}

static void ref_head(const attn_args *a, const attn_io64 *io, const atlas_plan *pl, int64_t b, int64_t h,
                     ref_bufs *r)
{
    int64_t F = pl->F, Dv = pl->Dv, hk = h / pl->G, FDv = F * Dv, chunk_end = 0;
    for (int64_t t = 0; t < a->Nk; t++) {
        mem_ref_boundaries(a, t, pl->C, &chunk_end, r->W, (size_t)FDv, NULL, r->W0); /* W, S adjacent */
        window_gradient(a, io, pl, b, hk, t, r);
        double eta = attn_at64(&io->beta, b, hk, t)[0], alpha = exp(attn_at64(&io->gate, b, hk, t)[0]);
        double theta = atlas_sigmoid(attn_at64(&io->router, b, hk, t)[0]);
        for (int64_t x = 0; x < FDv; x++)
            r->S[x] = theta * r->S[x] + r->Gr[x];
        const double *step = r->S;
        if (pl->muon) {
            atlas_ns5_64(Dv, F, r->S, r->Y, r->ns);
            step = r->Y;
        }
        for (int64_t x = 0; x < FDv; x++)
            r->W[x] = alpha * r->W[x] - eta * step[x];
        atlas_phi64(pl, attn_at64(&io->q, b, h, t), r->xn, r->phi);
        double *o = attn_at64(&io->o, b, h, t);
        for (int64_t e = 0; e < Dv; e++) {
            o[e] = 0;
            for (int64_t f = 0; f < F; f++)
                o[e] += r->W[e * F + f] * r->phi[f];
        }
    }
}

// q (B,H,N,D), k (B,H_kv,N,D), v (B,H_kv,N,Dv), beta, gate (B,H_kv,N,1), router (B,H_kv,N,2) -> o (B,H,N,Dv)
int atlas_ref_forward(const attn_args *a, const attn_io64 *io)
{
    attn_args plain = *a;
    plain.backward = 0;
    atlas_plan pl;
    int rc = atlas_plan_make(&pl, &plain);
    if (rc)
        return rc;
    int64_t F = pl.F, FDv = F * pl.Dv;
    double *buf = malloc(sizeof(double) * (size_t)(8 * FDv + F + pl.Dv + pl.D + 3 * pl.Dv * pl.Dv));
    if (!buf)
        return attn_fail(ATTN_ENOMEM, "atlas reference: cannot allocate the memory state");
    double *x = buf + 4 * FDv + F + pl.Dv + pl.D;
    ref_bufs r = {buf, buf + FDv, buf + 2 * FDv, buf + 3 * FDv, buf + 4 * FDv, buf + 4 * FDv + F, buf + 4 * FDv + F + pl.Dv,
                  x, x + FDv};
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            ref_head(a, io, &pl, b, h, &r);
    free(buf);
    return 0;
}
