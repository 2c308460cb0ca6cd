/* `landmark` forward (Mohtashami & Jaggi 2023; docs/kernels/landmark.md; the math is
 * in landmark.h). One OpenMP task is a tile of LM_TILE query rows of one
 * (batch, query head); tasks are independent and each runs in a fixed order,
 * so results are bitwise identical for any thread count.
 *
 * mode=train (dense grouped form, cost ~ causal dense): S = sc Q_tile K^T
 * over the keys the tile sees (cblas_sgemm), the grouped softmax row by row
 * in place (attn_landmark_row), then O_tile = W V (cblas_sgemm).
 *
 * mode=topk (retrieval, about 2 (N/l) D + 4 (l_loc + k l) D
 * FLOPs per query): the landmark scores of every earlier block come from one
 * sgemm against the landmark rows of K read in place (row stride l * sn),
 * then, for the rows of each own block, an sgemm of their local scores, the
 * own-group softmax over the local tokens and the selected landmarks (local
 * weights and gates) and an sgemm of the local output; then, block by block
 * in ascending order, the rows that retrieved the block are gathered and get
 * its l-1 scores and gated value sum from two more sgemm. */
#include "landmark.h"

#include "kernels/core/counters.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define LM_ROUND16(n) (((n) + 15) / 16 * 16)

enum { LM_TRAIN, LM_TOPK };
static const char *const lm_modes[] = {"train", "topk", NULL};
/* l >= 2: with l = 1 every token is a landmark and no token carries a value */
static const opt_def lm_params[] = {
    {.name = "l", .type = OPT_INT, .def = LM_DEFAULT_L, .lo = 2, .hi = 1 << 20,
     .help = "block length; the key at b*l+l-1 is block b's landmark"},
    {.name = "mode", .type = OPT_ENUM, .names = lm_modes, .def = LM_TRAIN,
     .help = "train: every block; topk: the k best earlier blocks per query"},
    {.name = "k", .type = OPT_INT, .def = LM_DEFAULT_K, .lo = 1, .hi = (double)(INT64_MAX / 2),
     .help = "topk: earlier blocks retrieved per query"},
    {0},
};

int attn_landmark_plan(lm_plan *pl, const attn_args *a)
{
    int rc = attn_params_check(a, "landmark", lm_params);
    if (rc)
        return rc;
    memset(pl, 0, sizeof *pl);
    pl->topk = attn_param_enum(a, lm_params, "mode", &rc) == LM_TOPK;
    pl->l = attn_param_int(a, lm_params, "l", &rc);
    pl->k = attn_param_int(a, lm_params, "k", &rc);
    if (rc)
        return rc;
    if (!pl->topk)
        pl->k = INT64_MAX;
    if (a->k_off % pl->l != 0)
        return attn_fail(ATTN_EINVAL, "landmark: blocks are aligned to absolute positions, so k_off must be a "
                                      "multiple of l=%lld, found %lld", (long long)pl->l, (long long)a->k_off);
    if (a->Nq > 0 && attn_landmark_t(a, a->Nq - 1) > a->Nk - 1)
        return attn_fail(ATTN_EINVAL, "landmark: the last query (position %lld) lies after the last key (%lld); "
                                      "expected q_off + Nq <= k_off + Nk",
                         (long long)(a->q_off + a->Nq - 1), (long long)(a->k_off + a->Nk - 1));
    pl->T = LM_TILE;
    pl->nqt = (a->Nq + pl->T - 1) / pl->T;
    pl->nblk = (a->Nk + pl->l - 1) / pl->l;
    pl->ld = LM_ROUND16(a->Nk);
    size_t gate = (size_t)LM_ROUND16(pl->nblk + 1), sel = (size_t)LM_ROUND16(2 * (pl->nblk + 1));
    if (pl->topk) /* landmark scores/gates, local and block scores, gathered Q and O rows, row list */
        pl->fwd_floats = (size_t)(pl->T * gate + 2 * pl->T * LM_ROUND16(pl->l) + pl->T * LM_ROUND16(a->D) +
                                  pl->T * LM_ROUND16(attn_dv(a)) + 2 * pl->T) + sel;
    else
        pl->fwd_floats = (size_t)(pl->T * pl->ld) + gate + sel;
    pl->bwd_floats = (size_t)(3 * pl->T * pl->ld) + gate + sel; /* S, W, dP/dS */
    return 0;
}

