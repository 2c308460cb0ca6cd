/* `linformer` forward, layout and cost model (the math is in linformer.h;
 * docs/kernels/linformer.md).
 *
 * Phase 1, one task per (b, KV head, E or F): K~ = E[:, :L] K[:L] and
 * V~ = F[:, :L] V[:L] (cblas_sgemm per run of rows in one row of io.w, k x D
 * from L keys) into the workspace; the backward runs the same loop.
 * Phase 2, one task per (b, query head, tile of T query rows): S = sc Q K~^T
 * (sgemm T x k), row softmax with its logsumexp, O = P V~ (sgemm). Every task
 * runs in a fixed order and writes its own rows: bitwise identical results
 * for any thread count. */
#include "linformer.h"

#include "common/rng.h"
#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define LF_DEFAULT_K 256
#define LF_DEFAULT_TILE 128
#define LF_COLBLK 256 /* dE/dF columns per backward task */

static const opt_def lf_params[] = {
    {.name = "k", .type = OPT_INT, .def = LF_DEFAULT_K, .lo = 1, .hi = 1 << 20,
     .help = "projected keys (rows of E and F); above n it is clamped to n"},
    {.name = "n", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1 << 30,
     .help = "positions E and F cover (0: Nk); fewer keys use the first Nk columns"},
    {.name = "share_ef", .type = OPT_INT, .def = 0, .lo = 0, .hi = 1, .help = "1: F = E (key-value sharing)"},
    {.name = "tile", .type = OPT_INT, .def = LF_DEFAULT_TILE, .lo = 1, .hi = 1 << 16, .help = "query rows per task"},
    {0},
};

int attn_linformer_plan(lf_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "linformer", lf_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    int64_t k = attn_param_int(a, lf_params, "k", &rc), n = attn_param_int(a, lf_params, "n", &rc);
    pl->share_ef = (int)attn_param_int(a, lf_params, "share_ef", &rc);
    pl->T = attn_param_int(a, lf_params, "tile", &rc);
    if (rc)
        return rc;
    pl->n = n ? n : a->Nk;
    if (a->Nk > pl->n)
        return attn_fail(ATTN_EINVAL, "linformer: E and F cover n=%lld positions, expected Nk <= n, found Nk=%lld",
                         (long long)pl->n, (long long)a->Nk);
    /* k > n adds rows but no rank (E K has rank <= n) and costs more than
     * exact attention: the projection is clamped to n rows */
    pl->k = k < pl->n ? k : pl->n;
    if (pl->k < 1)
        return attn_fail(ATTN_EINVAL, "linformer: expected Nk >= 1 keys to project, found %lld", (long long)a->Nk);
    pl->nmat = pl->share_ef ? 1 : 2;
    pl->P = pl->nmat * pl->k * pl->n;
    pl->R = (pl->nmat * pl->k + a->H - 1) / a->H;
    pl->W = pl->R * pl->n;
    pl->nqt = (a->Nq + pl->T - 1) / pl->T;
    pl->colblk = LF_COLBLK;
    /* forward: S (T x k); backward: P and dP (T x k) */
    pl->thread_floats = (size_t)((a->backward ? 2 : 1) * pl->T * LF_ROUND16(pl->k) + 16);
    return 0;
}

/* ---- workspace ---- */

static size_t lf_kv_floats(const attn_args *a, const lf_plan *pl)
{
    return (size_t)LF_ROUND16(a->B * a->H_kv * 2 * pl->k * a->D);
}

static size_t lf_shared_floats(const attn_args *a, const lf_plan *pl)
{
    return (a->backward ? 2 : 1) * lf_kv_floats(a, pl);
}

lf_ws attn_linformer_ws(const attn_ctx *ctx, const lf_plan *pl)
{
    lf_ws w = {.kv = ctx->workspace};
    if (ctx->args.backward)
        w.dkv = w.kv + lf_kv_floats(&ctx->args, pl);
    return w;
}

float *attn_linformer_scratch(const attn_ctx *ctx, const lf_plan *pl, int thread)
{
    return (float *)ctx->workspace + lf_shared_floats(&ctx->args, pl) + (size_t)thread * pl->thread_floats;
}

static int lf_init(attn_ctx *ctx, const attn_args *a)
{
    lf_plan pl;
    int rc = attn_linformer_plan(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = sizeof(float) * (lf_shared_floats(a, &pl) + (size_t)a->threads * pl.thread_floats);
    /* K~ and V~ of every (b, KV head): all the forward keeps of the keys */
    ctx->state_bytes_used = sizeof(float) * (size_t)(a->B * a->H_kv * 2 * pl.k * a->D);
    return 0;
}

/* ---- weights ---- */

int attn_linformer_check_w(const lf_plan *pl, const attn_tensor *w, const char *what)
{
    if (!w->data)
        return attn_fail(ATTN_EINVAL, "linformer %s: expected io.w with the projections E, F, found none", what);
    if (w->D != pl->W)
        return attn_fail(ATTN_EINVAL,
                         "linformer %s: expected io.w with %lld floats per head (E%s [k=%lld x n=%lld] shared by "
                         "the heads), found %lld: weights made for another Nk (n), k or share_ef",
                         what, (long long)pl->W, pl->share_ef ? "" : " and F", (long long)pl->k, (long long)pl->n,
                         (long long)w->D);
    return 0;
}

/* Initial values: E and F i.i.d. N(0, 1/k) (the paper's random projection:
 * E[E^T E] = I), one draw shared by the heads. */
static void lf_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    lf_plan pl;
    if (attn_linformer_plan(&pl, a))
        return;
    attn_rng r;
    attn_rng_seed_item(&r, seed, 0x11f, 0);
    double sd = 1.0 / sqrt((double)pl.k);
    for (int64_t p = 0; p < pl.R * a->H * pl.n; p++) /* unused slots past theta: 0 */
        *lf_theta_at(&pl, w, p) = p < pl.P ? (float)(sd * attn_rng_normal(&r)) : 0.0f;
}

