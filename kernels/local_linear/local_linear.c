/* `local_linear`: Local Linear Attention (Zuo et al., "Local Linear Attention:
 * An Optimal Interpolation of Linear and Softmax Attention for Test-Time
 * Regression", 2025; docs/kernels/local_linear.md), explicit form. Per query i a
 * softmax-weighted ridge regression of the values on the keys, centred at
 * the query, read at its intercept:
 *
 *   min_{a,B} sum_j p_ij |v_j - a - B (k_j - q_i)|^2 + lambda |B|^2
 *   o_i = a = v̄_i + sum_j p_ij <k_j - k̄_i, rho_i> v_j,
 *   rho_i = (Sigma_i + lambda I)^-1 (q_i - k̄_i)
 *
 * (notation in local_linear_internal.h). lambda -> inf gives softmax
 * attention; exactly linear data v = a + B k is reproduced at the query.
 * The regression uses raw q, k; only the weights use the scale sc.
 *
 * Forward per task (b, h, tile of br query rows), three passes over the key
 * tiles, P and Sigma never leave the thread's scratch:
 *   1. online max / sum of the scores -> lse;
 *   2. P = exp(S - lse); per row, in double: sum_j p_ij k_j (-> k̄_i) and
 *      Sigma's shifted second moment M2_i = sum_j p_ij z_j z_j^T with
 *      z_j = k_j - q_i (dsyrk on the rows sqrt(p_ij) z_j). Sigma_i = M2_i -
 *      z̄ z̄^T with z̄ = k̄_i - q_i: the shift by q_i (a known trap: never
 *      form Sigma around the origin). Cholesky of Sigma + lambda I (D^3/3
 *      per row), rho_i;
 *   3. c_ij = <k_j - k̄_i, rho_i> (row corrections), O += (P o (1 + C)) V (sgemm).
 * Precision choice: Sigma and k̄ in double. Rows with fewer than D + 1 keys
 * (causal, window, short documents) have a singular Sigma, and rho is
 * ~|q - k̄| / lambda along its null space; that component cancels in c_ij
 * only if Sigma's null space and k̄'s place in the keys' affine hull are
 * kept far below fp32 rounding. With fp32 ssyrk and sgemm for k̄ the error
 * against the double reference reached 1.3e-4 (D = 64, window 13 keys);
 * in double it stays below 1e-5. The dsyrk costs about twice an ssyrk.
 * Masks FULL, CAUSAL, WINDOW, DOCUMENT: one key range per row; empty tiles
 * are skipped. A fully masked row gives O = 0, lse = -inf.
 *
 * GQA: query head h reads KV head h / G; tasks are per query head (no
 * packing of the group's heads as flash does, so each head rereads K, V).
 *
 * Tasks are independent and computed in a fixed order: results are bitwise
 * identical for any thread count. */
#include "local_linear.h"

#include "kernels/core/counters.h"
#include "local_linear_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void ll_tally_flush(const ll_tally *t)
{
    attn_counter_add(ATTN_CNT_FLOPS, (long long)t->flops);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t->bytes);
}

float *ll_take(float **cursor, int64_t n)
{
    float *p = *cursor;
    *cursor += (n + 15) / 16 * 16;
    return p;
}

/* Scratch of ll_regress_rows: P, E, the compacted z rows, M2 per row, and
 * in double the row sums (sum p k, sum p e k, sum p, sum p e) and the solve. */
size_t ll_regress_floats(const attn_args *a, const ll_plan *pl)
{
    int64_t D = a->D, br = pl->br;
    int64_t n = 2 * br * pl->bc + 2 * (pl->bc * D + br * D * D + 2 * br * D + 2 * br + D * D + 2 * D);
    return (size_t)(n + 10 * 16);
}

/* lambda > 0 (an open interval): ll_plan_make checks it. */
static const opt_def ll_params[] = {
    {.name = "lambda", .type = OPT_DOUBLE, .def = 1e-2, .lo = 0, .hi = 1e300, .help = "ridge, > 0"},
    {.name = "br", .type = OPT_INT, .def = LL_DEFAULT_BR, .lo = 1, .hi = 256, .help = "query rows per tile"},
    {.name = "bc", .type = OPT_INT, .def = LL_DEFAULT_BC, .lo = 1, .hi = 1024, .help = "keys per tile"},
    {0},
};

