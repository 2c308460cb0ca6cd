/* Backward of `local_linear` (docs/kernels/local_linear.md), reverse mode through the
 * per-row regression. Per query row i with g = dO_i, e_j = <g, v_j>,
 * u_j = k_j - k̄, c_j = <u_j, rho>, p_j its softmax weights:
 *
 *   o = sum_j p_j (1 + c_j) v_j  ->  dv_j += p_j (1 + c_j) g
 *   g_rho = sum_j p_j e_j u_j,   mu = (Sigma + lambda I)^-1 g_rho   (adjoint solve)
 *   ē = sum_j p_j e_j,   dSigma = -(mu rho^T + rho mu^T) / 2,   dk̄ = -ē rho - mu
 *   dp_j = e_j (1 + c_j) - ē c_j - <u_j, mu> (1 + c_j)
 *   dk_j += p_j [ (e_j - ē - <u_j, mu>) rho - (1 + c_j) mu ] + sc dS_j q
 *   dq   += mu + sc sum_j dS_j k_j,    dS_j = p_j (dp_j - Di),  Di = sum_j p_j dp_j
 *
 * (dp_j through k̄ and Sigma uses u_j instead of k_j: a constant shift of dp
 * vanishes in dS; Sigma's own dependence on k̄ vanishes since sum_j p_j u_j = 0.)
 *
 * Two phases without atomics, as flash's backward:
 *  Q phase, parallel over (b, h, query tile): the regression again (k̄, Sigma,
 *    Cholesky) with the adjoint right-hand side g_rho solved by the same
 *    factor (ll_regress_rows), then one pass over the key tiles for Di and
 *    dQ; the row statistics (k̄, rho, mu, ē, Di) go to the workspace.
 *  KV phase, parallel over (b, KV head, key tile): every query tile of the
 *    group's G heads in fixed order recomputes P, E, C and accumulates dK, dV.
 * Both are computed in a fixed order: bitwise identical for any thread count. */
#include "local_linear_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* For one tile (nb x nk, row stride ld): P (probabilities), E = dO V^T,
 * C = <u, rho>, U = <u, mu> in, dp per element. Leaves p (1 + c) in P,
 * p (e - ē - <u, mu>) in E, and in C: dS = p (dp - Di) with Di from the row
 * records st (di NULL, KV phase), or p dp with sum_j p dp added to di[r]
 * (di non-NULL, Q phase: Di is not known yet; dQ subtracts Di k̄ at the end). */
static void ll_bwd_elements(int64_t nb, int64_t nk, int64_t ld, float *P, float *E, float *C, const float *U,
                            const float *st, int64_t rf, int64_t D, float *di)
{
    for (int64_t r = 0; r < nb; r++) {
        float eb = st[r * rf + LL_EBAR(D)], Di = st[r * rf + LL_DI(D)], sum = 0;
        for (int64_t j = 0; j < nk; j++) {
            int64_t x = r * ld + j;
            float p = P[x], e = E[x], c = C[x], mu = U[x];
            float dp = e * (1 + c) - eb * c - mu * (1 + c);
            sum += p * dp;
            C[x] = di ? p * dp : p * (dp - Di);
            P[x] = p * (1 + c);
            E[x] = p * (e - eb - mu);
        }
        if (di)
            di[r] += sum;
    }
}

/* The tile of rows [i0, i0+nb) of head h and keys from j0: P, E = dO V^T,
 * C, U, then ll_bwd_elements (di as there). Returns its key count, 0 when
 * the mask empties it. */
static int64_t ll_bwd_tile(const attn_args *a, const ll_plan *pl, const attn_io *io, const attn_grads *g,
                           int64_t b, int64_t h, int64_t i0, int64_t nb, int64_t j0, const float *lse,
                           const float *st, float *P, float *E, float *C, float *U, float *di, ll_tally *t)
{
    int64_t D = a->D, hk = h / (a->H / a->H_kv), ld = pl->bc, rf = (int64_t)pl->row_floats;
    int64_t nk = ll_tile_probs(a, pl, io, b, h, i0, nb, j0, lse, P, t);
    if (nk == 0)
        return 0;
    const float *K = attn_at(&io->k, b, hk, j0);
    // E (nb, nk) = dO (nb, Dv) @ V^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)attn_dv(a), 1.0f,
                attn_at(&g->d_o, b, h, i0), (int)g->d_o.sn, attn_at(&io->v, b, hk, j0), (int)io->v.sn, 0.0f, E,
                (int)ld);
    ll_row_dots(K, io->k.sn, nk, st, rf, LL_RHO(D), nb, D, C, ld);
    ll_row_dots(K, io->k.sn, nk, st, rf, LL_MU(D), nb, D, U, ld);
    ll_bwd_elements(nb, nk, ld, P, E, C, U, st, rf, D, di);
    t->flops += 2.0 * (double)(nb * nk * (attn_dv(a) + 2 * D));
    t->bytes += 4.0 * (double)(nk * attn_dv(a));
    return nk;
}

