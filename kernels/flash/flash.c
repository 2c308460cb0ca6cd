/* `flash`: FlashAttention-2 forward (Dao 2023; docs/kernels/flash.md). One task is
 * a query tile of br rows for all G query heads of a KV head (GQA packing:
 * each K/V tile is read once for G*br rows); it walks the key tiles in
 * ascending order with an online softmax, so the score matrix never exists
 * beyond one br x bc tile and only the logsumexp is kept for the backward.
 * Tiles the mask classifies EMPTY are skipped, FULL ones run without
 * predicates, PARTIAL ones get -inf on disallowed scores: from each row's key
 * range when the mask is one range per row (FULL, CAUSAL, WINDOW, DOCUMENT,
 * PREFIX_LM; vectorised), from the element predicate (attn_mask_row bytes)
 * for every other kind. Either way a PARTIAL tile is first cut to the keys
 * some row sees.
 *
 * Tasks are independent and each is computed in a fixed order, so results
 * are bitwise identical for any thread count. */
#include "flash_internal.h"
#include "flash.h"
#include "flash_gather.h"
#include "flash_rows.h"
#include "flash_split.h"
#include "kernels/core/lowp.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Keys per tile unless --param bc says otherwise. Block-structured masks get
 * tiles no wider than their key blocks, so an empty block is a skipped tile
 * instead of the masked half of a computed one (block size 128 with the
 * default 256-key tiles computed 36 % of the tiles at density 20 %). */
static int64_t default_bc(const attn_args *a)
{
    int64_t bc = a->D <= 64 ? FLASH_DEFAULT_BC_SMALL_D : FLASH_DEFAULT_BC;
    int blocky = a->mask.kind == ATTN_MASK_BLOCK_SPARSE || a->mask.kind == ATTN_MASK_BIGBIRD;
    if (blocky && a->mask.bk >= 16 && a->mask.bk < bc)
        bc = a->mask.bk;
    return bc;
}

/* Query rows per gathered block. Rows of a random mask share almost no keys
 * (the union of 64 rows' keys at p = 0.02 is 72 % of all keys, of 16 rows'
 * 28 %), and each row of a strided Sparse Transformer mask adds its own
 * residue class of earlier keys: their blocks fill one 16-lane vector with
 * the fewest rows. */
static int64_t default_gbr(const attn_args *a, int64_t G)
{
    int few = a->mask.kind == ATTN_MASK_RANDOM || (a->mask.kind == ATTN_MASK_STRIDED && !a->mask.fixed);
    if (!few)
        return FLASH_DEFAULT_BR;
    return 16 / G > 1 ? 16 / G : 1;
}

/* The kinds whose allowed pairs have no tile structure: a tile of them is
 * nearly always PARTIAL, so the tiled path computes them at dense cost. */
static int flash_gather_kind(const attn_mask *m)
{
    return m->kind == ATTN_MASK_DILATED || m->kind == ATTN_MASK_STRIDED || m->kind == ATTN_MASK_RANDOM;
}

static const char *const flash_gather_modes[] = {"auto", "on", "off", "rows", NULL};
static const char *const flash_split_modes[] = {"auto", "on", "off", NULL};

/* The per-row path's cost model in units of one score of the tiled path (a
 * lane of a micro-kernel tile with its exp and its share of the P V
 * product): per allowed pair, and per visit of a query row to a key tile
 * (listing its keys, the softmax step, the accumulator's rescale). Fitted to
 * one-thread forward cycles at N = 16384, D = 64, random masks p = 0.1 and
 * 0.25 against the full mask (docs/kernels/flash.md, "Per-row path"). */
#define FLASH_ROWS_PAIR_COST 1.6
#define FLASH_ROWS_VISIT_COST 56.0

static const opt_def flash_params[] = {
    FLASH_TILE_PARAMS,
    {.name = "gather", .type = OPT_ENUM, .names = flash_gather_modes, .def = FLASH_GATHER_AUTO,
     .help = "gathered path: auto = for dilated, strided and random masks the gathered or per-row path when "
             "it computes at most half the scores of the tiled path; on = gathered for any mask; off = tiled "
             "path only; rows = per-row path (forward) for any mask"},
    {.name = "gbr", .type = OPT_INT, .def_str = "64 (random, strided: 16/G, at least 1)", .lo = 1, .hi = 1024,
     .help = "query rows per gathered block"},
    {.name = "split", .type = OPT_ENUM, .names = flash_split_modes, .def = FLASH_GATHER_AUTO,
     .help = "split forward for the strided mask (causal band tiled, plus one causal attention per residue "
             "class, merged by log-sum-exp): auto = for strided masks it computes exactly when gather=auto; "
             "on = required (fails where it does not apply); off = never"},
    {0}};

