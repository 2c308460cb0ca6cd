/* sgemm and STREAM-triad probes and their on-disk cache (peak.h). */
#include "peak.h"

#include "kernels/core/attn.h"
#include "bf16_roof.h"
#include "fma_roof.h"
#include "measure.h"
#include "sysinfo.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Warm-up until two consecutive calls agree within 5 % (caches, page
 * faults, clock ramp-up settled; at most PROBE_WARMUP_MAX calls), then the
 * fastest of `reps` calls: a probe asks what the machine can do, and a slower
 * call is one that something else disturbed. */
#define PROBE_WARMUP_MAX 6
#define PROBE_STABLE 0.05
#define PROBE_REPS 5

static int timed_call(int (*fn)(void *), void *arg, double *s)
{
    double t0 = measure_now_s();
    int rc = fn(arg);
    *s = measure_now_s() - t0;
    return rc;
}

static int probe_best_ms(int (*fn)(void *), void *arg, int reps, double *best_ms)
{
    double prev = -1, t, best = INFINITY;
    int rc = 0;
    for (int w = 0; !rc && w < PROBE_WARMUP_MAX; w++) {
        if ((rc = timed_call(fn, arg, &t)) == 0 && prev > 0 && fabs(t - prev) <= PROBE_STABLE * prev)
            break;
        prev = t;
    }
    for (int r = 0; !rc && r < reps; r++)
        if ((rc = timed_call(fn, arg, &t)) == 0)
            best = fmin(best, t);
    *best_ms = best * 1e3;
    return rc;
}

typedef struct {
    int n;
    float *a, *b, *c;
} sgemm_case;

static int sgemm_call(void *arg)
{
    sgemm_case *s = arg;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->n, s->n, s->n, 1.0f, s->a, s->n, s->b,
                s->n, 0.0f, s->c, s->n);
    return 0;
}

/* Median GFLOP/s of n x n x n sgemm with OpenBLAS at `threads`. */
static int sgemm_gflops(int threads, int n, double *gflops)
{
    size_t elems = (size_t)n * (size_t)n;
    sgemm_case s = {n, attn_alloc(elems * 4), attn_alloc(elems * 4), attn_alloc(elems * 4)};
    if (!s.a || !s.b || !s.c) {
        attn_free(s.a), attn_free(s.b), attn_free(s.c);
        return attn_fail(ATTN_ENOMEM, "peak: cannot allocate three %dx%d fp32 matrices", n, n);
    }
    /* O(1) values keep the products far from overflow and subnormals. */
    for (size_t i = 0; i < elems; i++) {
        s.a[i] = 1.0f + (float)(i % 7) * 0.125f;
        s.b[i] = 1.0f - (float)(i % 5) * 0.0625f;
        s.c[i] = 0.0f;
    }
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    double ms;
    int rc = probe_best_ms(sgemm_call, &s, PROBE_REPS, &ms);
    openblas_set_num_threads(saved);
    if (rc == 0)
        *gflops = 2.0 * n * (double)n * n / (ms * 1e-3) * 1e-9;
    attn_free(s.a), attn_free(s.b), attn_free(s.c);
    return rc;
}

typedef struct {
    size_t n;
    int threads;
    float *a, *b, *c;
} triad_case;

static int triad_pass(void *arg)
{
    triad_case *t = arg;
    float *restrict a = t->a;
    const float *restrict b = t->b, *restrict c = t->c;
    const float s = 3.0f;
    long n = (long)t->n;
#pragma omp parallel for num_threads(t->threads) schedule(static)
    for (long i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
    return 0;
}

/* Median GB/s of the triad over `bytes` of three equal fp32 arrays. */
static int stream_gbs(int threads, size_t bytes, double *gbs)
{
    triad_case t = {bytes / 12, threads, NULL, NULL, NULL};
    t.a = attn_alloc(t.n * 4), t.b = attn_alloc(t.n * 4), t.c = attn_alloc(t.n * 4);
    if (!t.a || !t.b || !t.c) {
        attn_free(t.a), attn_free(t.b), attn_free(t.c);
        return attn_fail(ATTN_ENOMEM, "peak: cannot allocate 3 x %zu bytes for STREAM", t.n * 4);
    }
    /* First touch with the triad's schedule: each thread's pages land on its
     * own NUMA node, as in STREAM. */
    long n = (long)t.n;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++) {
        t.a[i] = 0.0f;
        t.b[i] = 1.0f;
        t.c[i] = 2.0f;
    }
    double ms;
    int rc = probe_best_ms(triad_pass, &t, PROBE_REPS, &ms);
    /* The result is checked so the passes cannot be optimized away. */
    if (rc == 0 && (t.a[0] != 7.0f || t.a[t.n - 1] != 7.0f))
        rc = attn_fail(ATTN_EINVAL, "peak: triad produced %g, expected 7", (double)t.a[0]);
    if (rc == 0)
        *gbs = 12.0 * (double)t.n / (ms * 1e-3) * 1e-9;
    attn_free(t.a), attn_free(t.b), attn_free(t.c);
    return rc;
}

