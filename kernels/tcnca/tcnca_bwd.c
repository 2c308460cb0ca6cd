/* `tcnca` backward (docs/kernels/tcnca.md). Per task (b, h): the TCN stacks
 * of Q and K are recomputed keeping every layer's input; per chunk P is
 * recomputed from Q', K', then
 *
 *   dV_c = P^T dO_c,  dP = dO_c V_c^T,  dS = P (.) (dP - rowsum(P (.) dP)),
 *   dQ'_c = sc dS K'_c,  dK'_c = sc dS^T Q'_c
 *
 * and each conv layer from the last: dw_{l,tau} += sum_t dY_t (.) X_{t-tau dil+s}
 * (the correlation of the layer's input with its output gradient) and
 * dX_u = sum_tau w_{l,tau} (.) dY_{u+tau dil-s} (the conv with the flipped
 * kernel), for the Q and the K stack, which share w. dw is summed over b in
 * order from per-(b, h) partials: deterministic. */
#include "tcnca.h"

#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* Gradient of layer l: dx from dy (overwritten), dw (the layer's taps) accumulated. */
static void tcnca_conv_bwd(const tcnca_plan *pl, int64_t l, int64_t N, int64_t D, const float *x, const float *w,
                           const float *dy, float *dx, float *dw)
{
    int64_t dil = attn_tcnca_dilation(pl, l), s = attn_tcnca_shift(pl, l);
    memset(dx, 0, sizeof(float) * (size_t)(N * D));
    for (int64_t tau = 0; tau < pl->taps; tau++) {
        const float *wt = w + (l * pl->taps + tau) * D;
        float *dwt = dw + (l * pl->taps + tau) * D;
        int64_t off = s - tau * dil; /* y_t reads x_{t + off} */
        int64_t t0 = off < 0 ? -off : 0, t1 = N - (off > 0 ? off : 0);
        for (int64_t t = t0; t < t1; t++) {
            const float *xs = x + (t + off) * D, *g = dy + t * D;
            float *gx = dx + (t + off) * D;
            for (int64_t d = 0; d < D; d++) {
                dwt[d] += g[d] * xs[d];
                gx[d] += wt[d] * g[d];
            }
        }
    }
}

/* Fills xs[0..layers] (N x D each) with the stack's layer inputs and output. */
static void tcnca_stack_all(const tcnca_plan *pl, const attn_tensor *t, int64_t b, int64_t h, const float *w,
                            float *xs, size_t nd)
{
    int64_t N = t->N, D = t->D;
    for (int64_t i = 0; i < N; i++)
        memcpy(xs + i * D, attn_at(t, b, h, i), sizeof(float) * (size_t)D);
    for (int64_t l = 0; l < pl->layers; l++)
        attn_tcnca_conv(pl, l, N, D, xs + (size_t)l * nd, w, xs + (size_t)(l + 1) * nd);
}

/* Back through the stack from dY (the gradient of its output, in g0) into
 * the rows of dt (b, h); g1 is the other ping-pong buffer. */
static void tcnca_stack_bwd(const tcnca_plan *pl, const float *xs, size_t nd, const float *w, float *g0, float *g1,
                            float *dw, const attn_tensor *dt, int64_t b, int64_t h)
{
    int64_t N = dt->N, D = dt->D;
    for (int64_t l = pl->layers - 1; l >= 0; l--) {
        tcnca_conv_bwd(pl, l, N, D, xs + (size_t)l * nd, w, g0, g1, dw);
        float *tmp = g0;
        g0 = g1, g1 = tmp;
    }
    for (int64_t i = 0; i < N; i++)
        memcpy(attn_at(dt, b, h, i), g0 + i * D, sizeof(float) * (size_t)D);
}

