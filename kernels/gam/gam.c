/* `gam`: Gated Associative Memory (Acharya, "Gated Associative Memory: A
 * Parallel O(N) Architecture for Efficient Sequence Modeling", 2025,
 * arXiv 2509.00605; docs/kernels/gam.md). Per token x_t of the block's
 * LayerNorm output (one head: D channels):
 *
 *   local   l_t = cb + sum_{tau<k} w_tau (.) x_{t - tau + s}     depthwise conv
 *   global  p_t = softmax(sc M x_t),  g_t = sum_j p_tj M_j     bank M [S x D]
 *   gates   [a_t, c_t] = W_g x_t + b_g                           W_g [2D x D]
 *   output  f_t = sigma(a_t) (.) l_t + sigma(c_t) (.) g_t
 *
 * with s = 0 under CAUSAL (zero left padding: the reference's Conv1d with
 * padding k-1, trimmed to T) and s = k/2 under FULL (centred: PyTorch's
 * padding='same', for even k one more future than past token).
 * The reference code's Conv1d tap j multiplies x_{t-(k-1)+j}: our tap tau is
 * its tap k-1-tau. sc = 1 as in the reference (no 1/sqrt(D): the slot softmax
 * saturates at large D; `scaled=1` uses attn_scale(a) instead).
 *
 * attnbench mapping: Q carries X [B,H,N,D]; K and V are NOT read (Nq == Nk is
 * required, any H_kv dividing H is accepted, Dv == D); the backward writes
 * zeros into dK and dV. The learned weights are the ATTN_IN_WEIGHTS input,
 * one row of W floats per head (layout in gam_plan: M [S x D], taps [k x D],
 * conv bias [D], W_g [2D x D], b_g [2D]); g.dw is written, summed over the
 * batch. The bank is a parameter, so g_t depends on x_t alone: the only
 * token-to-token path is the k-tap conv.
 *
 * Forward per task (b, h, tile of T rows; the conv reads k-1 halo rows of X
 * around the tile): S = sc X M^T (sgemm T x S), row softmax with max
 * subtraction, Gm = P M (sgemm T x D), Gt = X W_g^T + b_g (sgemm T x 2D),
 * conv, fusion. Tasks are independent: bitwise identical for any thread
 * count. After the tiles, the last k-1 input rows of every (b, h) are kept in
 * the workspace (the conv tail: all the state a streaming continuation
 * needs, ctx->state_bytes_used = state_bytes(args)). */
#include "gam.h"

#include "kernels/core/counters.h"
#include "common/rng.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int gam_is_causal(const attn_args *a) { return a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal; }

static const opt_def gam_params[] = {
    {.name = "slots", .type = OPT_INT, .def = 512, .lo = 1, .hi = 1 << 20, .help = "memory bank slots"},
    {.name = "taps", .type = OPT_INT, .def = 3, .lo = 1, .hi = 64, .help = "taps of the local filter"},
    {.name = "scaled", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1, .help = "1: scores * attn_scale"},
    {.name = "tile", .type = OPT_INT, .def = 256, .lo = 1, .hi = 1 << 16, .help = "rows per task"},
    {.name = "chunks", .type = OPT_INT, .def = 8, .lo = 1, .hi = 1024, .help = "backward dW partial sums per head"},
    {0},
};