static int64_t lf_input_cols(const attn_args *a, unsigned input)
{
    lf_plan pl;
    if (input != ATTN_IN_WEIGHTS || attn_linformer_plan(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.W;
}

/* ---- forward ---- */

// K~ (mat 0) or V~ (mat 1) of (b, KV head h): [k x D] into kv, one sgemm per
// run of E's (F's) rows in one row of io.w; returns the FLOPs
static double lf_project(const attn_args *a, const lf_plan *pl, const attn_io *io, int64_t b, int64_t h, int mat,
                         float *kv)
{
    int64_t L = attn_kv_len(a, b), D = a->D;
    const attn_tensor *x = mat ? &io->v : &io->k;
    if (L == 0) {
        memset(kv, 0, sizeof(float) * (size_t)(pl->k * D));
        return 0;
    }
    for (int64_t r = 0, r1; r < pl->k; r = r1) {
        r1 = lf_run_end(pl, mat, r, pl->k);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r), (int)D, (int)L, 1.0f,
                    lf_row(pl, &io->w, lf_row0(pl, mat) + r), (int)pl->n, attn_at(x, b, h, 0), (int)x->sn, 0.0f,
                    kv + r * D, (int)D);
    }
    return 2.0 * (double)(pl->k * L * D);
}

double attn_linformer_project_all(const attn_args *a, const lf_plan *pl, const attn_io *io, float *kv)
{
    double flops = 0;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < a->B * a->H_kv * 2; task++) {
        int64_t bh = task / 2, b = bh / a->H_kv, h = bh % a->H_kv;
        int mat = (int)(task % 2);
        flops += lf_project(a, pl, io, b, h, mat, lf_kv(a, pl, kv, b, h, mat));
    }
    return flops;
}

static double lf_batch_keys(const attn_args *a);

typedef struct {
    double flops, exps, bytes;
} lf_tally;

static void lf_zero_rows(const attn_tensor *t, float *lse, const attn_args *a, int64_t b, int64_t h, int64_t i0,
                         int64_t i1)
{
    for (int64_t i = i0; i < i1; i++) {
        memset(attn_at(t, b, h, i), 0, sizeof(float) * (size_t)t->D);
        if (lse)
            lse[(b * a->H + h) * a->Nq + i] = -INFINITY;
    }
}

// rows [i0, i0 + T) of (b, h), cut at the sequence's length: S = sc Q K~^T, softmax, O = P V~
static void lf_tile_forward(const attn_args *a, const lf_plan *pl, const attn_io *io, float *kvall, int64_t b,
                            int64_t h, int64_t i0, float *S, lf_tally *t)
{
    int64_t L = attn_q_len(a, b), D = a->D, k = pl->k, ld = LF_ROUND16(k);
    int64_t i1 = i0 + pl->T < a->Nq ? i0 + pl->T : a->Nq, nb = (i1 < L ? i1 : L) - i0;
    lf_zero_rows(&io->o, io->lse, a, b, h, nb > 0 ? i0 + nb : i0, i1); /* padding rows */
    if (nb <= 0)
        return;
    int64_t hk = h / (a->H / a->H_kv);
    const float *kt = lf_kv(a, pl, kvall, b, hk, 0), *vt = lf_kv(a, pl, kvall, b, hk, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)D, (float)attn_scale(a),
                attn_at(&io->q, b, h, i0), (int)io->q.sn, kt, (int)D, 0.0f, S, (int)ld);
    for (int64_t r = 0; r < nb; r++) {
        float lse = attn_softmax_row(S + r * ld, k);
        if (io->lse)
            io->lse[(b * a->H + h) * a->Nq + i0 + r] = lse;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)D, (int)k, 1.0f, S, (int)ld, vt, (int)D,
                0.0f, attn_at(&io->o, b, h, i0), (int)io->o.sn);
    t->flops += 4.0 * (double)(nb * k * D);
    t->exps += (double)(nb * k);
    t->bytes += 4.0 * (double)(nb * D + 2 * k * D);
}

