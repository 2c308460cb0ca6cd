/* `sinkhorn`: Sparse Sinkhorn attention (Tay et al., ICML 2020; notation in
 * sinkhorn.h, docs/kernels/sinkhorn.md).
 *
 * Forward in three parallel phases, none of whose splits depends on the
 * thread count (bitwise identical for any number of threads):
 *   1. per (b, KV head): K and V packed into zero-padded [n_b*c x D] blocks
 *      (any view strides; a block is then c*D contiguous floats);
 *   2. per (b, query head): summaries, sort-net logits (one sgemm), the soft
 *      permutation P and the tail masses mu, kept in the workspace;
 *   3. per (b, query head, tile of query blocks): the tile's sorted blocks
 *      Kt, Vt = P[tile] x packs (one sgemm each over whole blocks), then per
 *      query block the scores over [K_i; Kt_i] (two sgemms), the masked row
 *      softmax and O = A [V_i; Vt_i] (two sgemms). */
#include "sinkhorn_internal.h"

#include "common/rng.h"
#include "kernels/core/counters.h"
#include "kernels/core/dw_partials.h"
#include "kernels/core/softmax_rows.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define SK_TILE_ROWS 256 /* query rows per forward task (whole blocks, at least one) */

static const char *const sk_sorts[] = {"softmax", "sinkhorn", NULL};
static const opt_def sk_params[] = {
    {.name = "block", .type = OPT_INT, .def = 64, .lo = 1, .hi = 1 << 16, .help = "tokens per block"},
    {.name = "sort", .type = OPT_ENUM, .names = sk_sorts, .def = SK_SORT_SOFTMAX,
     .help = "soft permutation: row softmax (LRA's default) or Sinkhorn balancing"},
    {.name = "iters", .type = OPT_INT, .def = 5, .lo = 1, .hi = 1000, .help = "Sinkhorn rounds (sort=sinkhorn)"},
    {.name = "temp", .type = OPT_DOUBLE, .def = 0.75, .lo = 1e-3, .hi = 1e3,
     .help = "Sinkhorn temperature (sort=sinkhorn)"},
    {.name = "max_len", .type = OPT_INT, .def = 4096, .lo = 1, .hi = 1 << 30,
     .help = "tokens the sort net's weight table covers (with N if longer)"},
    {0},
};

static int sk_is_causal(const attn_args *a) { return a->mask.kind == ATTN_MASK_CAUSAL || a->mask.causal; }

int sk_plan_make(sk_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "sinkhorn", sk_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    int64_t block = attn_param_int(a, sk_params, "block", &rc);
    pl->sort = attn_param_enum(a, sk_params, "sort", &rc);
    pl->iters = attn_param_int(a, sk_params, "iters", &rc);
    pl->temp = opt_bag_double(sk_params, &a->params, "temp", &rc);
    int64_t max_len = attn_param_int(a, sk_params, "max_len", &rc);
    if (rc)
        return rc;
    pl->causal = sk_is_causal(a);
    if (pl->causal && pl->sort == SK_SORT_SINKHORN)
        return attn_fail(ATTN_EUNSUPPORTED, "sinkhorn: sort=sinkhorn has no causal form (its column "
                                            "normalisation reads the later blocks' summaries); expected "
                                            "sort=softmax with a causal mask");
    if (a->Nq != a->Nk || a->q_off != a->k_off)
        return attn_fail(ATTN_EINVAL, "sinkhorn: query block i attends key block i, expected N == N_kv and "
                                      "q_off == k_off, found N=%lld/%lld q_off=%lld k_off=%lld",
                         (long long)a->Nq, (long long)a->Nk, (long long)a->q_off, (long long)a->k_off);
    /* a block longer than the sequence is the one block c = N (the same output: its extra
       rows and slots would all be masked); the table's rows still count blocks of `block` */
    int64_t c = pl->c = block < a->Nk ? block : a->Nk, longest = max_len > a->Nk ? max_len : a->Nk;
    pl->D = a->D, pl->G = a->H / a->H_kv;
    pl->nb_max = (a->Nk + c - 1) / c;
    pl->rows_w = (longest + block - 1) / block;
    pl->ldw = a->D + 1;
    pl->tile_blocks = SK_TILE_ROWS / c > 0 ? SK_TILE_ROWS / c : 1;
    int64_t nb = pl->nb_max, D = pl->D, tb = pl->tile_blocks;
    /* phase 2: s [nb x D], R [nb x nb]; phase 3: Kt, Vt of a tile, A [c x 2c] */
    pl->fwd_floats = (size_t)(SK_ROUND16(nb * D) + SK_ROUND16(nb * nb) + 2 * SK_ROUND16(tb * c * D) +
                              SK_ROUND16(2 * c * c));
    pl->bwd_floats = a->backward ? sk_bwd_floats(pl) : 0;
    return 0;
}

