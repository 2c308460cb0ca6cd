/* `infini` forward: Infini-attention (Munkhdalai, Faruqui, Gopal 2024,
 * "Leave No Context Behind: Efficient Infinite Context Transformers with
 * Infini-attention", arXiv 2404.07143, Sec. 2.1; docs/kernels/infini.md).
 *
 * Per segment s of L tokens, sigma = elu + 1, memory M [Dk x Dv] and z [Dk]
 * starting at 0 (per document under a DOCUMENT mask):
 *   A_mem = sigma(Q_s) M / (sigma(Q_s) z)              eq. (3); 0 in the first
 *                                                      segment or when the
 *                                                      denominator <= 1e-6 (ours)
 *   A_dot = causal softmax(sc Q_s K_s^T) V_s inside the segment
 *   O_s   = g A_mem + (1 - g) A_dot,  g = sigmoid(beta_h)   eq. (6)
 *   M    += sigma(K_s)^T V_s                            eq. (4), update=linear
 *   M    += sigma(K_s)^T (V_s - sigma(K_s) M / (sigma(K_s) z))  eq. (5), delta
 *   z    += colsum sigma(K_s)
 * No scale in the memory path (the paper's eq. 3 has none).
 *
 * Algorithm: one task per (batch, KV head) walks its segments in order; the
 * memory is read for the group's G query heads (sgemm l x Dv x Dk), the
 * in-segment softmax runs over blocks of T query rows against the keys up to
 * the block's last row (sgemm T x n x Dk, row softmax, sgemm T x Dv x n, so
 * only the causal half plus one block diagonal is computed), then the
 * segment is folded into M (sgemm Dk x Dv x l). Tasks are independent and
 * their reduction order fixed: bitwise identical results for any thread
 * count. The forward is the bounded-memory streaming form itself: after the
 * run the workspace holds, per (batch, KV head), M and z at the start of the
 * open segment and that segment's K, V rows (attn_infini_state), the
 * Dk Dv + Dk + L (Dk + Dv) floats per KV head, from which
 * attn_infini_step continues the stream one token at a time (decode). */
#include "infini.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- plan, segments ---- */

/* Per-thread forward scratch. */
typedef struct {
    float *sQ, *A, *den;  /* sigma(Q) [Lc x Dk], A_mem [Lc x Dv], denominators [Lc] */
    float *S, *inv;       /* scores of one block [T x Lc], 1 / row sums [T] */
    float *sK, *U;        /* the update: sigma(K) [Lc x Dk], V - retrieval [Lc x Dv] */
} fwd_bufs;

/* Carves the buffers from base (NULL: only counts); returns the floats used. */
static size_t fwd_carve(const infini_plan *pl, float *base, fwd_bufs *b)
{
    size_t off = 0;
    int64_t Lc = pl->Lc;
    b->sQ = infini_take(base, &off, Lc * pl->Dk), b->A = infini_take(base, &off, Lc * pl->Dv);
    b->den = infini_take(base, &off, Lc), b->S = infini_take(base, &off, pl->T * Lc);
    b->inv = infini_take(base, &off, pl->T), b->sK = infini_take(base, &off, Lc * pl->Dk);
    b->U = infini_take(base, &off, Lc * pl->Dv);
    return off;
}

enum { INFINI_DELTA, INFINI_LINEAR };
static const char *const infini_updates[] = {"delta", "linear", NULL};
static const opt_def infini_params[] = {
    {.name = "L", .type = OPT_INT, .def = INFINI_DEFAULT_L, .lo = 1, .hi = 1 << 16, .help = "segment length"},
    {.name = "update", .type = OPT_ENUM, .names = infini_updates, .def = INFINI_DELTA, .help = "memory update rule"},
    {.name = "tile", .type = OPT_INT, .def = INFINI_DEFAULT_TILE, .lo = 1, .hi = 1 << 16,
     .help = "query rows per softmax block"},
    {0},
};