typedef struct {
    int threads;
    long iters;
    double flops;
    volatile float sink;
} fma_case;

static int fma_call(void *arg)
{
    fma_case *f = arg;
    f->sink = fma_roof_call(f->threads, f->iters, &f->flops);
    return 0;
}

static int bf16_call(void *arg)
{
    fma_case *f = arg;
    f->sink = bf16_roof_call(f->threads, f->iters, &f->flops);
    return 0;
}

/* Best GFLOP/s of a register-only roof loop (FMA or bf16 dot) at `threads`; 2^20 iterations
 * (about 2e8 FLOPs a call per thread, a few ms) with the default sgemm size,
 * fewer in proportion to n^2 with a smaller one (the quick probe bench_fit
 * takes with --no-peak, which also runs under valgrind), at least 2^12. */
static int roof_gflops(int (*call)(void *), int threads, int sgemm_n, double *gflops)
{
    double scale = (double)sgemm_n * sgemm_n / ((double)ATTN_PEAK_SGEMM_N * ATTN_PEAK_SGEMM_N);
    long iters = (long)((1L << 20) * (scale < 1 ? scale : 1));
    fma_case f = {threads, iters > (1L << 12) ? iters : 1L << 12, 0, 0};
    double ms;
    int rc = probe_best_ms(call, &f, PROBE_REPS, &ms);
    if (rc == 0)
        *gflops = f.flops / (ms * 1e-3) * 1e-9;
    return rc;
}

int peak_measure_sized(int threads, int sgemm_n, size_t stream_bytes, peak_result *out)
{
    if (threads < 1 || sgemm_n < 16 || stream_bytes < 3 * 4096)
        return attn_fail(ATTN_EINVAL,
                         "peak: expected threads >= 1, sgemm_n >= 16, stream_bytes >= 12288; "
                         "found %d, %d, %zu", threads, sgemm_n, stream_bytes);
    peak_result p = {.threads = threads, .sgemm_n = sgemm_n, .stream_bytes = stream_bytes / 12 * 12};
    int rc = sgemm_gflops(threads, sgemm_n, &p.sgemm_gflops);
    if (rc == 0)
        rc = stream_gbs(threads, stream_bytes, &p.stream_gbs);
    if (rc == 0)
        rc = roof_gflops(fma_call, threads, sgemm_n, &p.fma_gflops);
    if (rc == 0 && bf16_roof_available())
        rc = roof_gflops(bf16_call, threads, sgemm_n, &p.bf16_gflops);
    if (rc == 0)
        *out = p;
    return rc;
}

int peak_stream_probe(int threads, size_t stream_bytes, double *gbs)
{
    if (threads < 1 || stream_bytes < 3 * 4096)
        return attn_fail(ATTN_EINVAL, "peak: expected threads >= 1, stream_bytes >= 12288; found %d, %zu", threads,
                         stream_bytes);
    return stream_gbs(threads, stream_bytes, gbs);
}

int peak_measure(int threads, peak_result *out)
{
    return peak_measure_sized(threads, ATTN_PEAK_SGEMM_N, ATTN_PEAK_STREAM_BYTES, out);
}

/* Cache lines are tab-separated key=value fields; the key is cpu + threads.
 * The CPU string is sanitized so it cannot contain a tab or newline. */
static void cache_cpu(char *buf, size_t len)
{
    snprintf(buf, len, "%s (%d cpus)", sysinfo_cpu(), sysinfo_ncpu());
    for (char *c = buf; *c; c++)
        if (*c == '\t' || *c == '\n' || *c == '\r')
            *c = ' ';
}

