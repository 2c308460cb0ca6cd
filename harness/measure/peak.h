/* Machine peaks measured in the same run as the kernels they judge
 * (docs/measurement.md):
 *
 *   sgemm_gflops  cblas_sgemm on square fp32 n x n matrices, OpenBLAS with
 *                 `threads` threads, 2 n^3 FLOPs per call.
 *   stream_gbs    STREAM triad a[i] = b[i] + s*c[i] over three fp32 arrays
 *                 far larger than the last-level cache, OpenMP with `threads`
 *                 threads. Bytes are counted as STREAM
 *                 does: 3 arrays x 4 B per element (2 reads, 1 write). The
 *                 write-allocate read of a[] is real traffic but not counted,
 *                 so hardware moves 4/3 of the reported figure; kernels'
 *                 bytes_analytic counts the same way (minimum traffic).
 *   fma_gflops    the compute roof: a register-only loop of independent fused
 *                 multiply-adds on every one of `threads` threads (fma_roof.h).
 *   bf16_gflops   the bf16 compute roof: the same with the AVX512_BF16 dot
 *                 product (bf16_roof.h); 0 where the CPU lacks it.
 *
 * Each probe warms up until two consecutive calls agree within 5 %, then
 * keeps the best of 5 calls: the probes ask what the machine can do, and a
 * slower call is one something else disturbed (kernel rows report medians, so
 * a kernel on a quiet machine lands a little under its roof, never above).
 * pct_roofline = max(bytes / stream, flops / roof) / time, roof the bf16 one
 * for a row on bf16 operands where it exists, else the FMA roof. */
#ifndef ATTN_PEAK_H
#define ATTN_PEAK_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    int threads;
    double sgemm_gflops, stream_gbs, fma_gflops;
    double bf16_gflops;    /* 0: no bf16 dot product on this CPU */
    int sgemm_n;           /* matrix order used */
    size_t stream_bytes;   /* footprint of the three arrays = bytes counted per triad pass */
} peak_result;

/* Default sizes: 2048^3 sgemm (48 MiB of matrices) and 3 x 128 MiB arrays. */
#define ATTN_PEAK_SGEMM_N 2048
#define ATTN_PEAK_STREAM_BYTES ((size_t)3 << 27)

/* Measures both peaks at `threads` (>= 1) with the default sizes; a few
 * seconds. OpenBLAS's thread count is restored afterwards. */
int peak_measure(int threads, peak_result *out);

/* Same with explicit sizes (tests use small ones): sgemm_n >= 16,
 * stream_bytes >= 3 * 4096. Sizes that fit in cache overstate the peaks. */
int peak_measure_sized(int threads, int sgemm_n, size_t stream_bytes, peak_result *out);

/* The STREAM probe alone (a sweep re-probes around memory-bound jobs):
 * stream_bytes >= 12288. */
int peak_stream_probe(int threads, size_t stream_bytes, double *gbs);

/* Reads the peaks for this CPU and thread count from a small text cache (one
 * line per cpu x threads); measures and adds them when absent. The file is
 * replaced atomically (write to a temporary, rename); its directory is
 * created if missing. cache_path NULL just measures. If only writing the
 * cache fails, *out is still valid and ATTN_EIO is returned. */
int peak_load_or_measure(const char *cache_path, int threads, peak_result *out);

/* The compute roof of a kernel whose operands are bf16 (bf16 = 1) or not:
 * the bf16 roof where the CPU has one, else the FMA roof. */
double peak_compute_roof(const peak_result *p, int bf16);

/* One line: "peak (T threads): sgemm X GFLOP/s (n=..), STREAM triad Y GB/s (..), FMA roof Z GFLOP/s (isa),
 * bf16 dot roof W GFLOP/s | NA (why)". */
void peak_print(FILE *f, const peak_result *p);

#endif
