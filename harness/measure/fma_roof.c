/* The FMA roof's register-only loop (fma_roof.h). */
#include "fma_roof.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>

/* Independent accumulators: with an FMA latency of 4 cycles and 2 FMA ports
 * 8 chains keep every port busy; 12 leave room for 5-cycle parts and still
 * fit the 16 (AVX2) or 32 (AVX-512) vector registers. */
#define CHAINS 12

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1(x) _mm512_set1_ps(x)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
static float hsum(vec v) { return _mm512_reduce_add_ps(v); }
static const char isa[] = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define SET1(x) _mm256_set1_ps(x)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
static float hsum(vec v)
{
    float l[8];
    _mm256_storeu_ps(l, v);
    return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}
static const char isa[] = "avx2";
#else
typedef float vec;
#define LANES 1
#define SET1(x) (x)
#define FMA(a, b, c) fmaf(a, b, c)
static float hsum(vec v) { return v; }
static const char isa[] = "scalar";
#endif

const char *fma_roof_isa(void) { return isa; }

/* x <- 0.9999 x + 1e-4 converges to 1: no overflow, no subnormals, and the
 * compiler cannot fold it (FMAs are not reassociated without -ffast-math). */
static float chains(long iters, float seed)
{
    const vec m = SET1(0.9999f), a = SET1(1e-4f);
    vec acc[CHAINS];
    for (int i = 0; i < CHAINS; i++)
        acc[i] = SET1(seed + 0.001f * (float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < CHAINS; i++) /* unrolled: each chain stays in its register */
            acc[i] = FMA(acc[i], m, a);
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += hsum(acc[i]);
    return s;
}

float fma_roof_call(int threads, long iters, double *flops)
{
    float total = 0;
    int team = 1; /* the threads that ran, should the runtime give fewer */
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        if (omp_get_thread_num() == 0)
            team = omp_get_num_threads();
        total += chains(iters, 0.5f);
    }
    *flops = 2.0 * CHAINS * LANES * (double)iters * team;
    return total;
}