/* The `split` parameter: whether the forward takes the split path. */
static int flash_plan_split(flash_plan *pl, const attn_args *a)
{
    int rc = 0, mode = attn_param_enum(a, flash_params, "split", &rc);
    if (rc)
        return rc;
    const char *why = NULL;
    int fits = flash_split_fits(a, &why);
    if (mode == FLASH_GATHER_ON && !fits)
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'flash' split=on: expected %s", why);
    pl->split = mode == FLASH_GATHER_ON || (mode == FLASH_GATHER_AUTO && pl->gather == FLASH_GATHER_AUTO && fits);
    return 0;
}

int attn_flash_plan(flash_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "flash", flash_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->br = attn_param_int(a, flash_params, "br", &rc);
    pl->bc = attn_param_int_or(a, flash_params, "bc", default_bc(a), &rc);
    pl->gather = attn_param_enum(a, flash_params, "gather", &rc);
    if (rc)
        return rc;
    pl->G = a->H / a->H_kv;
    if ((rc = flash_plan_split(pl, a)) != 0)
        return rc;

    /* under a memory budget the tiled path only: the gathered index lives
     * outside the workspace and grows with the mask's pairs */
    int sparse_ok = !a->seq_len && !a->kv_len && !a->mem_budget;
    int auto_kind = pl->gather == FLASH_GATHER_AUTO && flash_gather_kind(&a->mask);
    if (sparse_ok && (pl->gather == FLASH_GATHER_ON || auto_kind)) {
        pl->gbr = attn_param_int_or(a, flash_params, "gbr", default_gbr(a, pl->G), &rc);
        if (rc)
            return rc;
        pl->glanes = flash_round16(pl->G * pl->gbr);
    }
    pl->per_row = sparse_ok && !pl->split && (pl->gather == FLASH_GATHER_ROWS ||
                             (pl->gather == FLASH_GATHER_AUTO && !pl->split && flash_gather_kind(&a->mask)));
    pl->nqt = (a->Nq + pl->br - 1) / pl->br;
    pl->nkt = (a->Nk + pl->bc - 1) / pl->bc;
    pl->rows = flash_round16(pl->G * pl->br);
    pl->brp = flash_round16(pl->br);
    pl->bcp = flash_round16(pl->bc);
    int64_t D = a->D;
    /* forward: Q^T, S^T, Acc^T and seven per-lane vectors */
    int64_t fwd = 2 * D * pl->rows + pl->bc * pl->rows + 7 * pl->rows + 64;
    /* dQ pass: Q^T, dO^T, dQ^T, P^T, dS^T and four per-lane vectors */
    int64_t bwd_q = 3 * D * pl->brp + 2 * pl->bc * pl->brp + 4 * pl->brp + 64;
    /* dK/dV pass: K^T, V^T, dK^T, dV^T, P, dS and four per-row vectors; the
     * one-pass backward also K row-major for its dQ product */
    pl->dqld = flash_round16(D);
    pl->stripes = a->backward && !a->mem_budget ? flash_bwd_stripes(a, pl->nkt) : 0;
    int64_t bwd_kv = 4 * D * pl->bcp + 2 * pl->br * pl->bcp + 4 * pl->brp + 64 + (pl->stripes ? pl->bcp * pl->dqld : 0);
    if (!attn_mask_is_interval(&a->mask)) { /* the mask bytes of one tile (flash_pred_rows) */
        pl->mask_ld = pl->bc;
        fwd += pl->rows * pl->bc / 4 + 16;
        bwd_q += pl->brp * pl->bc / 4 + 16;
        bwd_kv += pl->brp * pl->bc / 4 + 16;
    }
    if (pl->split) /* the split passes' key runs per block of 16 lanes and packed K, V tiles (flash_split.c) */
        fwd += 4 * flash_round16(pl->rows / 8) + 2 * flash_round16(pl->bc * D);
    if (pl->glanes) {
        int64_t gathered = flash_gather_slot_floats(a, pl);
        fwd = gathered > fwd ? gathered : fwd;
    }
    if (pl->per_row) {
        int64_t per_row = flash_rows_slot_floats(a, pl);
        fwd = per_row > fwd ? per_row : fwd;
    }
    int64_t slot = fwd;
    if (a->backward) {
        slot = bwd_q > slot ? bwd_q : slot;
        slot = bwd_kv > slot ? bwd_kv : slot;
        int64_t gathered = pl->glanes ? flash_gather_bwd_slot_floats(a, pl) : 0;
        slot = gathered > slot ? gathered : slot;
        pl->di_floats = (size_t)flash_round16(a->B * a->H * a->Nq);
        pl->dq_floats = (size_t)(pl->stripes * a->B * a->H * a->Nq * pl->dqld);
    }
    pl->thread_floats = (size_t)flash_round16(slot);
    return 0;
}