static size_t lm_slot_floats(const lm_plan *pl, const attn_args *a)
{
    return a->backward && pl->bwd_floats > pl->fwd_floats ? pl->bwd_floats : pl->fwd_floats;
}

static int lm_init(attn_ctx *ctx, const attn_args *a)
{
    lm_plan pl;
    int rc = attn_landmark_plan(&pl, a);
    if (rc)
        return rc;
    ctx->workspace_bytes = sizeof(float) * lm_slot_floats(&pl, a) * (size_t)a->threads;
    return 0;
}

float *attn_landmark_scratch(const attn_ctx *ctx, const lm_plan *pl, int thread)
{
    return (float *)ctx->workspace + lm_slot_floats(pl, &ctx->args) * (size_t)thread;
}

/* ---- the grouped softmax (paper eq. 2-4) ---- */

/* max and sum of x[0..n) with 8 independent partial results (no libm
 * fmaxf call, no 4-cycle add chain per element); a fixed order, so the
 * result does not depend on anything but n. NaN is not propagated by the
 * max (it is by the sums that follow). */
static float lm_max(const float *x, int64_t n)
{
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++)
            m[u] = x[j + u] > m[u] ? x[j + u] : m[u];
    for (; j < n; j++)
        m[0] = x[j] > m[0] ? x[j] : m[0];
    for (int u = 1; u < 8; u++)
        m[0] = m[u] > m[0] ? m[u] : m[0];
    return m[0];
}

static float lm_sum(const float *x, int64_t n)
{
    float s[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++)
            s[u] += x[j + u];
    for (; j < n; j++)
        s[0] += x[j];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* Is block b better than block b' for retrieval? Higher landmark score,
 * ties to the lower index: a total order, so the selection is unique. */
static int lm_better(float sb, int64_t b, float sb2, int64_t b2) { return sb > sb2 || (sb == sb2 && b < b2); }

void attn_landmark_select(const lm_plan *pl, int64_t c, const float *sL, int64_t stride, int64_t *sel)
{
    int all = !pl->topk || pl->k >= c;
    for (int64_t b = 0; b < c; b++)
        sel[b] = all || pl->k > c / 2;
    if (all)
        return;
    /* k passes adding the best unselected block, or c - k passes removing the
     * worst selected one, whichever is fewer: O(min(k, c-k) c) per query */
    int adding = pl->k <= c / 2;
    int64_t passes = adding ? pl->k : c - pl->k;
    for (int64_t p = 0; p < passes; p++) {
        int64_t pick = -1;
        for (int64_t b = 0; b < c; b++) {
            if (sel[b] == adding)
                continue;
            float s = sL[b * stride];
            if (pick < 0 || (adding ? lm_better(s, b, sL[pick * stride], pick) : lm_better(sL[pick * stride], pick, s, b)))
                pick = b;
        }
        sel[pick] = adding;
    }
}

/* Own-group softmax of one query in block c: over the own tokens so[0..n)
 * except index lm (the current block's landmark when visible, else -1) and
 * the landmark scores sL[b*stride] of the selected blocks b < c. Writes the
 * own weights wo[0..n) (wo[lm] = 0; may alias so) and the gates
 * gate[b] = p_{L_b} (0 unselected; may alias sL when stride is 1). Returns exps. */
static int64_t lm_own_group(int64_t c, const float *sL, int64_t stride, float *gate, const int64_t *sel,
                            const float *so, float *wo, int64_t n, int64_t lm)
{
    float m = -INFINITY, sum = 0.0f;
    int64_t exps = n;
    for (int64_t b = 0; b < c; b++)
        if (sel[b] && sL[b * stride] > m)
            m = sL[b * stride];
    float mo = lm < 0 ? lm_max(so, n) : fmaxf(lm_max(so, lm), lm_max(so + lm + 1, n - lm - 1));
    m = mo > m ? mo : m;
    if (m == -INFINITY) /* only -inf scores: nothing is attended */
        m = 0.0f;
    for (int64_t b = 0; b < c; b++) {
        float e = sel[b] ? attn_expf(sL[b * stride] - m) : 0.0f;
        exps += sel[b] != 0;
        gate[b] = e, sum += e;
    }
    for (int64_t j = 0; j < n; j++)
        wo[j] = so[j] - m;
    attn_vexp(wo, wo, n);
    if (lm >= 0)
        wo[lm] = 0.0f;
    sum += lm_sum(wo, n);
    float inv = sum > 0 ? 1.0f / sum : 0.0f;
    for (int64_t b = 0; b < c; b++)
        gate[b] *= inv;
    for (int64_t j = 0; j < n; j++)
        wo[j] *= inv;
    return exps;
}

/* w[j] = g * softmax(s)[j], j < n (w may alias s): block b's tokens weighted
 * by its gate p_{L_b} (eq. 4). Returns exps. */
static int64_t lm_block_softmax(const float *s, int64_t n, float g, float *w)
{
    float m = lm_max(s, n);
    if (m == -INFINITY)
        m = 0.0f;
    for (int64_t j = 0; j < n; j++)
        w[j] = s[j] - m;
    attn_vexp(w, w, n);
    float sum = lm_sum(w, n);
    float f = sum > 0 ? g / sum : 0.0f;
    for (int64_t j = 0; j < n; j++)
        w[j] *= f;
    return n;
}

int64_t attn_landmark_row(const lm_plan *pl, int64_t t, const float *s, float *w, float *gate, int64_t *sel)
{
    int64_t l = pl->l, c = t / l, own0 = c * l, lm = own0 + l - 1 <= t ? l - 1 : -1;
    attn_landmark_select(pl, c, s + l - 1, l, sel);
    /* gates go to `gate` first: the landmark scores must be read before the
     * block weights overwrite them when w aliases s */
    int64_t exps = lm_own_group(c, s + l - 1, l, gate, sel, s + own0, w + own0, t - own0 + 1, lm);
    for (int64_t b = 0; b < c; b++) {
        float *wb = w + b * l;
        if (sel[b] && gate[b] > 0)
            exps += lm_block_softmax(s + b * l, l - 1, gate[b], wb);
        else
            memset(wb, 0, sizeof(float) * (size_t)(l - 1));
        wb[l - 1] = 0.0f; /* landmarks carry no value */
    }
    return exps;
}

/* ---- forward tiles ---- */

typedef struct {
    double flops, exps, bytes;
} lm_tally;

double attn_landmark_scores(const attn_args *a, const lm_plan *pl, const attn_io *io, int64_t b, int64_t h,
                            int64_t i0, int64_t nb, int64_t nk, float *S)
{
    int64_t G = a->H / a->H_kv;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nk, (int)a->D, (float)attn_scale(a),
                attn_at(&io->q, b, h, i0), (int)io->q.sn, attn_at(&io->k, b, h / G, 0), (int)io->k.sn, 0.0f, S,
                (int)pl->ld);
    return 2.0 * (double)(nb * nk) * (double)a->D;
}