int attn_gam_plan(gam_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "gam", gam_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->S = attn_param_int(a, gam_params, "slots", &rc);
    pl->k = attn_param_int(a, gam_params, "taps", &rc);
    int64_t scaled = attn_param_int(a, gam_params, "scaled", &rc);
    pl->T = attn_param_int(a, gam_params, "tile", &rc);
    pl->chunks = attn_param_int(a, gam_params, "chunks", &rc);
    if (rc)
        return rc;
    if (!scaled && a->scale != 0)
        return attn_fail(ATTN_EINVAL, "gam: scale=%g is set but scores are unscaled (the reference); "
                                      "expected scaled=1 with it, found scaled=0", a->scale);
    int64_t D = a->D, S = pl->S, k = pl->k, T = pl->T;
    pl->shift = gam_is_causal(a) ? 0 : k / 2;
    pl->sc = scaled ? (float)attn_scale(a) : 1.0f;
    pl->ntiles = (a->Nq + T - 1) / T;
    pl->off_taps = S * D;
    pl->off_cbias = pl->off_taps + k * D;
    pl->off_wg = pl->off_cbias + D;
    pl->off_bg = pl->off_wg + 2 * D * D;
    pl->W = pl->off_bg + 2 * D;
    /* forward: scores T x S, Gm, L (T x D), Gt (T x 2D); backward (gam_bwd.c):
     * P and dZ (T x S), Gm, L, dG (T x D), dGt (T x 2D), Gt and dL over the
     * tile plus k-1 halo rows */
    int64_t Te = T + k - 1;
    pl->fwd_floats = (size_t)(GAM_ROUND16(T * S) + 2 * GAM_ROUND16(T * D) + GAM_ROUND16(2 * T * D));
    pl->bwd_floats = (size_t)(2 * GAM_ROUND16(T * S) + 3 * GAM_ROUND16(T * D) + GAM_ROUND16(2 * T * D) +
                              GAM_ROUND16(2 * Te * D) + GAM_ROUND16(Te * D));
    return 0;
}

/* ---- workspace: [conv tails][per-thread scratch][backward dW partials] ---- */

static size_t gam_tail_floats(const attn_args *a, const gam_plan *pl)
{
    return (size_t)(a->B * a->H * (pl->k - 1) * a->D);
}

static size_t gam_thread_floats(const attn_args *a, const gam_plan *pl)
{
    size_t n = a->backward && pl->bwd_floats > pl->fwd_floats ? pl->bwd_floats : pl->fwd_floats;
    return GAM_ROUND16(n);
}

float *attn_gam_scratch(const attn_ctx *ctx, const gam_plan *pl, int thread)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + GAM_ROUND16(gam_tail_floats(a, pl)) +
           (size_t)thread * gam_thread_floats(a, pl);
}

const float *attn_gam_tail(const attn_ctx *ctx, int64_t b, int64_t h)
{
    const attn_args *a = &ctx->args;
    gam_plan pl;
    if (attn_gam_plan(&pl, a))
        return NULL;
    return (const float *)ctx->workspace + (b * a->H + h) * (pl.k - 1) * a->D;
}

static int gam_init(attn_ctx *ctx, const attn_args *a)
{
    gam_plan pl;
    int rc = attn_gam_plan(&pl, a);
    if (rc)
        return rc;
    if (a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "gam: the conv aligns token t with token t (q_off == k_off), "
                                      "found q_off=%lld k_off=%lld", (long long)a->q_off, (long long)a->k_off);
    size_t n = GAM_ROUND16(gam_tail_floats(a, &pl)) + (size_t)a->threads * gam_thread_floats(a, &pl);
    if (a->backward) /* one dW partial per (head, chunk), summed in chunk order */
        n += (size_t)(a->H * pl.chunks) * GAM_ROUND16((size_t)pl.W);
    ctx->workspace_bytes = sizeof(float) * n;
    ctx->state_bytes_used = sizeof(float) * gam_tail_floats(a, &pl);
    return 0;
}

/* ---- pieces shared with the backward ---- */

float attn_gam_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// X is (nb, D) with row stride ldx, w the head's weights; P is (nb, S), Gm (nb, D).
// P = softmax(sc X M^T) per row (max subtracted), Gm = P M.
void attn_gam_global(const gam_plan *pl, int64_t D, const float *X, int64_t ldx, const float *w, int64_t nb,
                     float *P, float *Gm)
{
    int64_t S = pl->S;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)S, (int)D, pl->sc, X, (int)ldx, w, (int)D,
                0.0f, P, (int)S);
    for (int64_t r = 0; r < nb; r++)
        attn_softmax_row(P + r * S, S);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)S, 1.0f, P, (int)S, w, (int)D,
                0.0f, Gm, (int)D);
}

// X is (nb, D) with row stride ldx; Gt is (nb, 2D): X W_g^T + b_g.
void attn_gam_gates(const gam_plan *pl, int64_t D, const float *X, int64_t ldx, const float *w, int64_t nb,
                    float *Gt)
{
    for (int64_t r = 0; r < nb; r++)
        memcpy(Gt + r * 2 * D, w + pl->off_bg, sizeof(float) * (size_t)(2 * D));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)(2 * D), (int)D, 1.0f, X, (int)ldx,
                w + pl->off_wg, (int)D, 1.0f, Gt, (int)(2 * D));
}