/* Scores the tiled forward computes: lanes x keys of every tile it does not
 * skip (before a PARTIAL tile is trimmed), what auto weighs the gathered
 * path's work against. */
static double flash_tiled_work(const attn_args *a, const flash_plan *pl)
{
    int64_t layouts = attn_mask_varies(&a->mask) & 2 ? a->B : 1;
    double work = 0;
    for (int64_t b = 0; b < layouts; b++)
        for (int64_t hk = 0; hk < a->H_kv; hk++)
            for (int64_t i0 = 0; i0 < a->Nq; i0 += pl->br) {
                int64_t nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
                for (int64_t j0 = 0; j0 < a->Nk; j0 += pl->bc) {
                    int64_t nk = a->Nk - j0 < pl->bc ? a->Nk - j0 : pl->bc;
                    if (flash_tile_kind(a, b, hk * pl->G, pl->G, i0, nb, j0, nk) != ATTN_TILE_EMPTY)
                        work += (double)flash_round16(pl->G * nb) * (double)nk;
                }
            }
    return work;
}

static void flash_fini(attn_ctx *ctx)
{
    flash_gather_free(ctx->priv);
    ctx->priv = NULL;
}

/* A context shell for a per-row bitmap without a gathered index: the
 * backward sees backward = 0 and runs the tiled path. */
static flash_gather *flash_rows_shell(const attn_args *a)
{
    flash_gather *gp = calloc(1, sizeof *gp);
    if (!gp)
        return NULL;
    gp->B = a->B, gp->H = a->H, gp->H_kv = a->H_kv, gp->Nq = a->Nq, gp->Nk = a->Nk;
    gp->q_off = a->q_off, gp->k_off = a->k_off, gp->n_layouts = 1;
    return gp;
}

/* The per-row bitmap when the plan allows the path: always under
 * gather=rows; under auto when its modelled cost is at most the tiled path's
 * scores (tiled; for these masks the tiled path also evaluates the predicate
 * of every pair of its PARTIAL tiles) and below the gathered index's work
 * (gp_work, 0 without one). Returns 0 or an error; *out NULL if not taken. */
static int flash_init_rows(const attn_args *a, const flash_plan *pl, double tiled, double gp_work, double max_bytes,
                           flash_rows **out)
{
    *out = NULL;
    if (!pl->per_row)
        return 0;
    flash_rows *r;
    int rc = flash_rows_build(a, pl->gather == FLASH_GATHER_AUTO ? max_bytes : 0, &r);
    if (rc || !r)
        return rc;
    double cost = FLASH_ROWS_PAIR_COST * r->work + FLASH_ROWS_VISIT_COST * r->row_tiles;
    if (pl->gather == FLASH_GATHER_AUTO && (cost > tiled || (gp_work > 0 && cost >= gp_work))) {
        flash_rows_free(r);
        return 0;
    }
    *out = r;
    return 0;
}

/* The gathered path's index when the plan allows the path and, under
 * gather=auto, when it computes at most half the scores of the tiled path;
 * then the per-row path's bitmap (flash_init_rows). */
