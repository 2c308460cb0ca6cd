/* `nystrom` forward (Xiong et al. 2021; docs/kernels/nystrom.md; the
 * formulas are in nystrom.h). Two parallel phases, each over independent
 * tasks with a fixed order inside, so results are bitwise identical for any
 * thread count:
 *
 *   landmarks, one task per (batch, query head): segment means Q~ and K~,
 *     A = softmax(sc Q~ K~^T), Z by the iteration (nystrom_pinv.c),
 *     Y = softmax(sc Q~ K^T) V over blocks of `tile` keys with an online
 *     softmax (the mm x n matrix is never stored: the scratch does not grow
 *     with N and K, V are read once), X = Z Y; K~ and X are kept in the
 *     workspace;
 *   output, one task per (batch, query head, tile of T rows):
 *     F = softmax(sc Q_tile K~^T), O_tile = F X (+ the conv skip on V).
 *
 * Every product is a single-threaded cblas_sgemm; the segment means, the
 * softmaxes and the conv are loops. A padded batch (seq_len) is the same per
 * sequence at its own length: padding rows are never read, their O rows are
 * 0. The learned conv taps are the ATTN_IN_WEIGHTS input, `conv` floats per
 * query head (none when conv = 0). */
#include "nystrom_internal.h"

#include "common/rng.h"
#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/vexp.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static const opt_def ny_params[] = {
    {.name = "landmarks", .type = OPT_INT, .def = 64, .lo = 1, .hi = 1 << 14,
     .help = "landmarks m (segment means); a sequence of n < m rows uses n"},
    {.name = "iters", .type = OPT_INT, .def = 6, .lo = 0, .hi = 1000, .help = "pseudo-inverse iterations"},
    {.name = "conv", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1024,
     .help = "taps of the depthwise conv skip on V, learned per head (0: none; the authors' LRA runs: 35)"},
    {.name = "tile", .type = OPT_INT, .def = 256, .lo = 1, .hi = 1 << 16,
     .help = "query rows per output task, keys per landmark-phase block"},
    {0},
};

int attn_nystrom_plan(ny_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "nystrom", ny_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->m = attn_param_int(a, ny_params, "landmarks", &rc);
    pl->iters = (int)attn_param_int(a, ny_params, "iters", &rc);
    pl->conv = attn_param_int(a, ny_params, "conv", &rc);
    pl->T = attn_param_int(a, ny_params, "tile", &rc);
    if (rc)
        return rc;
    int64_t m = pl->m < a->Nk ? pl->m : a->Nk, Dv = attn_dv(a);
    m = m < 1 ? 1 : m;
    pl->m = m; /* no sequence has more landmarks than rows */
    pl->ntiles = (a->Nq + pl->T - 1) / pl->T;
    pl->head_floats = (size_t)(NY_ROUND16(m * a->D) + NY_ROUND16(m * Dv));
    pl->fwd_floats = ny_head_floats(pl, a, 0); /* its block scratch serves the output tiles too */
    /* backward (nystrom_bwd.c carves them in this order): the landmark phase
     * with its history, K~ and X, dQ~ and dK~, dA and dZ, dX and dY, Dy and
     * one more block */
    pl->bwd_floats = ny_head_floats(pl, a, 1) + pl->head_floats + 2 * (size_t)NY_ROUND16(m * a->D) +
                     2 * (size_t)NY_ROUND16(m * m) + 2 * (size_t)NY_ROUND16(m * Dv) + (size_t)NY_ROUND16(m) +
                     (size_t)NY_ROUND16(m * pl->T);
    return 0;
}

/* ---- workspace: [kept K~, X per (b, h)][per-thread scratch][dw partials per (b, h)] ---- */

static size_t ny_thread_floats(const ny_plan *pl, const attn_args *a)
{
    return a->backward && pl->bwd_floats > pl->fwd_floats ? pl->bwd_floats : pl->fwd_floats;
}

static float *ny_head_slot(const attn_ctx *ctx, const ny_plan *pl, int64_t b, int64_t h)
{
    return (float *)ctx->workspace + (size_t)(b * ctx->args.H + h) * pl->head_floats;
}