/* Q phase of one task: the row statistics and dQ of rows [i0, i0+nb) of head h. */
static void ll_bwd_rows(const attn_args *a, const ll_plan *pl, const attn_io *io, const attn_grads *g, int64_t b,
                        int64_t h, int64_t i0, float *stats, float *ws, ll_tally *t)
{
    int64_t D = a->D, bc = pl->bc, rf = (int64_t)pl->row_floats, tile = pl->br * bc;
    int64_t nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br, hk = h / (a->H / a->H_kv);
    float *dq = ll_take(&ws, pl->br * D), *di = ll_take(&ws, pl->br);
    float *P = ll_take(&ws, tile), *E = ll_take(&ws, tile), *C = ll_take(&ws, tile), *U = ll_take(&ws, tile);
    const float *lse = io->lse + (b * a->H + h) * a->Nq + i0;
    float *st = stats + ((b * a->H + h) * a->Nq + i0) * rf;
    ll_regress_rows(a, pl, io, &g->d_o, b, h, i0, nb, lse, st, ws, t);
    for (int64_t r = 0; r < nb; r++)
        di[r] = 0;
    memset(dq, 0, sizeof(float) * (size_t)(nb * D));
    for (int64_t j0 = 0; j0 < a->Nk; j0 += bc) {
        int64_t nk = ll_bwd_tile(a, pl, io, g, b, h, i0, nb, j0, lse, st, P, E, C, U, di, t);
        if (nk == 0)
            continue;
        // dq (nb, D) += (P o dP) (nb, nk) @ K (nk, D)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)nk, 1.0f, C, (int)bc,
                    attn_at(&io->k, b, hk, j0), (int)io->k.sn, 1.0f, dq, (int)D);
        t->flops += 2.0 * (double)(nb * nk * D);
    }
    /* dq = mu + sc (sum_j p dp k_j - Di k̄) = mu + sc sum_j dS_j k_j */
    float sc = (float)attn_scale(a);
    for (int64_t r = 0; r < nb; r++) {
        float *out = attn_at(&g->dq, b, h, i0 + r), *re = st + r * rf;
        const double *kb = (const double *)re;
        re[LL_DI(D)] = di[r];
        for (int64_t d = 0; d < D; d++)
            out[d] = re[LL_MU(D) + d] + sc * (float)((double)dq[r * D + d] - di[r] * kb[d]);
    }
}

/* KV phase of one task: dK, dV of keys [j0, j0+nk) of KV head hk. */
static void ll_bwd_keys(const attn_args *a, const ll_plan *pl, const attn_io *io, const attn_grads *g, int64_t b,
                        int64_t hk, int64_t j0, const float *stats, float *ws, ll_tally *t)
{
    int64_t D = a->D, Dv = attn_dv(a), G = a->H / a->H_kv, bc = pl->bc, rf = (int64_t)pl->row_floats;
    int64_t nk = a->Nk - j0 < bc ? a->Nk - j0 : bc, tile = pl->br * bc;
    float *P = ll_take(&ws, tile), *E = ll_take(&ws, tile), *C = ll_take(&ws, tile), *U = ll_take(&ws, tile);
    float *dk = attn_at(&g->dk, b, hk, j0), *dv = attn_at(&g->dv, b, hk, j0);
    for (int64_t j = 0; j < nk; j++) {
        memset(dk + j * g->dk.sn, 0, sizeof(float) * (size_t)D);
        memset(dv + j * g->dv.sn, 0, sizeof(float) * (size_t)Dv);
    }
    float sc = (float)attn_scale(a);
    for (int64_t h = hk * G; h < hk * G + G; h++)
        for (int64_t i0 = 0; i0 < a->Nq; i0 += pl->br) {
            int64_t nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
            const float *st = stats + ((b * a->H + h) * a->Nq + i0) * rf;
            const float *lse = io->lse + (b * a->H + h) * a->Nq + i0;
            if (ll_bwd_tile(a, pl, io, g, b, h, i0, nb, j0, lse, st, P, E, C, U, NULL, t) == 0)
                continue;
            // dV (nk, Dv) += (P o (1 + C))^T dO;  dK (nk, D) += sc dS^T Q + A1^T Rho - (P o (1 + C))^T Mu
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)Dv, (int)nb, 1.0f, P, (int)bc,
                        attn_at(&g->d_o, b, h, i0), (int)g->d_o.sn, 1.0f, dv, (int)g->dv.sn);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)D, (int)nb, sc, C, (int)bc,
                        attn_at(&io->q, b, h, i0), (int)io->q.sn, 1.0f, dk, (int)g->dk.sn);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)D, (int)nb, 1.0f, E, (int)bc,
                        st + LL_RHO(D), (int)rf, 1.0f, dk, (int)g->dk.sn);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)D, (int)nb, -1.0f, P, (int)bc,
                        st + LL_MU(D), (int)rf, 1.0f, dk, (int)g->dk.sn);
            t->flops += 2.0 * (double)(nb * nk * (Dv + 3 * D));
        }
}

int attn_local_linear_backward(attn_ctx *ctx, const attn_io *io, const attn_grads *g)
{
    const attn_args *a = &ctx->args;
    if (!a->backward)
        return attn_backward_unplanned(ctx);
    ll_plan pl;
    int rc = ll_plan_make(&pl, a);
    if (rc)
        return rc;
    float *stats = (float *)ctx->workspace + pl.thread_floats * (size_t)a->threads;
    int64_t qtasks = a->B * a->H * pl.nqt, ktasks = a->B * a->H_kv * pl.nkt;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops below */
#pragma omp parallel num_threads(a->threads)
    {
        ll_tally t = {0, 0};
        float *ws = (float *)ctx->workspace + pl.thread_floats * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < qtasks; task++) {
            int64_t bh = task / pl.nqt;
            ll_bwd_rows(a, &pl, io, g, bh / a->H, bh % a->H, (task % pl.nqt) * pl.br, stats, ws, &t);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < ktasks; task++) {
            int64_t bh = task / pl.nkt;
            ll_bwd_keys(a, &pl, io, g, bh / a->H_kv, bh % a->H_kv, (task % pl.nkt) * pl.bc, stats, ws, &t);
        }
        ll_tally_flush(&t);
    }
    return 0;
}