static int flash_init_gather(attn_ctx *ctx, const attn_args *a, const flash_plan *pl)
{
    if ((pl->gather == FLASH_GATHER_ON || pl->gather == FLASH_GATHER_ROWS) && (a->seq_len || a->kv_len))
        return attn_fail(ATTN_EUNSUPPORTED, "kernel 'flash' gather=%s: expected a batch without seq_len or "
                                            "kv_len (the gathered and per-row paths take every row and key as real)",
                         pl->gather == FLASH_GATHER_ON ? "on" : "rows");
    if (!pl->glanes && !pl->per_row)
        return 0;
    /* auto does not hold an index larger than 8 times Q, K, V and O (a random
     * mask's lists grow with N^2: at N = 128K, p = 0.02, 1.7 GB a head) */
    double io_bytes = 4.0 * (double)(2 * a->B * a->H * a->Nq * a->D + 2 * a->B * a->H_kv * a->Nk * a->D);
    double max_bytes = pl->gather == FLASH_GATHER_AUTO ? 8 * io_bytes : 0;
    flash_gather *gp = NULL;
    int rc = pl->glanes ? flash_gather_build(a, pl, max_bytes, &gp) : 0;
    if (rc)
        return rc;
    double tiled = pl->gather == FLASH_GATHER_AUTO ? flash_tiled_work(a, pl) : 0;
    if (gp && pl->gather == FLASH_GATHER_AUTO && gp->work > 0.5 * tiled) {
        flash_gather_free(gp);
        gp = NULL;
    }
    if (gp) {
        /* the gathered backward has one task per (batch entry, KV head): with
         * fewer tasks than threads, auto weighs its work by the idle threads */
        double tasks = (double)(a->B * a->H_kv), idle = tasks < a->threads ? a->threads / tasks : 1;
        gp->backward = pl->gather == FLASH_GATHER_ON || gp->work * idle <= 0.5 * tiled;
    }
    flash_rows *r;
    if ((rc = flash_init_rows(a, pl, tiled, gp ? gp->work : 0, max_bytes, &r)) != 0) {
        flash_gather_free(gp);
        return rc;
    }
    if (r && !gp && !(gp = flash_rows_shell(a))) {
        flash_rows_free(r);
        return attn_fail(ATTN_ENOMEM, "flash rows: cannot allocate its context");
    }
    if (gp)
        gp->rows_path = r;
    ctx->priv = gp;
    return 0;
}

static int flash_init(attn_ctx *ctx, const attn_args *a)
{
    flash_plan pl;
    int rc = attn_flash_plan(&pl, a);
    if (rc)
        return rc;
    /* per-thread slots, the backward's Di and dQ partials, then the widened 16-bit operands */
    ctx->workspace_bytes = sizeof(float) * (pl.thread_floats * (size_t)a->threads + pl.di_floats + pl.dq_floats);
    attn_lowp_reserve(ctx);
    ctx->priv = NULL;
    return flash_init_gather(ctx, a, &pl);
}

/* The forward of one task: query rows [i0, i0+nb) of heads hk*G .. hk*G+G-1. */
static void flash_forward_tile(const attn_args *a, const flash_plan *pl, const attn_io *io,
                               int64_t b, int64_t hk, int64_t i0, float *ws, flash_tally *t)
{
    int64_t D = a->D, G = pl->G, nb = a->Nq - i0 < pl->br ? a->Nq - i0 : pl->br;
    if (!flash_padded_query_tile(a, &io->o, io->lse, b, hk * G, G, i0, &nb)) /* a padded batch ends early */
        return;
    int64_t nkeys = attn_kv_len(a, b);
    int64_t lanes = flash_round16(G * nb);
    float *qt = flash_take(&ws, D * lanes), *S = flash_take(&ws, pl->bc * lanes);
    float *acc = flash_take(&ws, D * lanes);
    flash_lane_state st;
    flash_lane_state_take(&ws, lanes, &st);
    int interval = !pl->mask_ld;
    unsigned char *M = interval ? NULL : (unsigned char *)flash_take(&ws, lanes * pl->bc / 4 + 1);

    flash_lanes_pack_q(&io->q, b, hk * G, G, i0, nb, lanes, (float)attn_scale(a), qt);
    memset(acc, 0, sizeof(float) * (size_t)(D * lanes));
    t->bytes += 4.0 * (double)(G * nb * D);

    for (int64_t j0 = 0; j0 < nkeys; j0 += pl->bc) {
        int64_t nk = nkeys - j0 < pl->bc ? nkeys - j0 : pl->bc;
        attn_tile kind = flash_tile_kind(a, b, hk * G, G, i0, nb, j0, nk);
        if (kind == ATTN_TILE_EMPTY) {
            t->skipped += (double)G;
            continue;
        }
        int64_t jlo = 0, jhi = nk;
        if (kind == ATTN_TILE_PARTIAL && interval)
            flash_partial_keys(a, i0, nb, G, j0, nk, lanes, st.lo, st.hi, &jlo, &jhi);
        else if (kind == ATTN_TILE_PARTIAL) {
            int64_t r0, r1;
            flash_pred_rows(a, b, hk * G, G, i0, nb, j0, nk, M, pl->mask_ld, &jlo, &jhi, &r0, &r1);
        }
        nk = jhi - jlo;
        const float *k = attn_at(&io->k, b, hk, j0 + jlo), *v = attn_at(&io->v, b, hk, j0 + jlo);
        // S^T (nk, lanes) = K[j0+jlo : j0+jhi] (nk, D) @ qt (D, lanes), tmax = max(m, max_j S^T)
        memcpy(st.tmax, st.m, sizeof(float) * (size_t)lanes);
        t->flops += attn_mk_gemm(nk, lanes, D, k, io->k.sn, 1, qt, lanes, S, lanes, ATTN_MK_SET, NULL,
                                 kind == ATTN_TILE_FULL ? st.tmax : NULL);
        if (kind == ATTN_TILE_PARTIAL) {
            if (interval)
                flash_mask_lanes(S, nk, lanes, st.lo, st.hi);
            else
                flash_pred_apply(M + jlo, pl->mask_ld, G * nb, nk, S, 1, lanes, -INFINITY);
            flash_lanes_max(S, nk, lanes, st.tmax);
        }
        flash_lanes_online_softmax(S, nk, lanes, st.tmax, st.m, st.l, st.alpha, st.shift);
        // acc^T (D, lanes) = acc^T * diag(alpha) + V[..]^T (D, nk) @ P^T (nk, lanes)
        t->flops += attn_mk_gemm(D, lanes, nk, v, 1, io->v.sn, S, lanes, acc, lanes, ATTN_MK_SCALE_ADD, st.alpha, NULL);
        t->exps += (double)((nk + 1) * lanes);
        t->computed += (double)G;
        t->bytes += 8.0 * (double)(nk * D);
    }

    flash_lanes_store_o(a, io, b, hk * G, G, i0, NULL, nb, lanes, acc, st.m, st.l);
}