float *attn_nystrom_scratch(const attn_ctx *ctx, const ny_plan *pl, int thread)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + (size_t)(a->B * a->H) * pl->head_floats +
           (size_t)thread * ny_thread_floats(pl, a);
}

static int ny_init(attn_ctx *ctx, const attn_args *a)
{
    ny_plan pl;
    int rc = attn_nystrom_plan(&pl, a);
    if (rc)
        return rc;
    size_t n = (size_t)(a->B * a->H) * pl.head_floats + (size_t)a->threads * ny_thread_floats(&pl, a);
    if (a->backward) /* the dw partials, conv floats apart */
        n += attn_dw_partials_floats(a, (size_t)pl.conv);
    ctx->workspace_bytes = sizeof(float) * n;
    return 0;
}

/* ---- shared with the backward ---- */

size_t ny_head_floats(const ny_plan *pl, const attn_args *a, int keep)
{
    int64_t m = pl->m, m2 = NY_ROUND16(m * m), it = pl->iters;
    size_t pinv = keep ? (size_t)((it + 1) * m2 + it * m2 + 7 * m2) : (size_t)(2 * m2 + m2 + 2 * m2);
    return (size_t)(NY_ROUND16(m * a->D) + m2 + NY_ROUND16(m * attn_dv(a)) + 2 * NY_ROUND16(m) +
                    NY_ROUND16(m * pl->T)) + pinv;
}

void ny_head_carve(ny_head *w, const ny_plan *pl, const attn_args *a, int keep, float *ws)
{
    int64_t m = pl->m, m2 = NY_ROUND16(m * m), it = pl->iters;
    w->Qt = ws, ws += NY_ROUND16(m * a->D);
    w->A = ws, ws += m2;
    w->Y = ws, ws += NY_ROUND16(m * attn_dv(a));
    w->lse = ws, ws += NY_ROUND16(m);
    w->run = ws, ws += NY_ROUND16(m);
    w->S = ws, ws += NY_ROUND16(m * pl->T);
    w->zs = ws, ws += (keep ? it + 1 : 2) * m2;
    w->ps = ws, ws += (keep ? it : 1) * m2;
    w->tmp = ws;
}

double ny_softmax_rows(float *S, int64_t rows, int64_t cols, int64_t ld)
{
    for (int64_t r = 0; r < rows; r++) {
        float *s = S + r * ld, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++)
            mx = s[j] > mx ? s[j] : mx;
        if (mx == -INFINITY) /* only with infinite inputs: keep the row finite */
            mx = 0;
        for (int64_t j = 0; j < cols; j++)
            s[j] -= mx;
        attn_vexp(s, s, cols);
        for (int64_t j = 0; j < cols; j++)
            sum += s[j];
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < cols; j++)
            s[j] *= inv;
    }
    return (double)(rows * cols);
}

void ny_segment_means(const float *X, int64_t ldx, int64_t n, int64_t mm, int64_t D, float *out)
{
    for (int64_t s = 0; s < mm; s++) {
        int64_t r0 = attn_nystrom_seg(s, n, mm), r1 = attn_nystrom_seg(s + 1, n, mm);
        float *o = out + s * D;
        memset(o, 0, sizeof(float) * (size_t)D);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t d = 0; d < D; d++)
                o[d] += X[r * ldx + d];
        float inv = 1.0f / (float)(r1 - r0);
        for (int64_t d = 0; d < D; d++)
            o[d] *= inv;
    }
}

void ny_conv_add(const float *w, int64_t k, const float *V, int64_t ldv, int64_t n, int64_t Dv, int64_t r0,
                 int64_t r1, float *O, int64_t ldo)
{
    for (int64_t t = r0; t < r1; t++)
        for (int64_t tau = 0; tau < k; tau++) {
            int64_t src = t + tau - k / 2;
            if (src < 0 || src >= n)
                continue; /* zero padding, as the reference's Conv2d */
            const float *v = V + src * ldv;
            float *o = O + t * ldo;
            for (int64_t d = 0; d < Dv; d++)
                o[d] += w[tau] * v[d];
        }
}

/* Y = softmax(sc Q~ K^T) V over the n keys in blocks of T (online softmax:
 * each block's scores are shifted by the running row maximum, earlier sums
 * rescaled when it grows), and lse = max + ln(sum) per landmark row. */