// q, k, v, o are (B,H,N,D), w is (1,H,1,W); lse (B,H,N)
static int lf_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    lf_plan pl;
    int rc = attn_linformer_plan(&pl, a);
    if (rc || (rc = attn_linformer_check_w(&pl, &io->w, "forward")))
        return rc;
    lf_ws ws = attn_linformer_ws(ctx, &pl);
    int64_t tiles = a->B * a->H * pl.nqt;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
#pragma omp parallel num_threads(a->threads)
    {
        lf_tally t = {0};
        float *S = attn_linformer_scratch(ctx, &pl, omp_get_thread_num());
        t.flops += attn_linformer_project_all(a, &pl, io, ws.kv);
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tiles; task++) {
            int64_t bh = task / pl.nqt;
            lf_tile_forward(a, &pl, io, ws.kv, bh / a->H, bh % a->H, (task % pl.nqt) * pl.T, S, &t);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)t.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)t.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)t.bytes);
    }
    /* the projections read K and V, and E and F per (b, KV head) */
    attn_counter_add(ATTN_CNT_BYTES_READ,
                     (long long)(8.0 * (double)a->H_kv * lf_batch_keys(a) * (double)(a->D + pl.k)));
    return 0;
}

/* A padded sequence's or a prefix's own problem (gate.c) has fewer keys:
 * it keeps the full problem's E and F, and so its n. */
static void lf_ref_prefix_args(const attn_args *full, int64_t b, attn_args *prefix)
{
    (void)b;
    lf_plan pl;
    if (attn_linformer_plan(&pl, full) || param_bag_get(&prefix->params, "n") || prefix->params.n >= PARAM_BAG_MAX)
        return;
    char kv[32];
    snprintf(kv, sizeof kv, "n=%lld", (long long)pl.n);
    param_bag_add(&prefix->params, kv);
}

/* ---- cost model ---- */

/* Keys of the whole batch, each sequence at its own length. */
static double lf_batch_keys(const attn_args *a)
{
    double n = 0;
    for (int64_t b = 0; b < a->B; b++)
        n += (double)attn_kv_len(a, b);
    return n;
}

/* Per sequence of L keys: E K and F V 2 k L D each per KV head, scores and
 * P V~ 2 L k D each per query head: 8 k L D when H_kv = H. Backward: the
 * attention over the k projected keys 2.5x its forward (10 k L D per query
 * head, the softmax convention) plus dK = E^T dK~, dV = F^T dV~, dE, dF
 * (2 k L D each per KV head): 18 k L D when H_kv = H. The projections the
 * backward recomputes are not useful work (the counters include them). */
static double lf_flops(const attn_args *a, attn_pass pass)
{
    lf_plan pl;
    if (attn_linformer_plan(&pl, a))
        return 0;
    double per = lf_batch_keys(a) * (double)pl.k * (double)a->D, H = (double)a->H, Hk = (double)a->H_kv;
    return pass == ATTN_PASS_FWD ? (4 * Hk + 4 * H) * per : (8 * Hk + 10 * H) * per;
}

/* Minimum fp32 traffic: the softmax convention's Q, K, V, O, LSE (and dO,
 * dQ, dK, dV) at each sequence's length, plus the columns of E and F each
 * sequence projects with (and those of dE, dF): a padded batch costs what its
 * sequences cost alone. */
static double lf_bytes(const attn_args *a, attn_pass pass)
{
    lf_plan pl;
    if (attn_linformer_plan(&pl, a))
        return 0;
    double H = (double)a->H, Hk = (double)a->H_kv, L = lf_batch_keys(a), D = (double)a->D;
    double P = (double)(pl.nmat * pl.k) * L;
    if (pass == ATTN_PASS_FWD) /* Q, O, LSE; K, V; E, F */
        return 4 * (H * L * (2 * D + 1) + 2 * Hk * L * D + P);
    return 4 * (H * L * (4 * D + 1) + 4 * Hk * L * D + 2 * P); /* + dO, dQ; dK, dV; dE, dF */
}

/* K~ and V~: 2 k D floats per (b, KV head). */
static size_t lf_state_bytes(const attn_args *a)
{
    lf_plan pl;
    if (attn_linformer_plan(&pl, a))
        return 0;
    return sizeof(float) * (size_t)(a->B * a->H_kv * 2 * pl.k * a->D);
}

const attn_kernel attn_kernel_linformer = {
    .name = "linformer",
    .family = "linformer",
    .reference = "Wang et al. 2020 (Linformer: Self-Attention with Linear Complexity)",
    .flags = ATTN_APPROX | ATTN_TRAINABLE | ATTN_GQA | ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL),
    .params = lf_params,
    .notes = "learned E, F [k x n] shared by the heads (io.w), n = Nk unless given; padding keys = zero rows",
    .check_params = "k=3",
    .init = lf_init,
    .forward = lf_forward,
    .backward = attn_linformer_backward,
    .flops = lf_flops,
    .bytes = lf_bytes,
    .state_bytes = lf_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = attn_linformer_ref_forward,
    .input_cols = lf_input_cols,
    .init_weights = lf_init_weights,
    .ref_prefix_args = lf_ref_prefix_args,
    /* no ref_view: O = P (F V) mixes the values with F's signed weights, so no
     * non-negative row-stochastic attention over the original keys exists */
};