int attn_infini_plan(infini_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "infini", infini_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->L = attn_param_int(a, infini_params, "L", &rc);
    int64_t tile = attn_param_int(a, infini_params, "tile", &rc);
    pl->delta = attn_param_enum(a, infini_params, "update", &rc) == INFINI_DELTA;
    if (rc)
        return rc;
    if (a->q_off != a->k_off || a->Nq != a->Nk)
        return attn_fail(ATTN_EUNSUPPORTED, "infini: query i reads the memory and segment of key i, expected "
                                            "N == N_kv and q_off == k_off, found N=%lld/%lld q_off=%lld k_off=%lld",
                         (long long)a->Nq, (long long)a->Nk, (long long)a->q_off, (long long)a->k_off);
    pl->G = a->H / a->H_kv, pl->Dk = a->D, pl->Dv = attn_dv(a);
    pl->Lc = pl->L < a->Nk ? pl->L : a->Nk; /* no segment is longer */
    pl->T = tile < pl->Lc ? tile : pl->Lc;
    for (int64_t j = 0; j < a->Nk; j = attn_key_block_end(a, j, pl->L))
        pl->nseg++;
    pl->state_floats = infini_round16(pl->Dk * pl->Dv) + infini_round16(pl->Dk) +
                       infini_round16(pl->L * pl->Dk) + infini_round16(pl->L * pl->Dv);
    fwd_bufs fb;
    pl->fwd_floats = fwd_carve(pl, NULL, &fb);
    pl->bwd_floats = a->backward ? attn_infini_bwd_floats(pl) : 0;
    pl->slot_floats = pl->fwd_floats > pl->bwd_floats ? pl->fwd_floats : pl->bwd_floats;
    return 0;
}

/* ---- workspace: [state per (b, KV head)][per-thread slots][backward dbeta partials] ---- */

static float *state_of(const attn_ctx *ctx, const infini_plan *pl, int64_t b, int64_t hk)
{
    return (float *)ctx->workspace + (size_t)(b * ctx->args.H_kv + hk) * pl->state_floats;
}

static float *slot_of(const attn_ctx *ctx, const infini_plan *pl, int t)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + (size_t)(a->B * a->H_kv) * pl->state_floats + (size_t)t * pl->slot_floats;
}

static int infini_init(attn_ctx *ctx, const attn_args *a)
{
    infini_plan pl;
    int rc = attn_infini_plan(&pl, a);
    if (rc)
        return rc;
    size_t n = (size_t)(a->B * a->H_kv) * pl.state_floats + (size_t)a->threads * pl.slot_floats;
    if (a->backward) /* one double dbeta partial per (b, h), summed over b in order */
        n += infini_round16(2 * a->B * a->H);
    ctx->workspace_bytes = sizeof(float) * n;
    ctx->state_bytes_used = sizeof(float) * (size_t)(a->B * a->H_kv) *
                            (size_t)(pl.Dk * pl.Dv + pl.Dk + pl.L * (pl.Dk + pl.Dv));
    return 0;
}

const float *attn_infini_state(const attn_ctx *ctx, int64_t b, int64_t hk, const float **z, const float **k,
                               const float **v, int64_t *rows)
{
    const attn_args *a = &ctx->args;
    infini_plan pl;
    if (b < 0 || b >= a->B || hk < 0 || hk >= a->H_kv || attn_infini_plan(&pl, a))
        return NULL;
    int64_t last = 0;
    for (int64_t j = 0; j < a->Nk; j = attn_key_block_end(a, j, pl.L))
        last = j;
    float *M = state_of(ctx, &pl, b, hk);
    *z = M + infini_round16(pl.Dk * pl.Dv);
    *k = *z + infini_round16(pl.Dk);
    *v = *k + infini_round16(pl.L * pl.Dk);
    *rows = a->Nk - last < pl.L ? a->Nk - last : 0;
    return M;
}

/* ---- pieces shared with the backward ---- */

float attn_infini_gate(const attn_tensor *w, int64_t h)
{
    float x = attn_at(w, 0, h, 0)[0];
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x); /* no overflow of exp(-x) for very negative beta */
    return e / (1.0f + e);
}

void attn_infini_elu1(const float *x, int64_t ldx, int64_t n, int64_t D, float *f)
{
    for (int64_t r = 0; r < n; r++) {
        const float *restrict xr = x + r * ldx;
        float *restrict fr = f + r * D;
        for (int64_t d = 0; d < D; d++) { /* branch-free selects (the signs are random) */
            float t = xr[d] > 0 ? 0.0f : xr[d];
            fr[d] = t < ATTN_EXP_LO ? ATTN_EXP_LO : t; /* sigma stays a normal float > 0; NaN passes */
        }
        attn_vexp(fr, fr, D);
        /* elu(x) + 1 = max(x + 1, e^min(x, 0)) (e^x >= 1 + x, e^0 = 1): a vmaxps,
         * not a branch; a NaN x fails the comparison and keeps e = NaN */
        for (int64_t d = 0; d < D; d++) {
            float e = fr[d], p = xr[d] + 1.0f;
            fr[d] = p > e ? p : e;
        }
    }
}

