/* The coarse-to-fine block search of `hip` (the formulas are in
 * hip_internal.h), as the fp32 forward runs it: the query block and every
 * representative key are widened to double and scored by hip_block_score, the
 * function the reference scores with, so both select the same blocks. */
#include "hip_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Four doubles (GCC vector extension): partial sums d mod 4 in one register. */
typedef double hip_v4 __attribute__((vector_size(32)));

static inline hip_v4 hip_load4(const double *p)
{
    hip_v4 v;
    memcpy(&v, p, sizeof v); /* unaligned rows */
    return v;
}

/* Out of line on purpose: the kernel and the reference must run the very same
 * instructions. Per row four interleaved partial sums (d mod 4), added as
 * (0+1)+(2+3); rows go in pairs so two rows' sums advance side by side. */
__attribute__((noinline)) double hip_block_score(const double *q, int64_t ldq, int64_t nq, const double *key,
                                                 int64_t D, double sc)
{
    double best = -INFINITY;
    int64_t D4 = D / 4 * 4;
    for (int64_t r = 0; r < nq; r += 2) {
        int pair = r + 1 < nq;
        const double *x = q + r * ldq, *z = q + (r + pair) * ldq;
        hip_v4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
        for (int64_t d = 0; d < D4; d += 4) {
            hip_v4 k = hip_load4(key + d);
            a += hip_load4(x + d) * k;
            b += hip_load4(z + d) * k;
        }
        for (int64_t d = D4; d < D; d++)
            a[0] += x[d] * key[d], b[0] += z[d] * key[d];
        double u = sc * ((a[0] + a[1]) + (a[2] + a[3])), v = sc * ((b[0] + b[1]) + (b[2] + b[3]));
        best = u > best ? u : best; /* a NaN never wins: the maximum stays -inf or finite */
        best = pair && v > best ? v : best;
    }
    return best;
}

int64_t hip_rounds(const hip_plan *pl, int64_t nb)
{
    if (nb <= pl->k)
        return 0;
    int64_t widest = (nb + pl->k - 1) / pl->k, r = 0;
    while (widest > 1)
        widest = (widest + 1) / 2, r++;
    return r;
}

size_t hip_search_ws_bytes(const hip_plan *pl, const attn_args *a)
{
    return sizeof(hip_node) * (size_t)(5 * pl->k) + sizeof(double) * (size_t)((pl->bq + 1) * a->D);
}

hip_search_ws hip_search_ws_at(const hip_plan *pl, const attn_args *a, void *mem)
{
    hip_search_ws w;
    w.nodes = mem;
    w.kids = w.nodes + pl->k;
    w.tmp = w.kids + 2 * pl->k;
    w.qb = (double *)(w.tmp + 2 * pl->k);
    w.key = w.qb + pl->bq * a->D;
    w.reps = 0;
    return w;
}

/* Is x ranked before y? Higher score, then the lower first block: a total
 * order, so the k kept children do not depend on how they are found. */
static inline int hip_before(const hip_node *x, const hip_node *y)
{
    return x->score > y->score || (x->score == y->score && x->a < y->a);
}

/* The k-th node of v[0..n) in hip_before order (v is reordered):
 * quickselect with a middle pivot, O(n) expected. */
static hip_node hip_kth(hip_node *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        hip_node pivot = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (hip_before(&v[i], &pivot))
                i++;
            while (hip_before(&pivot, &v[j]))
                j--;
            if (i <= j) {
                hip_node t = v[i];
                v[i++] = v[j], v[j--] = t;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            break;
    }
    return v[want];
}

/* Keeps the k best of kids[0..n) in nodes[], in ascending position (the
 * order the children were made in). tmp: n nodes of scratch. */
static void hip_keep_best(const hip_node *kids, int64_t n, int64_t k, hip_node *tmp, hip_node *nodes)
{
    memcpy(tmp, kids, sizeof *tmp * (size_t)n);
    hip_node kth = hip_kth(tmp, n, k);
    int64_t m = 0;
    for (int64_t t = 0; t < n; t++)
        if (!hip_before(&kth, &kids[t])) /* kids[t] is kth or ranked before it: k of them */
            nodes[m++] = kids[t];
}