// X is the whole sequence (N, D), row stride ldx; L is (nb, D): the conv of rows [i0, i0 + nb).
void attn_gam_conv(const gam_plan *pl, int64_t N, int64_t D, const float *X, int64_t ldx, const float *w,
                   int64_t i0, int64_t nb, float *L)
{
    const float *taps = w + pl->off_taps, *cb = w + pl->off_cbias;
    for (int64_t r = 0; r < nb; r++) {
        float *l = L + r * D;
        memcpy(l, cb, sizeof(float) * (size_t)D);
        for (int64_t tau = 0; tau < pl->k; tau++) {
            int64_t src = i0 + r - tau + pl->shift;
            if (src < 0 || src >= N)
                continue; /* zero padding */
            const float *x = X + src * ldx, *wt = taps + tau * D;
            for (int64_t d = 0; d < D; d++)
                l[d] += wt[d] * x[d];
        }
    }
}

/* ---- forward ---- */

// X is (N, D) rows of one (b, h), row stride ldx; O likewise with ldo.
static void gam_tile_forward(const gam_plan *pl, int64_t N, int64_t D, const float *X, int64_t ldx, const float *w,
                             int64_t i0, int64_t nb, float *O, int64_t ldo, float *scr)
{
    int64_t T = pl->T;
    float *P = scr, *Gm = P + GAM_ROUND16(T * pl->S), *L = Gm + GAM_ROUND16(T * D), *Gt = L + GAM_ROUND16(T * D);
    const float *Xt = X + i0 * ldx;
    attn_gam_global(pl, D, Xt, ldx, w, nb, P, Gm);
    attn_gam_gates(pl, D, Xt, ldx, w, nb, Gt);
    attn_gam_conv(pl, N, D, X, ldx, w, i0, nb, L);
    for (int64_t r = 0; r < nb; r++) {
        const float *gt = Gt + r * 2 * D, *l = L + r * D, *gm = Gm + r * D;
        float *o = O + (i0 + r) * ldo;
        for (int64_t d = 0; d < D; d++)
            o[d] = attn_gam_sigmoid(gt[d]) * l[d] + attn_gam_sigmoid(gt[D + d]) * gm[d];
    }
}

/* Keeps the last k-1 rows of X per (b, h), oldest first, zeros before row 0. */
static void gam_keep_tails(const attn_ctx *ctx, const gam_plan *pl, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    int64_t r = pl->k - 1, D = a->D;
    float *tail = ctx->workspace;
    for (int64_t bh = 0; bh < a->B * a->H; bh++)
        for (int64_t i = 0; i < r; i++) {
            int64_t src = a->Nq - r + i;
            float *dst = tail + (bh * r + i) * D;
            if (src < 0)
                memset(dst, 0, sizeof(float) * (size_t)D);
            else
                memcpy(dst, attn_at(&io->q, bh / a->H, bh % a->H, src), sizeof(float) * (size_t)D);
        }
}

// q is (B,H,N,D) = X, w is (1,H,1,W); o is (B,H,N,D). k, v unread.
static int gam_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    gam_plan pl;
    int rc = attn_gam_plan(&pl, a);
    if (rc)
        return rc;
    if (!io->w.data || io->w.D < pl.W)
        return attn_fail(ATTN_EINVAL, "gam: expected io.w with %lld weights per head, found %lld",
                         (long long)pl.W, io->w.data ? (long long)io->w.D : 0LL);
    int64_t N = a->Nq, D = a->D, tasks = a->B * a->H * pl.ntiles;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t bh = t / pl.ntiles, i0 = (t % pl.ntiles) * pl.T, b = bh / a->H, h = bh % a->H;
        int64_t nb = N - i0 < pl.T ? N - i0 : pl.T;
        gam_tile_forward(&pl, N, D, attn_at(&io->q, b, h, 0), io->q.sn, attn_at(&io->w, 0, h, 0), i0, nb,
                         attn_at(&io->o, b, h, 0), io->o.sn, attn_gam_scratch(ctx, &pl, omp_get_thread_num()));
    }
    gam_keep_tails(ctx, &pl, io);
    double rows = (double)(a->B * a->H * N), S = (double)pl.S, Dd = (double)D;
    attn_counter_add(ATTN_CNT_FLOPS, (long long)(rows * (4 * S * Dd + 4 * Dd * Dd + 2 * (double)pl.k * Dd)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)(rows * (S + 2 * Dd)));
    /* X with its halo rows once per tile, the head's M and W_g once per tile */
    double halo = (double)(a->B * a->H * pl.ntiles * (pl.k - 1));
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(sizeof(float) * ((rows + halo) * Dd + (double)tasks * (S * Dd + 2 * Dd * Dd))));
    return 0;
}

