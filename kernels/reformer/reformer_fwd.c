/* `reformer` forward (docs/kernels/reformer.md; the math is in
 * reformer_internal.h).
 *
 * 1. per (b, h, round): the round's buckets (fp32 sgemm of the queries with
 *    R_r, exact fallback near ties) and stable counting sort; round 0 also
 *    the inverse key norms.
 * 2. per round, one OpenMP task per (b, h, chunk): the chunk's queries, its
 *    keys (previous chunk, own chunk) and values gathered, S = sc Q K^T
 *    (cblas_sgemm), adjusted scores s - ln count (candidates) or -inf, row
 *    softmax, O_r = P V (cblas_sgemm), merged into O and the running lse
 *    (the rounds one after another: each row has one chunk per round, so
 *    tasks never share a row and the order of the merges is fixed).
 * 3. per (b, h): rows without any candidate get O = v_i, lse = -1e5; padded
 *    rows O = 0, lse = -inf; lse copied out.
 * Work split and reduction order depend on the sizes only: bitwise the same
 * for any thread count. */
#include "reformer_internal.h"

#include "kernels/core/counters.h"
#include "kernels/core/softmax_rows.h"
#include "kernels/core/vexp.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    double flops, exps, bytes;
} rf_tally;


/* o, lse <- the softmax over the union of (o, lse) and (x, lx). */
static void rf_merge(float *o, float *lse, const float *x, float lx, int64_t Dv)
{
    if (lx == -INFINITY)
        return;
    if (*lse == -INFINITY) {
        memcpy(o, x, sizeof(float) * (size_t)Dv);
        *lse = lx;
        return;
    }
    float m = *lse > lx ? *lse : lx, a = attn_expf(*lse - m), c = attn_expf(lx - m), s = a + c;
    float fa = a / s, fc = c / s;
    for (int64_t d = 0; d < Dv; d++)
        o[d] = o[d] * fa + x[d] * fc;
    *lse = m + logf(s);
}

typedef struct {
    const rf_layout *ly;
    const attn_ctx *ctx;
    const attn_io *io;
} rf_job;

static rf_head rf_job_head(const rf_job *jb, int64_t b, int64_t h)
{
    const attn_args *a = &jb->ctx->args;
    int64_t bh = b * a->H + h;
    return (rf_head){.a = a, .io = jb->io, .t = rf_head_tables(jb->ctx, jb->ly, bh),
                     .inv = rf_head_floats(jb->ctx, jb->ly, bh), .b = b, .h = h, .hk = h / (a->H / a->H_kv),
                     .L = rf_len(a, b)};
}

/* Chunk k of round r of (b, h): O_r = softmax(S) V merged into O and the running lse. */
static void rf_chunk_forward(const rf_job *jb, int64_t b, int64_t h, int r, int64_t k, float *slot, rf_tally *tl)
{
    const rf_layout *ly = jb->ly;
    int64_t Dv = ly->Dv;
    rf_head hd = rf_job_head(jb, b, h);
    float *lse = rf_head_floats(jb->ctx, ly, b * hd.a->H + h) + ly->N;
    rf_tiles w = rf_chunk_tiles(ly, slot);
    float *O = rf_pass_scratch(ly, slot), *lr = O + ly->pl.c * w.ldV;
    const rf_chunk *ch = w.ch;
    tl->flops += rf_chunk_load(ly, &hd, r, k, &w);
    for (int64_t i = 0; i < ch->nq; i++)
        lr[i] = attn_softmax_row_vexp(w.S + i * w.ldK, ch->nk);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ch->nq, (int)Dv, (int)ch->nk, 1.0f, w.S,
                (int)w.ldK, w.V, (int)w.ldV, 0.0f, O, (int)w.ldV);
    for (int64_t i = 0; i < ch->nq; i++) {
        int64_t pos = ch->pos[ch->np + i];
        float *o = attn_at(&jb->io->o, b, h, pos);
        if (r == 0) { /* the first round sets the row (zeros and -inf without candidates) */
            memcpy(o, O + i * w.ldV, sizeof(float) * (size_t)Dv);
            lse[pos] = lr[i];
        } else {
            rf_merge(o, &lse[pos], O + i * w.ldV, lr[i], Dv);
        }
    }
    tl->flops += 2.0 * (double)(ch->nq * ch->nk) * (double)Dv;
    tl->exps += (double)(ch->nq * ch->nk + 2 * ch->nq);
    tl->bytes += 4.0 * (double)(ch->nq * ly->D + ch->nk * (ly->D + Dv));
}