/* max (op_max) or sum of s[0..n), eight partial lanes under AVX2 (a fixed order). */
static float row_reduce(const float *s, int64_t n, int op_max)
{
    float acc = op_max ? -INFINITY : 0.0f;
    int64_t j = 0;
#ifdef __AVX2__
    if (n >= 8) {
        __m256 v = _mm256_loadu_ps(s);
        for (j = 8; j + 8 <= n; j += 8)
            v = op_max ? _mm256_max_ps(v, _mm256_loadu_ps(s + j)) : _mm256_add_ps(v, _mm256_loadu_ps(s + j));
        float t[8];
        _mm256_storeu_ps(t, v);
        for (int i = 0; i < 8; i++)
            acc = op_max ? (t[i] > acc ? t[i] : acc) : acc + t[i];
    }
#endif
    for (; j < n; j++)
        acc = op_max ? (s[j] > acc ? s[j] : acc) : acc + s[j];
    return acc;
}

void attn_infini_softmax_block(float *S, int64_t nb, int64_t i0, int64_t ncols, float *inv)
{
    for (int64_t r = 0; r < nb; r++) {
        float *s = S + r * ncols;
        int64_t n = i0 + r + 1; /* the diagonal is always allowed: the sum is >= 1 */
        float m = row_reduce(s, n, 1);
        for (int64_t j = 0; j < n; j++)
            s[j] -= m;
        attn_vexp(s, s, n);
        float il = 1.0f / row_reduce(s, n, 0);
        if (inv)
            inv[r] = il;
        for (int64_t j = 0; !inv && j < n; j++)
            s[j] *= il;
        for (int64_t j = n; j < ncols; j++)
            s[j] = 0;
    }
}

double attn_infini_update(const infini_plan *pl, const attn_io *io, int64_t b, int64_t hk, int64_t j0, int64_t l,
                          float *M, float *z, int read, float *sK, float *U)
{
    int64_t Dk = pl->Dk, Dv = pl->Dv, ldu = io->v.sn;
    const float *V = attn_at(&io->v, b, hk, j0), *Uw = V;
    double flops = 2.0 * (double)(l * Dk * Dv);
    attn_infini_elu1(attn_at(&io->k, b, hk, j0), io->k.sn, l, Dk, sK);
    if (pl->delta && read) { /* eq. (5): retrieve with the old M, z, write the residual */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)l, (int)Dv, (int)Dk, 1.0f, sK, (int)Dk, M,
                    (int)Dv, 0.0f, U, (int)Dv);
        for (int64_t i = 0; i < l; i++) {
            float e = attn_dot(sK + i * Dk, z, Dk), *u = U + i * Dv;
            const float *v = V + i * io->v.sn;
            for (int64_t c = 0; c < Dv; c++)
                u[c] = e > (float)INFINI_DEN_EPS ? v[c] - u[c] / e : v[c];
        }
        Uw = U, ldu = Dv, flops *= 2;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Dk, (int)Dv, (int)l, 1.0f, sK, (int)Dk, Uw, (int)ldu,
                1.0f, M, (int)Dv);
    for (int64_t i = 0; i < l; i++)
        for (int64_t d = 0; d < Dk; d++)
            z[d] += sK[i * Dk + d];
    return flops;
}

/* ---- forward ---- */

typedef struct {
    double flops, bytes, exps;
} infini_tally;