static double ny_landmark_values(const attn_args *a, const ny_plan *pl, const float *K, int64_t ldk, const float *V,
                                 int64_t ldv, ny_head *w, double *exps)
{
    int64_t n = w->n, mm = w->mm, D = a->D, Dv = attn_dv(a);
    float sc = (float)attn_scale(a), *mx = w->lse, *sum = w->run;
    for (int64_t j0 = 0; j0 < n; j0 += pl->T) {
        int64_t nk = n - j0 < pl->T ? n - j0 : pl->T;
        ny_gemm(0, 1, mm, nk, D, sc, w->Qt, D, K + j0 * ldk, ldk, 0.0f, w->S, nk);
        for (int64_t r = 0; r < mm; r++) {
            float *s = w->S + r * nk, top = s[0], part = 0;
            for (int64_t j = 1; j < nk; j++)
                top = s[j] > top ? s[j] : top;
            float m_new = j0 == 0 || top > mx[r] ? top : mx[r];
            for (int64_t j = 0; j < nk; j++)
                s[j] -= m_new;
            attn_vexp(s, s, nk);
            for (int64_t j = 0; j < nk; j++)
                part += s[j];
            if (j0 > 0 && m_new != mx[r]) { /* the running maximum grew: rescale what was summed */
                float alpha = attn_expf(mx[r] - m_new);
                sum[r] *= alpha;
                for (int64_t d = 0; d < Dv; d++)
                    w->Y[r * Dv + d] *= alpha;
                *exps += 1;
            }
            sum[r] = j0 == 0 ? part : sum[r] + part;
            mx[r] = m_new;
        }
        ny_gemm(0, 0, mm, Dv, nk, 1.0f, w->S, nk, V + j0 * ldv, ldv, j0 == 0 ? 0.0f : 1.0f, w->Y, Dv);
        *exps += (double)(mm * nk);
    }
    for (int64_t r = 0; r < mm; r++) {
        float inv = 1.0f / sum[r];
        for (int64_t d = 0; d < Dv; d++)
            w->Y[r * Dv + d] *= inv;
        w->lse[r] = mx[r] + logf(sum[r]);
    }
    return 2.0 * (double)(mm * n) * (double)(D + Dv);
}

double ny_head_run(const attn_args *a, const ny_plan *pl, const attn_io *io, int64_t b, int64_t h, int keep,
                   ny_head *w, double *exps)
{
    int64_t n = attn_q_len(a, b), mm = attn_nystrom_landmarks(pl, n), D = a->D, Dv = attn_dv(a);
    int64_t hk = h / (a->H / a->H_kv);
    float sc = (float)attn_scale(a);
    const float *Q = attn_at(&io->q, b, h, 0), *K = attn_at(&io->k, b, hk, 0), *V = attn_at(&io->v, b, hk, 0);
    w->n = n, w->mm = mm;
    ny_segment_means(Q, io->q.sn, n, mm, D, w->Qt);
    ny_segment_means(K, io->k.sn, n, mm, D, w->Kt);
    ny_gemm(0, 1, mm, mm, D, sc, w->Qt, D, w->Kt, D, 0.0f, w->A, mm);
    *exps = ny_softmax_rows(w->A, mm, mm, mm);
    w->Z = attn_nystrom_pinv(w->A, mm, pl->iters, keep, w->zs, w->ps, w->tmp);
    double flops = ny_landmark_values(a, pl, K, io->k.sn, V, io->v.sn, w, exps);
    ny_gemm(0, 0, mm, Dv, mm, 1.0f, w->Z, mm, w->Y, Dv, 0.0f, w->X, Dv);
    double m = (double)mm;
    return flops + 2 * m * m * (double)(D + Dv) + 8.0 * pl->iters * m * m * m;
}

/* ---- forward ---- */

typedef struct {
    double flops, exps, bytes;
} ny_tally;

static void ny_tally_flush(const ny_tally *t)
{
    attn_counter_add(ATTN_CNT_FLOPS, (long long)t->flops);
    attn_counter_add(ATTN_CNT_EXPS, (long long)t->exps);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t->bytes);
}