static void format_line(char *buf, size_t len, const char *cpu, const peak_result *p)
{
    char utc[32];
    sysinfo_utc_iso8601(utc, sizeof utc);
    snprintf(buf, len,
             "cpu=%s\tthreads=%d\tsgemm_n=%d\tsgemm_gflops=%.3f\tstream_bytes=%zu\tstream_gbs=%.3f\t"
             "fma_gflops=%.3f\tbf16_gflops=%.3f\tutc=%s\n",
             cpu, p->threads, p->sgemm_n, p->sgemm_gflops, p->stream_bytes, p->stream_gbs, p->fma_gflops,
             p->bf16_gflops, utc);
}

/* Parses one cache line; 1 if it is for `cpu` and has every field (a line
 * from before the FMA or the bf16 roof does not: it is measured again). */
static int parse_line(const char *line, const char *cpu, peak_result *p)
{
    size_t clen = strlen(cpu);
    if (strncmp(line, "cpu=", 4) != 0 || strncmp(line + 4, cpu, clen) != 0 || line[4 + clen] != '\t')
        return 0;
    unsigned long long sb;
    int n = sscanf(line + 5 + clen,
                   "threads=%d\tsgemm_n=%d\tsgemm_gflops=%lf\tstream_bytes=%llu\tstream_gbs=%lf\tfma_gflops=%lf"
                   "\tbf16_gflops=%lf",
                   &p->threads, &p->sgemm_n, &p->sgemm_gflops, &sb, &p->stream_gbs, &p->fma_gflops, &p->bf16_gflops);
    p->stream_bytes = (size_t)sb;
    return n == 7 && p->bf16_gflops >= 0 && p->sgemm_gflops > 0 && p->stream_gbs > 0 && p->fma_gflops > 0 && isfinite(p->sgemm_gflops) &&
           isfinite(p->stream_gbs) && isfinite(p->fma_gflops);
}

/* Rewrites the cache with `add` appended, via a temporary file and rename so
 * a concurrent reader sees either the old or the new file, never a torn one.
 * Two processes missing at once both measure and the later rename drops the
 * other's line; it is measured again next time, nothing is corrupted. */
static int cache_append(const char *path, const char *add)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0777);   /* results/ may not exist yet; EEXIST is fine */
    }
    FILE *out = fopen(tmp, "w");
    if (!out)
        return attn_fail(ATTN_EIO, "peak: cannot write cache %s: %s", tmp, strerror(errno));
    FILE *in = fopen(path, "r");
    if (in) {
        char line[1024];
        while (fgets(line, sizeof line, in))
            fputs(line, out);
        fclose(in);
    }
    fputs(add, out);
    int bad = ferror(out);
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path) != 0) {
        int err = errno;
        remove(tmp);
        return attn_fail(ATTN_EIO, "peak: cannot replace cache %s: %s", path, strerror(err));
    }
    return 0;
}

int peak_load_or_measure(const char *cache_path, int threads, peak_result *out)
{
    if (!cache_path)
        return peak_measure(threads, out);
    char cpu[192], line[1024];
    cache_cpu(cpu, sizeof cpu);
    FILE *in = fopen(cache_path, "r");
    if (in) {
        peak_result p;
        int found = 0;
        /* Lines are only added when missing; if a hand-merged file has
         * several for this key, the last one wins. */
        while (fgets(line, sizeof line, in))
            if (parse_line(line, cpu, &p) && p.threads == threads) {
                *out = p;
                found = 1;
            }
        fclose(in);
        if (found)
            return 0;
    }
    int rc = peak_measure(threads, out);
    if (rc)
        return rc;
    format_line(line, sizeof line, cpu, out);
    return cache_append(cache_path, line);
}

double peak_compute_roof(const peak_result *p, int bf16)
{
    return bf16 && p->bf16_gflops > 0 ? p->bf16_gflops : p->fma_gflops;
}

void peak_print(FILE *f, const peak_result *p)
{
    char bf16[96];
    if (p->bf16_gflops > 0)
        snprintf(bf16, sizeof bf16, "%.1f GFLOP/s", p->bf16_gflops);
    else
        snprintf(bf16, sizeof bf16, "NA (%s)", bf16_roof_missing());
    fprintf(f, "peak (%d thread%s): sgemm %.1f GFLOP/s (n=%d), STREAM triad %.1f GB/s (3 x %.0f MiB), "
            "FMA roof %.1f GFLOP/s (%s), bf16 dot roof %s\n", p->threads, p->threads == 1 ? "" : "s", p->sgemm_gflops,
            p->sgemm_n, p->stream_gbs, p->stream_bytes / 3.0 / (1 << 20), p->fma_gflops, fma_roof_isa(), bf16);
}