int ll_plan_make(ll_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "local_linear", ll_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->lambda = 1e-2;
    for (int i = 0; i < a->params.n; i++)
        if (strcmp(a->params.key[i], "lambda") == 0) {
            char *end;
            pl->lambda = strtod(a->params.val[i], &end);
            if (*end != '\0' || end == a->params.val[i] || !(pl->lambda > 0) || !isfinite(pl->lambda))
                return attn_fail(ATTN_EINVAL, "local_linear param lambda: expected a finite number > 0, found '%s'",
                                 a->params.val[i]);
        }
    pl->br = attn_param_int(a, ll_params, "br", &rc);
    pl->bc = attn_param_int(a, ll_params, "bc", &rc);
    if (rc)
        return rc;
    pl->nqt = (a->Nq + pl->br - 1) / pl->br;
    pl->nkt = (a->Nk + pl->bc - 1) / pl->bc;
    /* forward: lse, the row records, the regression scratch; backward
     * (local_linear_bwd.c): Di, the dQ accumulator, four score-shaped tiles
     * and the regression scratch (its row records live in the stats) */
    int64_t D = a->D, br = pl->br, tile = br * pl->bc;
    size_t fwd = (size_t)(2 * 16 + br + br * LL_ROW_FLOATS(D)) + ll_regress_floats(a, pl);
    size_t bwd = (size_t)(6 * 16 + 2 * br + br * D + 4 * tile) + ll_regress_floats(a, pl);
    pl->thread_floats = a->backward && bwd > fwd ? bwd : fwd;
    pl->thread_floats = (pl->thread_floats + 15) / 16 * 16;
    pl->row_floats = (size_t)LL_ROW_FLOATS(D);
    return 0;
}

int ll_tile_empty(const attn_args *a, int64_t b, int64_t h, int64_t i0, int64_t nb, int64_t j0, int64_t nk)
{
    int64_t pi = a->q_off + i0, pj = a->k_off + j0;
    return attn_mask_tile(&a->mask, b, h, pi, pi + nb, pj, pj + nk) == ATTN_TILE_EMPTY;
}

void ll_scores(const attn_args *a, const attn_io *io, int64_t b, int64_t h, int64_t i0, int64_t nb, int64_t j0,
               int64_t nk, float *S, int64_t ld, ll_tally *t)
{
    int64_t G = a->H / a->H_kv, pi0 = a->q_off + i0, pj0 = a->k_off + j0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)a->D, (float)attn_scale(a),
                attn_at(&io->q, b, h, i0), (int)io->q.sn, attn_at(&io->k, b, h / G, j0), (int)io->k.sn, 0.0f, S,
                (int)ld);
    t->flops += 2.0 * (double)(nb * nk * a->D);
    if (attn_mask_tile(&a->mask, b, h, pi0, pi0 + nb, pj0, pj0 + nk) == ATTN_TILE_FULL)
        return;
    for (int64_t r = 0; r < nb; r++) {
        int64_t lo, hi;
        attn_mask_row_range(&a->mask, pi0 + r, pj0, pj0 + nk, &lo, &hi);
        for (int64_t j = 0; j < nk; j++)
            if (pj0 + j < lo || pj0 + j >= hi)
                S[r * ld + j] = -INFINITY;
    }
}

void ll_probs(float *S, int64_t nb, int64_t nk, int64_t ld, const float *lse)
{
    for (int64_t r = 0; r < nb; r++)
        for (int64_t j = 0; j < nk; j++)
            S[r * ld + j] = lse[r] == -INFINITY ? 0.0f : expf(S[r * ld + j] - lse[r]);
}

int64_t ll_tile_probs(const attn_args *a, const ll_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t i0,
                      int64_t nb, int64_t j0, const float *lse, float *P, ll_tally *t)
{
    int64_t nk = a->Nk - j0 < pl->bc ? a->Nk - j0 : pl->bc;
    if (ll_tile_empty(a, b, h, i0, nb, j0, nk))
        return 0;
    ll_scores(a, io, b, h, i0, nb, j0, nk, P, pl->bc, t);
    ll_probs(P, nb, nk, pl->bc, lse);
    t->bytes += 4.0 * (double)(nk * a->D);
    return nk;
}