/* ---- workspace ---- */

static size_t pack_floats(const sk_plan *pl) { return SK_ROUND16((size_t)(pl->nb_max * pl->c * pl->D)); }
static size_t sort_floats(const sk_plan *pl) { return SK_ROUND16((size_t)(pl->nb_max * pl->nb_max + pl->nb_max)); }
static size_t slot_floats(const sk_plan *pl)
{
    return SK_ROUND16(pl->fwd_floats > pl->bwd_floats ? pl->fwd_floats : pl->bwd_floats);
}

static float *pack_of(const attn_ctx *ctx, const sk_plan *pl, int64_t b, int64_t hk, int value)
{
    return (float *)ctx->workspace + (size_t)(2 * (b * ctx->args.H_kv + hk) + value) * pack_floats(pl);
}

static float *sort_of(const attn_ctx *ctx, const sk_plan *pl, int64_t b, int64_t h)
{
    const attn_args *a = &ctx->args;
    return (float *)ctx->workspace + (size_t)(2 * a->B * a->H_kv) * pack_floats(pl) +
           (size_t)(b * a->H + h) * sort_floats(pl);
}

float *sk_thread_scratch(const attn_ctx *ctx, const sk_plan *pl, int thread)
{
    const attn_args *a = &ctx->args;
    return sort_of(ctx, pl, a->B, 0) + (size_t)thread * slot_floats(pl);
}

float *sk_dw_partials(const attn_ctx *ctx, const sk_plan *pl)
{
    return sk_thread_scratch(ctx, pl, ctx->args.threads);
}

static int sk_init(attn_ctx *ctx, const attn_args *a)
{
    sk_plan pl;
    int rc = sk_plan_make(&pl, a);
    if (rc)
        return rc;
    size_t n = (size_t)(2 * a->B * a->H_kv) * pack_floats(&pl) + (size_t)(a->B * a->H) * sort_floats(&pl) +
               (size_t)a->threads * slot_floats(&pl);
    if (a->backward)
        n += attn_dw_partials_floats(a, attn_dw_stride(pl.nb_max * pl.ldw));
    ctx->workspace_bytes = sizeof(float) * n;
    return 0;
}

int sk_check_weights(const sk_plan *pl, const attn_tensor *w, const char *where)
{
    int64_t need = pl->nb_max * pl->ldw;
    if (w->data && w->D >= need)
        return 0;
    return attn_fail(ATTN_EINVAL, "%s: expected io.w with >= %lld weights per head (%lld blocks x (D+1)), found %lld; "
                                  "a model sizes them from param max_len: set it to the longest sequence",
                     where, (long long)need, (long long)pl->nb_max, w->data ? (long long)w->D : 0LL);
}

void sk_pack(const sk_plan *pl, const sk_geom *g, const attn_tensor *t, int64_t b, int64_t hk, float *dst)
{
    int64_t D = pl->D;
    for (int64_t n = 0; n < g->L; n++)
        memcpy(dst + n * D, attn_at(t, b, hk, n), sizeof(float) * (size_t)D);
    memset(dst + g->L * D, 0, sizeof(float) * (size_t)((g->nb * pl->c - g->L) * D));
}