/* Software prefetch of the representative row of the child PF places ahead:
 * the reps are scattered over the cache, so their reads are latency-bound
 * unless they overlap. */
#define HIP_PF_AHEAD 32

static void hip_prefetch_rep(const hip_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t hk,
                             const hip_node *n)
{
    const char *p = (const char *)attn_at(&io->k, b, hk, (n->a + (n->c - n->a) / 2) * pl->bk);
    for (int64_t off = 0; off < (int64_t)sizeof(float) * a->D; off += 64)
        __builtin_prefetch(p + off, 0, 0);
}

/* max_r sc <q_r, k_rep> of the node (NaN taken as -inf, to keep the order total). */
static double hip_score(const hip_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t hk,
                        int64_t nq, const hip_node *n, hip_search_ws *ws)
{
    int64_t D = a->D, rep = (n->a + (n->c - n->a) / 2) * pl->bk;
    const float *k = attn_at(&io->k, b, hk, rep);
    for (int64_t d = 0; d < D; d++)
        ws->key[d] = k[d];
    ws->reps += 1;
    return hip_block_score(ws->qb, D, nq, ws->key, D, attn_scale(a));
}

int64_t hip_search(const hip_plan *pl, const attn_args *a, const attn_io *io, int64_t b, int64_t h, int64_t s,
                   int64_t e, hip_search_ws *ws, int64_t *blocks)
{
    int64_t nb = (e + pl->bk - 1) / pl->bk, k = pl->k, D = a->D, hk = h / (a->H / a->H_kv);
    if (nb <= k) {
        for (int64_t t = 0; t < nb; t++)
            blocks[t] = t;
        return nb;
    }
    int64_t r0 = hip_block_first(pl, s), nq = s - r0 + 1;
    for (int64_t r = 0; r < nq; r++) {
        const float *q = attn_at(&io->q, b, h, r0 + r);
        for (int64_t d = 0; d < D; d++)
            ws->qb[r * D + d] = q[d];
    }
    hip_node *nodes = ws->nodes, *kids = ws->kids;
    for (int64_t t = 0; t < k; t++) { /* single blocks are carried, not split: score them now */
        nodes[t] = (hip_node){.a = t * nb / k, .c = (t + 1) * nb / k, .score = 0};
        if (nodes[t].c - nodes[t].a == 1)
            nodes[t].score = hip_score(pl, a, io, b, hk, nq, &nodes[t], ws);
    }
    for (int64_t round = hip_rounds(pl, nb); round > 0; round--) {
        int64_t n = 0;
        for (int64_t t = 0; t < k; t++) {
            hip_node x = nodes[t];
            if (x.c - x.a == 1) { /* a single block stays, its score already known */
                kids[n++] = x;
                continue;
            }
            int64_t m = x.a + (x.c - x.a) / 2;
            kids[n++] = (hip_node){.a = x.a, .c = m, .score = NAN}; /* NaN: to be scored */
            kids[n++] = (hip_node){.a = m, .c = x.c, .score = NAN};
        }
        for (int64_t t = 0; t < n && t < HIP_PF_AHEAD; t++)
            hip_prefetch_rep(pl, a, io, b, hk, &kids[t]);
        for (int64_t t = 0; t < n; t++) {
            if (t + HIP_PF_AHEAD < n && isnan(kids[t + HIP_PF_AHEAD].score))
                hip_prefetch_rep(pl, a, io, b, hk, &kids[t + HIP_PF_AHEAD]);
            if (isnan(kids[t].score))
                kids[t].score = hip_score(pl, a, io, b, hk, nq, &kids[t], ws);
        }
        hip_keep_best(kids, n, k, ws->tmp, nodes);
    }
    for (int64_t t = 0; t < k; t++)
        blocks[t] = nodes[t].a;
    return k;
}
