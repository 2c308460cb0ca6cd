/* Which queries `probsparse` treats exactly: the sampled sparsity measure
 * and the top-u ranking, one code path for the fp32 kernel and the double
 * reference so both select the same rows (probsparse_internal.h). */
#include "probsparse_internal.h"

#include "common/rng.h"

#include <math.h>
#include <stdlib.h>

#define PS_SAMPLE_TAG 0x70726f62ull /* stream family of the key samples */
#define PS_LANES 8                  /* partial sums of a dot product, combined in a fixed tree */
#define PS_AHEAD 4                  /* samples drawn and prefetched ahead of the one in use */

int64_t ps_budget(int64_t factor, int64_t n)
{
    if (n <= 1)
        return 0;
    double b = (double)factor * ceil(log((double)n));
    return b < (double)n ? (int64_t)b : n;
}

/* <q, k> with k in fp32 or double. Every product of two values that were
 * floats is exact in double, so the eight lanes and their fixed tree give
 * the same bits whatever the element type, vector width or contraction
 * (the lanes are independent: the compiler may run them as vectors). */
#define PS_DOT(name, T)                                                                                          \
    static double name(const double *q, const T *k, int64_t D)                                                 \
    {                                                                                                          \
        double acc[PS_LANES] = {0};                                                                            \
        int64_t d = 0;                                                                                         \
        for (; d + PS_LANES <= D; d += PS_LANES)                                                               \
            for (int l = 0; l < PS_LANES; l++)                                                                 \
                acc[l] += q[d + l] * (double)k[d + l];                                                         \
        for (int l = 0; d < D; d++, l++)                                                                       \
            acc[l] += q[d] * (double)k[d];                                                                     \
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));             \
    }

PS_DOT(ps_dot32, float)
PS_DOT(ps_dot64, double)

/* Prefetches the D values of key row j (fp32 rows: the kernel's; the
 * reference's doubles need no help). Samples land anywhere in K, so without
 * it every dot product waits on the cache. */
static void ps_prefetch_row(const float *k32, int64_t j, int64_t ksn, int64_t D)
{
    for (int64_t d = 0; k32 && d < D; d += 64 / (int64_t)sizeof(float))
        __builtin_prefetch(k32 + j * ksn + d);
}

double ps_measure(const ps_plan *pl, int64_t i, const double *q, int64_t D, const float *k32, const double *k64,
                  int64_t ksn)
{
    int64_t range = pl->causal && pl->sampling == PS_SAMPLE_PAST ? ps_keys_of(pl, i) : pl->Nk;
    if (range <= 0)
        return -INFINITY;
    attn_rng r;
    attn_rng_seed_item(&r, pl->seed, PS_SAMPLE_TAG, (uint64_t)i);
    int64_t ahead[PS_AHEAD]; /* the next samples, drawn in order and prefetched */
    for (int64_t t = 0; t < PS_AHEAD && t < pl->U; t++)
        ahead[t] = (int64_t)attn_rng_uint_below(&r, (uint64_t)range), ps_prefetch_row(k32, ahead[t], ksn, D);
    double mx = -INFINITY, sum = 0;
    for (int64_t t = 0; t < pl->U; t++) {
        int64_t j = ahead[t % PS_AHEAD];
        if (t + PS_AHEAD < pl->U) {
            int64_t next = (int64_t)attn_rng_uint_below(&r, (uint64_t)range);
            ahead[t % PS_AHEAD] = next;
            ps_prefetch_row(k32, next, ksn, D);
        }
        double s = k32 ? ps_dot32(q, k32 + j * ksn, D) : ps_dot64(q, k64 + j * ksn, D);
        mx = s > mx ? s : mx;
        sum += s;
    }
    return mx - sum / (double)(pl->divisor == PS_DIV_KEYS ? pl->Nk : pl->U);
}

/* Larger M first, then the lower row; NaN after every number. */
static int ps_rank_order(const void *x, const void *y)
{
    const ps_rank *p = x, *q = y;
    int pn = isnan(p->m), qn = isnan(q->m);
    if (pn != qn)
        return pn - qn;
    if (!pn && p->m != q->m)
        return p->m > q->m ? -1 : 1;
    return (p->row > q->row) - (p->row < q->row);
}

static int ps_row_order(const void *x, const void *y)
{
    int64_t p = *(const int64_t *)x, q = *(const int64_t *)y;
    return (p > q) - (p < q);
}

void ps_select(const double *M, int64_t n, int64_t u, int64_t *active, ps_rank *scratch)
{
    for (int64_t i = 0; i < n; i++)
        scratch[i] = (ps_rank){M[i], i};
    qsort(scratch, (size_t)n, sizeof *scratch, ps_rank_order); /* a total order: any sort gives this result */
    for (int64_t t = 0; t < u; t++)
        active[t] = scratch[t].row;
    qsort(active, (size_t)u, sizeof *active, ps_row_order);
}