static void lm_zero_rows(const attn_io *io, int64_t b, int64_t h, int64_t i0, int64_t n, int64_t Dv)
{
    for (int64_t i = i0; i < i0 + n; i++)
        memset(attn_at(&io->o, b, h, i), 0, sizeof(float) * (size_t)Dv);
}

/* First row r >= 0 of [i0, i0+nb) with a visible key (t >= 0); nb if none. */
static int64_t lm_first_visible(const attn_args *a, int64_t i0, int64_t nb)
{
    int64_t r = -attn_landmark_t(a, i0);
    return r < 0 ? 0 : r > nb ? nb : r;
}

// rows [i0, i0+nb) of head h: S (nb x nk) = sc Q K^T, W = grouped softmax (in place), O = W V
static void lm_dense_tile(const attn_args *a, const lm_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t i0,
                          int64_t nb, float *ws, lm_tally *tl)
{
    int64_t Dv = attn_dv(a), G = a->H / a->H_kv, r0 = lm_first_visible(a, i0, nb);
    lm_zero_rows(io, b, h, i0, r0, Dv);
    if (r0 == nb)
        return;
    i0 += r0, nb -= r0;
    int64_t nk = attn_landmark_t(a, i0 + nb - 1) + 1;
    float *S = ws, *gate = S + pl->T * pl->ld;
    int64_t *sel = (int64_t *)(gate + LM_ROUND16(pl->nblk + 1));
    tl->flops += attn_landmark_scores(a, pl, io, b, h, i0, nb, nk, S);
    for (int64_t r = 0; r < nb; r++) {
        int64_t t = attn_landmark_t(a, i0 + r);
        float *row = S + r * pl->ld;
        tl->exps += (double)attn_landmark_row(pl, t, row, row, gate, sel);
        memset(row + t + 1, 0, sizeof(float) * (size_t)(nk - t - 1)); /* causal */
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)nk, 1.0f, S, (int)pl->ld,
                attn_at(&io->v, b, h / G, 0), (int)io->v.sn, 0.0f, attn_at(&io->o, b, h, i0), (int)io->o.sn);
    tl->flops += 2.0 * (double)(nb * nk) * (double)Dv;
    tl->bytes += 4.0 * (double)(nb * a->D + nk * (a->D + Dv));
}