void ll_lse_rows(const attn_args *a, const ll_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t i0,
                 int64_t nb, float *S, float *lse, ll_tally *t)
{
    float m[256], l[256]; /* br <= 256 (ll_plan_make) */
    for (int64_t r = 0; r < nb; r++)
        m[r] = -INFINITY, l[r] = 0;
    for (int64_t j0 = 0; j0 < a->Nk; j0 += pl->bc) {
        int64_t nk = a->Nk - j0 < pl->bc ? a->Nk - j0 : pl->bc;
        if (ll_tile_empty(a, b, h, i0, nb, j0, nk))
            continue;
        ll_scores(a, io, b, h, i0, nb, j0, nk, S, pl->bc, t);
        for (int64_t r = 0; r < nb; r++) {
            const float *s = S + r * pl->bc;
            float mn = m[r];
            for (int64_t j = 0; j < nk; j++)
                mn = s[j] > mn ? s[j] : mn;
            if (mn == -INFINITY)
                continue;
            float sum = 0;
            for (int64_t j = 0; j < nk; j++)
                sum += expf(s[j] - mn);
            l[r] = l[r] * expf(m[r] - mn) + sum; /* m = -inf: exp(-inf) = 0 */
            m[r] = mn;
        }
    }
    for (int64_t r = 0; r < nb; r++)
        lse[r] = l[r] > 0 ? m[r] + logf(l[r]) : -INFINITY;
}

void ll_row_dots(const float *K, int64_t ldk, int64_t nk, const float *rec, int64_t rf, int64_t off, int64_t nb,
                 int64_t D, float *out, int64_t ld)
{
    for (int64_t r = 0; r < nb; r++) {
        const double *kb = (const double *)(rec + r * rf);
        const float *x = rec + r * rf + off;
        for (int64_t j = 0; j < nk; j++) {
            const float *k = K + j * ldk;
            double c = 0;
            for (int64_t d = 0; d < D; d++)
                c += ((double)k[d] - kb[d]) * x[d];
            out[r * ld + j] = (float)c;
        }
    }
}

void ll_chol_solve(double *A, int64_t n, double lambda, double *x, double *x2)
{
    /* A = U^T U, U upper (row-major, in place) */
    for (int64_t i = 0; i < n; i++) {
        A[i * n + i] += lambda;
        for (int64_t k = 0; k < i; k++)
            A[i * n + i] -= A[k * n + i] * A[k * n + i];
        double piv = A[i * n + i] > lambda * 1e-12 ? A[i * n + i] : lambda * 1e-12;
        A[i * n + i] = sqrt(piv);
        for (int64_t j = i + 1; j < n; j++) {
            double s = A[i * n + j];
            for (int64_t k = 0; k < i; k++)
                s -= A[k * n + i] * A[k * n + j];
            A[i * n + j] = s / A[i * n + i];
        }
    }
    double *rhs[2] = {x, x2};
    for (int t = 0; t < 2 && rhs[t]; t++) {
        double *y = rhs[t];
        for (int64_t i = 0; i < n; i++) { /* U^T y = r */
            for (int64_t k = 0; k < i; k++)
                y[i] -= A[k * n + i] * y[k];
            y[i] /= A[i * n + i];
        }
        for (int64_t i = n - 1; i >= 0; i--) { /* U x = y */
            for (int64_t k = i + 1; k < n; k++)
                y[i] -= A[i * n + k] * y[k];
            y[i] /= A[i * n + i];
        }
    }
}

/* M2_r += sum_j p_rj (k_j - q_r)(k_j - q_r)^T over the keys of one tile with
 * p > 0 (upper triangle), in double by dsyrk on the rows sqrt(p_rj) (k_j - q_r). */
static void ll_second_moment(const float *K, int64_t ldk, int64_t nk, const float *q, const float *p, int64_t D,
                             double *Z, double *M2, ll_tally *t)
{
    int64_t n = 0;
    for (int64_t j = 0; j < nk; j++) {
        if (p[j] == 0.0f)
            continue;
        double w = sqrt((double)p[j]);
        for (int64_t d = 0; d < D; d++)
            Z[n * D + d] = w * ((double)K[j * ldk + d] - q[d]);
        n++;
    }
    if (n == 0)
        return;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)D, (int)n, 1.0, Z, (int)D, 1.0, M2, (int)D);
    t->flops += (double)(n * D * (D + 1));
}

/* Row sums of one tile in double: sk_r += sum_j p_rj k_j, ps_r += sum_j p_rj,
 * and with PE (= P o E) non-NULL sg_r += sum_j pe_rj k_j, se_r += sum_j pe_rj.
 * Double, because k̄ must lie in the affine hull of the keys far below fp32
 * rounding: rho is ~1/lambda along directions where Sigma vanishes, and c_ij
 * = <k_j - k̄, rho> turns any component of k̄ off the hull into output error. */
static void ll_row_sums(const float *K, int64_t ldk, int64_t nk, int64_t nb, const float *P, const float *PE,
                        int64_t ld, int64_t D, double *sk, double *ps, double *sg, double *se)
{
    for (int64_t r = 0; r < nb; r++)
        for (int64_t j = 0; j < nk; j++) {
            double p = P[r * ld + j], pe = PE ? PE[r * ld + j] : 0;
            if (p == 0)
                continue;
            const float *k = K + j * ldk;
            ps[r] += p;
            for (int64_t d = 0; d < D; d++)
                sk[r * D + d] += p * k[d];
            if (!PE)
                continue;
            se[r] += pe;
            for (int64_t d = 0; d < D; d++)
                sg[r * D + d] += pe * k[d];
        }
}