// One segment [j0, j0 + l) of the G query heads of (b, hk): O rows =
// g A_mem + (1 - g) A_dot. M [Dk x Dv], z [Dk]: the memory before the
// segment, read only when `read` (not a document's first segment).
static void seg_heads(const infini_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t hk,
                      int64_t j0, int64_t l, const float *M, const float *z, int read, const fwd_bufs *w,
                      infini_tally *t)
{
    int64_t Dk = pl->Dk, Dv = pl->Dv;
    float sc = (float)attn_scale(a);
    const float *K = attn_at(&io->k, b, hk, j0), *V = attn_at(&io->v, b, hk, j0);
    for (int64_t gi = 0; gi < pl->G; gi++) {
        int64_t h = hk * pl->G + gi;
        const float *Q = attn_at(&io->q, b, h, j0);
        float *O = attn_at(&io->o, b, h, j0), g = attn_infini_gate(&io->w, h);
        if (read) { /* eq. (3) */
            attn_infini_elu1(Q, io->q.sn, l, Dk, w->sQ);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)l, (int)Dv, (int)Dk, 1.0f, w->sQ, (int)Dk, M,
                        (int)Dv, 0.0f, w->A, (int)Dv);
            for (int64_t i = 0; i < l; i++) {
                float d = attn_dot(w->sQ + i * Dk, z, Dk), *r = w->A + i * Dv;
                for (int64_t c = 0; c < Dv; c++)
                    r[c] = d > (float)INFINI_DEN_EPS ? r[c] / d : 0.0f;
            }
            t->flops += 2.0 * (double)(l * Dk * Dv);
            t->exps += (double)(l * Dk);
        }
        for (int64_t i0 = 0; i0 < l; i0 += pl->T) { /* keys up to the block's last row */
            int64_t nb = l - i0 < pl->T ? l - i0 : pl->T, n = i0 + nb;
            float *Ob = O + i0 * io->o.sn;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n, (int)Dk, sc, Q + i0 * io->q.sn,
                        (int)io->q.sn, K, (int)io->k.sn, 0.0f, w->S, (int)n);
            attn_infini_softmax_block(w->S, nb, i0, n, w->inv);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)n, 1.0f - g, w->S, (int)n, V,
                        (int)io->v.sn, 0.0f, Ob, (int)io->o.sn);
            for (int64_t r = 0; r < nb; r++) /* the softmax normaliser, on the nb x Dv product */
                for (int64_t c = 0; c < Dv; c++)
                    Ob[r * io->o.sn + c] *= w->inv[r];
            t->flops += 2.0 * (double)(nb * n * (Dk + Dv));
            t->bytes += 4.0 * (double)(nb * Dk + n * (Dk + Dv));
            t->exps += (double)(nb * (2 * i0 + nb + 1) / 2);
        }
        for (int64_t i = 0; read && i < l; i++)
            for (int64_t c = 0; c < Dv; c++)
                O[i * io->o.sn + c] += g * w->A[i * Dv + c];
    }
}

// q is (B,H,N,Dk), k (B,H_kv,N,Dk), v (B,H_kv,N,Dv), w (1,H,1,1); o (B,H,N,Dv).
// One (b, hk): the segments in order; the memory and the open segment end in st.
static void task_forward(const infini_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t hk,
                         float *st, float *ws, infini_tally *t)
{
    int64_t Dk = pl->Dk, Dv = pl->Dv, N = a->Nk;
    float *M = st, *z = M + infini_round16(Dk * Dv), *Kt = z + infini_round16(Dk), *Vt = Kt + infini_round16(pl->L * Dk);
    fwd_bufs w;
    fwd_carve(pl, ws, &w);
    for (int64_t j0 = 0, j1; j0 < N; j0 = j1) {
        j1 = attn_key_block_end(a, j0, pl->L);
        int64_t l = j1 - j0;
        int fresh = attn_key_starts_seq(a, j0);
        if (fresh) {
            memset(M, 0, sizeof(float) * (size_t)(Dk * Dv));
            memset(z, 0, sizeof(float) * (size_t)Dk);
        }
        seg_heads(pl, a, io, b, hk, j0, l, M, z, !fresh, &w, t);
        /* fold the segment in when a later one reads it, or when it completes the
         * stream (the state then needs no open rows); keep an open segment's rows */
        if (j1 < N ? !attn_key_starts_seq(a, j1) : l == pl->L) {
            t->flops += attn_infini_update(pl, io, b, hk, j0, l, M, z, !fresh, w.sK, w.U);
            t->exps += (double)(l * Dk);
        } else if (j1 == N) {
            for (int64_t i = 0; i < l; i++) {
                memcpy(Kt + i * Dk, attn_at(&io->k, b, hk, j0 + i), sizeof(float) * (size_t)Dk);
                memcpy(Vt + i * Dv, attn_at(&io->v, b, hk, j0 + i), sizeof(float) * (size_t)Dv);
            }
        }
    }
}