static void tcnca_head_backward(const tcnca_plan *pl, const attn_args *a, const attn_io *io, const attn_grads *g,
                                int64_t b, int64_t h, float *scr, float *dw)
{
    int64_t N = a->Nq, D = a->D, Dv = attn_dv(a), L = pl->layers;
    size_t nd = TCNCA_ROUND16((size_t)(N * D)), cc = TCNCA_ROUND16((size_t)(pl->c * pl->c));
    float *Qs = scr, *Ks = Qs + (size_t)(L + 1) * nd, *gq = Ks + (size_t)(L + 1) * nd, *gk = gq + 2 * nd;
    float *P = gk + 2 * nd, *dP = P + cc, *lse = dP + cc;
    const float *w = io->w.data ? attn_at(&io->w, 0, h, 0) : NULL; /* layers=0 reads none */
    tcnca_stack_all(pl, &io->q, b, h, w, Qs, nd);
    tcnca_stack_all(pl, &io->k, b, h, w, Ks, nd);
    const float *Qp = Qs + (size_t)L * nd, *Kp = Ks + (size_t)L * nd;
    for (int64_t m = 0; m < N; m += pl->c) {
        int64_t nc = N - m < pl->c ? N - m : pl->c;
        const float *dO = attn_at(&g->d_o, b, h, m), *V = attn_at(&io->v, b, h, m);
        int ldo = (int)g->d_o.sn, ldv = (int)io->v.sn;
        attn_tcnca_chunk_probs(pl, nc, D, Qp + m * D, Kp + m * D, P, lse);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)Dv, (int)nc, 1.0f, P, (int)nc, dO, ldo,
                    0.0f, attn_at(&g->dv, b, h, m), (int)g->dv.sn);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nc, (int)nc, (int)Dv, 1.0f, dO, ldo, V, ldv,
                    0.0f, dP, (int)nc);
        attn_softmax_rows_bwd(P, nc, dP, nc, nc, nc); /* masked entries have P = 0: dS = 0 */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nc, (int)D, (int)nc, (float)pl->sc, dP, (int)nc,
                    Kp + m * D, (int)D, 0.0f, gq + m * D, (int)D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)D, (int)nc, (float)pl->sc, dP, (int)nc,
                    Qp + m * D, (int)D, 0.0f, gk + m * D, (int)D);
    }
    memset(dw, 0, sizeof(float) * (size_t)pl->W);
    tcnca_stack_bwd(pl, Qs, nd, w, gq, gq + nd, dw, &g->dq, b, h);
    tcnca_stack_bwd(pl, Ks, nd, w, gk, gk + nd, dw, &g->dk, b, h);
}

int attn_tcnca_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    tcnca_plan pl;
    int rc = attn_tcnca_plan(&pl, a);
    if (rc)
        return rc;
    if (pl.W > 0 && (!io->w.data || io->w.D < pl.W || !g->dw.data))
        return attn_fail(ATTN_EINVAL, "tcnca backward: expected io.w and g.dw with %lld weights per head",
                         (long long)pl.W);
    int64_t tasks = a->B * a->H;
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++)
        tcnca_head_backward(&pl, a, io, g, t / a->H, t % a->H, attn_tcnca_scratch(ctx, &pl, omp_get_thread_num()),
                            attn_tcnca_dw_partial(ctx, &pl, t / a->H, t % a->H));
    attn_sum_dw_partials(a, attn_tcnca_dw_partial(ctx, &pl, 0, 0), attn_dw_stride(pl.W), pl.W, pl.W, &g->dw);
    double N = (double)a->Nq, D = (double)a->D, Dv = (double)attn_dv(a), nc_sq = attn_tcnca_pairs(&pl, a->Nq, 1);
    /* recomputed TCN and scores, then dV, dP, dQ', dK' and the TCN's dX and dw */
    double tcn = 4 * N * (double)(pl.taps * pl.layers) * D;
    attn_counter_add(ATTN_CNT_FLOPS, (long long)((double)tasks * (3 * tcn + (4 * D + 4 * Dv) * nc_sq)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)((double)tasks * nc_sq));
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(sizeof(float) * (double)tasks * (N * (2 * D + 2 * Dv) + (double)pl.W)));
    return 0;
}