/* Scratch of a topk tile (lm_plan.fwd_floats). */
typedef struct {
    float *sL, *Sl, *Sg, *Qg, *Og; /* T x ldL gates, T x ldb local and block scores, T x D, T x Dv */
    int64_t *rows, *sel;           /* T rows, nblk + 1 selection flags */
    int64_t ldL, ldb, ldq, ldo;
} lm_topk_ws;

static lm_topk_ws lm_topk_scratch(const attn_args *a, const lm_plan *pl, float *ws)
{
    lm_topk_ws w = {.ldL = LM_ROUND16(pl->nblk + 1), .ldb = LM_ROUND16(pl->l), .ldq = LM_ROUND16(a->D),
                    .ldo = LM_ROUND16(attn_dv(a))};
    w.sL = ws, w.Sl = w.sL + pl->T * w.ldL, w.Sg = w.Sl + pl->T * w.ldb, w.Qg = w.Sg + pl->T * w.ldb;
    w.Og = w.Qg + pl->T * w.ldq;
    w.rows = (int64_t *)(w.Og + pl->T * w.ldo), w.sel = w.rows + pl->T;
    return w;
}

/* Adds retrieved block bk's gated output g_r sum_j softmax(s_r)_j v_j to the
 * O rows i0 + rows[0..nr) whose gate g_r = sL[rows[.] * ldL + bk] is > 0:
 * their Q rows gathered, one sgemm for the l-1 scores, the block softmax,
 * one sgemm for the values, the rows added to O (ascending bk per row: a
 * fixed order). */
static void lm_topk_block(const attn_args *a, const lm_plan *pl, const attn_io *io, int64_t b, int64_t h,
                          int64_t i0, int64_t bk, int64_t nr, const lm_topk_ws *w, lm_tally *tl)
{
    int64_t n = pl->l - 1, Dv = attn_dv(a), D = a->D, hk = h / (a->H / a->H_kv);
    for (int64_t r = 0; r < nr; r++)
        memcpy(w->Qg + r * w->ldq, attn_at(&io->q, b, h, i0 + w->rows[r]), sizeof(float) * (size_t)D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n, (int)D, (float)attn_scale(a), w->Qg,
                (int)w->ldq, attn_at(&io->k, b, hk, bk * pl->l), (int)io->k.sn, 0.0f, w->Sg, (int)w->ldb);
    for (int64_t r = 0; r < nr; r++)
        tl->exps += (double)lm_block_softmax(w->Sg + r * w->ldb, n, w->sL[w->rows[r] * w->ldL + bk],
                                             w->Sg + r * w->ldb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)Dv, (int)n, 1.0f, w->Sg, (int)w->ldb,
                attn_at(&io->v, b, hk, bk * pl->l), (int)io->v.sn, 0.0f, w->Og, (int)w->ldo);
    for (int64_t r = 0; r < nr; r++) {
        float *o = attn_at(&io->o, b, h, i0 + w->rows[r]);
        const float *og = w->Og + r * w->ldo;
        for (int64_t d = 0; d < Dv; d++)
            o[d] += og[d];
    }
    tl->flops += 2.0 * (double)(nr * n) * (double)(D + Dv);
    tl->bytes += 4.0 * (double)n * (double)(D + Dv);
}

/* Rows [r, r1) of a topk tile that share the own block c (key range
 * [c l, t_last]): local scores (one sgemm), own-group softmax per row (gates
 * replace the landmark scores in sL, 0 = not retrieved), local output (one
 * sgemm into the O rows). */