void flash_tiled_forward(const attn_ctx *ctx, const attn_args *a, const flash_plan *pl, const attn_io *io,
                         int64_t hk0, int64_t hk_step)
{
    int64_t n_kv = (a->H_kv - hk0 + hk_step - 1) / hk_step, tasks = a->B * n_kv * pl->nqt;
#pragma omp parallel num_threads(a->threads)
    {
        flash_tally t = {0};
        float *ws = flash_slot(ctx, pl, omp_get_thread_num());
        /* dynamic: causal tiles differ in cost; the last query tiles (most
         * keys) go first so the tail of the schedule is short */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t qt = pl->nqt - 1 - task % pl->nqt, bh = task / pl->nqt;
            int64_t hk = hk0 + bh % n_kv * hk_step;
            flash_forward_tile(a, pl, io, bh / n_kv, hk, qt * pl->br, ws, &t);
        }
        flash_tally_flush(&t);
    }
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D), lse is (B,H,Nq)
static int flash_forward_f32(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    flash_plan pl;
    int rc = attn_flash_plan(&pl, a);
    if (rc)
        return rc;
    if (pl.split)
        flash_split_forward(ctx, &pl, io);
    else if (flash_gather_fits(ctx->priv, a) && ((const flash_gather *)ctx->priv)->rows_path)
        flash_rows_forward(ctx, &pl, ((const flash_gather *)ctx->priv)->rows_path, io);
    else if (flash_gather_fits(ctx->priv, a))
        flash_gather_forward(ctx, &pl, ctx->priv, io);
    else
        flash_tiled_forward(ctx, a, &pl, io, 0, 1);
    return 0;
}

static int flash_forward(attn_ctx *ctx, const attn_io *io)
{
    return attn_lowp_forward(ctx, io, flash_forward_f32);
}

/* br and bc as the plan reads them without params (memory-budget mode). */
static void flash_budget_defaults(const attn_args *a, int64_t *values)
{
    values[0] = FLASH_DEFAULT_BR;
    values[1] = default_bc(a);
}

const attn_kernel attn_kernel_flash = {
    .name = "flash",
    .family = "softmax",
    .reference = "Dao 2023 (FlashAttention-2)",
    .flags = ATTN_EXACT | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC | ATTN_PADDED,
    .masks = ATTN_MASK_ALL, /* every kind of mask.h */
    .params = flash_params,
    .init = flash_init,
    .forward = flash_forward,
    .backward = attn_flash_backward,
    .flops = attn_softmax_flops,
    .bytes = attn_softmax_bytes,
    .state_bytes = attn_kv_state_bytes,
    .fini = flash_fini,
    .dtypes = ATTN_DT_BIT(ATTN_DT_BF16) | ATTN_DT_BIT(ATTN_DT_FP16),
    .budget_params = "br,bc",
    .budget_defaults = flash_budget_defaults,
};
