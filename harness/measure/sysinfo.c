/* Machine and run context from /proc and sysfs (sysinfo.h). Every reader
 * degrades to "unknown"/0 when the file is missing (containers, non-Linux). */
#include "sysinfo.h"
#include "attn_git_sha.h" /* generated at build time (cmake/git_sha.cmake) */

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

static char cpu_model[128] = "unknown";
static char run_id[16];
static once_flag cpu_once = ONCE_FLAG_INIT, run_once = ONCE_FLAG_INIT;

/* Strips leading/trailing whitespace in place. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Value of the first "key : value" line in /proc/cpuinfo, or 0 if absent. */
static int cpuinfo_field(const char *key, char *out, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[512];
    size_t klen = strlen(key);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon || strncmp(line, key, klen) != 0)
            continue;
        *colon = '\0';
        if (strcmp(trim(line), key) == 0) {
            snprintf(out, len, "%s", trim(colon + 1));
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void read_cpu_model(void)
{
    char buf[sizeof cpu_model];
    if (cpuinfo_field("model name", buf, sizeof buf) && buf[0])
        snprintf(cpu_model, sizeof cpu_model, "%s", buf);
}

const char *sysinfo_cpu(void)
{
    call_once(&cpu_once, read_cpu_model);
    return cpu_model;
}

int sysinfo_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double sysinfo_mem_available(void)
{
    /* MemAvailable counts the page cache the kernel would give back, which
     * free RAM alone does not; sysconf's physical pages when it is absent. */
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kib = 0;
    while (f && !kib && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) != 1)
            kib = 0;
    if (f)
        fclose(f);
    if (kib)
        return 1024.0 * (double)kib;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

/* First line of a small sysfs file, trimmed; 0 if unreadable. */
static int read_line(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(out, (int)len, f) != NULL;
    fclose(f);
    if (ok) {
        char *t = trim(out);
        memmove(out, t, strlen(t) + 1);
    }
    return ok;
}

/* Number of CPUs in a sysfs list like "0-3,8,10-11". */
static int count_cpu_list(const char *s)
{
    int n = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s)
            break;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        n += (int)(b - a + 1);
        s = *end == ',' ? end + 1 : end;
    }
    return n > 0 ? n : 1;
}

int sysinfo_caches(sysinfo_cache *out, int max)
{
    int n = 0;
    for (int idx = 0; n < max; idx++) {
        char path[128], level[16], type[sizeof out->type], size[32], shared[256];
        const char *base = "/sys/devices/system/cpu/cpu0/cache/index";
        snprintf(path, sizeof path, "%s%d/level", base, idx);
        if (!read_line(path, level, sizeof level))
            break;
        snprintf(path, sizeof path, "%s%d/type", base, idx);
        if (!read_line(path, type, sizeof type))
            break;
        snprintf(path, sizeof path, "%s%d/size", base, idx);
        if (!read_line(path, size, sizeof size))
            break;
        snprintf(path, sizeof path, "%s%d/shared_cpu_list", base, idx);
        if (!read_line(path, shared, sizeof shared))
            snprintf(shared, sizeof shared, "0");
        /* sysfs sizes read "48K" or "32M". */
        char *unit;
        size_t bytes = strtoull(size, &unit, 10);
        bytes <<= *unit == 'K' ? 10 : *unit == 'M' ? 20 : *unit == 'G' ? 30 : 0;
        sysinfo_cache *c = &out[n++];
        c->level = atoi(level);
        snprintf(c->type, sizeof c->type, "%s", type);
        c->bytes = bytes;
        c->shared_by = count_cpu_list(shared);
    }
    return n;
}

size_t sysinfo_llc_bytes(void)
{
    sysinfo_cache c[8];
    int n = sysinfo_caches(c, 8), best = -1;
    for (int i = 0; i < n; i++)
        if (best < 0 || c[i].level > c[best].level)
            best = i;
    return best < 0 ? 0 : c[best].bytes;
}

void sysinfo_utc_iso8601(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *sysinfo_git_sha(void)
{
    return ATTN_GIT_SHA;
}

const char *sysinfo_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown compiler";
#endif
}

/* splitmix64 finalizer: spreads nearby inputs (consecutive pids, close
 * timestamps) over all bits. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void make_run_id(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t h = mix64(ns ^ mix64((uint64_t)getpid()));
    snprintf(run_id, sizeof run_id, "%012llx", (unsigned long long)(h >> 16));
}

const char *sysinfo_run_id(void)
{
    call_once(&run_once, make_run_id);
    return run_id;
}

void sysinfo_print(FILE *f)
{
    char mhz[64] = "", utc[32], gov[64];
    cpuinfo_field("cpu MHz", mhz, sizeof mhz);
    fprintf(f, "Run on (%d X %s%s%s%s)\n", sysinfo_ncpu(), sysinfo_cpu(),
            mhz[0] ? ", " : "", mhz, mhz[0] ? " MHz" : "");
    sysinfo_cache c[8];
    int n = sysinfo_caches(c, 8);
    fprintf(f, "CPU Caches:%s\n", n ? "" : " unknown (no sysfs cache info)");
    for (int i = 0; i < n; i++) {
        int inst = sysinfo_ncpu() / c[i].shared_by;
        fprintf(f, "  L%d %-11s %zu KiB (x%d)\n", c[i].level, c[i].type, c[i].bytes >> 10,
                inst > 0 ? inst : 1);
    }
    double load[3];
    if (getloadavg(load, 3) == 3)
        fprintf(f, "Load Average: %.2f, %.2f, %.2f\n", load[0], load[1], load[2]);
    if (!read_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", gov, sizeof gov))
        snprintf(gov, sizeof gov, "unknown (no cpufreq in sysfs)");
    fprintf(f, "CPU scaling governor: %s\n", gov);
    sysinfo_utc_iso8601(utc, sizeof utc);
    fprintf(f, "attnbench %s, %s, run %s at %s\n", sysinfo_git_sha(), sysinfo_compiler(), sysinfo_run_id(), utc);
}