int attn_infini_check_w(const attn_args *a, const attn_tensor *w)
{
    if (!w->data || w->D < 1 || w->H < a->H)
        return attn_fail(ATTN_EINVAL, "infini: expected io.w [1,H=%lld,1,1] holding beta per head, found %s",
                         (long long)a->H, w->data ? "fewer heads or columns" : "none");
    return 0;
}

static int infini_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    infini_plan pl;
    int rc = attn_infini_plan(&pl, a);
    if (rc || (rc = attn_infini_check_w(a, &io->w)))
        return rc;
    int64_t tasks = a->B * a->H_kv;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop */
#pragma omp parallel for num_threads(a->threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / a->H_kv, hk = t % a->H_kv;
        infini_tally tl = {0, 0, 0};
        task_forward(&pl, a, io, b, hk, state_of(ctx, &pl, b, hk), slot_of(ctx, &pl, omp_get_thread_num()), &tl);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
    }
    return 0;
}

/* ---- streaming form ---- */

size_t attn_infini_step_floats(const attn_args *a)
{
    infini_plan pl;
    if (attn_infini_plan(&pl, a))
        return 0;
    return infini_round16(pl.L) + infini_round16(pl.L * pl.Dk) + infini_round16(pl.L * pl.Dv) +
           infini_round16(pl.Dk) + infini_round16(pl.Dv);
}

int attn_infini_step(const attn_args *a, const attn_tensor *w, int64_t hk, float *M, float *z, float *Kseg, float *Vseg,
                     int64_t *rows, const float *q, const float *k, const float *v, float *o, float *scratch)
{
    infini_plan pl;
    int rc = attn_infini_plan(&pl, a);
    if (rc || (rc = attn_infini_check_w(a, w)))
        return rc;
    int64_t Dk = pl.Dk, Dv = pl.Dv, n = *rows + 1;
    if (*rows < 0 || *rows >= pl.L || hk < 0 || hk >= a->H_kv)
        return attn_fail(ATTN_EINVAL, "infini step: expected 0 <= rows < L=%lld and 0 <= hk < H_kv, found rows=%lld "
                                      "hk=%lld", (long long)pl.L, (long long)*rows, (long long)hk);
    float *p = scratch, *sK = p + infini_round16(pl.L), *U = sK + infini_round16(pl.L * Dk);
    float *sq = U + infini_round16(pl.L * Dv), *am = sq + infini_round16(Dk), sc = (float)attn_scale(a);
    memcpy(Kseg + *rows * Dk, k, sizeof(float) * (size_t)Dk);
    memcpy(Vseg + *rows * Dv, v, sizeof(float) * (size_t)Dv);
    for (int64_t gi = 0; gi < pl.G; gi++) {
        const float *qg = q + gi * Dk;
        float g = attn_infini_gate(w, hk * pl.G + gi), *og = o + gi * Dv;
        attn_infini_elu1(qg, Dk, 1, Dk, sq);
        float den = attn_dot(sq, z, Dk);
        for (int64_t c = 0; c < Dv; c++) {
            float num = 0;
            for (int64_t d = 0; d < Dk; d++)
                num += sq[d] * M[d * Dv + c];
            am[c] = den > (float)INFINI_DEN_EPS ? num / den : 0.0f;
        }
        for (int64_t j = 0; j < n; j++)
            p[j] = sc * attn_dot(qg, Kseg + j * Dk, Dk);
        attn_infini_softmax_block(p, 1, n - 1, n, NULL);
        for (int64_t c = 0; c < Dv; c++) {
            float ad = 0;
            for (int64_t j = 0; j < n; j++)
                ad += p[j] * Vseg[j * Dv + c];
            og[c] = (1.0f - g) * ad + g * am[c];
        }
    }
    *rows = n;
    if (n == pl.L) { /* the segment is complete: fold it in (z = 0 retrieves 0) */
        attn_io io = {.k = {.data = Kseg, .B = 1, .H = 1, .N = pl.L, .D = Dk, .sb = pl.L * Dk, .sh = pl.L * Dk, .sn = Dk},
                      .v = {.data = Vseg, .B = 1, .H = 1, .N = pl.L, .D = Dv, .sb = pl.L * Dv, .sh = pl.L * Dv, .sn = Dv}};
        attn_infini_update(&pl, &io, 0, 0, 0, pl.L, M, z, 1, sK, U);
        *rows = 0;
    }
    return 0;
}