void ll_regress_rows(const attn_args *a, const ll_plan *pl, const attn_io *io, const attn_tensor *g, int64_t b,
                     int64_t h, int64_t i0, int64_t nb, const float *lse, float *rec, float *ws, ll_tally *t)
{
    int64_t D = a->D, G = a->H / a->H_kv, bc = pl->bc, rf = (int64_t)pl->row_floats;
    float *P = ll_take(&ws, pl->br * bc), *E = ll_take(&ws, pl->br * bc);
    double *Z = (double *)ll_take(&ws, 2 * bc * D), *M2 = (double *)ll_take(&ws, 2 * pl->br * D * D);
    double *sk = (double *)ll_take(&ws, 2 * pl->br * D), *sg = (double *)ll_take(&ws, 2 * pl->br * D);
    double *ps = (double *)ll_take(&ws, 2 * pl->br), *se = (double *)ll_take(&ws, 2 * pl->br);
    double *A = (double *)ll_take(&ws, 2 * D * D), *x = (double *)ll_take(&ws, 2 * D), *x2 = x + D;
    memset(M2, 0, sizeof(double) * (size_t)(nb * D * D));
    memset(sk, 0, sizeof(double) * (size_t)(nb * D));
    memset(sg, 0, sizeof(double) * (size_t)(nb * D));
    memset(ps, 0, sizeof(double) * (size_t)nb);
    memset(se, 0, sizeof(double) * (size_t)nb);
    for (int64_t j0 = 0; j0 < a->Nk; j0 += bc) {
        int64_t nk = ll_tile_probs(a, pl, io, b, h, i0, nb, j0, lse, P, t);
        if (nk == 0)
            continue;
        const float *K = attn_at(&io->k, b, h / G, j0);
        for (int64_t r = 0; r < nb; r++)
            ll_second_moment(K, io->k.sn, nk, attn_at(&io->q, b, h, i0 + r), P + r * bc, D, Z, M2 + r * D * D, t);
        if (g) {
            // E (nb, nk) = dO (nb, Dv) @ V^T, then P o E
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)attn_dv(a), 1.0f,
                        attn_at(g, b, h, i0), (int)g->sn, attn_at(&io->v, b, h / G, j0), (int)io->v.sn, 0.0f, E,
                        (int)bc);
            for (int64_t r = 0; r < nb; r++)
                for (int64_t j = 0; j < nk; j++)
                    E[r * bc + j] *= P[r * bc + j];
            t->flops += 2.0 * (double)(nb * nk * attn_dv(a));
        }
        ll_row_sums(K, io->k.sn, nk, nb, P, g ? E : NULL, bc, D, sk, ps, sg, se);
        t->flops += 2.0 * (double)(nb * nk * D) * (g ? 2 : 1);
    }
    for (int64_t r = 0; r < nb; r++) {
        float *re = rec + r * rf;
        const double *m2 = M2 + r * D * D;
        double *kb = (double *)re;
        const float *q = attn_at(&io->q, b, h, i0 + r);
        memset(re, 0, sizeof(float) * (size_t)rf);
        if (ps[r] == 0) /* no key: O = 0 and nothing to regress */
            continue;
        double eb = se[r] / ps[r];
        re[LL_EBAR(D)] = (float)eb;
        // k̄ = sk / ps; Sigma = M2 / ps - z̄ z̄^T (upper), z̄ = k̄ - q; rhs q - k̄ = -z̄;
        // second rhs g_rho = sum p e (k - k̄) = sg / ps - ē k̄
        for (int64_t d = 0; d < D; d++)
            kb[d] = sk[r * D + d] / ps[r];
        for (int64_t d = 0; d < D; d++) {
            double zd = kb[d] - q[d];
            x[d] = -zd;
            for (int64_t e = d; e < D; e++)
                A[d * D + e] = m2[d * D + e] / ps[r] - zd * (kb[e] - q[e]);
            x2[d] = sg[r * D + d] / ps[r] - eb * kb[d];
        }
        ll_chol_solve(A, D, pl->lambda, x, g ? x2 : NULL);
        t->flops += (double)(D * D * D) / 3.0;
        for (int64_t d = 0; d < D; d++) {
            re[LL_RHO(D) + d] = (float)x[d];
            re[LL_MU(D) + d] = g ? (float)x2[d] : 0.0f;
        }
    }
}

