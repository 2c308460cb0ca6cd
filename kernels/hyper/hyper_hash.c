/* `hyper` pieces the fp32 forward and the double reference share
 * (docs/kernels/hyper.md): the recursion into sub-problems, the random
 * hyperplanes and key samples, the exact code of a row; and the kernel's
 * fp32 hashing with its exact fallback. */
#include "hyper_internal.h"

#include "common/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sub-problems ---- */

static void hy_add_leaf(hy_split *sp, int64_t s, int64_t n, int causal)
{
    if (sp->leaves)
        sp->leaves[sp->n_leaves] = (hy_leaf){.s = s, .n = n, .causal = causal};
    sp->n_leaves++;
}

static void hy_add_job(hy_split *sp, int64_t q0, int64_t nq, int64_t k0, int64_t nk, int depth)
{
    if (sp->jobs)
        sp->jobs[sp->n_jobs] = (hy_job){.q0 = q0, .nq = nq, .k0 = k0, .nk = nk, .depth = depth};
    sp->n_jobs++;
    sp->depths = depth + 1 > sp->depths ? depth + 1 : sp->depths;
}

static void hy_halve(const hy_plan *pl, int64_t s, int64_t e, int depth, int fused, hy_split *sp)
{
    int64_t n = e - s, half = (n + 1) / 2;
    if (n <= pl->min_len || (fused && half <= pl->min_len)) {
        hy_add_leaf(sp, s, n, 1);
        return;
    }
    hy_add_job(sp, s + half, n - half, s, half, depth);
    hy_halve(pl, s, s + half, depth + 1, fused, sp);
    hy_halve(pl, s + half, e, depth + 1, fused, sp);
}

void hy_split_make(const hy_plan *pl, int64_t N, int fused, hy_split *sp)
{
    sp->n_jobs = sp->n_leaves = 0;
    sp->depths = 0;
    if (pl->causal)
        hy_halve(pl, 0, N, 0, fused, sp);
    else if (fused && N <= pl->min_len)
        hy_add_leaf(sp, 0, N, 0);
    else
        hy_add_job(sp, 0, N, 0, N, 0);
}

int hy_split_alloc(const hy_plan *pl, int64_t N, int fused, hy_split *sp)
{
    memset(sp, 0, sizeof *sp);
    hy_split_make(pl, N, fused, sp); /* count */
    sp->jobs = malloc(sizeof *sp->jobs * (size_t)(sp->n_jobs + 1));
    sp->leaves = malloc(sizeof *sp->leaves * (size_t)(sp->n_leaves + 1));
    if (!sp->jobs || !sp->leaves) {
        hy_split_free(sp);
        return attn_fail(ATTN_ENOMEM, "kernel 'hyper': cannot allocate the split of %lld rows", (long long)N);
    }
    hy_split_make(pl, N, fused, sp);
    return 0;
}

void hy_split_free(hy_split *sp)
{
    free(sp->jobs), free(sp->leaves);
    sp->jobs = NULL, sp->leaves = NULL;
}

/* ---- randomness ---- */

void hy_hyperplanes(const hy_plan *pl, int64_t D, double *R)
{
    attn_rng g;
    attn_rng_seed_item(&g, pl->seed, 0x4c5348u /* "LSH" */, 0);
    for (int64_t i = 0; i < D * pl->r; i++)
        R[i] = attn_rng_normal(&g);
}

static int hy_cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* Floyd's algorithm: for t = nk - n .. nk - 1 pick u uniform in [0, t], or t
 * itself when u is already taken; every n-subset is equally likely. The
 * stream is the job's own (its split point q0 is unique among the jobs), so
 * it is the same whatever else is drawn. */
