/* The bf16 dot-product roof's register-only loop (bf16_roof.h). The loop
 * is compiled for AVX512_BF16 whatever the build's -march, and only called
 * after the CPU says it has the instruction. */
#include "bf16_roof.h"

#include <omp.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* As the FMA roof's: chains enough for a 5-cycle latency on 2 ports, and
 * within the 32 vector registers. */
#define CHAINS 12
#define LANES 16

int bf16_roof_available(void) { return __builtin_cpu_supports("avx512bf16"); }

const char *bf16_roof_missing(void) { return bf16_roof_available() ? "" : "no AVX512_BF16 on this CPU"; }

/* acc += x . y with x, y pairs of bf16 1/64: small increments, no overflow in
 * any run length a probe takes, and not foldable (each result feeds the next). */
__attribute__((target("avx512f,avx512bf16"))) static float chains(long iters)
{
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3c80); /* bf16 1/64 */
    __m512 acc[CHAINS];
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps(0.001f * (float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], x, x);
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += _mm512_reduce_add_ps(acc[i]);
    return s;
}

float bf16_roof_call(int threads, long iters, double *flops)
{
    *flops = 0;
    if (!bf16_roof_available())
        return 0;
    float total = 0;
    int team = 1;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        if (omp_get_thread_num() == 0)
            team = omp_get_num_threads();
        total += chains(iters);
    }
    *flops = 2.0 * 2 * CHAINS * LANES * (double)iters * team; /* 2 products a lane, a multiply and an add each */
    return total;
}

#else
int bf16_roof_available(void) { return 0; }
const char *bf16_roof_missing(void) { return "not an x86-64 build"; }
float bf16_roof_call(int threads, long iters, double *flops)
{
    (void)threads, (void)iters;
    *flops = 0;
    return 0;
}
#endif
