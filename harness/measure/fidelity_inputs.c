/* The fidelity input families (fidelity.h). Every element is drawn from a
 * stream of its own row (attn_rng_seed_item), so the values do not depend on
 * strides, thread count or the order rows are filled in. */
#include "fidelity.h"

#include "common/rng.h"

#include <math.h>
#include <stdlib.h>

const char *const fid_inputs_names[] = {"uniform", "gaussian", "lowrank", "peaked", "longtail", NULL};

enum { TAG_Q = 1, TAG_K, TAG_V, TAG_BASIS, TAG_PLANT };

#define LOWRANK_R 8
#define LOWRANK_NOISE 0.05
#define PEAK_MAX_KEYS 4
#define LONGTAIL_ALPHA 3.0

static void fill_normal_row(float *x, int64_t D, attn_rng *r, double scale)
{
    for (int64_t d = 0; d < D; d++)
        x[d] = (float)(scale * attn_rng_normal(r));
}

/* Row n of head (b, h) of t, from stream (seed, tag). */
static attn_rng row_rng(uint64_t seed, int tag, const attn_tensor *t, int64_t b, int64_t h, int64_t n)
{
    attn_rng r;
    attn_rng_seed_item(&r, seed, (uint64_t)tag, (uint64_t)((b * t->H + h) * t->N + n));
    return r;
}

static void fill_gaussian(const attn_tensor *t, uint64_t seed, int tag)
{
    for (int64_t b = 0; b < t->B; b++)
        for (int64_t h = 0; h < t->H; h++)
            for (int64_t n = 0; n < t->N; n++) {
                attn_rng r = row_rng(seed, tag, t, b, h, n);
                fill_normal_row(attn_at(t, b, h, n), t->D, &r, 1.0);
            }
}

/* Rows c·B + noise with c ~ N(0, I_R) and the shared basis B (R x D, entries
 * N(0, 1/R), so elements have variance about 1) of KV head (b, kv). */
static void fill_lowrank(const attn_tensor *t, const double *basis, int64_t b, int64_t h, int64_t kv,
                         int64_t H_kv, uint64_t seed, int tag)
{
    int64_t D = t->D;
    const double *B = basis + (b * H_kv + kv) * LOWRANK_R * D;
    for (int64_t n = 0; n < t->N; n++) {
        attn_rng r = row_rng(seed, tag, t, b, h, n);
        double c[LOWRANK_R];
        for (int i = 0; i < LOWRANK_R; i++)
            c[i] = attn_rng_normal(&r);
        float *x = attn_at(t, b, h, n);
        for (int64_t d = 0; d < D; d++) {
            double s = LOWRANK_NOISE * attn_rng_normal(&r);
            for (int i = 0; i < LOWRANK_R; i++)
                s += c[i] * B[i * D + d];
            x[d] = (float)s;
        }
    }
}

static void lowrank(const attn_args *a, uint64_t seed, const attn_io *io)
{
    int64_t D = a->D, n_basis = a->B * a->H_kv * LOWRANK_R * D;
    double *basis = malloc(sizeof(double) * (size_t)n_basis);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t kv = 0; kv < a->H_kv; kv++) {
            attn_rng r;
            attn_rng_seed_item(&r, seed, TAG_BASIS, (uint64_t)(b * a->H_kv + kv));
            for (int64_t i = 0; i < LOWRANK_R * D; i++)
                basis[(b * a->H_kv + kv) * LOWRANK_R * D + i] = attn_rng_normal(&r) / sqrt((double)LOWRANK_R);
        }
    int64_t G = a->H / a->H_kv;
    for (int64_t b = 0; b < a->B; b++) {
        for (int64_t h = 0; h < a->H; h++)
            fill_lowrank(&io->q, basis, b, h, h / G, a->H_kv, seed, TAG_Q);
        for (int64_t kv = 0; kv < a->H_kv; kv++)
            fill_lowrank(&io->k, basis, b, kv, kv, a->H_kv, seed, TAG_K);
    }
    free(basis);
}

/* Query (b, h, i) = N(0, I) plus, for each of 1-4 planted keys j it may
 * attend, (delta / scale) k_j / |k_j|^2 with delta in [6, 10]: its logit with
 * k_j rises by delta over a N(0, 1) background (other planted keys add cross
 * terms of about delta / sqrt(D) to every logit). */
static void plant_row(const attn_args *a, const attn_io *io, uint64_t seed, int64_t b, int64_t h, int64_t i)
{
    int64_t D = a->D, kv = h / (a->H / a->H_kv), pi = attn_q_off_of(a, b) + i;
    attn_rng r = row_rng(seed, TAG_PLANT, &io->q, b, h, i);
    float *q = attn_at(&io->q, b, h, i);
    int keys = 1 + (int)attn_rng_uint_below(&r, PEAK_MAX_KEYS);
    for (int p = 0; p < keys; p++) {
        int64_t j = -1;
        for (int tries = 0; tries < 64 && j < 0; tries++) {
            int64_t c = (int64_t)attn_rng_uint_below(&r, (uint64_t)attn_kv_len(a, b));
            if (attn_mask_allowed(&a->mask, b, h, pi, a->k_off + c))
                j = c;
        }
        double delta = 6.0 + 4.0 * attn_rng_uniform(&r);
        if (j < 0)
            continue; /* a row that may attend almost nothing keeps its background */
        const float *k = attn_at(&io->k, b, kv, j);
        double k2 = 0;
        for (int64_t d = 0; d < D; d++)
            k2 += (double)k[d] * k[d];
        double c = k2 > 0 ? delta / attn_scale(a) / k2 : 0;
        for (int64_t d = 0; d < D; d++)
            q[d] += (float)(c * k[d]);
    }
}

/* Keys of Pareto(alpha) norms times a N(0, I) direction. */
static void longtail_keys(const attn_tensor *k, uint64_t seed)
{
    for (int64_t b = 0; b < k->B; b++)
        for (int64_t h = 0; h < k->H; h++)
            for (int64_t n = 0; n < k->N; n++) {
                attn_rng r = row_rng(seed, TAG_K, k, b, h, n);
                double m = pow(1.0 - attn_rng_uniform(&r), -1.0 / LONGTAIL_ALPHA); /* >= 1 */
                fill_normal_row(attn_at(k, b, h, n), k->D, &r, m);
            }
}

void fid_fill(fid_inputs f, const attn_args *a, uint64_t seed, const attn_io *io)
{
    if (f == FID_UNIFORM)
        return;
    fill_gaussian(&io->v, seed, TAG_V);
    if (f == FID_LOWRANK)
        return lowrank(a, seed, io);
    fill_gaussian(&io->q, seed, TAG_Q);
    if (f == FID_LONGTAIL)
        return longtail_keys(&io->k, seed);
    fill_gaussian(&io->k, seed, TAG_K);
    if (f != FID_PEAKED)
        return;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < attn_q_len(a, b); i++)
                plant_row(a, io, seed, b, h, i);
}