/* One task: query rows [i0, i0+nb) of head h. */
static void ll_forward_tile(const attn_args *a, const ll_plan *pl, const attn_io *io, int64_t b, int64_t h,
                            int64_t i0, float *ws, ll_tally *t)
{
    int64_t D = a->D, Dv = attn_dv(a), G = a->H / a->H_kv, bc = pl->bc, rf = (int64_t)pl->row_floats;
    int64_t nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
    float *lse = ll_take(&ws, pl->br), *rec = ll_take(&ws, pl->br * rf);
    float *P = ws, *C = ws + (pl->br * bc + 15) / 16 * 16; /* P, E of ll_regress_rows */
    ll_lse_rows(a, pl, io, b, h, i0, nb, P, lse, t);
    ll_regress_rows(a, pl, io, NULL, b, h, i0, nb, lse, rec, ws, t);
    for (int64_t r = 0; r < nb; r++) {
        memset(attn_at(&io->o, b, h, i0 + r), 0, sizeof(float) * (size_t)Dv);
        io->lse[(b * a->H + h) * a->Nq + i0 + r] = lse[r];
    }
    t->bytes += 4.0 * (double)(nb * D);
    for (int64_t j0 = 0; j0 < a->Nk; j0 += bc) {
        int64_t nk = ll_tile_probs(a, pl, io, b, h, i0, nb, j0, lse, P, t);
        if (nk == 0)
            continue;
        const float *K = attn_at(&io->k, b, h / G, j0);
        ll_row_dots(K, io->k.sn, nk, rec, rf, LL_RHO(D), nb, D, C, bc);
        for (int64_t r = 0; r < nb; r++)
            for (int64_t j = 0; j < nk; j++)
                P[r * bc + j] *= 1.0f + C[r * bc + j];
        // O (nb, Dv) += (P o (1 + C)) (nb, nk) @ V (nk, Dv)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)nk, 1.0f, P, (int)bc,
                    attn_at(&io->v, b, h / G, j0), (int)io->v.sn, 1.0f, attn_at(&io->o, b, h, i0), (int)io->o.sn);
        t->flops += 2.0 * (double)(nb * nk * (D + Dv));
        t->bytes += 4.0 * (double)(nk * Dv);
    }
}

static int ll_init(attn_ctx *ctx, const attn_args *a)
{
    ll_plan pl;
    int rc = ll_plan_make(&pl, a);
    if (rc)
        return rc;
    size_t floats = pl.thread_floats * (size_t)a->threads;
    if (a->backward) /* per-row stats shared by the two backward phases */
        floats += (size_t)(a->B * a->H * a->Nq) * pl.row_floats + 16;
    ctx->workspace_bytes = sizeof(float) * floats;
    return 0;
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,Dv), lse is (B,H,Nq)
static int ll_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    ll_plan pl;
    int rc = ll_plan_make(&pl, a);
    if (rc)
        return rc;
    int64_t tasks = a->B * a->H * pl.nqt;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        ll_tally t = {0, 0};
        float *ws = (float *)ctx->workspace + pl.thread_floats * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t qt = pl.nqt - 1 - task % pl.nqt, bh = task / pl.nqt;
            ll_forward_tile(a, &pl, io, bh / a->H, bh % a->H, qt * pl.br, ws, &t);
        }
        ll_tally_flush(&t);
    }
    return 0;
}

/* Useful work per (b, head), explicit form (docs/kernels/local_linear.md) counted on the
 * mask's allowed pairs: nnz (2 D^2 + 8 D + 4 Dv) + Nq D^3 / 3 (nnz = Nq Nk
 * dense, about half causal). Backward: 2.5x, the softmax convention. */
static double ll_flops(const attn_args *a, attn_pass pass)
{
    double D = (double)a->D, Dv = (double)attn_dv(a);
    double nnz = attn_density(a) * (double)(a->B * a->H) * (double)a->Nq * (double)a->Nk;
    double fwd = nnz * (2 * D * D + 8 * D + 4 * Dv) + (double)(a->B * a->H * a->Nq) * D * D * D / 3;
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

const attn_kernel attn_kernel_local_linear = {
    .name = "local_linear",
    .family = "local_linear",
    .reference = "Zuo et al. 2025 (Local Linear Attention)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_WINDOW) |
             ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = ll_params,
    .notes = "explicit Sigma + Cholesky",
    .init = ll_init,
    .forward = ll_forward,
    .backward = attn_local_linear_backward,
    .flops = ll_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
    .fini = NULL,
    .ref_forward = attn_local_linear_ref_forward,
    .budget_params = "br,bc",
};
