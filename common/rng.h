/* Seeded randomness passed explicitly (never rand()): xoshiro256** streams
 * seeded through SplitMix64, plus a stateless SplitMix64 hash for random
 * masks so oracle, kernels and any thread count agree. */
#ifndef ATTN_RNG_H
#define ATTN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} attn_rng;

static inline uint64_t attn_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline void attn_rng_seed(attn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = seed = attn_splitmix64(seed);
}

static inline uint64_t attn_rng_next(attn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double attn_rng_uniform(attn_rng *r) { return (double)(attn_rng_next(r) >> 11) * 0x1.0p-53; }

/* Standard normal (Box-Muller, one of the pair; two uniforms per draw). */
static inline double attn_rng_normal(attn_rng *r)
{
    double u1 = attn_rng_uniform(r), u2 = attn_rng_uniform(r);
    return __builtin_sqrt(-2.0 * __builtin_log(1.0 - u1)) * __builtin_cos(6.283185307179586476925 * u2); /* 1 - u1 in (0, 1] */
}

/* Uniform in [lo, hi). */
static inline float attn_rng_range(attn_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)attn_rng_uniform(r);
}

/* x[0..n) uniform in [-bound, bound), drawn in order (initial weights). */
static inline void attn_rng_fill_symmetric(attn_rng *r, float *x, int64_t n, float bound)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = attn_rng_range(r, -bound, bound);
}

/* Uniform integer in [0, n), n >= 1, without modulo bias (Lemire 2019). */
static inline uint64_t attn_rng_uint_below(attn_rng *r, uint64_t n)
{
    __extension__ unsigned __int128 m = (unsigned __int128)attn_rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = -n % n;
        while (lo < t) {
            m = (unsigned __int128)attn_rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* A stream for item `index` of stream family (seed, tag): items are
 * independent of how many are drawn, and families of different tags differ. */
static inline void attn_rng_seed_item(attn_rng *r, uint64_t seed, uint64_t tag, uint64_t index)
{
    attn_rng_seed(r, attn_splitmix64(attn_splitmix64(seed ^ 0x5eedull) ^ (tag * 0x9e3779b97f4a7c15ull)) ^ index);
}

#endif