static void lm_topk_local(const attn_args *a, const lm_plan *pl, const attn_io *io, int64_t b, int64_t h,
                          int64_t i0, int64_t nb, float *sL, int64_t ldL, float *Sl, int64_t *sel, lm_tally *tl)
{
    int64_t Dv = attn_dv(a), D = a->D, hk = h / (a->H / a->H_kv), l = pl->l, ldl = LM_ROUND16(l);
    int64_t own0 = attn_landmark_t(a, i0) / l * l, c = own0 / l, nloc = attn_landmark_t(a, i0 + nb - 1) + 1 - own0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nloc, (int)D, (float)attn_scale(a),
                attn_at(&io->q, b, h, i0), (int)io->q.sn, attn_at(&io->k, b, hk, own0), (int)io->k.sn, 0.0f, Sl,
                (int)ldl);
    for (int64_t r = 0; r < nb; r++) {
        int64_t n = attn_landmark_t(a, i0 + r) + 1 - own0;
        float *rl = sL + r * ldL, *row = Sl + r * ldl;
        attn_landmark_select(pl, c, rl, 1, sel);
        tl->exps += (double)lm_own_group(c, rl, 1, rl, sel, row, row, n, n == l ? l - 1 : -1);
        memset(row + n, 0, sizeof(float) * (size_t)(nloc - n)); /* causal */
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)Dv, (int)nloc, 1.0f, Sl, (int)ldl,
                attn_at(&io->v, b, hk, own0), (int)io->v.sn, 0.0f, attn_at(&io->o, b, h, i0), (int)io->o.sn);
    tl->flops += 2.0 * (double)(nb * nloc) * (double)(D + Dv);
    tl->bytes += 4.0 * (double)(nloc * (D + Dv));
}

// rows [i0, i0+nb) of head h, top-k retrieval: landmark scores sL (nb x c1)
// of the blocks before the last row's, then the rows of each own block
// (lm_topk_local), then each retrieved block for the rows that chose it
static void lm_topk_tile(const attn_args *a, const lm_plan *pl, const attn_io *io, int64_t b, int64_t h, int64_t i0,
                         int64_t nb, float *ws, lm_tally *tl)
{
    int64_t Dv = attn_dv(a), D = a->D, hk = h / (a->H / a->H_kv), l = pl->l, r0 = lm_first_visible(a, i0, nb);
    lm_zero_rows(io, b, h, i0, r0, Dv);
    if (r0 == nb)
        return;
    i0 += r0, nb -= r0;
    int64_t c1 = attn_landmark_t(a, i0 + nb - 1) / l;
    lm_topk_ws w = lm_topk_scratch(a, pl, ws);
    if (c1 > 0) /* landmark rows k_{b l + l - 1} read in place: row stride l * sn */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)c1, (int)D, (float)attn_scale(a),
                    attn_at(&io->q, b, h, i0), (int)io->q.sn, attn_at(&io->k, b, hk, l - 1), (int)(l * io->k.sn),
                    0.0f, w.sL, (int)w.ldL);
    tl->flops += 2.0 * (double)(nb * c1) * (double)D;
    tl->bytes += 4.0 * (double)(nb * D + c1 * D);
    for (int64_t r = 0, r1; r < nb; r = r1) {
        int64_t c = attn_landmark_t(a, i0 + r) / l;
        for (r1 = r + 1; r1 < nb && attn_landmark_t(a, i0 + r1) / l == c; r1++)
            ;
        lm_topk_local(a, pl, io, b, h, i0 + r, r1 - r, w.sL + r * w.ldL, w.ldL, w.Sl, w.sel, tl);
    }
    for (int64_t bk = 0; bk < c1; bk++) { /* the rows that retrieved block bk (gate > 0) */
        int64_t nr = 0;
        for (int64_t r = 0; r < nb; r++)
            if (bk < attn_landmark_t(a, i0 + r) / l && w.sL[r * w.ldL + bk] > 0)
                w.rows[nr++] = r;
        if (nr > 0)
            lm_topk_block(a, pl, io, b, h, i0, bk, nr, &w, tl);
    }
}