/* ---- block attention ---- */

double sk_block_probs(const sk_plan *pl, const sk_geom *g, int64_t i, float sc, const float *q, int64_t ldq,
                      const float *Kb, const float *Ktb, float mu, float *A, float *lse)
{
    int64_t c = pl->c, D = pl->D, n = sk_rows(pl, g, i);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)c, (int)D, sc, q, (int)ldq, Kb, (int)D, 0.0f,
                A, (int)(2 * c));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)c, (int)D, sc, q, (int)ldq, Ktb, (int)D, 0.0f,
                A + c, (int)(2 * c));
    for (int64_t t = 0; t < n; t++) {
        float *row = A + t * 2 * c;
        for (int64_t u = pl->causal ? t + 1 : n; u < c; u++) /* future and padding keys */
            row[u] = -INFINITY;
        for (int64_t u = 0; u < c; u++)
            if (!sk_slot_valid(pl, g, i, u, mu))
                row[c + u] = -INFINITY;
        float l = attn_softmax_row(row, 2 * c);
        if (lse)
            lse[t] = l;
    }
    return 4.0 * (double)(n * c * D);
}

/* ---- forward ---- */

typedef struct {
    const attn_ctx *ctx;
    const sk_plan *pl;
    const attn_io *io;
} sk_run;

// phase 2 for (b, h): P and mu into the workspace, the padding rows of O and lse.
static double sort_head(const sk_run *run, int64_t b, int64_t h, float *scr)
{
    const attn_args *a = &run->ctx->args;
    const sk_plan *pl = run->pl;
    sk_geom g = sk_geom_of(pl, attn_q_len(a, b));
    float *P = sort_of(run->ctx, pl, b, h), *mu = P + g.nb * g.nb;
    float *s = scr, *R = s + SK_ROUND16(pl->nb_max * pl->D);
    for (int64_t n = g.L; n < a->Nq; n++) {
        memset(attn_at(&run->io->o, b, h, n), 0, sizeof(float) * (size_t)pl->D);
        if (run->io->lse)
            run->io->lse[(b * a->H + h) * a->Nq + n] = -INFINITY;
    }
    if (!g.nb)
        return 0;
    sk_summaries(pl, &g, pack_of(run->ctx, pl, b, h / pl->G, 0), s);
    sk_logits(pl, &g, s, attn_at(&run->io->w, 0, h, 0), R);
    sk_permute(pl, g.nb, R, P, NULL);
    sk_tail_mass(&g, P, mu);
    return 2.0 * (double)(g.nb * g.nb * pl->D);
}

// phase 3 for the query blocks [i0, i1) of (b, h).
static double attend_tile(const sk_run *run, int64_t b, int64_t h, int64_t i0, int64_t i1, float *scr)
{
    const attn_args *a = &run->ctx->args;
    const sk_plan *pl = run->pl;
    const attn_io *io = run->io;
    sk_geom g = sk_geom_of(pl, attn_q_len(a, b));
    int64_t c = pl->c, D = pl->D, hk = h / pl->G;
    const float *P = sort_of(run->ctx, pl, b, h), *mu = P + g.nb * g.nb;
    const float *Kp = pack_of(run->ctx, pl, b, hk, 0), *Vp = pack_of(run->ctx, pl, b, hk, 1);
    float *Kt = scr, *Vt = Kt + SK_ROUND16(pl->tile_blocks * c * D), *A = Vt + SK_ROUND16(pl->tile_blocks * c * D);
    float sc = (float)attn_scale(a);
    double flops = sk_sorted_blocks(pl, &g, P, mu, Kp, i0, i1, Kt) + sk_sorted_blocks(pl, &g, P, mu, Vp, i0, i1, Vt);
    for (int64_t i = i0; i < i1; i++) {
        int64_t n = sk_rows(pl, &g, i);
        const float *Ktb = Kt + (i - i0) * c * D, *Vtb = Vt + (i - i0) * c * D;
        float *lse = io->lse ? io->lse + (b * a->H + h) * a->Nq + i * c : NULL, *o = attn_at(&io->o, b, h, i * c);
        flops += sk_block_probs(pl, &g, i, sc, attn_at(&io->q, b, h, i * c), io->q.sn, Kp + i * c * D, Ktb, mu[i],
                                A, lse);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)c, 1.0f, A, (int)(2 * c),
                    Vp + i * c * D, (int)D, 0.0f, o, (int)io->o.sn);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)c, 1.0f, A + c, (int)(2 * c),
                    Vtb, (int)D, 1.0f, o, (int)io->o.sn);
        flops += 4.0 * (double)(n * c * D);
    }
    return flops;
}

