/* Machine and run context for result rows and report headers: CPU model,
 * logical CPUs, caches, scaling governor, UTC time, git sha, compiler and a
 * per-process run id (google/benchmark prints the same context up front). */
#ifndef ATTN_SYSINFO_H
#define ATTN_SYSINFO_H

#include <stddef.h>
#include <stdio.h>

/* "model name" from /proc/cpuinfo, or "unknown". Cached; thread-safe. */
const char *sysinfo_cpu(void);

/* Online logical CPUs (>= 1). */
int sysinfo_ncpu(void);

/* Bytes of memory available to a new job now (MemAvailable of
 * /proc/meminfo, else physical RAM; 0 if neither is known). */
double sysinfo_mem_available(void);

typedef struct {
    int level;            /* 1, 2, 3 */
    char type[16];        /* "Data", "Instruction", "Unified" */
    size_t bytes;         /* size of one instance */
    int shared_by;        /* logical CPUs sharing one instance (>= 1) */
} sysinfo_cache;

/* Caches of CPU 0 from /sys/devices/system/cpu/cpu0/cache, at most `max`;
 * returns how many were found (0 when sysfs does not say). */
int sysinfo_caches(sysinfo_cache *out, int max);

/* Largest cache level's size of one instance in bytes, 0 if unknown. */
size_t sysinfo_llc_bytes(void);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ" (buf >= 21 bytes). */
void sysinfo_utc_iso8601(char *buf, size_t len);

/* ATTN_GIT_SHA from the build, or "unknown". */
const char *sysinfo_git_sha(void);

/* "gcc 12.2.0" / "clang 16.0.6" (__VERSION__ of the compiler that built us). */
const char *sysinfo_compiler(void);

/* 12 hex digits identifying this process's run: a hash of the wall-clock
 * time in ns and the pid, fixed at the first call. Thread-safe. */
const char *sysinfo_run_id(void);

/* Machine header: CPU, logical CPUs, caches, load average, scaling governor,
 * build and run id. */
void sysinfo_print(FILE *f);

#endif