/* ---- streaming form ---- */

int attn_gam_step(const attn_args *a, const float *w, float *ring, int64_t t, const float *x, float *f)
{
    gam_plan pl;
    int rc = attn_gam_plan(&pl, a);
    if (rc)
        return rc;
    if (!gam_is_causal(a))
        return attn_fail(ATTN_EUNSUPPORTED, "gam step: expected a causal mask (FULL reads future tokens)");
    int64_t D = a->D, S = pl.S, r = pl.k - 1;
    const float *M = w, *taps = w + pl.off_taps, *cb = w + pl.off_cbias;
    const float *Wg = w + pl.off_wg, *bg = w + pl.off_bg;
    /* online softmax over the slots into f (flash-style rescaling) */
    float m = -INFINITY, l = 0;
    memset(f, 0, sizeof(float) * (size_t)D);
    for (int64_t j = 0; j < S; j++) {
        float z = 0;
        for (int64_t d = 0; d < D; d++)
            z += M[j * D + d] * x[d];
        z *= pl.sc;
        float mn = z > m ? z : m, c = expf(m - mn), p = expf(z - mn);
        l = l * c + p;
        for (int64_t d = 0; d < D; d++)
            f[d] = f[d] * c + p * M[j * D + d];
        m = mn;
    }
    for (int64_t d = 0; d < D; d++) {
        float lc = cb[d] + taps[d] * x[d], ga = bg[d], gc = bg[D + d];
        for (int64_t tau = 1; tau <= r; tau++) /* ring rows of tokens before 0 are zeros */
            lc += taps[tau * D + d] * ring[(((t - tau) % r + r) % r) * D + d];
        for (int64_t e = 0; e < D; e++)
            ga += Wg[d * D + e] * x[e], gc += Wg[(D + d) * D + e] * x[e];
        f[d] = attn_gam_sigmoid(ga) * lc + attn_gam_sigmoid(gc) * (f[d] / l);
    }
    if (r > 0)
        memcpy(ring + (t % r) * D, x, sizeof(float) * (size_t)D);
    return 0;
}

/* ---- double reference ---- */

static double sigmoid64(double x) { return 1.0 / (1.0 + exp(-x)); }

int attn_gam_ref_forward(const attn_args *a, const attn_io64 *io)
{
    gam_plan pl;
    int rc = attn_gam_plan(&pl, a);
    if (rc)
        return rc;
    int64_t N = a->Nq, D = a->D, S = pl.S;
    double *z = malloc(sizeof(double) * (size_t)S), *g = malloc(sizeof(double) * (size_t)D);
    if (!z || !g) {
        free(z), free(g);
        return attn_fail(ATTN_ENOMEM, "gam ref: out of memory for %lld slots", (long long)S);
    }
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++) {
            const double *w = attn_at64(&io->w, 0, h, 0), *M = w, *taps = w + pl.off_taps;
            const double *cb = w + pl.off_cbias, *Wg = w + pl.off_wg, *bg = w + pl.off_bg;
            for (int64_t t = 0; t < N; t++) {
                const double *x = attn_at64(&io->q, b, h, t);
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < S; j++) {
                    z[j] = 0;
                    for (int64_t d = 0; d < D; d++)
                        z[j] += M[j * D + d] * x[d];
                    z[j] *= pl.sc;
                    mx = fmax(mx, z[j]);
                }
                for (int64_t j = 0; j < S; j++)
                    sum += z[j] = exp(z[j] - mx);
                for (int64_t d = 0; d < D; d++) {
                    g[d] = 0;
                    for (int64_t j = 0; j < S; j++)
                        g[d] += z[j] / sum * M[j * D + d];
                }
                double *o = attn_at64(&io->o, b, h, t);
                for (int64_t d = 0; d < D; d++) {
                    double l = cb[d], ga = bg[d], gc = bg[D + d];
                    for (int64_t tau = 0; tau < pl.k; tau++) {
                        int64_t src = t - tau + pl.shift;
                        if (src >= 0 && src < N)
                            l += taps[tau * D + d] * attn_at64(&io->q, b, h, src)[d];
                    }
                    for (int64_t e = 0; e < D; e++)
                        ga += Wg[d * D + e] * x[e], gc += Wg[(D + d) * D + e] * x[e];
                    o[d] = sigmoid64(ga) * l + sigmoid64(gc) * g[d];
                }
            }
        }
    free(z), free(g);
    return 0;
}