/* Rows of (b, h) after the rounds: no candidate in any round -> its own
 * value (the self score -1e5 is then the only term); padding -> 0, -inf. */
static void rf_finish_head(const rf_job *jb, int64_t b, int64_t h)
{
    const attn_args *a = &jb->ctx->args;
    const attn_io *io = jb->io;
    int64_t bh = b * a->H + h, hk = h / (a->H / a->H_kv), L = rf_len(a, b), Dv = jb->ly->Dv;
    float *lse = rf_head_floats(jb->ctx, jb->ly, bh) + jb->ly->N;
    for (int64_t i = 0; i < a->Nq; i++) {
        float *o = attn_at(&io->o, b, h, i), l = i < L ? lse[i] : -INFINITY;
        if (i >= L)
            memset(o, 0, sizeof(float) * (size_t)Dv);
        else if (l == -INFINITY)
            memcpy(o, attn_at(&io->v, b, hk, i), sizeof(float) * (size_t)Dv), l = (float)RF_SELF_SCORE;
        if (io->lse)
            io->lse[bh * a->Nq + i] = l;
    }
}

/* Pass 1 for round r of (b, h): its hash tables (round 0 also the inverse
 * norms). The rounds are independent tasks: a single head still keeps
 * every thread busy. */
static double rf_prepare_round(const rf_job *jb, int64_t b, int64_t h, int r, float *slot)
{
    const attn_args *a = &jb->ctx->args;
    int64_t bh = b * a->H + h, L = rf_len(a, b);
    rf_tables t = rf_head_tables(jb->ctx, jb->ly, bh);
    if (r == 0)
        rf_inverse_norms(&jb->io->q, b, h, L, a->D, rf_head_floats(jb->ctx, jb->ly, bh));
    return rf_hash_sort(jb->ly, &jb->io->q, b, h, r, L, &t, slot);
}

// q is (B,H,N,D), v is (B,H_kv,N,Dv), k is not read; o is (B,H,N,Dv), lse (B,H,N)
int rf_forward(attn_ctx *ctx, const attn_io *io)
{
    const attn_args *a = &ctx->args;
    rf_layout ly;
    int rc = rf_layout_make(&ly, a);
    if (rc)
        return rc;
    rf_job jb = {.ly = &ly, .ctx = ctx, .io = io};
    int64_t BH = a->B * a->H, nc_max = rf_chunks(&ly.pl, a->Nq);
    openblas_set_num_threads(1); /* parallelism comes from the OpenMP loops below */
#pragma omp parallel num_threads(a->threads)
    {
        rf_tally tl = {0};
        float *slot = rf_thread_slot(ctx, &ly, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < BH * ly.pl.rounds; task++) {
            int64_t bh = task / ly.pl.rounds;
            tl.flops += rf_prepare_round(&jb, bh / a->H, bh % a->H, (int)(task % ly.pl.rounds), slot);
        }
        for (int r = 0; r < ly.pl.rounds; r++) {
            /* the implicit barrier orders the rounds: each merges into rows the last one wrote */
#pragma omp for schedule(dynamic, 1)
            for (int64_t task = 0; task < BH * nc_max; task++) {
                int64_t bh = task / nc_max, k = task % nc_max, b = bh / a->H;
                if (k < rf_chunks(&ly.pl, rf_len(a, b)))
                    rf_chunk_forward(&jb, b, bh % a->H, r, k, slot, &tl);
            }
        }
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < BH; bh++)
            rf_finish_head(&jb, bh / a->H, bh % a->H);
        attn_counter_add(ATTN_CNT_FLOPS, (long long)tl.flops);
        attn_counter_add(ATTN_CNT_EXPS, (long long)tl.exps);
        attn_counter_add(ATTN_CNT_BYTES_READ, (long long)tl.bytes);
    }
    return 0;
}