/* Output rows [i0, i0 + nb) of (b, h) from the kept K~ and X. */
static void ny_output_tile(const attn_args *a, const ny_plan *pl, const attn_io *io, const float *slot, int64_t b,
                           int64_t h, int64_t i0, int64_t nb, float *S, ny_tally *t)
{
    int64_t n = attn_q_len(a, b), D = a->D, Dv = attn_dv(a), mm = attn_nystrom_landmarks(pl, n);
    int64_t real = i0 >= n ? 0 : (n - i0 < nb ? n - i0 : nb);
    for (int64_t r = real; r < nb; r++) /* padding rows */
        memset(attn_at(&io->o, b, h, i0 + r), 0, sizeof(float) * (size_t)Dv);
    if (real == 0)
        return;
    const float *Kt = slot, *X = slot + NY_ROUND16(pl->m * D);
    float sc = (float)attn_scale(a);
    ny_gemm(0, 1, real, mm, D, sc, attn_at(&io->q, b, h, i0), io->q.sn, Kt, D, 0.0f, S, mm);
    t->exps += ny_softmax_rows(S, real, mm, mm);
    float *O = attn_at(&io->o, b, h, i0);
    ny_gemm(0, 0, real, Dv, mm, 1.0f, S, mm, X, Dv, 0.0f, O, io->o.sn);
    t->flops += 2.0 * (double)(real * mm) * (double)(D + Dv);
    t->bytes += 4.0 * (double)(real * D);
    if (pl->conv) {
        int64_t hk = h / (a->H / a->H_kv);
        const float *V = attn_at(&io->v, b, hk, 0);
        ny_conv_add(attn_at(&io->w, 0, h, 0), pl->conv, V, io->v.sn, n, Dv, i0, i0 + real, attn_at(&io->o, b, h, 0),
                    io->o.sn);
        t->flops += 2.0 * (double)(real * pl->conv * Dv);
        t->bytes += 4.0 * (double)((real + pl->conv - 1) * Dv);
    }
}

// q is (B,H,N,D), k is (B,H_kv,N,D), v is (B,H_kv,N,Dv), w is (1,H,1,conv); o is (B,H,N,Dv)
static int ny_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    ny_plan pl;
    int rc = attn_nystrom_plan(&pl, a);
    if (rc)
        return rc;
    if (pl.conv && (!io->w.data || io->w.D < pl.conv))
        return attn_fail(ATTN_EINVAL, "nystrom: expected io.w with conv=%lld taps per head, found %lld",
                         (long long)pl.conv, io->w.data ? (long long)io->w.D : 0LL);
    int64_t heads = a->B * a->H, tasks = heads * pl.ntiles, Dv = attn_dv(a);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
#pragma omp parallel num_threads(a->threads)
    {
        ny_tally t = {0};
        float *ws = attn_nystrom_scratch(ctx, &pl, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < heads; bh++) {
            int64_t b = bh / a->H, h = bh % a->H, n = attn_q_len(a, b);
            if (n == 0)
                continue;
            ny_head w;
            ny_head_carve(&w, &pl, a, 0, ws);
            float *slot = ny_head_slot(ctx, &pl, b, h);
            w.Kt = slot, w.X = slot + NY_ROUND16(pl.m * a->D);
            double e;
            t.flops += ny_head_run(a, &pl, io, b, h, 0, &w, &e);
            t.exps += e;
            t.bytes += 4.0 * (double)(n * (2 * a->D + Dv)); /* Q and K for the means and Bt, V */
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t bh = task / pl.ntiles, i0 = (task % pl.ntiles) * pl.T, b = bh / a->H, h = bh % a->H;
            int64_t nb = a->Nq - i0 < pl.T ? a->Nq - i0 : pl.T;
            ny_output_tile(a, &pl, io, ny_head_slot(ctx, &pl, b, h), b, h, i0, nb, ws, &t);
        }
        ny_tally_flush(&t);
    }
    return 0;
}

/* ---- weights, cost model ---- */