// q is (B,H,N,D), k and v (B,H_kv,N,D), w (1,H,1,W); o is (B,H,N,D), lse (B,H,N).
static int sk_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    sk_plan pl;
    int rc = sk_plan_make(&pl, a);
    if (rc || (rc = sk_check_weights(&pl, &io->w, "sinkhorn")))
        return rc;
    sk_run run = {ctx, &pl, io};
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops */
#pragma omp parallel num_threads(a->threads)
    {
        float *scr = sk_thread_scratch(ctx, &pl, omp_get_thread_num());
        double flops = 0;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < a->B * a->H_kv * 2; t++) {
            int64_t bg = t / 2, b = bg / a->H_kv, hk = bg % a->H_kv;
            sk_geom g = sk_geom_of(&pl, attn_q_len(a, b));
            sk_pack(&pl, &g, t % 2 ? &io->v : &io->k, b, hk, pack_of(ctx, &pl, b, hk, (int)(t % 2)));
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < a->B * a->H; t++)
            flops += sort_head(&run, t / a->H, t % a->H, scr);
        int64_t tiles = (pl.nb_max + pl.tile_blocks - 1) / pl.tile_blocks;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < a->B * a->H * tiles; t++) {
            int64_t bh = t / tiles, b = bh / a->H, i0 = (t % tiles) * pl.tile_blocks;
            int64_t nb = sk_geom_of(&pl, attn_q_len(a, b)).nb, i1 = i0 + pl.tile_blocks < nb ? i0 + pl.tile_blocks : nb;
            if (i0 < i1)
                flops += attend_tile(&run, b, bh % a->H, i0, i1, scr);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)flops);
    }
    /* Q and O once, the packs once per tile (read whole by the mixing product), K and V once */
    double rows = attn_batch_rows(a), D = (double)a->D, c = (double)pl.c, tiles = 0;
    for (int64_t b = 0; b < a->B; b++)
        tiles += (double)((sk_geom_of(&pl, attn_q_len(a, b)).nb + pl.tile_blocks - 1) / pl.tile_blocks);
    attn_counter_add(ATTN_CNT_BYTES_READ, (long long)(4.0 * D * (rows * (double)(a->H + 2 * a->H_kv) +
                                                                  tiles * (double)a->H * 2 * c * (double)pl.nb_max)));
    attn_counter_add(ATTN_CNT_EXPS, (long long)((double)a->H * rows * 2 * c));
    return 0;
}

/* ---- weights, cost model ---- */

static int64_t sk_input_cols(const attn_args *a, unsigned input)
{
    sk_plan pl;
    if (input != ATTN_IN_WEIGHTS || sk_plan_make(&pl, a))
        return 0; /* bad params: init reports them */
    return pl.rows_w * pl.ldw;
}

/* Flax's Dense defaults, which LRA's sort net keeps: weights lecun-normal
 * (variance 1 / fan_in = 1 / D; drawn here untruncated), biases zero. Row j
 * is drawn j-th, so a longer table starts with the same rows. */