int64_t hy_draw_samples(const hy_plan *pl, const hy_job *j, int64_t b, int64_t hk, int64_t H_kv, int32_t *out)
{
    int64_t n = hy_samples_of(pl, j);
    if (n == j->nk) {
        for (int64_t t = 0; t < n; t++)
            out[t] = (int32_t)(j->k0 + t);
        return n;
    }
    attn_rng g;
    attn_rng_seed_item(&g, pl->seed, 0x53414d50u /* "SAMP" */ ^ ((uint64_t)j->q0 << 32), (uint64_t)(b * H_kv + hk));
    int64_t taken = 0;
    for (int64_t t = j->nk - n; t < j->nk; t++) {
        int32_t u = (int32_t)(j->k0 + (int64_t)attn_rng_uint_below(&g, (uint64_t)t + 1));
        for (int64_t c = 0; c < taken; c++)
            if (out[c] == u) {
                u = (int32_t)(j->k0 + t);
                break;
            }
        out[taken++] = u;
    }
    qsort(out, (size_t)n, sizeof *out, hy_cmp_i32);
    return n;
}

double hy_sample_log_weight(const hy_job *j, int64_t nkb, int64_t outside)
{
    return outside > 0 ? log((double)(j->nk - nkb) / (double)outside) : -INFINITY;
}

/* ---- codes and sort ---- */

uint32_t hy_code_f64(const double *x, const double *R, int64_t D, int r)
{
    uint32_t bits = 0;
    for (int c = 0; c < r; c++) {
        double p = 0;
        for (int64_t d = 0; d < D; d++)
            p += x[d] * R[d * r + c];
        bits |= (uint32_t)(p > 0) << c;
    }
    return hy_gray_rank(bits);
}

/* ---- fp32 codes of the kernel ---- */

void hy_hash_tables(const hy_plan *pl, int64_t D, hy_hash *hs)
{
    hy_hyperplanes(pl, D, hs->Rd);
    double m = 0;
    for (int c = 0; c < pl->r; c++) {
        double n2 = 0;
        for (int64_t d = 0; d < D; d++)
            n2 += hs->Rd[d * pl->r + c] * hs->Rd[d * pl->r + c];
        m = fmax(m, n2);
    }
    for (int64_t i = 0; i < D * pl->r; i++)
        hs->Rf[i] = (float)hs->Rd[i];
    /* an fp32 dot product of length D is within (D + 2) 2^-24 |x| |R_c| of
     * the exact one in any summation order (R rounded to float included):
     * a projection beyond twice that (times 2 for margin) has its exact sign */
    hs->tol = 4.0 * (double)(D + 2) * 0x1p-24 * sqrt(m) * 1.01;
}

double hy_codes_f32(const hy_plan *pl, const hy_hash *hs, const attn_tensor *x, int64_t b, int64_t h, int64_t n,
                    int32_t *code, float *P, double *xd)
{
    int64_t D = x->D, r = pl->r;
    for (int64_t i0 = 0; i0 < n; i0 += HY_HASH_TILE) {
        int64_t m = n - i0 < HY_HASH_TILE ? n - i0 : HY_HASH_TILE;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)r, (int)D, 1.0f, attn_at(x, b, h, i0),
                    (int)x->sn, hs->Rf, (int)r, 0.0f, P, (int)r);
        for (int64_t i = 0; i < m; i++) {
            const float *row = attn_at(x, b, h, i0 + i);
            double norm = 0;
            for (int64_t d = 0; d < D; d++)
                norm += (double)row[d] * row[d];
            float tol = (float)(hs->tol * sqrt(norm));
            uint32_t bits = 0;
            int decided = 1;
            for (int64_t c = 0; c < r; c++) {
                float p = P[i * r + c];
                decided &= fabsf(p) > tol; /* NaN is undecided: the exact form takes it */
                bits |= (uint32_t)(p > 0) << c;
            }
            if (!decided) {
                for (int64_t d = 0; d < D; d++)
                    xd[d] = row[d];
                code[i0 + i] = (int32_t)hy_code_f64(xd, hs->Rd, D, pl->r);
            } else
                code[i0 + i] = (int32_t)hy_gray_rank(bits);
        }
    }
    return 2.0 * (double)n * (double)D * (double)r;
}