static int64_t ny_input_cols(const attn_args *a, unsigned input)
{
    ny_plan pl;
    if (input != ATTN_IN_WEIGHTS || attn_nystrom_plan(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.conv;
}

/* PyTorch's default for the reference's Conv2d (fan_in = k taps of one
 * channel): U(-1/sqrt(k), 1/sqrt(k)). */
static void ny_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    ny_plan pl;
    if (attn_nystrom_plan(&pl, a) || !pl.conv)
        return;
    float bound = 1.0f / sqrtf((float)pl.conv);
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, 0x9e5, (uint64_t)h);
        float *x = attn_at(w, 0, h, 0);
        for (int64_t i = 0; i < pl.conv; i++)
            x[i] = attn_rng_range(&r, -bound, bound);
    }
}

/* Per (b, query head) of a sequence of n rows with mm = min(m, n):
 * F and O = F X: 2 n mm (D + Dv); Bt and Y = Bt V: 2 mm n (D + Dv); A and
 * Z Y: 2 mm^2 (D + Dv); the iteration 8 iters mm^3 (four mm x mm products
 * per step); the conv skip as a banded product 2 n k Dv. At D = Dv and
 * iters = 6: 8 n m D + 4 m^2 D + 48 m^3 (+ the conv). The backward takes
 * two products for each of these (16 per step of the iteration): twice the
 * forward; its recomputation of the forward is not useful work. */
static double ny_flops(const attn_args *a, attn_pass pass)
{
    ny_plan pl;
    if (attn_nystrom_plan(&pl, a))
        return 0;
    double D = (double)a->D, Dv = (double)attn_dv(a), f = 0;
    for (int64_t b = 0; b < a->B; b++) {
        double n = (double)attn_q_len(a, b), m = (double)attn_nystrom_landmarks(&pl, attn_q_len(a, b));
        if (n > 0)
            f += 4 * n * m * (D + Dv) + 2 * m * m * (D + Dv) + 8.0 * pl.iters * m * m * m +
                 2 * n * (double)pl.conv * Dv;
    }
    f *= (double)a->H;
    return pass == ATTN_PASS_FWD ? f : 2 * f;
}

/* Minimum fp32 traffic per sequence of n real rows: forward reads Q, K, V
 * and the conv taps, writes O (no lse: there is no single normaliser);
 * backward reads Q, K, V, dO and the taps, writes dQ, dK, dV and dw. The
 * taps count once per sequence, as the tasks read them. */
static double ny_bytes(const attn_args *a, attn_pass pass)
{
    ny_plan pl;
    if (attn_nystrom_plan(&pl, a))
        return 0;
    double D = (double)a->D, Dv = (double)attn_dv(a), H = (double)a->H, Hk = (double)a->H_kv, w = H * (double)pl.conv;
    double x = 0;
    for (int64_t b = 0; b < a->B; b++) {
        double n = (double)attn_q_len(a, b);
        if (n == 0)
            continue;
        x += pass == ATTN_PASS_FWD ? H * n * D + Hk * n * (D + Dv) + H * n * Dv + w
                                   : 2 * H * n * D + 2 * Hk * n * (D + Dv) + H * n * Dv + 2 * w;
    }
    return 4 * x;
}

/* Non-causal, no streaming form: no state to keep between calls. */
static size_t ny_state_bytes(const attn_args *a)
{
    (void)a;
    return 0;
}

const attn_kernel attn_kernel_nystrom = {
    .name = "nystrom",
    .family = "nystrom",
    .reference = "Xiong et al. 2021 (Nystromformer), segment-mean landmarks, iterative pseudo-inverse",
    .flags = ATTN_APPROX | ATTN_TRAINABLE | ATTN_GQA | ATTN_DV | ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL),
    .params = ny_params,
    .notes = "O = softmax(sc Q K~^T) Z softmax(sc Q~ K^T) V, Z ~ pinv(softmax(sc Q~ K~^T)) by the iteration; "
             "a padded sequence is run at its own length; conv taps are learned weights (ATTN_IN_WEIGHTS)",
    .init = ny_init,
    .forward = ny_forward,
    .backward = attn_nystrom_backward,
    .flops = ny_flops,
    .bytes = ny_bytes,
    .state_bytes = ny_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_nystrom_ref_forward,
    .input_cols = ny_input_cols,
    .init_weights = ny_init_weights,
    .check_params = "conv=3",
};