static void sk_init_weights(const attn_args *a, attn_tensor *w, uint64_t seed)
{
    int64_t D = a->D, ldw = D + 1, rows = w->D / ldw;
    double sd = 1.0 / sqrt((double)D);
    for (int64_t h = 0; h < a->H; h++) {
        attn_rng r;
        attn_rng_seed_item(&r, seed, 0x51c, (uint64_t)h);
        float *x = attn_at(w, 0, h, 0);
        memset(x, 0, sizeof(float) * (size_t)w->D);
        for (int64_t j = 0; j < rows; j++)
            for (int64_t d = 0; d < D; d++)
                x[j * ldw + d] = (float)(sd * attn_rng_normal(&r));
    }
}

/* Pairs (query, key or sorted slot) of one sequence, and the real key rows
 * the mixing product adds into sorted blocks (block j's rows once per block
 * i that mixes it). */
static void sk_counts(const sk_plan *pl, int64_t L, double *pairs, double *mixed_rows)
{
    sk_geom g = sk_geom_of(pl, L);
    double c = (double)pl->c;
    *pairs = *mixed_rows = 0;
    for (int64_t i = 0; i < g.nb; i++) {
        double n = (double)sk_rows(pl, &g, i), slots = g.nb > 1 ? c : (double)g.r;
        *pairs += pl->causal ? n * (n + 1) / 2 + (i > 0 ? n * c : 0) : n * (n + slots);
        *mixed_rows += n * (double)(pl->causal ? g.nb - 1 - i : g.nb); /* block i as the mixed one */
    }
}

/* Per (b, head) of a sequence of L tokens: sort net 2 n_b^2 D, the mixing
 * of K and V 2 * 2 D per mixed key row, the block attention 4 D per
 * (query, key or slot) pair. Backward: 2.5x the attention (the softmax
 * convention) and 2x the sort net and mixing (dP and dK from each product). */
static double sk_flops(const attn_args *a, attn_pass pass)
{
    sk_plan pl;
    if (sk_plan_make(&pl, a))
        return 0;
    double D = (double)a->D, total = 0;
    for (int64_t b = 0; b < a->B; b++) {
        double pairs, mixed, nb = (double)sk_geom_of(&pl, attn_q_len(a, b)).nb;
        sk_counts(&pl, attn_q_len(a, b), &pairs, &mixed);
        double sort = 2 * nb * nb * D + 4 * D * mixed, attend = 4 * D * pairs;
        total += (double)a->H * (pass == ATTN_PASS_FWD ? sort + attend : 2 * sort + 2.5 * attend);
    }
    return total;
}

/* The softmax minimum traffic plus the table rows each sequence reads (and,
 * backward, the dw rows written). */
static double sk_bytes(const attn_args *a, attn_pass pass)
{
    sk_plan pl;
    if (sk_plan_make(&pl, a))
        return 0;
    double rows = 0;
    for (int64_t b = 0; b < a->B; b++)
        rows += (double)sk_geom_of(&pl, attn_q_len(a, b)).nb;
    return attn_softmax_bytes(a, pass) + 4.0 * (double)a->H * rows * (double)pl.ldw * (pass == ATTN_PASS_FWD ? 1 : 2);
}

const attn_kernel attn_kernel_sinkhorn = {
    .name = "sinkhorn",
    .family = "sinkhorn",
    .reference = "Tay et al. 2020 (Sparse Sinkhorn Attention, ICML)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_BIT(ATTN_MASK_FULL) | ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = sk_params,
    .notes = "one softmax over [own block; sorted block]; sort net = learned table (io.w); causal: sort=softmax only",
    .init = sk_init,
    .forward = sk_forward,
    .backward = sk_backward,
    .flops = sk_flops,
    .bytes = sk_bytes,
    .state_bytes = attn_kv_state_bytes,
    .inputs = ATTN_IN_WEIGHTS,
    .ref_forward = sk_ref_forward,
    .input_cols = sk_input_cols,
    .init_weights = sk_init_weights,
    .check_params = "block=8 max_len=64",
    .ref_view = sk_ref_view,
};