/* ---- weights, cost model ---- */

static int64_t infini_input_cols(const attn_args *a, unsigned input)
{
    (void)a;
    return input == ATTN_IN_WEIGHTS ? 1 : 0;
}

/* beta_h = 0: g = 1/2, memory and local attention mixed equally at the start
 * (the paper gives no initial value). */
static void infini_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    (void)seed;
    for (int64_t h = 0; h < a->H; h++)
        attn_at(w, 0, h, 0)[0] = 0.0f;
}

/* Allowed (query, key) pairs of one sequence: sum over segments of l(l+1)/2. */
static double seg_pairs(const attn_args *a, int64_t L)
{
    double n = 0;
    for (int64_t j0 = 0, j1; j0 < a->Nk; j0 = j1) {
        j1 = attn_key_block_end(a, j0, L);
        n += (double)(j1 - j0) * (double)(j1 - j0 + 1) / 2;
    }
    return n;
}

/* Forward FLOPs per (b, head): 2 L N D for the in-segment softmax, here
 * with the exact causal pair count (2 (Dk + Dv) per pair, products only),
 * plus 2 N Dk Dv for the memory read per query head and 2 N Dk Dv for the
 * update (+ 2 N Dk Dv for the delta retrieval) per KV head, which the G query
 * heads of a group share. Backward 2.5x forward (docs/kernel-interface.md). */
static double infini_flops(const attn_args *a, attn_pass pass)
{
    infini_plan pl;
    if (attn_infini_plan(&pl, a))
        return 0;
    double N = (double)a->Nk, Dk = (double)pl.Dk, Dv = (double)pl.Dv, B = (double)a->B;
    double fwd = B * ((double)a->H * (2 * (Dk + Dv) * seg_pairs(a, pl.L) + 2 * N * Dk * Dv) +
                      (double)a->H_kv * (2 + 2 * pl.delta) * N * Dk * Dv);
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Minimum fp32 traffic: forward reads Q, K, V, beta and writes O; backward
 * reads Q, K, V, dO, beta and writes dQ, dK, dV, dbeta (no LSE: the kernel has
 * no single normaliser and recomputes the segment softmax). */
static double infini_bytes(const attn_args *a, attn_pass pass)
{
    double N = (double)a->Nk, Dk = (double)a->D, Dv = (double)attn_dv(a), H = (double)a->H;
    double q = H * N * Dk, kv = (double)a->H_kv * N * (Dk + Dv), o = H * N * Dv, B = (double)a->B;
    return pass == ATTN_PASS_FWD ? 4 * (B * (q + kv + o) + H) : 4 * (B * (2 * q + 2 * kv + o) + 2 * H);
}

/* State per (b, KV head): M, z and the open segment's K, V rows. */
static size_t infini_state_bytes(const attn_args *a)
{
    infini_plan pl;
    if (attn_infini_plan(&pl, a))
        return 0;
    return sizeof(float) * (size_t)(a->B * a->H_kv) * (size_t)(pl.Dk * pl.Dv + pl.Dk + pl.L * (pl.Dk + pl.Dv));
}

const attn_kernel attn_kernel_infini = {
    .name = "infini",
    .family = "infini",
    .reference = "Munkhdalai, Faruqui, Gopal 2024, Infini-attention (arXiv 2404.07143). sigma = elu+1, "
                 "A_mem = 0 in a document's first segment or when sigma(q) z <= 1e-6; no scale in the "
                 "memory path; g = sigmoid(beta_h) learned per head (ATTN_IN_WEIGHTS, init 0)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_RECURRENT | ATTN_GQA | ATTN_DV | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL) | ATTN_MASK_BIT(ATTN_MASK_DOCUMENT),
    .params = infini_params,
    .check_params = "L=8",
    .init = infini_init,
    .forward = infini_forward,
    .backward = attn_infini_backward,
    .flops = infini_flops,
    .bytes = infini_bytes,
    .state_bytes = infini_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_infini_ref_forward,
    .input_cols = infini_input_cols,
    .init_weights = infini_init_weights,
};