// q is (B,H,Nq,D), k and v are (B,H_kv,Nk,D); o is (B,H,Nq,D); lse untouched
static int lm_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    lm_plan pl;
    int rc = attn_landmark_plan(&pl, a);
    if (rc)
        return rc;
    int64_t tasks = a->B * a->H * pl.nqt;
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loop below */
#pragma omp parallel num_threads(a->threads)
    {
        lm_tally tl = {0};
        float *ws = attn_landmark_scratch(ctx, &pl, omp_get_thread_num());
        /* dynamic: later tiles see more keys; they go first */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t qt = pl.nqt - 1 - task % pl.nqt, bh = task / pl.nqt, i0 = qt * pl.T;
            int64_t nb = a->Nq - i0 < pl.T ? a->Nq - i0 : pl.T;
            if (pl.topk)
                lm_topk_tile(a, &pl, io, bh / a->H, bh % a->H, i0, nb, ws, &tl);
            else
                lm_dense_tile(a, &pl, io, bh / a->H, bh % a->H, i0, nb, ws, &tl);
        }
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
    }
    return 0;
}

/* ---- cost model (docs/kernels/landmark.md) ---- */

/* Per query of key coordinate t in block c: 2 D c landmark scores plus
 * 4 D (l_loc + min(k, c) l) for the local tokens and the retrieved blocks. */
static double lm_topk_flops_per_head(const attn_args *a, const lm_plan *pl)
{
    double f = 0;
    for (int64_t i = 0; i < a->Nq; i++) {
        int64_t t = attn_landmark_t(a, i);
        if (t < 0)
            continue;
        int64_t c = t / pl->l, sel = c < pl->k ? c : pl->k;
        f += 2.0 * (double)c + 4.0 * (double)(t - c * pl->l + 1 + sel * pl->l);
    }
    return f * (double)a->D;
}

static double lm_flops(const attn_args *a, attn_pass pass)
{
    lm_plan pl;
    if (attn_landmark_plan(&pl, a) != 0)
        return 0;
    if (!pl.topk)
        return attn_softmax_flops(a, pass); /* the grouped form scores every visible key once */
    double fwd = lm_topk_flops_per_head(a, &pl) * (double)(a->B * a->H);
    return pass == ATTN_PASS_FWD ? fwd : 2.5 * fwd;
}

/* Minimum traffic: the softmax one (each tensor once), except a topk forward
 * may read less K/V than all of it: per query the landmark keys, the local
 * block and k retrieved blocks (decode reads N D / l + 2 (k + 1) l D). */
static double lm_bytes(const attn_args *a, attn_pass pass)
{
    lm_plan pl;
    double full = attn_softmax_bytes(a, pass);
    if (pass != ATTN_PASS_FWD || attn_landmark_plan(&pl, a) != 0 || !pl.topk)
        return full;
    double D = (double)a->D, Nk = (double)a->Nk;
    double kv_full = 4.0 * (double)(a->B * a->H_kv) * 2 * Nk * D;
    double per_query = (double)pl.nblk * D + 2 * D * (double)((pl.k + 1) * pl.l);
    double kv_topk = 4.0 * (double)(a->B * a->H_kv) * (double)a->Nq * per_query;
    return full - kv_full + (kv_topk < kv_full ? kv_topk : kv_full);
}

/* KV cache plus the landmark keys: 2 N D + N D / l floats per KV head. */
static size_t lm_state_bytes(const attn_args *a)
{
    lm_plan pl;
    int64_t l = attn_landmark_plan(&pl, a) == 0 ? pl.l : LM_DEFAULT_L;
    return sizeof(float) * (size_t)(a->B * a->H_kv) * (size_t)(2 * a->Nk * a->D + a->Nk / l * a->D);
}

const attn_kernel attn_kernel_landmark = {
    .name = "landmark",
    .family = "landmark",
    .reference = "Mohtashami & Jaggi 2023 (Landmark Attention, arXiv 2305.16300)",
    .flags = ATTN_APPROX | ATTN_CAUSAL | ATTN_TRAINABLE | ATTN_DECODE | ATTN_GQA | ATTN_CROSS | ATTN_DETERMINISTIC,
    .masks = ATTN_MASK_BIT(ATTN_MASK_CAUSAL),
    .params = lm_params,
    .init = lm_init,
    .forward = lm_forward,
    .backward = attn_landmark_backward,
    .flops = lm_flops,
    .bytes = lm_bytes,
    .state_bytes = lm_state_bytes,
    .ref_forward = attn_landmark_ref_forward,
    .ref_view = attn_landmark_ref_view,
    .check_params = "l=4",
};