/* ---- weights, cost model ---- */

static int64_t gam_input_cols(const attn_args *a, unsigned input)
{
    gam_plan pl;
    if (input != ATTN_IN_WEIGHTS || attn_gam_plan(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.W;
}

/* The reference code's initialisation: bank xavier_uniform on [S, D]
 * (bound sqrt(6/(S+D))); depthwise Conv1d and the gate Linear keep PyTorch's
 * defaults, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, with
 * fan_in = k for the conv (one input channel per group) and D for the gate. */
static void gam_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    gam_plan pl;
    if (attn_gam_plan(&pl, a))
        return;
    int64_t D = a->D;
    float conv = 1.0f / sqrtf((float)pl.k), gate = 1.0f / sqrtf((float)D);
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, 0x6a3, (uint64_t)h);
        float *x = attn_at(w, 0, h, 0);
        attn_rng_fill_symmetric(&r, x, pl.S * D, sqrtf(6.0f / (float)(pl.S + D)));
        attn_rng_fill_symmetric(&r, x + pl.off_taps, (pl.k + 1) * D, conv); /* taps, then bias */
        attn_rng_fill_symmetric(&r, x + pl.off_wg, 2 * D * D + 2 * D, gate); /* W_g, then b_g */
    }
}

/* Per (b, head): forward 4 N S D (scores, P M) + 4 N D^2 (gates, 2D x D) +
 * 2 N k D (the depthwise conv as a banded product, our choice);
 * backward 2x: dP, dX += dZ M, dM (two products) = 8 N S D; dW_g, dX from the
 * gates = 8 N D^2; dw and dX of the conv = 4 N k D (recomputation of the
 * forward is not useful work; the counters include it). */
static double gam_flops(const attn_args *a, attn_pass pass)
{
    gam_plan pl;
    if (attn_gam_plan(&pl, a))
        return 0;
    double N = (double)a->Nq, D = (double)a->D, S = (double)pl.S, k = (double)pl.k;
    double fwd = (double)(a->B * a->H) * (4 * N * S * D + 4 * N * D * D + 2 * N * k * D);
    return pass == ATTN_PASS_FWD ? fwd : 2 * fwd;
}

/* Minimum fp32 traffic: forward reads X and the weights, writes O; backward
 * reads X, dO and the weights, writes dX, dW and the zero dK, dV. */
static double gam_bytes(const attn_args *a, attn_pass pass)
{
    gam_plan pl;
    if (attn_gam_plan(&pl, a))
        return 0;
    double x = (double)(a->B * a->H * a->Nq * a->D), w = (double)(a->H * pl.W);
    double kv = (double)(a->B * a->H_kv * a->Nk * a->D);
    return pass == ATTN_PASS_FWD ? 4 * (2 * x + w) : 4 * (3 * x + 2 * w + 2 * kv);
}

/* The conv tail: (k-1) D floats per (b, head); the bank is weights, not context state. */
static size_t gam_state_bytes(const attn_args *a)
{
    gam_plan pl;
    if (attn_gam_plan(&pl, a))
        return 0;
    return sizeof(float) * gam_tail_floats(a, &pl);
}

const attn_kernel attn_kernel_gam = {
    .name = "gam",
    .family = "gam",
    .reference = "Acharya 2025, Gated Associative Memory, arXiv 2509.00605",
    .flags = ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .check_params = "slots=16",
    .params = gam_params,
    .init = gam_init,
    .forward = gam_forward,
    .backward = attn_gam_backward,
    .flops = gam_flops,
    .bytes = gam_bytes,
    .state_bytes = gam_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_gam_ref_forward,
    .input_cols = gam_input_cols,
    .init_weights = gam_init_weights,
};
